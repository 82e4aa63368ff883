#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "mlpx/error.h"

namespace mlpx::detail {

namespace {

constexpr size_t kBufferSize = size_t{1} << 20;
// Keeps "<name>.tmp-<pid>-<n>" within NAME_MAX for long target names.
constexpr size_t kMaxNameInTemp = 160;

std::atomic<unsigned> temp_counter{0};

std::string base_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Writes all n bytes, retrying after signals and short writes.
bool write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t done = ::write(fd, data, n);
    if (done < 0 && errno == EINTR) continue;
    if (done <= 0) {
      if (done == 0) errno = EIO;
      return false;
    }
    data += done;
    n -= static_cast<size_t>(done);
  }
  return true;
}

}  // namespace

std::string parent_folder(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  MLPX_CHECK(!path_.empty() && path_.back() != '/', IoError, "cannot write '", path_,
             "': expected a file name, found a folder path");
  const std::string folder = parent_folder(path_);
  std::string name = base_name(path_);
  if (name.size() > kMaxNameInTemp) name.resize(kMaxNameInTemp);
  const std::string prefix = (path_.find('/') == std::string::npos ? std::string() : folder + "/");
  // O_EXCL with a fresh name (pid + counter) instead of mkstemp keeps the usual 0666 & ~umask
  // permissions on the final file.
  for (int attempt = 0; attempt < 100; ++attempt) {
    temp_path_ = concat(prefix, '.', name, ".tmp-", ::getpid(), '-', temp_counter.fetch_add(1));
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ >= 0) break;
    if (errno != EEXIST) {
      const int err = errno;
      temp_path_.clear();
      throw IoError(concat(path_, ": cannot create a temporary file in folder '", folder,
                           "': ", std::strerror(err)));
    }
  }
  if (fd_ < 0) {
    temp_path_.clear();
    throw IoError(concat(path_, ": cannot create a temporary file in folder '", folder,
                         "': every candidate name exists"));
  }
  buffer_.reserve(kBufferSize);
}

AtomicFile::~AtomicFile() {
  if (!committed_) discard();
}

void AtomicFile::discard() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!temp_path_.empty()) {
    ::unlink(temp_path_.c_str());
    temp_path_.clear();
  }
}

void AtomicFile::flush_buffer() {
  if (buffer_.empty()) return;
  const bool ok = write_all(fd_, buffer_.data(), buffer_.size());
  const int err = errno;
  buffer_.clear();
  if (!ok) {
    discard();
    throw IoError(concat(path_, ": write failed: ", std::strerror(err)));
  }
}

void AtomicFile::write(const void* data, size_t n) {
  MLPX_CHECK(fd_ >= 0 && !committed_, IoError, path_,
             ": write after the file was committed or abandoned");
  const char* bytes = static_cast<const char*>(data);
  if (buffer_.size() + n <= kBufferSize) {
    buffer_.append(bytes, n);
    return;
  }
  flush_buffer();
  if (n < kBufferSize) {
    buffer_.append(bytes, n);
    return;
  }
  if (!write_all(fd_, bytes, n)) {
    const int err = errno;
    discard();
    throw IoError(concat(path_, ": write failed: ", std::strerror(err)));
  }
}

void AtomicFile::commit() {
  MLPX_CHECK(fd_ >= 0 && !committed_, IoError, path_,
             ": commit after the file was committed or abandoned");
  flush_buffer();
  if (::fsync(fd_) != 0) {
    const int err = errno;
    discard();
    throw IoError(concat(path_, ": fsync failed: ", std::strerror(err)));
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const int err = errno;
    discard();
    throw IoError(concat(path_, ": close failed: ", std::strerror(err)));
  }
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    discard();
    throw IoError(concat(path_, ": cannot replace the file: ", std::strerror(err)));
  }
  committed_ = true;
  temp_path_.clear();
  // Makes the rename itself durable. Best effort: the new file is already in place, and some
  // file systems refuse fsync on folders.
  const int dir = ::open(parent_folder(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  AtomicFile out(path);
  out.write(contents);
  out.commit();
}

}  // namespace mlpx::detail
