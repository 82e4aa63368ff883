// IDX reader (the MNIST / Fashion-MNIST format): magic 0x00 0x00 <type> <ndims>, ndims
// big-endian uint32 sizes, then big-endian data. Gzip-compressed files (*.gz) are read through
// zlib, with the claimed size bounded by what the compressed length can expand to.
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "core/element_types.h"
#include "io/io_util.h"
#include "mlpx/array_io.h"

namespace mlpx {

namespace {

// Deflate expands at most about 1032:1, so a gzip file of n bytes holds at most this much.
constexpr uint64_t kMaxDeflateRatio = 1032;

ElementType idx_type(const std::string& path, unsigned char code) {
  if (const detail::ElementTypeInfo* info = detail::find_idx_code(code)) return info->type;
  char hex[8];
  std::snprintf(hex, sizeof(hex), "0x%02X", code);
  detail::fail_io(path, "unsupported IDX element type ", hex,
                  ": expected 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32 or "
                  "0x0E float64");
}

std::string hex_bytes(const unsigned char* bytes, size_t n) {
  std::string out;
  char hex[4];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(hex, sizeof(hex), "%s%02x", i ? " " : "", bytes[i]);
    out += hex;
  }
  return out;
}

uint32_t read_be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Validates the 4-byte magic; returns the element type and the number of dimensions.
ElementType parse_magic(const std::string& path, const unsigned char magic[4], int* ndims) {
  if (magic[0] != 0 || magic[1] != 0) {
    detail::fail_io(path, "expected the IDX magic 00 00 <type> <ndims>, found ",
                    hex_bytes(magic, 4));
  }
  const ElementType type = idx_type(path, magic[2]);
  *ndims = magic[3];
  if (*ndims == 0) detail::fail_io(path, "expected an IDX file of rank >= 1, found rank 0");
  return type;
}

Array array_from_dims(const std::string& path, ElementType type, const unsigned char* dims,
                      int ndims, uint64_t* nbytes) {
  Array array;
  array.source = path;
  array.type = type;
  for (int d = 0; d < ndims; ++d) array.shape.push_back(read_be32(dims + size_t{4} * d));
  detail::check_not_empty(array);
  if (!detail::checked_nbytes(array.shape, element_size(type), nbytes)) {
    detail::fail_io(path, "shape ", shape_str(array.shape), " ", element_type_name(type),
                    " is too large: its byte count overflows 64 bits");
  }
  return array;
}

// Big-endian file data to native order, then the finiteness check.
void finish(Array& array) {
  const size_t size = element_size(array.type);
  unsigned char* p = array.bytes.data();
  const size_t n = array.bytes.size();
  if (size == 2) {
    for (size_t i = 0; i < n; i += 2) std::swap(p[i], p[i + 1]);
  } else if (size == 4) {
    for (size_t i = 0; i < n; i += 4) {
      uint32_t v;
      std::memcpy(&v, p + i, 4);
      v = __builtin_bswap32(v);
      std::memcpy(p + i, &v, 4);
    }
  } else if (size == 8) {
    for (size_t i = 0; i < n; i += 8) {
      uint64_t v;
      std::memcpy(&v, p + i, 8);
      v = __builtin_bswap64(v);
      std::memcpy(p + i, &v, 8);
    }
  }
  detail::check_finite(array);
}

Array load_plain_idx(const std::string& path) {
  detail::InputFile file(path);
  if (file.size() < 4) {
    detail::fail_io(path, "truncated: expected at least 4 bytes (IDX magic), found ", file.size());
  }
  unsigned char magic[4];
  file.read_exact(magic, 4, "IDX magic");
  int ndims = 0;
  const ElementType type = parse_magic(path, magic, &ndims);
  if (file.remaining() < uint64_t{4} * ndims) {
    detail::fail_io(path, "truncated: expected ", 4 * ndims, " bytes of dimensions for rank ",
                    ndims, ", found ", file.remaining());
  }
  unsigned char dims[4 * 255] = {};
  file.read_exact(dims, size_t{4} * ndims, "dimensions");
  uint64_t nbytes = 0;
  Array array = array_from_dims(path, type, dims, ndims, &nbytes);
  if (nbytes != file.remaining()) {
    detail::fail_io(path, nbytes > file.remaining() ? "truncated: " : "", "expected ", nbytes,
                    " bytes of data for shape ", shape_str(array.shape), " ",
                    element_type_name(type), ", found ", file.remaining());
  }
  array.bytes.resize(static_cast<size_t>(nbytes));
  file.read_exact(array.bytes.data(), array.bytes.size(), "data");
  finish(array);
  return array;
}

struct GzCloser {
  void operator()(gzFile_s* gz) const { gzclose(gz); }
};

class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path) {
    gz_.reset(gzopen(path.c_str(), "rb"));
    if (!gz_) detail::fail_io(path, "cannot open: ", std::strerror(errno ? errno : ENOMEM));
    gzbuffer(gz_.get(), 1 << 18);
  }

  // Reads exactly n decompressed bytes; IoError on corrupt data or an early end.
  void read_exact(void* dst, size_t n, const char* what) {
    char* out = static_cast<char*>(dst);
    size_t done = 0;
    while (done < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      const int got = gzread(gz_.get(), out + done, chunk);
      if (got < 0) fail_corrupt();
      if (got == 0) {
        check_error();
        detail::fail_io(path_, "truncated: expected ", n, " bytes of ", what,
                        " at decompressed offset ", position_, ", found ", done);
      }
      done += static_cast<size_t>(got);
    }
    position_ += n;
  }

  // Requires the end of the compressed stream (its checksum verified) right here.
  void expect_end() {
    char extra;
    const int got = gzread(gz_.get(), &extra, 1);
    if (got < 0) fail_corrupt();
    if (got > 0) {
      detail::fail_io(path_, "expected the data to end after ", position_,
                      " decompressed bytes, found more");
    }
    check_error();
    const int status = gzclose(gz_.release());
    if (status != Z_OK) detail::fail_io(path_, "corrupt gzip data: ", zError(status));
  }

 private:
  void check_error() {
    int status = Z_OK;
    const char* message = gzerror(gz_.get(), &status);
    if (status != Z_OK && status != Z_STREAM_END) {
      detail::fail_io(path_, "corrupt or truncated gzip data after ", position_,
                      " decompressed bytes: ", message);
    }
  }
  [[noreturn]] void fail_corrupt() {
    int status = Z_OK;
    const char* message = gzerror(gz_.get(), &status);
    detail::fail_io(path_, "corrupt gzip data after ", position_,
                    " decompressed bytes: ", status == Z_ERRNO ? std::strerror(errno) : message);
  }

  const std::string& path_;
  std::unique_ptr<gzFile_s, GzCloser> gz_;
  uint64_t position_ = 0;
};

