// Atomic file replacement for every writer in mlpx (arrays, checkpoints, logs that are rewritten
// whole). Internal.
//
//   detail::AtomicFile out(path);        // creates "<dir>/.<name>.tmp-<pid>-<n>" next to path
//   out.write(header.data(), header.size());
//   out.write(data, nbytes);
//   out.commit();                        // flush, fsync, close, rename over path, fsync dir
//
// Until commit() returns, `path` is untouched; if anything throws (or the object is destroyed
// without commit()), the temporary file is removed. Every failure is an IoError naming `path`.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mlpx::detail {

class AtomicFile {
 public:
  // Creates the temporary file (mode 0666 minus the umask) in path's folder; IoError when the
  // folder is missing or not writable.
  explicit AtomicFile(std::string path);
  // Removes the temporary file unless commit() succeeded. Never throws.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Appends n bytes (buffered); IoError on a failed write (disk full, file size limit, ...).
  void write(const void* data, size_t n);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // Flushes, fsyncs and closes the temporary file, renames it over the target and fsyncs the
  // folder. After an IoError here the target is still the previous file (or absent).
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  void flush_buffer();
  void discard() noexcept;

  std::string path_;
  std::string temp_path_;
  std::string buffer_;
  int fd_ = -1;
  bool committed_ = false;
};

// Replaces the file at `path` with `contents` through an AtomicFile.
void write_file_atomic(const std::string& path, std::string_view contents);

// The folder part of a path ("." when it has none), for fsyncing after a rename.
std::string parent_folder(const std::string& path);

}  // namespace mlpx::detail
