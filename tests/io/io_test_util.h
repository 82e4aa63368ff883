// Helpers for the file-format tests: a temporary folder, raw byte files, and checks that a call
// fails with an IoError whose message names the file.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "mlpx/error.h"

namespace mlpx::test {

// A fresh folder under /tmp (mkdtemp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/mlpx_io_test_XXXXXX";
    const char* made = ::mkdtemp(pattern);
    if (made == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = made;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Names of every entry in the folder, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(path_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::string path_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The bytes of a string literal, embedded NULs included: raw("\x00\x01").
template <size_t N>
std::string raw(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

// Little-endian and big-endian encodings of fixed-size values, for hand-built files.
template <typename T>
std::string le_bytes(T value) {
  std::string out(sizeof(T), '\0');
  std::memcpy(out.data(), &value, sizeof(T));
  return out;
}
template <typename T>
std::string be_bytes(T value) {
  std::string out = le_bytes(value);
  std::reverse(out.begin(), out.end());
  return out;
}
template <typename T>
std::string le_array(std::initializer_list<T> values) {
  std::string out;
  for (T v : values) out += le_bytes(v);
  return out;
}

// Passes when fn() throws IoError whose message contains every one of `parts`.
template <typename Fn>
::testing::AssertionResult throws_io_error(Fn&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const IoError& e) {
    const std::string message = e.what();
    if (message.find('\n') != std::string::npos) {
      return ::testing::AssertionFailure() << "message spans several lines: " << message;
    }
    for (const auto& part : parts) {
      if (message.find(part) == std::string::npos) {
        return ::testing::AssertionFailure() << "message lacks '" << part << "': " << message;
      }
    }
    return ::testing::AssertionSuccess() << message;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw another exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "threw nothing";
}

// Writes `iterations` corrupted copies of `valid` to `path` (1 to 4 bytes overwritten, some
// also cut short) and calls load(path) on each: it must return or throw IoError, nothing else
// (a crash fails the whole binary). Deterministic for a given seed.
template <typename Load>
void expect_corruptions_handled(const std::string& path, const std::string& valid, int iterations,
                                uint64_t seed, Load load) {
  std::mt19937_64 gen(seed);
  int failures = 0;
  for (int i = 0; i < iterations && failures < 5; ++i) {
    std::string bytes = valid;
    const int flips = 1 + static_cast<int>(gen() % 4);
    for (int f = 0; f < flips; ++f) {
      // Half the flips land in the first 128 bytes, where the headers are.
      const size_t limit = (gen() % 2 == 0) ? std::min<size_t>(128, bytes.size()) : bytes.size();
      bytes[gen() % limit] = static_cast<char>(gen() % 256);
    }
    if (gen() % 8 == 0) bytes.resize(gen() % (bytes.size() + 1));
    write_bytes(path, bytes);
    try {
      load(path);
    } catch (const IoError&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "corruption " << i << ": threw a non-IoError: " << e.what();
      ++failures;
    }
  }
}

// Lowers the process's file size limit (RLIMIT_FSIZE) so that writes past `bytes` fail with
// EFBIG instead of killing the process; restores the limit and SIGXFSZ on destruction. Works
// as root, unlike a read-only folder.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &old_);
    rlimit lowered = old_;
    lowered.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &lowered);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit old_{};
  sighandler_t old_handler_ = SIG_DFL;
};

}  // namespace mlpx::test