Array load_gzip_idx(const std::string& path) {
  uint64_t compressed_size = 0;
  {
    // Checks that the file is a regular gzip file before zlib sees it (zlib would otherwise
    // read a non-gzip file as is).
    detail::InputFile file(path);
    compressed_size = file.size();
    unsigned char magic[2] = {0, 0};
    if (file.size() < 2) {
      detail::fail_io(path, "truncated: expected a gzip file (at least 2 bytes), found ",
                      file.size(), " bytes");
    }
    file.read_exact(magic, 2, "gzip magic");
    if (magic[0] != 0x1f || magic[1] != 0x8b) {
      detail::fail_io(path, "expected the gzip magic 1f 8b, found ", hex_bytes(magic, 2));
    }
  }
  GzReader gz(path);
  unsigned char magic[4];
  gz.read_exact(magic, 4, "IDX magic");
  int ndims = 0;
  const ElementType type = parse_magic(path, magic, &ndims);
  unsigned char dims[4 * 255] = {};
  gz.read_exact(dims, size_t{4} * ndims, "dimensions");
  uint64_t nbytes = 0;
  Array array = array_from_dims(path, type, dims, ndims, &nbytes);
  uint64_t limit = 0;
  if (__builtin_mul_overflow(compressed_size, kMaxDeflateRatio, &limit)) limit = UINT64_MAX;
  if (nbytes > limit || nbytes > SIZE_MAX) {
    detail::fail_io(path, "shape ", shape_str(array.shape), " ", element_type_name(type), " needs ",
                    nbytes, " bytes, more than a ", compressed_size,
                    "-byte gzip file can hold (at most ", kMaxDeflateRatio, ":1)");
  }
  array.bytes.resize(static_cast<size_t>(nbytes));
  gz.read_exact(array.bytes.data(), array.bytes.size(), "data");
  gz.expect_end();
  finish(array);
  return array;
}

}  // namespace

Array load_idx(const std::string& path) {
  std::string lower = path;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return detail::ends_with(lower, ".gz") ? load_gzip_idx(path) : load_plain_idx(path);
}

}  // namespace mlpx
