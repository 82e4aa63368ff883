// detail::AtomicFile: the target changes only at commit(), and a temporary never outlives it.
#include "io/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "io_test_util.h"
#include "mlpx/error.h"

namespace mlpx {
namespace {

using test::TempDir;
using test::throws_io_error;

TEST(AtomicFile, ReplacesTheTargetOnlyAtCommit) {
  TempDir dir;
  const std::string path = dir.file("out.txt");
  test::write_bytes(path, "old");
  {
    detail::AtomicFile out(path);
    out.write("new ");
    out.write(std::string(3 << 20, 'x'));  // larger than the buffer: written straight through
    EXPECT_EQ(test::read_bytes(path), "old");
    EXPECT_EQ(dir.entries().size(), 2u);
    EXPECT_EQ(detail::parent_folder(out.temp_path()), dir.path());
    out.commit();
  }
  const std::string now = test::read_bytes(path);
  EXPECT_EQ(now.size(), 4u + (3u << 20));
  EXPECT_EQ(now.substr(0, 4), "new ");
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"out.txt"}));
}

TEST(AtomicFile, AbandonedWritesRemoveTheTemporary) {
  TempDir dir;
  const std::string path = dir.file("out.txt");
  test::write_bytes(path, "old");
  {
    detail::AtomicFile out(path);
    out.write("partial");
  }  // destroyed without commit, as when an exception unwinds
  EXPECT_EQ(test::read_bytes(path), "old");
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"out.txt"}));
}

TEST(AtomicFile, WholeFileHelperAndPermissions) {
  TempDir dir;
  const std::string path = dir.file("a.json");
  detail::write_file_atomic(path, "{}\n");
  EXPECT_EQ(test::read_bytes(path), "{}\n");
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(info.st_mode & 0777, 0666 & ~mask);  // as a plain open() would create it
  EXPECT_EQ(detail::parent_folder("file"), ".");
  EXPECT_EQ(detail::parent_folder("/file"), "/");
  EXPECT_EQ(detail::parent_folder("a/b/c"), "a/b");
  EXPECT_TRUE(throws_io_error([&] { detail::write_file_atomic(dir.path() + "/", "x"); },
                              {"expected a file name"}));
}

}  // namespace
}  // namespace mlpx
