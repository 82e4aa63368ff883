// CSV reader and writer: numbers separated by commas, one row a line. Numbers go through
// std::from_chars / std::to_chars, which ignore the C locale (a "," decimal separator in the
// user's locale cannot change what a file means).
#include <charconv>
#include <cmath>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "io/atomic_file.h"
#include "io/io_util.h"
#include "mlpx/array_io.h"

namespace mlpx {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Parses a whole field as a number; false when any of it is not part of one.
bool parse_number(std::string_view field, double* value) {
  if (field.size() > 1 && field[0] == '+' && field[1] != '-') field.remove_prefix(1);
  if (field.empty()) return false;
  const auto result = std::from_chars(field.data(), field.data() + field.size(), *value);
  return result.ec == std::errc() && result.ptr == field.data() + field.size();
}

std::string quote_field(std::string_view field) {
  constexpr size_t kMax = 40;
  std::string out = "'";
  out += field.substr(0, kMax);
  if (field.size() > kMax) out += "...";
  return out + "'";
}

void split(std::string_view line, std::vector<std::string_view>* fields) {
  fields->clear();
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    fields->push_back(
        trim(line.substr(start, comma == std::string_view::npos ? line.npos : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
}

template <typename T>
void append_number(std::string* out, T value) {
  char text[64];
  const auto result = std::to_chars(text, text + sizeof(text), value);
  out->append(text, result.ptr);
}

}  // namespace

Array load_csv(const std::string& path) {
  detail::InputFile file(path);
  std::string text(static_cast<size_t>(file.size()), '\0');
  file.read_exact(text.data(), text.size(), "text");
  std::string_view rest(text);
  if (rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);  // UTF-8 byte order mark

  std::vector<double> values;
  std::vector<std::string_view> fields;
  int64_t rows = 0, cols = 0, first_row_line = 0, header_cols = 0;
  bool first_line = true;
  for (int64_t line_no = 1; !rest.empty(); ++line_no) {
    const size_t newline = rest.find('\n');
    const std::string_view line = rest.substr(0, newline);
    rest.remove_prefix(newline == std::string_view::npos ? rest.size() : newline + 1);
    if (trim(line).empty()) continue;
    split(line, &fields);
    const int64_t count = static_cast<int64_t>(fields.size());

    const bool may_be_header = first_line;
    first_line = false;
    if (may_be_header) {
      double ignored = 0;
      bool numeric = true;
      for (auto field : fields) numeric = numeric && parse_number(field, &ignored);
      if (!numeric) {
        header_cols = count;
        continue;
      }
    }
    if (rows == 0) {
      cols = count;
      first_row_line = line_no;
      if (header_cols != 0 && header_cols != cols) {
        detail::fail_io(path, "line ", line_no, ": expected ", header_cols,
                        " columns as in the header, found ", cols);
      }
    } else if (count != cols) {
      detail::fail_io(path, "line ", line_no, ": expected ", cols, " columns as on line ",
                      first_row_line, ", found ", count);
    }
    for (int64_t c = 0; c < count; ++c) {
      double value = 0;
      if (!parse_number(fields[c], &value)) {
        detail::fail_io(path, "line ", line_no, ", column ", c + 1, ": expected a number, found ",
                        fields[c].empty() ? std::string("an empty field") : quote_field(fields[c]));
      }
      if (!std::isfinite(value)) {
        detail::fail_io(path, "line ", line_no, ", column ", c + 1,
                        ": expected a finite number, found ", quote_field(fields[c]));
      }
      values.push_back(value);
    }
    ++rows;
  }
  if (rows == 0) {
    detail::fail_io(path, "expected at least one row of numbers, found ",
                    header_cols != 0 ? "only a header" : "an empty file");
  }

  Array array;
  array.source = path;
  array.type = ElementType::kFloat64;
  array.shape = {rows, cols};
  array.bytes.resize(values.size() * sizeof(double));
  std::memcpy(array.bytes.data(), values.data(), array.bytes.size());
  return array;
}

void save_csv(const std::string& path, const Tensor& tensor) {
  MLPX_CHECK(tensor.defined(), IoError, path,
             ": expected a tensor to save, found an undefined one");
  const Tensor host = tensor.to(Device::cpu());
  const int64_t rows = host.rows(), cols = host.cols();
  detail::AtomicFile out(path);
  std::string text;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      if (c) text += ',';
      const int64_t i = r * cols + c;
      switch (host.dtype()) {
        case DType::kFloat32:
          append_number(&text, host.data<float>()[i]);  // shortest text that reads back exactly
          break;
        case DType::kFloat64:
          append_number(&text, host.data<double>()[i]);
          break;
        case DType::kInt32:
          append_number(&text, host.data<int32_t>()[i]);
          break;
      }
    }
    text += '\n';
    if (text.size() >= (size_t{1} << 16)) {
      out.write(text);
      text.clear();
    }
  }
  out.write(text);
  out.commit();
}

}  // namespace mlpx
