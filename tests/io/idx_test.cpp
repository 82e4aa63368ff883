// IDX reading: hand-built files of every supported type, plain and gzip-compressed (written with
// zlib here), every malformation, and the real Fashion-MNIST files when they are installed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "io_test_util.h"
#include "mlpx/array_io.h"
#include "mlpx/error.h"

namespace mlpx {
namespace {

using test::be_bytes;
using test::raw;
using test::TempDir;
using test::throws_io_error;
using test::write_bytes;

std::string idx_header(unsigned char type, std::vector<uint32_t> dims) {
  std::string out = raw("\x00\x00");
  out += static_cast<char>(type);
  out += static_cast<char>(dims.size());
  for (uint32_t d : dims) out += be_bytes(d);
  return out;
}

template <typename T>
std::string be_array(std::initializer_list<T> values) {
  std::string out;
  for (T v : values) out += be_bytes(v);
  return out;
}

template <typename T>
std::vector<T> values_of(const Array& array) {
  std::vector<T> out(array.bytes.size() / sizeof(T));
  std::memcpy(out.data(), array.bytes.data(), array.bytes.size());
  return out;
}

void write_gzip(const std::string& path, const std::string& bytes) {
  gzFile gz = gzopen(path.c_str(), "wb9");
  ASSERT_NE(gz, nullptr);
  if (!bytes.empty()) {
    ASSERT_EQ(gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
  }
  ASSERT_EQ(gzclose(gz), Z_OK);
}

class Idx : public ::testing::Test {
 protected:
  std::string put(const std::string& bytes, const std::string& name = "x-idx1-ubyte") {
    const std::string path = dir_.file(name);
    write_bytes(path, bytes);
    return path;
  }
  std::string put_gz(const std::string& bytes, const std::string& name = "x-idx1-ubyte.gz") {
    const std::string path = dir_.file(name);
    write_gzip(path, bytes);
    return path;
  }
  TempDir dir_;
};

// IDX's signed byte (0x09) and short (0x0B), big-endian in the file, native in the Array.
TEST_F(Idx, ReadsInt8AndInt16PlainAndGzipped) {
  const std::string i8 = idx_header(0x09, {2, 2}) + raw("\x80\xff\x00\x7f");
  const std::string i16 = idx_header(0x0B, {3}) + be_array<int16_t>({-300, 2, 32767});
  for (bool gz : {false, true}) {
    SCOPED_TRACE(gz);
    auto load = [&](const std::string& bytes) {
      return load_array(gz ? put_gz(bytes, "t-ubyte.gz") : put(bytes, "t-ubyte"));
    };
    Array a = load(i8);
    EXPECT_EQ(a.type, ElementType::kInt8);
    EXPECT_EQ(values_of<int8_t>(a), (std::vector<int8_t>{-128, -1, 0, 127}));
    EXPECT_EQ(to_float_tensor(a).to_vector<float>(), (std::vector<float>{-128, -1, 0, 127}));

    Array b = load(i16);
    EXPECT_EQ(b.type, ElementType::kInt16);
    EXPECT_EQ(values_of<int16_t>(b), (std::vector<int16_t>{-300, 2, 32767}));
    EXPECT_EQ(to_labels(load(idx_header(0x0B, {2}) + be_array<int16_t>({7, 300})), "y")
                  .to_vector<int32_t>(),
              (std::vector<int32_t>{7, 300}));
  }
}

// The same files, plain and compressed, must read the same.
TEST_F(Idx, ReadsEverySupportedTypePlainAndGzipped) {
  const std::string u8 =
      idx_header(0x08, {2, 2, 3}) + raw("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\xff");
  const std::string i32 = idx_header(0x0C, {3}) + be_array<int32_t>({-5, 0, 123456789});
  const std::string f32 = idx_header(0x0D, {2, 1}) + be_array<float>({1.5f, -2.25f});
  const std::string f64 = idx_header(0x0E, {2}) + be_array<double>({0.1, -1e300});
  for (bool gz : {false, true}) {
    SCOPED_TRACE(gz);
    auto load = [&](const std::string& bytes) {
      return load_array(gz ? put_gz(bytes, "t-ubyte.gz") : put(bytes, "t-ubyte"));
    };
    Array a = load(u8);
    EXPECT_EQ(a.type, ElementType::kUint8);
    EXPECT_EQ(a.shape, (Shape{2, 2, 3}));
    EXPECT_EQ(a.bytes.size(), 12u);
    EXPECT_EQ(a.bytes[11], 255);
    EXPECT_EQ(to_float_tensor(a).shape(), (Shape{2, 6}));

    Array b = load(i32);
    EXPECT_EQ(b.type, ElementType::kInt32);
    EXPECT_EQ(values_of<int32_t>(b), (std::vector<int32_t>{-5, 0, 123456789}));

    Array c = load(f32);
    EXPECT_EQ(c.type, ElementType::kFloat32);
    EXPECT_EQ(c.shape, (Shape{2, 1}));
    EXPECT_EQ(values_of<float>(c), (std::vector<float>{1.5f, -2.25f}));

    Array d = load(f64);
    EXPECT_EQ(d.type, ElementType::kFloat64);
    EXPECT_EQ(values_of<double>(d), (std::vector<double>{0.1, -1e300}));
  }
  // The MNIST-style name with a dot before idx also dispatches.
  EXPECT_EQ(load_array(put(u8, "train-images.idx3-ubyte")).shape, (Shape{2, 2, 3}));
}

TEST_F(Idx, RejectsBadMagicTypesAndRanks) {
  EXPECT_TRUE(throws_io_error([&] { load_idx(put(raw("\x01\x00\x08\x01\x00\x00\x00\x01\x05"))); },
                              {"x-idx1-ubyte", "IDX magic", "01 00 08 01"}));
  EXPECT_TRUE(throws_io_error([&] { load_idx(put(idx_header(0x0A, {1}) + "a")); },
                              {"0x0A", "expected 0x08 uint8, 0x09 int8, 0x0B int16"}));
  EXPECT_TRUE(throws_io_error([&] { load_idx(put(idx_header(0x42, {1}) + "a")); }, {"0x42"}));
  EXPECT_TRUE(throws_io_error([&] { load_idx(put(idx_header(0x08, {}))); }, {"rank 0"}));
  EXPECT_TRUE(throws_io_error(
      [&] {
        load_idx(put(idx_header(0x08, {3, 0})));
      },
      {"non-empty", "[3, 0]"}));
  EXPECT_TRUE(throws_io_error([&] { load_idx(put(idx_header(0x08, {2}) + "abc")); },
                              {"expected 2 bytes of data", "found 3"}));
  EXPECT_TRUE(throws_io_error([&] { load_idx(put("")); }, {"truncated", "found 0"}));
}

TEST_F(Idx, EveryTruncationIsAnIoError) {
  const std::string bytes = idx_header(0x0D, {2, 2}) + be_array<float>({1, 2, 3, 4});
  for (size_t n = 0; n < bytes.size(); ++n) {
    SCOPED_TRACE(n);
    const std::string path = put(bytes.substr(0, n));
    EXPECT_TRUE(throws_io_error([&] { load_idx(path); }, {path}));
  }
  // The decompressed stream cut short, inside a valid gzip file.
  for (size_t n : {size_t{0}, size_t{2}, size_t{5}, size_t{11}, bytes.size() - 1}) {
    SCOPED_TRACE(n);
    const std::string path = put_gz(bytes.substr(0, n));
    EXPECT_TRUE(throws_io_error([&] { load_idx(path); }, {path}));
  }
}

TEST_F(Idx, RejectsHugeDimensionsWithoutAllocating) {
  const auto start = std::chrono::steady_clock::now();
  // (2^32 - 1)^2 bytes fits in 64 bits: refused from the file size.
  EXPECT_TRUE(throws_io_error(
      [&] {
        load_idx(put(idx_header(0x08, {0xffffffffu, 0xffffffffu}) + "abcd"));
      },
      {"truncated", "expected 18446744065119617025 bytes", "found 4"}));
  // 2^40 x 2^40 elements (three dims) overflows.
  EXPECT_TRUE(throws_io_error(
      [&] {
        load_idx(put(idx_header(0x0E, {1u << 20, 1u << 20, 1u << 30}) + "abcd"));
      },
      {"too large"}));
  // In a gzip file the claim is bounded by what the compressed size can expand to.
  const std::string path = put_gz(idx_header(0x08, {1u << 31, 4}) + "abcd");
  EXPECT_TRUE(throws_io_error([&] { load_idx(path); }, {"8589934592 bytes", "gzip file can hold"}));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST_F(Idx, RejectsCorruptAndTrailingGzipData) {
  std::string data;
  for (int i = 0; i < 4000; ++i) data += static_cast<char>((i * 7919) % 251);
  const std::string bytes = idx_header(0x08, {4000}) + data;
  const std::string path = put_gz(bytes);
  ASSERT_EQ(load_idx(path).bytes.size(), 4000u);
  const std::string compressed = test::read_bytes(path);

  // Flipped bytes inside the deflate stream, and in the CRC trailer.
  for (size_t at : {compressed.size() / 2, compressed.size() - 6}) {
    SCOPED_TRACE(at);
    std::string bad = compressed;
    bad[at] = static_cast<char>(bad[at] ^ 0x5a);
    write_bytes(path, bad);
    EXPECT_TRUE(throws_io_error([&] { load_idx(path); }, {path}));
  }
  // The compressed file cut at several places.
  for (size_t n : {size_t{1}, size_t{10}, size_t{20}, compressed.size() / 2, compressed.size() - 4,
                   compressed.size() - 1}) {
    SCOPED_TRACE(n);
    write_bytes(path, compressed.substr(0, n));
    EXPECT_TRUE(throws_io_error([&] { load_idx(path); }, {path}));
  }
  // More decompressed bytes than the dimensions say.
  write_gzip(path, bytes + "x");
  EXPECT_TRUE(throws_io_error([&] { load_idx(path); },
                              {"expected the data to end after 4008 decompressed bytes"}));
  // A .gz name on a file that is not gzip.
  write_bytes(path, bytes);
  EXPECT_TRUE(throws_io_error([&] { load_idx(path); }, {"gzip magic 1f 8b", "found 00 00"}));
}

TEST_F(Idx, RejectsNonFiniteFloats) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(throws_io_error(
      [&] {
        load_idx(put(idx_header(0x0D, {2, 2}) + be_array<float>({1, 2, inf, 4})));
      },
      {"finite", "inf", "row 1, column 0"}));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(
      throws_io_error([&] { load_idx(put_gz(idx_header(0x0E, {1}) + be_array<double>({nan}))); },
                      {"nan", "row 0"}));
}

TEST_F(Idx, RandomCorruptionsThrowIoErrorOrLoad) {
  const std::string valid = idx_header(0x0D, {3, 2}) + be_array<float>({1, 2, 3, 4, 5, 6});
  test::expect_corruptions_handled(dir_.file("c-ubyte"), valid, 1000, 11,
                                   [](const std::string& p) { load_array(p); });
  put_gz(valid, "c-ubyte.gz");
  test::expect_corruptions_handled(dir_.file("c-ubyte.gz"),
                                   test::read_bytes(dir_.file("c-ubyte.gz")), 1000, 12,
                                   [](const std::string& p) { load_array(p); });
}

TEST(FashionMnist, LoadsTheInstalledFiles) {
  const std::string folder = "/usr/share/datasets/fashion-mnist/";
  struct stat info {};
  if (::stat((folder + "train-images-idx3-ubyte.gz").c_str(), &info) != 0) {
    GTEST_SKIP() << "Fashion-MNIST is not installed under " << folder;
  }
  const Array images = load_array(folder + "train-images-idx3-ubyte.gz");
  EXPECT_EQ(images.type, ElementType::kUint8);
  EXPECT_EQ(images.shape, (Shape{60000, 28, 28}));
  const Array labels = load_array(folder + "train-labels-idx1-ubyte.gz");
  EXPECT_EQ(labels.type, ElementType::kUint8);
  EXPECT_EQ(labels.shape, (Shape{60000}));
  const Tensor y = to_labels(labels, "train-labels");
  check_labels(y, 10, "train-labels");
  std::vector<int> counts(10, 0);
  for (int32_t label : y.to_vector<int32_t>()) ++counts.at(label);
  for (int count : counts) EXPECT_EQ(count, 6000);  // Fashion-MNIST is balanced
  const Tensor x = to_float_tensor(images);
  EXPECT_EQ(x.shape(), (Shape{60000, 784}));

  const Array test_images = load_array(folder + "t10k-images-idx3-ubyte.gz");
  EXPECT_EQ(test_images.shape, (Shape{10000, 28, 28}));
}

}  // namespace
}  // namespace mlpx
