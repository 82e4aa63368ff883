// .npy reader and writer. Format: "\x93NUMPY", major, minor, header length (2 bytes LE in 1.0,
// 4 bytes LE in 2.0 and 3.0), a Python dict literal {'descr': ..., 'fortran_order': ...,
// 'shape': (...)} padded with spaces and ended by '\n', then the raw data.
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "core/element_types.h"
#include "io/atomic_file.h"
#include "io/io_util.h"
#include "mlpx/array_io.h"

namespace mlpx {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

std::string excerpt(std::string_view text) { return detail::printable(text, 24); }

// A strict parser for the header dict that numpy writes; nothing else is accepted.
class HeaderParser {
 public:
  HeaderParser(const std::string& path, std::string_view text) : path_(path), text_(text) {}

  struct Header {
    std::string descr;
    bool fortran_order = false;
    Shape shape;
  };

  Header parse() {
    Header header;
    bool have_descr = false, have_order = false, have_shape = false;
    skip_space();
    expect('{');
    skip_space();
    while (peek() != '}') {
      const std::string key = parse_string();
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (have_descr) fail("'descr' once", "it twice");
        if (peek() != '\'' && peek() != '"') fail("a dtype string for 'descr'", rest());
        header.descr = parse_string();
        have_descr = true;
      } else if (key == "fortran_order") {
        if (have_order) fail("'fortran_order' once", "it twice");
        header.fortran_order = parse_bool();
        have_order = true;
      } else if (key == "shape") {
        if (have_shape) fail("'shape' once", "it twice");
        header.shape = parse_tuple();
        have_shape = true;
      } else {
        fail("the keys 'descr', 'fortran_order' and 'shape'", "'" + excerpt(key) + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        skip_space();
      } else if (peek() != '}') {
        fail("',' or '}'", rest());
      }
    }
    ++pos_;
    skip_space();
    if (pos_ != text_.size()) fail("only padding after the header dict", rest());
    if (!have_descr || !have_order || !have_shape) {
      fail("the keys 'descr', 'fortran_order' and 'shape'",
           detail::concat("no '",
                          !have_descr   ? "descr"
                          : !have_order ? "fortran_order"
                                        : "shape",
                          "'"));
    }
    return header;
  }

 private:
  [[noreturn]] void fail(const std::string& expected, const std::string& found) const {
    detail::fail_io(path_, "malformed .npy header: expected ", expected, " at character ", pos_,
                    ", found ", found);
  }
  std::string rest() const {
    return pos_ >= text_.size() ? std::string("the end of the header")
                                : "'" + excerpt(text_.substr(pos_)) + "'";
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }
  void expect(char c) {
    if (peek() != c || pos_ >= text_.size()) fail(detail::concat("'", c, "'"), rest());
    ++pos_;
  }
  std::string parse_string() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("a quoted key", rest());
    const size_t start = ++pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\') fail("a string without escapes", rest());
      ++pos_;
    }
    if (pos_ >= text_.size()) fail("a closing quote", rest());
    return std::string(text_.substr(start, pos_++ - start));
  }
  bool parse_bool() {
    if (text_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    fail("True or False for 'fortran_order'", rest());
  }
  int64_t parse_int() {
    if (peek() < '0' || peek() > '9') fail("a non-negative integer dimension", rest());
    int64_t value = 0;
    while (peek() >= '0' && peek() <= '9') {
      const int digit = peek() - '0';
      if (value > (INT64_MAX - digit) / 10) fail("a dimension below 2^63", rest());
      value = value * 10 + digit;
      ++pos_;
    }
    if (peek() == 'L') ++pos_;  // Python 2 long literal
    return value;
  }
  Shape parse_tuple() {
    Shape shape;
    expect('(');
    skip_space();
    while (peek() != ')') {
      shape.push_back(parse_int());
      skip_space();
      if (peek() == ',') {
        ++pos_;
        skip_space();
      } else if (peek() != ')') {
        fail("',' or ')' in the shape tuple", rest());
      } else if (shape.size() == 1) {
        fail("a trailing comma in a 1-tuple such as (3,)", rest());
      }
    }
    ++pos_;
    return shape;
  }

  const std::string& path_;
  std::string_view text_;
  size_t pos_ = 0;
};

ElementType parse_descr(const std::string& path, const std::string& descr) {
  if (const detail::ElementTypeInfo* info = detail::find_npy_descr(descr)) return info->type;
  std::string supported;
  for (const detail::ElementTypeInfo& info : detail::kElementTypes) {
    supported += detail::concat(supported.empty() ? "" : ", ", info.npy);
  }
  const bool big_endian = !descr.empty() && descr[0] == '>';
  detail::fail_io(path, "unsupported dtype '", excerpt(descr), "': expected one of ", supported,
                  big_endian ? " (this one is big-endian; convert it with .astype('<...'))" : "");
}

// Copies the elements of a Fortran-ordered array (first index fastest) into C order (last
// index fastest), walking the output in order and stepping the input by Fortran strides.
template <typename Word>
void fortran_to_c_order(const Shape& shape, const unsigned char* in, unsigned char* out) {
  const size_t rank = shape.size();
  std::vector<uint64_t> stride(rank), index(rank, 0);
  uint64_t total = 1;
  for (size_t d = 0; d < rank; ++d) {
    stride[d] = total;
    total *= static_cast<uint64_t>(shape[d]);
  }
  const auto* src = reinterpret_cast<const Word*>(in);
  auto* dst = reinterpret_cast<Word*>(out);
  uint64_t offset = 0;
  for (uint64_t i = 0; i < total; ++i) {
    dst[i] = src[offset];
    for (size_t d = rank; d-- > 0;) {  // the odometer: bump the last index, carry leftwards
      offset += stride[d];
      if (++index[d] < static_cast<uint64_t>(shape[d])) break;
      offset -= stride[d] * index[d];
      index[d] = 0;
    }
  }
}

