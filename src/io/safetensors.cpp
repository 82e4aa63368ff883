// safetensors reader and writer (see include/mlpx/safetensors.h for the layout).
#include "mlpx/safetensors.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/element_types.h"
#include "io/atomic_file.h"
#include "io/io_util.h"

namespace mlpx {

namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// The same cap as the reference implementation: a header is names and numbers, never data.
constexpr uint64_t kMaxHeaderSize = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";

const char* dtype_code(DType dtype) { return detail::element_type_info(dtype).safetensors; }

std::string quote_name(const std::string& name) { return "'" + detail::printable(name, 80) + "'"; }

// One tensor's entry in the header, validated.
struct Entry {
  std::string name;
  DType dtype = DType::kFloat32;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

// Records the first key that an object repeats: nlohmann::json keeps the last silently.
struct DuplicateKeyFinder {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  int duplicate_depth = 0;

  bool operator()(int depth, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!open_objects.empty() &&
            !open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
          duplicate = parsed.get<std::string>();
          duplicate_depth = depth;
        }
        break;
      default:
        break;
    }
    return true;
  }
};

Json parse_header(const std::string& path, const std::string& text) {
  DuplicateKeyFinder finder;
  Json header;
  try {
    header = Json::parse(text, [&finder](int depth, Json::parse_event_t event, Json& parsed) {
      return finder(depth, event, parsed);
    });
  } catch (const Json::exception& e) {
    detail::fail_io(path, "expected a JSON header, found invalid JSON: ", e.what());
  }
  if (!finder.duplicate.empty()) {
    if (finder.duplicate_depth == 1) {
      detail::fail_io(path, "expected unique tensor names, found ", quote_name(finder.duplicate),
                      " twice");
    }
    detail::fail_io(path, "expected unique keys in the header, found ",
                    quote_name(finder.duplicate), " twice in one object");
  }
  if (!header.is_object()) {
    detail::fail_io(path, "expected a JSON object as the header, found a JSON ",
                    header.type_name());
  }
  return header;
}

// A short, flat description of a JSON value for messages: scalars as JSON, arrays and objects
// by their element counts only. Never recursive: Json::dump() recurses once per nesting level,
// and a header may nest arrays millions deep.
std::string describe(const Json& value) {
  if (value.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < value.size() && i < 8; ++i) {
      const Json& item = value[i];
      out += i ? ", " : "";
      out += item.is_structured() ? std::string(item.is_array() ? "[...]" : "{...}")
                                  : detail::printable(item.dump(), 40);
    }
    return out + (value.size() > 8 ? ", ...]" : "]");
  }
  if (value.is_object()) return "an object of " + std::to_string(value.size()) + " keys";
  return detail::printable(value.dump(), 80);
}

// A JSON value as a non-negative integer below 2^63.
bool as_size(const Json& value, uint64_t* out) {
  if (!value.is_number_unsigned()) return false;
  *out = value.get<uint64_t>();
  return *out <= static_cast<uint64_t>(INT64_MAX);
}

