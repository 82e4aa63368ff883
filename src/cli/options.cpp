#include "options.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>
#include <vector>

#include "mlpx/device.h"
#include "train/config_fields.h"

namespace mlpx::cli {

namespace {

// A number in plain form: "%g" for non-integers, integers without a fraction.
std::string number_text(double value) {
  std::ostringstream s;
  s << value;
  return s.str();
}

bool parse_integer(const std::string& text, long long* value) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  *value = std::strtoll(text.c_str(), &end, 10);
  return errno == 0 && end == text.c_str() + text.size();
}

bool parse_number(const std::string& text, double* value) {
  if (text.empty()) return false;
  char* end = nullptr;
  *value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && std::isfinite(*value);
}

}  // namespace

CLI::Validator integer_at_least(long long min) {
  const std::string expected = "an integer >= " + std::to_string(min);
  return {[min, expected](std::string& text) -> std::string {
            long long value = 0;
            if (parse_integer(text, &value) && value >= min) return "";
            return "expected " + expected + ", found " + text;
          },
          "INT>=" + std::to_string(min)};
}

CLI::Validator integer_in(long long low, long long high) {
  const std::string range = "[" + std::to_string(low) + ", " + std::to_string(high) + "]";
  return {[low, high, range](std::string& text) -> std::string {
            long long value = 0;
            if (parse_integer(text, &value) && value >= low && value <= high) return "";
            return "expected an integer in " + range + ", found " + text;
          },
          "INT in " + range};
}

CLI::Validator number_at_least(double min, bool strict) {
  const std::string expected =
      std::string("a number ") + (strict ? "> " : ">= ") + number_text(min);
  return {[min, strict, expected](std::string& text) -> std::string {
            double value = 0;
            if (parse_number(text, &value) && (strict ? value > min : value >= min)) return "";
            return "expected " + expected + ", found " + text;
          },
          std::string("NUMBER") + (strict ? ">" : ">=") + number_text(min)};
}

CLI::Validator number_in(double low, double high) {
  const std::string range = "[" + number_text(low) + ", " + number_text(high) + "]";
  return {[low, high, range](std::string& text) -> std::string {
            double value = 0;
            if (parse_number(text, &value) && value >= low && value <= high) return "";
            return "expected a number in " + range + ", found " + text;
          },
          "NUMBER in " + range};
}

CLI::Validator existing_file() {
  return {[](std::string& text) -> std::string {
            std::error_code error;
            if (std::filesystem::is_regular_file(text, error)) return "";
            if (std::filesystem::exists(text, error)) {
              return "expected a file, found a folder or other non-file at " + text;
            }
            return "expected an existing file, found no file at " + text;
          },
          "FILE"};
}

CLI::Validator device_name() {
  return {[](std::string& text) -> std::string {
            try {
              if (Device::parse(text).is_cpu() || cuda_available()) return "";
            } catch (const std::exception&) {
              return "expected auto, cpu, cuda or cuda:N, found " + text;
            }
            return "no CUDA device is visible (--device " + text +
                   " needs an NVIDIA GPU and its driver); use --device cpu";
          },
          "DEVICE"};
}

std::string unexpected_arguments_message(const std::vector<std::string>& arguments,
                                         const std::vector<std::string>& known) {
  const auto option = std::find_if(arguments.begin(), arguments.end(), [](const std::string& a) {
    return a.size() > 1 && a[0] == '-';
  });
  if (option == arguments.end()) {
    return "unexpected argument " + (arguments.empty() ? std::string("?") : arguments.front());
  }
  const std::string name = option->substr(0, option->find('='));
  const std::string nearest =
      detail::nearest_key(name, std::set<std::string>(known.begin(), known.end()));
  return "unknown option " + name + (nearest.empty() ? "" : " (did you mean " + nearest + "?)");
}

}  // namespace mlpx::cli