void to_c_order(Array& array) {
  // Axes of size 1 do not move any element; with fewer than two other axes both orders are
  // the same bytes ([N], [N, 1], [1, F]).
  Shape moving;
  for (int64_t size : array.shape) {
    if (size != 1) moving.push_back(size);
  }
  if (moving.size() < 2) return;
  std::vector<unsigned char> c_order(array.bytes.size());
  switch (element_size(array.type)) {
    case 1:
      fortran_to_c_order<uint8_t>(moving, array.bytes.data(), c_order.data());
      break;
    case 2:
      fortran_to_c_order<uint16_t>(moving, array.bytes.data(), c_order.data());
      break;
    case 4:
      fortran_to_c_order<uint32_t>(moving, array.bytes.data(), c_order.data());
      break;
    default:
      fortran_to_c_order<uint64_t>(moving, array.bytes.data(), c_order.data());
      break;
  }
  array.bytes.swap(c_order);
}

const char* descr_of(DType dtype) { return detail::element_type_info(dtype).npy; }

}  // namespace

Array load_npy(const std::string& path) {
  detail::InputFile file(path);
  constexpr uint64_t kMinSize = kMagicSize + 2 + 2;
  if (file.size() < kMinSize) {
    detail::fail_io(path, "truncated: expected at least ", kMinSize,
                    " bytes (.npy magic, version, header length), found ", file.size());
  }
  unsigned char prefix[kMagicSize + 2];
  file.read_exact(prefix, sizeof(prefix), ".npy magic and version");
  if (std::memcmp(prefix, kMagic, kMagicSize) != 0) {
    detail::fail_io(path, "expected the .npy magic \\x93NUMPY, found '",
                    excerpt(std::string_view(reinterpret_cast<char*>(prefix), kMagicSize)), "'");
  }
  const int major = prefix[6], minor = prefix[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    detail::fail_io(path, "expected .npy format version 1.0, 2.0 or 3.0, found ", major, ".",
                    minor);
  }
  uint64_t header_size = 0;
  if (major == 1) {
    unsigned char len[2];
    file.read_exact(len, 2, "header length");
    header_size = len[0] | (uint64_t{len[1]} << 8);
  } else {
    unsigned char len[4];
    file.read_exact(len, 4, "header length");
    header_size =
        len[0] | (uint64_t{len[1]} << 8) | (uint64_t{len[2]} << 16) | (uint64_t{len[3]} << 24);
  }
  if (header_size > file.remaining()) {
    detail::fail_io(path, "truncated: expected a ", header_size, "-byte header, found ",
                    file.remaining(), " bytes after the header length");
  }
  std::string header_text(header_size, '\0');
  file.read_exact(header_text.data(), header_size, "header");
  const auto header = HeaderParser(path, header_text).parse();

  Array array;
  array.source = path;
  array.type = parse_descr(path, header.descr);
  array.shape = header.shape;
  if (array.shape.empty()) {
    detail::fail_io(path, "expected an array of rank >= 1, found a scalar (shape ())");
  }
  detail::check_not_empty(array);
  uint64_t nbytes = 0;
  if (!detail::checked_nbytes(array.shape, element_size(array.type), &nbytes)) {
    detail::fail_io(path, "shape ", shape_str(array.shape), " ", element_type_name(array.type),
                    " is too large: its byte count overflows 64 bits");
  }
  if (nbytes != file.remaining()) {
    detail::fail_io(path, nbytes > file.remaining() ? "truncated: " : "", "expected ", nbytes,
                    " bytes of data for shape ", shape_str(array.shape), " ",
                    element_type_name(array.type), ", found ", file.remaining());
  }
  array.bytes.resize(static_cast<size_t>(nbytes));
  file.read_exact(array.bytes.data(), array.bytes.size(), "data");
  if (header.fortran_order) to_c_order(array);
  detail::check_finite(array);
  return array;
}

void save_npy(const std::string& path, const Tensor& tensor) {
  MLPX_CHECK(tensor.defined(), IoError, path,
             ": expected a tensor to save, found an undefined one");
  const Tensor host = tensor.to(Device::cpu());
  std::string shape = "(";
  for (int d = 0; d < host.dim(); ++d) shape += detail::concat(d ? ", " : "", host.size(d));
  shape += host.dim() == 1 ? ",)" : ")";
  std::string header = detail::concat("{'descr': '", descr_of(host.dtype()),
                                      "', 'fortran_order': False, 'shape': ", shape, ", }");
  // numpy pads so that magic + version + length + header is a multiple of 64, ending in '\n'.
  constexpr size_t kPrefix = kMagicSize + 2 + 2;
  const size_t total = (kPrefix + header.size() + 1 + 63) / 64 * 64;
  header.append(total - kPrefix - header.size() - 1, ' ');
  header += '\n';
  MLPX_CHECK(header.size() <= 0xffff, IoError, path, ": .npy header too long for version 1.0");

  std::string prefix(kMagic, kMagicSize);
  prefix += '\x01';
  prefix += '\x00';
  prefix += static_cast<char>(header.size() & 0xff);
  prefix += static_cast<char>(header.size() >> 8);

  detail::AtomicFile out(path);
  out.write(prefix);
  out.write(header);
  out.write(host.raw_data(), host.nbytes());
  out.commit();
}

}  // namespace mlpx
