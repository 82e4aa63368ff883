// CSV reading (headers, line endings, every malformation) and writing (exact round trips).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "io_test_util.h"
#include "mlpx/array_io.h"
#include "mlpx/error.h"
#include "test_util.h"

namespace mlpx {
namespace {

using test::TempDir;
using test::throws_io_error;
using test::write_bytes;

std::vector<double> values_of(const Array& array) {
  std::vector<double> out(array.bytes.size() / sizeof(double));
  std::memcpy(out.data(), array.bytes.data(), array.bytes.size());
  return out;
}

class Csv : public ::testing::Test {
 protected:
  std::string put(const std::string& text, const std::string& name = "d.csv") {
    const std::string path = dir_.file(name);
    write_bytes(path, text);
    return path;
  }
  TempDir dir_;
};

TEST_F(Csv, ReadsNumbersWithOrWithoutHeader) {
  Array a = load_array(put("1,2.5,-3\n4e2, +5 ,6E-1\n"));
  EXPECT_EQ(a.type, ElementType::kFloat64);
  EXPECT_EQ(a.shape, (Shape{2, 3}));
  EXPECT_EQ(values_of(a), (std::vector<double>{1, 2.5, -3, 400, 5, 0.6}));

  Array h = load_csv(put("x,y\n1,2\n3,4"));  // no final newline
  EXPECT_EQ(h.shape, (Shape{2, 2}));
  EXPECT_EQ(values_of(h), (std::vector<double>{1, 2, 3, 4}));

  // Byte order mark, CRLF line endings, blank lines, a single column.
  Array c = load_csv(put("\xEF\xBB\xBFlabel\r\n7\r\n\r\n  \n8\r\n"));
  EXPECT_EQ(c.shape, (Shape{2, 1}));
  EXPECT_EQ(values_of(c), (std::vector<double>{7, 8}));
  EXPECT_EQ(to_labels(c, "d.csv").to_vector<int32_t>(), (std::vector<int32_t>{7, 8}));
  EXPECT_EQ(to_float_tensor(c).shape(), (Shape{2, 1}));
}

TEST_F(Csv, RejectsRaggedRowsNamingTheLine) {
  EXPECT_TRUE(throws_io_error([&] { load_csv(put("1,2\n3,4\n5\n")); },
                              {"d.csv", "line 3", "expected 2 columns", "found 1"}));
  EXPECT_TRUE(throws_io_error([&] { load_csv(put("a,b\n1,2\n\n3,4,5\n")); },
                              {"line 4", "as on line 2", "found 3"}));
  EXPECT_TRUE(throws_io_error([&] { load_csv(put("a,b,c\n1,2\n")); },
                              {"line 2", "3 columns as in the header", "found 2"}));
}

TEST_F(Csv, RejectsEmptyAndHeaderOnlyFiles) {
  EXPECT_TRUE(throws_io_error([&] { load_csv(put("")); }, {"d.csv", "empty file"}));
  EXPECT_TRUE(throws_io_error([&] { load_csv(put("\n \r\n")); }, {"empty file"}));
  EXPECT_TRUE(throws_io_error([&] { load_csv(put("x,y\n")); }, {"only a header"}));
}

TEST_F(Csv, RejectsBadFieldsNamingLineAndColumn) {
  EXPECT_TRUE(throws_io_error([&] { load_csv(put("1,2\n3,abc\n")); },
                              {"line 2, column 2", "expected a number", "'abc'"}));
  EXPECT_TRUE(throws_io_error([&] { load_csv(put("1,2\n3,\n")); }, {"line 2", "empty field"}));
  EXPECT_TRUE(throws_io_error([&] { load_csv(put("1,2\n3,4x\n")); }, {"'4x'"}));
  EXPECT_TRUE(throws_io_error([&] { load_csv(put("1,2\n3,1,5\n")); }, {"line 2"}));
  EXPECT_TRUE(throws_io_error([&] { load_csv(put("1,2\n3,0x10\n")); }, {"'0x10'"}));
  EXPECT_TRUE(throws_io_error([&] { load_csv(put("1,2\n3,+-4\n")); }, {"'+-4'"}));
  EXPECT_TRUE(throws_io_error([&] { load_csv(put("1,2\n3,1e999\n")); }, {"'1e999'"}));
  for (const char* bad : {"nan", "inf", "-inf", "NaN", "infinity"}) {
    SCOPED_TRACE(bad);
    EXPECT_TRUE(throws_io_error([&] { load_csv(put(std::string("1,2\n3,") + bad + "\n")); },
                                {"line 2, column 2", "finite"}));
  }
  // A NaN on the first line is data, not a header.
  EXPECT_TRUE(throws_io_error([&] { load_csv(put("nan,1\n")); }, {"line 1", "finite"}));
  EXPECT_TRUE(
      throws_io_error([&] { load_csv(dir_.file("none.csv")); }, {"none.csv", "cannot open"}));
}

TEST_F(Csv, RandomCorruptionsThrowIoErrorOrLoad) {
  test::expect_corruptions_handled(dir_.file("c.csv"), "a,b,c\n1,2.5,-3\n4e2,5,6\n7,8,9\n", 1000,
                                   13, [](const std::string& p) { load_array(p); });
}

TEST_F(Csv, WritesValuesThatReadBackExactly) {
  const std::string path = dir_.file("out.csv");
  save_csv(path, Tensor::from_vector<float>({1, 2.5f, -0.1f, 3e-20f}, {2, 2}));
  EXPECT_EQ(test::read_bytes(path), "1,2.5\n-0.1,3e-20\n");

  std::vector<float> f32 = test::random_values<float>(300, 1, -1e6, 1e6);
  f32.push_back(std::numeric_limits<float>::min());
  f32.push_back(std::numeric_limits<float>::max());
  f32.push_back(std::numeric_limits<float>::denorm_min());
  save_csv(path, Tensor::from_vector<float>(f32, {101, 3}));
  Array a = load_csv(path);
  EXPECT_EQ(a.shape, (Shape{101, 3}));
  std::vector<float> back = to_float_tensor(a).to_vector<float>();
  EXPECT_EQ(back, f32);

  std::vector<double> f64 = test::random_values<double>(200, 2, -1, 1);
  f64.push_back(1e-300);
  f64.push_back(std::numeric_limits<double>::max());
  save_csv(path, Tensor::from_vector<double>(f64, {202}));
  Array b = load_csv(path);
  EXPECT_EQ(b.shape, (Shape{202, 1}));
  EXPECT_EQ(values_of(b), f64);

  save_csv(path, Tensor::from_vector<int32_t>({3, -4, 2147483647}, {3}));
  EXPECT_EQ(test::read_bytes(path), "3\n-4\n2147483647\n");
  EXPECT_EQ(dir_.entries(), (std::vector<std::string>{"out.csv"}));
}

TEST_F(Csv, WriteFailuresLeaveThePreviousFile) {
  const std::string path = dir_.file("keep.csv");
  write_bytes(path, "1,2\n");
  {
    test::FileSizeLimit limit(1000);
    EXPECT_TRUE(throws_io_error(
        [&] {
          save_csv(path, Tensor::zeros({1000, 10}));
        },
        {"keep.csv", "write failed"}));
  }
  EXPECT_EQ(test::read_bytes(path), "1,2\n");
  EXPECT_EQ(dir_.entries(), (std::vector<std::string>{"keep.csv"}));
  EXPECT_TRUE(throws_io_error([&] { save_csv(dir_.file("missing/x.csv"), Tensor::zeros({1})); },
                              {"x.csv"}));
}

}  // namespace
}  // namespace mlpx
