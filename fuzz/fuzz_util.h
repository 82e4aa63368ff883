// Shared pieces of the libFuzzer targets. The readers take paths, so each target writes its
// input to one scratch file per process (in /dev/shm when it exists, else $TMPDIR or /tmp),
// rewritten in place for every input, and calls the reader on it. A thrown mlpx::Error is the
// expected outcome for bad input; anything else (another exception, a crash, a sanitizer
// report, a leak, a timeout, an allocation over -malloc_limit_mb) is a bug.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "mlpx/array_io.h"

namespace mlpx::fuzz {

// A scratch file named "<dir>/mlpx-fuzz-<pid>-<tag><suffix>", removed at exit.
class ScratchFile {
 public:
  ScratchFile(const std::string& tag, const std::string& suffix) {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : std::getenv("TMPDIR");
    if (dir == nullptr || *dir == '\0') dir = "/tmp";
    path_ = std::string(dir) + "/mlpx-fuzz-" + std::to_string(getpid()) + "-" + tag + suffix;
    fd_ = open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      std::perror(path_.c_str());
      std::abort();
    }
  }
  ~ScratchFile() {
    close(fd_);
    unlink(path_.c_str());
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  // Replaces the file's contents with `size` bytes; returns its path.
  const std::string& write(const uint8_t* data, size_t size) {
    if (ftruncate(fd_, 0) != 0) std::abort();
    size_t done = 0;
    while (done < size) {
      const ssize_t n = pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// Aborts (a finding for libFuzzer) with a message when `cond` is false.
inline void require(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "mlpx fuzz: property violated: %s\n", what);
    std::abort();
  }
}

// What training does with an array a reader accepted, and what must hold for it: the array is
// not empty, its bytes match its shape and type and are at most `max_bytes` (what the input
// can justify), and the conversions to features and labels keep every element or throw
// mlpx::Error.
inline void check_accepted_array(const Array& array, size_t max_bytes) {
  require(array.numel() > 0, "a loaded array is not empty");
  require(array.bytes.size() == static_cast<size_t>(array.numel()) * element_size(array.type),
          "bytes match shape and element type");
  require(array.bytes.size() <= max_bytes, "data fits what the input can justify");
  const Tensor x = to_float_tensor(array);
  require(x.numel() == array.numel(), "features keep every element");
  const Tensor y = to_labels(array, "labels");
  check_labels(y, 10, "labels");
}

}  // namespace mlpx::fuzz