Entry parse_entry(const std::string& path, const std::string& name, const Json& info) {
  Entry entry;
  entry.name = name;
  const std::string where = "tensor " + quote_name(name);
  if (!info.is_object()) {
    detail::fail_io(path, where, ": expected an object with dtype, shape and data_offsets, found ",
                    "a JSON ", info.type_name());
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!info.contains(key))
      detail::fail_io(path, where, ": expected a '", key, "' field, found none");
  }

  const Json& dtype = info["dtype"];
  if (!dtype.is_string()) {
    detail::fail_io(path, where, ": expected dtype to be a string, found a JSON ",
                    dtype.type_name());
  }
  const std::string code = dtype.get<std::string>();
  if (const detail::ElementTypeInfo* info = detail::find_safetensors_code(code)) {
    entry.dtype = info->dtype;
  } else {
    detail::fail_io(path, where, ": expected dtype F32, F64 or I32, found unsupported dtype ",
                    quote_name(code));
  }

  const Json& shape = info["shape"];
  if (!shape.is_array()) {
    detail::fail_io(path, where, ": expected shape to be an array, found a JSON ",
                    shape.type_name());
  }
  if (shape.size() > 2) {
    detail::fail_io(path, where, ": expected a shape of rank 0, 1 or 2, found rank ", shape.size(),
                    " ", describe(shape));
  }
  for (const Json& size : shape) {
    uint64_t s = 0;
    if (!as_size(size, &s)) {
      detail::fail_io(path, where, ": expected non-negative integer sizes in shape, found ",
                      describe(shape));
    }
    entry.shape.push_back(static_cast<int64_t>(s));
  }
  if (entry.shape.empty()) entry.shape = {1};  // a scalar loads as one element

  const Json& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !as_size(offsets[0], &entry.begin) ||
      !as_size(offsets[1], &entry.end) || entry.end < entry.begin) {
    detail::fail_io(path, where,
                    ": expected data_offsets [begin, end] with 0 <= begin <= end, found ",
                    describe(offsets));
  }
  uint64_t nbytes = 0;
  if (!detail::checked_nbytes(entry.shape, dtype_size(entry.dtype), &nbytes)) {
    detail::fail_io(path, where, ": shape ", shape_str(entry.shape), " ", dtype_name(entry.dtype),
                    " is too large: its byte count overflows 64 bits");
  }
  if (entry.end - entry.begin != nbytes) {
    detail::fail_io(path, where, ": expected ", nbytes, " bytes for shape ", shape_str(entry.shape),
                    " ", code, ", found data_offsets [", entry.begin, ", ", entry.end, "] (",
                    entry.end - entry.begin, " bytes)");
  }
  return entry;
}

}  // namespace

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  OrderedJson header = OrderedJson::object();
  header[kMetadataKey] = OrderedJson::object();
  for (const auto& [key, value] : metadata) header[kMetadataKey][key] = value;
  std::vector<Tensor> host;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    MLPX_CHECK(!name.empty() && name != kMetadataKey, IoError, path,
               ": expected a tensor name other than '' and '__metadata__', found ",
               quote_name(name));
    MLPX_CHECK(!header.contains(name), IoError, path, ": expected unique tensor names, found ",
               quote_name(name), " twice");
    MLPX_CHECK(tensor.defined(), IoError, path, ": tensor ", quote_name(name),
               ": expected a defined tensor, found an undefined one");
    host.push_back(tensor.to(Device::cpu()));
    const uint64_t end = offset + host.back().nbytes();
    header[name] = {{"dtype", dtype_code(tensor.dtype())},
                    {"shape", tensor.shape()},
                    {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const OrderedJson::exception& e) {
    detail::fail_io(path, "cannot write the header (names and metadata must be UTF-8): ", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  unsigned char length[8];
  for (int i = 0; i < 8; ++i)
    length[i] = static_cast<unsigned char>(uint64_t{text.size()} >> (8 * i));

  detail::AtomicFile out(path);
  out.write(length, sizeof(length));
  out.write(text);
  for (const Tensor& t : host) out.write(t.raw_data(), t.nbytes());
  out.commit();
}

// " (it starts like ...)" for a file that is not safetensors, from its first bytes: the
// formats a user may pass by mistake (a data file, PyTorch's zip checkpoint).
std::string looks_like(const unsigned char* bytes, size_t n) {
  auto starts = [&](const char* magic, size_t len) {
    return n >= len && std::memcmp(bytes, magic, len) == 0;
  };
  if (starts("\x93NUMPY", 6)) return " (it starts like a .npy array)";
  if (starts("\x1f\x8b", 2)) return " (it starts like a gzip file)";
  if (starts("PK\x03\x04", 4)) return " (it starts like a zip archive, as PyTorch's .pt files)";
  if (n >= 4 && bytes[0] == 0 && bytes[1] == 0 && bytes[2] >= 0x08 && bytes[2] <= 0x0E) {
    return " (it starts like an IDX file)";
  }
  bool text = n > 0;
  for (size_t i = 0; i < n; ++i) text = text && (std::isprint(bytes[i]) || std::isspace(bytes[i]));
  return text ? " (it starts like a text file)" : "";
}

SafetensorsFile load_safetensors(const std::string& path) {
  detail::InputFile file(path);
  // The header length (8 bytes, little endian), then the header, a JSON object: '{'.
  unsigned char start[9] = {};
  const size_t got = static_cast<size_t>(std::min<uint64_t>(file.size(), sizeof(start)));
  file.read_exact(start, got, "header length");
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= uint64_t{start[i]} << (8 * i);
  // JSON may start with whitespace; a safetensors header is an object.
  const bool json_object_follows =
      got == sizeof(start) && (start[8] == '{' || std::isspace(start[8]) != 0);
  if (!json_object_follows || header_size == 0) {
    detail::fail_io(path, "not a safetensors file: expected an 8-byte header length and a JSON ",
                    "header, found ",
                    got < sizeof(start) ? std::to_string(got) + " bytes in all"
                    : header_size == 0  ? std::string("a length of 0")
                                        : std::string("no JSON object after the length"),
                    looks_like(start, got));
  }
  if (header_size > kMaxHeaderSize) {
    detail::fail_io(path, "expected a header of at most ", kMaxHeaderSize,
                    " bytes, found a length of ", header_size);
  }
  if (header_size > file.remaining() + 1) {
    detail::fail_io(path, "truncated: expected a ", header_size, "-byte header, found ",
                    file.remaining() + 1, " bytes after the header length");
  }
  std::string text(static_cast<size_t>(header_size), static_cast<char>(start[8]));
  file.read_exact(text.data() + 1, text.size() - 1, "header");
  const Json header = parse_header(path, text);

  SafetensorsFile result;
  result.source = path;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) {
        detail::fail_io(path, "expected __metadata__ to be an object, found a JSON ",
                        value.type_name());
      }
      for (const auto& [meta_key, meta_value] : value.items()) {
        if (!meta_value.is_string()) {
          detail::fail_io(path, "expected string values in __metadata__, found a JSON ",
                          meta_value.type_name(), " for key ", quote_name(meta_key));
        }
        result.metadata[meta_key] = meta_value.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, key, value));
  }

  // The tensors must tile the data section exactly: sorted by offset, each starts where the
  // previous one ended, the first at 0 and the last at the end of the file.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const uint64_t data_size = file.remaining();
  uint64_t expected = 0;
  const Entry* previous = nullptr;
  for (const Entry& entry : entries) {
    if (entry.begin != expected) {
      const std::string after =
          previous ? " (after tensor " + quote_name(previous->name) + ")" : "";
      detail::fail_io(path, "tensor ", quote_name(entry.name),
                      ": expected data to start at offset ", expected, after, ", found ",
                      entry.begin, entry.begin < expected ? " (overlapping)" : " (a gap)");
    }
    if (entry.end > data_size) {
      detail::fail_io(path, "truncated: tensor ", quote_name(entry.name), " ends at data offset ",
                      entry.end, ", but the file holds ", data_size, " bytes of data");
    }
    expected = entry.end;
    previous = &entry;
  }
  if (expected != data_size) {
    detail::fail_io(path, "expected ", expected, " bytes of tensor data after the header, found ",
                    data_size);
  }

  // Only now, with every size proven to fit in the file, allocate and read.
  for (const Entry& entry : entries) {
    Tensor tensor(entry.shape, entry.dtype);
    file.read_exact(tensor.raw_data(), tensor.nbytes(), "tensor data");
    result.tensors.emplace_back(entry.name, std::move(tensor));
  }
  return result;
}

const Tensor& SafetensorsFile::get(const std::string& name) const {
  for (const auto& [key, tensor] : tensors) {
    if (key == name) return tensor;
  }
  std::string names;
  for (size_t i = 0; i < tensors.size() && i < 8; ++i) {
    names += (i ? ", " : "") + quote_name(tensors[i].first);
  }
  if (tensors.size() > 8) names += ", ...";
  detail::fail_io(source.empty() ? std::string("safetensors") : source, "expected a tensor named ",
                  quote_name(name), ", found none (the file has ", tensors.size(), " tensors",
                  tensors.empty() ? "" : ": ", names, ")");
}

bool SafetensorsFile::contains(const std::string& name) const {
  for (const auto& entry : tensors) {
    if (entry.first == name) return true;
  }
  return false;
}

}  // namespace mlpx
