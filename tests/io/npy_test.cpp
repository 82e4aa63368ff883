// .npy reading (hand-built files of every version and dtype, every malformation), writing
// (byte layout as numpy writes it, atomic replacement), and the Array -> Tensor conversions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "io_test_util.h"
#include "mlpx/array_io.h"
#include "mlpx/error.h"

namespace mlpx {
namespace {

using test::le_array;
using test::le_bytes;
using test::raw;
using test::TempDir;
using test::throws_io_error;
using test::write_bytes;

// A .npy file built by hand: magic, version, header length, the dict padded with spaces to a
// multiple of 64 and ended by '\n', then the data.
std::string npy_file(int major, const std::string& dict, const std::string& data) {
  const size_t prefix = 8 + (major == 1 ? 2 : 4);
  std::string header = dict;
  while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  out += major == 1 ? le_bytes<uint16_t>(static_cast<uint16_t>(header.size()))
                    : le_bytes<uint32_t>(static_cast<uint32_t>(header.size()));
  return out + header + data;
}

std::string dict(const std::string& descr, const std::string& shape, bool fortran = false) {
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
         ", 'shape': " + shape + ", }";
}

template <typename T>
std::vector<T> values_of(const Array& array) {
  std::vector<T> out(array.bytes.size() / sizeof(T));
  std::memcpy(out.data(), array.bytes.data(), array.bytes.size());
  return out;
}

class Npy : public ::testing::Test {
 protected:
  std::string put(const std::string& bytes, const std::string& name = "a.npy") {
    const std::string path = dir_.file(name);
    write_bytes(path, bytes);
    return path;
  }
  TempDir dir_;
};

TEST_F(Npy, ReadsEveryDtypeAndVersion) {
  for (int major : {1, 2, 3}) {
    SCOPED_TRACE(major);
    Array f4 = load_npy(
        put(npy_file(major, dict("<f4", "(2, 3)"), le_array<float>({1, 2, 3, 4, 5, -6.5f}))));
    EXPECT_EQ(f4.type, ElementType::kFloat32);
    EXPECT_EQ(f4.shape, (Shape{2, 3}));
    EXPECT_EQ(values_of<float>(f4), (std::vector<float>{1, 2, 3, 4, 5, -6.5f}));

    Array f8 =
        load_npy(put(npy_file(major, dict("<f8", "(3,)"), le_array<double>({0.1, 2, 1e300}))));
    EXPECT_EQ(f8.type, ElementType::kFloat64);
    EXPECT_EQ(f8.shape, (Shape{3}));
    EXPECT_EQ(values_of<double>(f8), (std::vector<double>{0.1, 2, 1e300}));

    Array i4 = load_npy(put(npy_file(major, dict("<i4", "(2,)"), le_array<int32_t>({-7, 9}))));
    EXPECT_EQ(i4.type, ElementType::kInt32);
    EXPECT_EQ(values_of<int32_t>(i4), (std::vector<int32_t>{-7, 9}));

    Array i8 = load_npy(
        put(npy_file(major, dict("<i8", "(2, 1)"), le_array<int64_t>({int64_t{1} << 40, -3}))));
    EXPECT_EQ(i8.type, ElementType::kInt64);
    EXPECT_EQ(i8.shape, (Shape{2, 1}));
    EXPECT_EQ(values_of<int64_t>(i8), (std::vector<int64_t>{int64_t{1} << 40, -3}));

    for (const char* descr : {"|u1", "<u1"}) {
      Array u1 = load_npy(
          put(npy_file(major, dict(descr, "(2, 2, 2)"), raw("\x00\x01\x02\x03\x04\x05\x06\xff"))));
      EXPECT_EQ(u1.type, ElementType::kUint8);
      EXPECT_EQ(u1.shape, (Shape{2, 2, 2}));
      EXPECT_EQ(u1.bytes.back(), 255);
      EXPECT_EQ(u1.source, dir_.file("a.npy"));
    }
  }
}

TEST_F(Npy, AcceptsHeaderSpellingsThatPythonWrites) {
  const std::string data = le_array<float>({1, 2});
  // Key order, double quotes, no trailing comma, spaces, Python 2 long literals.
  for (const std::string& header :
       {std::string("{'shape': (2,), 'fortran_order': False, 'descr': '<f4'}"),
        std::string("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2,)}"),
        std::string("{'descr':'<f4','fortran_order':False,'shape':( 2 , ),}"),
        std::string("{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }")}) {
    SCOPED_TRACE(header);
    Array a = load_npy(put(npy_file(1, header, data)));
    EXPECT_EQ(a.shape, (Shape{2}));
  }
}

TEST_F(Npy, LoadArrayDispatchesByName) {
  const std::string bytes = npy_file(1, dict("<f4", "(1,)"), le_array<float>({3}));
  EXPECT_EQ(load_array(put(bytes, "x.npy")).shape, (Shape{1}));
  EXPECT_EQ(load_array(put(bytes, "X.NPY")).shape, (Shape{1}));
  EXPECT_TRUE(throws_io_error([&] { load_array(put(bytes, "x.bin")); },
                              {"x.bin", "unknown array file format", ".npy"}));
  EXPECT_TRUE(throws_io_error([&] { load_array(dir_.file("missing.npy")); },
                              {"missing.npy", "cannot open"}));
  EXPECT_TRUE(throws_io_error([&] { load_npy(dir_.path()); }, {"expected a regular file"}));
}

TEST_F(Npy, EveryTruncationIsAnIoError) {
  const std::string bytes = npy_file(1, dict("<f4", "(2, 3)"), le_array<float>({1, 2, 3, 4, 5, 6}));
  for (size_t n = 0; n < bytes.size(); ++n) {
    SCOPED_TRACE(n);
    const std::string path = put(bytes.substr(0, n));
    EXPECT_TRUE(throws_io_error([&] { load_npy(path); }, {path}));
  }
  const std::string path = put(bytes.substr(0, bytes.size() - 5));
  EXPECT_TRUE(throws_io_error([&] { load_npy(path); },
                              {"truncated", "expected 24 bytes of data", "found 19"}));
}

TEST_F(Npy, RejectsBadMagicVersionAndLengths) {
  const std::string good = npy_file(1, dict("<f4", "(1,)"), le_array<float>({1}));
  std::string bad = good;
  bad[1] = 'X';
  EXPECT_TRUE(throws_io_error([&] { load_npy(put(bad)); }, {"magic"}));
  bad = good;
  bad[6] = 4;
  EXPECT_TRUE(throws_io_error([&] { load_npy(put(bad)); }, {"version", "found 4.0"}));
  bad = good;
  bad[8] = '\xff';
  bad[9] = '\xff';
  EXPECT_TRUE(throws_io_error([&] { load_npy(put(bad)); }, {"truncated", "65535-byte header"}));
  // A version 2.0 length of 4 GiB - 1 must not be allocated.
  std::string v2 = npy_file(2, dict("<f4", "(1,)"), le_array<float>({1}));
  v2.replace(8, 4, le_bytes<uint32_t>(0xffffffffu));
  EXPECT_TRUE(throws_io_error([&] { load_npy(put(v2)); }, {"truncated", "4294967295-byte header"}));
  EXPECT_TRUE(throws_io_error([&] { load_npy(put(good + "xx")); },
                              {"expected 4 bytes of data", "found 6"}));
}

TEST_F(Npy, RejectsUnsupportedDtypes) {
  const std::string data(16, '\0');
  EXPECT_TRUE(throws_io_error([&] { load_npy(put(npy_file(1, dict(">f4", "(4,)"), data))); },
                              {"'>f4'", "big-endian"}));
  EXPECT_TRUE(throws_io_error(
      [&] { load_npy(put(npy_file(1, dict("|b1", "(16,)"), data))); },
      {"unsupported dtype '|b1'", "<f2, <f4, <f8, |i1, <i2, <i4, <i8, |u1, <u2, <u4, <u8"}));
  EXPECT_TRUE(
      throws_io_error([&] { load_npy(put(npy_file(1, dict("<c8", "(2,)"), data))); }, {"'<c8'"}));
  EXPECT_TRUE(throws_io_error(
      [&] {
        load_npy(put(npy_file(
            1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }", data)));
      },
      {"dtype string"}));
}

TEST_F(Npy, RejectsMalformedHeaders) {
  const std::string data = le_array<float>({1, 2});
  for (const std::string& header : {
           std::string("{'descr': '<f4', 'shape': (2,), }"),  // missing key
           std::string("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}"),
           std::string("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}"),
           std::string("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk"),
           std::string("{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}"),
           std::string("{'descr': '<f4', 'fortran_order': false, 'shape': (2,)}"),
           std::string("{'descr': '<f4', 'fortran_order': False, 'shape': (2)}"),
           std::string("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}"),
           std::string("{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,)}"),
           std::string("{'descr': '<f4', 'fortran_order': False, 'shape': (2,"),
           std::string("{'descr': '<f4', 'fortran_order': False, 'shape': [2]}"),
           std::string("['descr', '<f4']"),
           std::string(""),
       }) {
    SCOPED_TRACE(header);
    EXPECT_TRUE(
        throws_io_error([&] { load_npy(put(npy_file(1, header, data))); }, {"a.npy", "header"}));
  }
  EXPECT_TRUE(throws_io_error(
      [&] { load_npy(put(npy_file(1, dict("<f4", "(99999999999999999999,)"), data))); },
      {"below 2^63"}));
}

TEST_F(Npy, RejectsEmptyScalarAndHugeShapesWithoutAllocating) {
  EXPECT_TRUE(throws_io_error([&] { load_npy(put(npy_file(1, dict("<f4", "(0, 3)"), ""))); },
                              {"non-empty", "[0, 3]"}));
  EXPECT_TRUE(throws_io_error(
      [&] { load_npy(put(npy_file(1, dict("<f4", "()"), raw("\0\0\0\0")))); }, {"rank >= 1"}));
  // 2^40 x 2^40 floats overflow 64 bits; 2^30 x 2^30 do not, and are refused from the file size.
  EXPECT_TRUE(throws_io_error(
      [&] { load_npy(put(npy_file(1, dict("<f4", "(1099511627776, 1099511627776)"), "abcd"))); },
      {"too large"}));
  EXPECT_TRUE(throws_io_error(
      [&] { load_npy(put(npy_file(1, dict("<f4", "(1073741824, 1073741824)"), "abcd"))); },
      {"truncated", "expected 4611686018427387904 bytes", "found 4"}));
  EXPECT_TRUE(throws_io_error(
      [&] { load_npy(put(npy_file(1, dict("<f8", "(4611686018427387904, 8)"), "abcd"))); },
      {"overflows"}));
}

TEST_F(Npy, RejectsNonFiniteValuesNamingTheIndex) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(throws_io_error(
      [&] {
        load_npy(put(npy_file(1, dict("<f4", "(2, 2)"), le_array<float>({1, 2, 3, nan}))));
      },
      {"a.npy", "finite", "row 1, column 1"}));
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(throws_io_error(
      [&] {
        load_npy(put(npy_file(1, dict("<f8", "(2,)"), le_array<double>({-inf, 1}))));
      },
      {"-inf", "row 0"}));
}

TEST_F(Npy, RandomCorruptionsThrowIoErrorOrLoad) {
  const std::string valid = npy_file(1, dict("<f4", "(2, 3)"), le_array<float>({1, 2, 3, 4, 5, 6}));
  test::expect_corruptions_handled(dir_.file("f.npy"), valid, 1000, 7,
                                   [](const std::string& p) { load_array(p); });
}

TEST_F(Npy, WritesWhatNumpyWrites) {
  const std::string path = dir_.file("out.npy");
  save_npy(path, Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}));
  const std::string bytes = test::read_bytes(path);
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  header.append(128 - 10 - header.size() - 1, ' ');
  header += '\n';
  EXPECT_EQ(bytes, std::string("\x93NUMPY\x01\x00", 8) + le_bytes<uint16_t>(118) + header +
                       le_array<float>({1, 2, 3, 4, 5, 6}));

  save_npy(path, Tensor::from_vector<double>({0.1, -2}, {2}));
  Array f8 = load_npy(path);
  EXPECT_EQ(f8.shape, (Shape{2}));
  EXPECT_EQ(values_of<double>(f8), (std::vector<double>{0.1, -2}));
  EXPECT_NE(test::read_bytes(path).find("'shape': (2,), }"), std::string::npos);
  EXPECT_EQ(test::read_bytes(path).size() % 64, 16u);  // 128-byte prefix + 16 bytes

  save_npy(path, Tensor::from_vector<int32_t>({5, -1, 7}, {3, 1}));
  Array i4 = load_npy(path);
  EXPECT_EQ(i4.type, ElementType::kInt32);
  EXPECT_EQ(i4.shape, (Shape{3, 1}));
  EXPECT_EQ(values_of<int32_t>(i4), (std::vector<int32_t>{5, -1, 7}));
  EXPECT_EQ(dir_.entries(), (std::vector<std::string>{"out.npy"}));
}

TEST_F(Npy, WriteFailuresLeaveThePreviousFileAndNoTemporary) {
  const std::string path = dir_.file("keep.npy");
  write_bytes(path, "previous contents");
  {
    test::FileSizeLimit limit(4096);
    EXPECT_TRUE(throws_io_error(
        [&] {
          save_npy(path, Tensor::zeros({100, 100}));
        },
        {"keep.npy", "write failed"}));
  }
  EXPECT_EQ(test::read_bytes(path), "previous contents");
  EXPECT_EQ(dir_.entries(), (std::vector<std::string>{"keep.npy"}));

  EXPECT_TRUE(
      throws_io_error([&] { save_npy(dir_.file("no/such/folder/x.npy"), Tensor::zeros({2})); },
                      {"x.npy", "temporary file"}));
  // A folder in the way: the rename fails, the folder stays, the temporary goes.
  std::filesystem::create_directory(dir_.file("folder.npy"));
  EXPECT_TRUE(throws_io_error([&] { save_npy(dir_.file("folder.npy"), Tensor::zeros({2})); },
                              {"folder.npy", "cannot replace"}));
  EXPECT_TRUE(std::filesystem::is_directory(dir_.file("folder.npy")));
  EXPECT_EQ(dir_.entries(), (std::vector<std::string>{"folder.npy", "keep.npy"}));
  EXPECT_TRUE(throws_io_error([&] { save_npy(path, Tensor()); }, {"undefined"}));
  EXPECT_EQ(test::read_bytes(path), "previous contents");
}

TEST_F(Npy, ConvertsToFloatFeatures) {
  Array u1 =
      load_npy(put(npy_file(1, dict("|u1", "(2, 2, 2)"), raw("\x00\x01\x02\x03\x04\x05\x06\xff"))));
  Tensor x = to_float_tensor(u1);
  EXPECT_EQ(x.shape(), (Shape{2, 4}));
  EXPECT_EQ(x.dtype(), DType::kFloat32);
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 255}));

  Array f8 = load_npy(put(npy_file(1, dict("<f8", "(3,)"), le_array<double>({0.5, -1, 2}))));
  Tensor column = to_float_tensor(f8);
  EXPECT_EQ(column.shape(), (Shape{3, 1}));
  EXPECT_EQ(column.to_vector<float>(), (std::vector<float>{0.5f, -1, 2}));

  Array i8 = load_npy(put(npy_file(1, dict("<i8", "(2,)"), le_array<int64_t>({-4, 9}))));
  EXPECT_EQ(to_float_tensor(i8).to_vector<float>(), (std::vector<float>{-4, 9}));
}

TEST_F(Npy, ConvertsAndChecksLabels) {
  Array u1 = load_npy(put(npy_file(1, dict("|u1", "(3,)"), raw("\x00\x09\x03"))));
  EXPECT_EQ(to_labels(u1, "y.npy").to_vector<int32_t>(), (std::vector<int32_t>{0, 9, 3}));
  Array i8 = load_npy(put(npy_file(1, dict("<i8", "(2, 1)"), le_array<int64_t>({7, 1}))));
  EXPECT_EQ(to_labels(i8, "y.npy").shape(), (Shape{2}));
  Array f8 = load_npy(put(npy_file(1, dict("<f8", "(2,)"), le_array<double>({2, 5}))));
  EXPECT_EQ(to_labels(f8, "y.npy").to_vector<int32_t>(), (std::vector<int32_t>{2, 5}));

  Array fraction = load_npy(put(npy_file(1, dict("<f4", "(2,)"), le_array<float>({1, 2.5f}))));
  EXPECT_TRUE(throws_io_error([&] { to_labels(fraction, "y.npy"); }, {"y.npy", "2.5", "row 1"}));
  Array big =
      load_npy(put(npy_file(1, dict("<i8", "(1,)"), le_array<int64_t>({int64_t{1} << 33}))));
  EXPECT_TRUE(throws_io_error([&] { to_labels(big, "y.npy"); }, {"int32", "8589934592", "row 0"}));
  Array wide = load_npy(put(npy_file(1, dict("<i4", "(1, 2)"), le_array<int32_t>({1, 2}))));
  EXPECT_TRUE(throws_io_error([&] { to_labels(wide, "y.npy"); }, {"[N] or [N, 1]", "[1, 2]"}));

  check_labels(Tensor::from_vector<int32_t>({0, 9, 3}, {3}), 10, "y.npy");
  try {
    check_labels(Tensor::from_vector<int32_t>({0, 9, 10, -1}, {4}), 10, "y.npy");
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "y.npy: expected labels in [0, 10), found 10 at row 2");
  }
  EXPECT_THROW(check_labels(Tensor::from_vector<int32_t>({-1}, {1}), 10, "y"), ValueError);
  EXPECT_THROW(check_labels(Tensor::zeros({2}), 10, "y"), ShapeError);
}

template <typename T>
std::string le_vector(const std::vector<T>& values) {
  std::string out;
  for (T v : values) out += le_bytes(v);
  return out;
}

// The bytes numpy writes for np.asfortranarray(c) when `c` holds `values` in C order: the
// first index varies fastest.
template <typename T>
std::string fortran_bytes(const Shape& shape, const std::vector<T>& values) {
  std::vector<T> fortran(values.size());
  for (size_t c = 0; c < values.size(); ++c) {
    size_t rest = c, position = 0, stride = 1;
    std::vector<size_t> index(shape.size());
    for (size_t d = shape.size(); d-- > 0;) {
      index[d] = rest % shape[d];
      rest /= shape[d];
    }
    for (size_t d = 0; d < shape.size(); ++d) {
      position += index[d] * stride;
      stride *= shape[d];
    }
    fortran[position] = values[c];
  }
  return le_vector(fortran);
}

TEST_F(Npy, FortranOrderLoadsTheSameValuesAsCOrder) {
  // np.asfortranarray(np.arange(6).reshape(2, 3)) as numpy writes it.
  Array numpy_written = load_npy(
      put(npy_file(1, dict("<i8", "(2, 3)", true), le_array<int64_t>({0, 3, 1, 4, 2, 5}))));
  EXPECT_EQ(numpy_written.shape, (Shape{2, 3}));
  EXPECT_EQ(values_of<int64_t>(numpy_written), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));

  // Every element size, ranks 1 to 4: both orders of the same array load the same bytes.
  auto same_both_ways = [&](const std::string& descr, const Shape& shape, auto zero) {
    using T = decltype(zero);
    std::string tuple = "(";
    int64_t n = 1;
    for (int64_t s : shape) {
      tuple += std::to_string(s) + ", ";
      n *= s;
    }
    tuple += ")";
    std::vector<T> values(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) values[i] = static_cast<T>(i % 97 + 1);
    SCOPED_TRACE(descr + " " + tuple);
    const Array c_order = load_npy(put(npy_file(1, dict(descr, tuple), le_vector(values))));
    const Array f_order =
        load_npy(put(npy_file(1, dict(descr, tuple, true), fortran_bytes(shape, values))));
    EXPECT_EQ(f_order.shape, shape);
    EXPECT_EQ(f_order.bytes, c_order.bytes);
    EXPECT_EQ(to_float_tensor(f_order).to_vector<float>(),
              to_float_tensor(c_order).to_vector<float>());
  };
  same_both_ways("|u1", {5}, uint8_t{});
  same_both_ways("|u1", {7, 3}, uint8_t{});
  same_both_ways("<i2", {4, 5, 6}, int16_t{});
  same_both_ways("<f4", {3, 1}, float{});
  same_both_ways("<f4", {1, 4}, float{});
  same_both_ways("<f4", {2, 3, 4, 5}, float{});
  same_both_ways("<f8", {33, 17}, double{});
  same_both_ways("<i8", {3, 1, 4}, int64_t{});  // axes of size 1 among the others
  same_both_ways("<f4", {1, 4, 1, 5, 1}, float{});

  // The non-finite check names the element's row and column in C order: Fortran position 1
  // of a 2 x 3 array is element [1, 0].
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(throws_io_error(
      [&] {
        load_npy(
            put(npy_file(1, dict("<f4", "(2, 3)", true), le_array<float>({1, nan, 2, 3, 4, 5}))));
      },
      {"a.npy", "nan", "row 1, column 0"}));
}

TEST_F(Npy, ReadsNarrowAndUnsignedIntegers) {
  struct Case {
    const char* descr;
    ElementType type;
    std::string data;
  };
  const std::vector<float> expected = {-5, 0, 100};
  const std::vector<float> unsigned_expected = {5, 0, 100};
  for (const Case& c : {Case{"|i1", ElementType::kInt8, le_array<int8_t>({-5, 0, 100})},
                        Case{"<i1", ElementType::kInt8, le_array<int8_t>({-5, 0, 100})},
                        Case{"<i2", ElementType::kInt16, le_array<int16_t>({-5, 0, 100})},
                        Case{"<u2", ElementType::kUint16, le_array<uint16_t>({5, 0, 100})},
                        Case{"<u4", ElementType::kUint32, le_array<uint32_t>({5, 0, 100})},
                        Case{"<u8", ElementType::kUint64, le_array<uint64_t>({5, 0, 100})}}) {
    SCOPED_TRACE(c.descr);
    const Array a = load_npy(put(npy_file(1, dict(c.descr, "(3,)"), c.data)));
    EXPECT_EQ(a.type, c.type);
    const bool is_unsigned = c.descr[1] == 'u';
    EXPECT_EQ(to_float_tensor(a).to_vector<float>(), is_unsigned ? unsigned_expected : expected);
    if (is_unsigned) {
      EXPECT_EQ(to_labels(a, "y.npy").to_vector<int32_t>(), (std::vector<int32_t>{5, 0, 100}));
    }
  }
  // The extremes of the narrow types convert exactly.
  const Array i2 =
      load_npy(put(npy_file(1, dict("<i2", "(1, 2)"), le_array<int16_t>({-32768, 32767}))));
  EXPECT_EQ(to_float_tensor(i2).to_vector<float>(), (std::vector<float>{-32768, 32767}));
  const Array u2 = load_npy(put(npy_file(1, dict("<u2", "(1,)"), le_array<uint16_t>({65535}))));
  EXPECT_EQ(to_float_tensor(u2).to_vector<float>(), (std::vector<float>{65535}));
}

// float32 holds every integer up to 2^24 and skips some after; a feature past that would be
// rounded without a word, so it is an error that names the value and where it is.
TEST_F(Npy, IntegerFeaturesBeyond2Pow24AreRejected) {
  const int64_t limit = int64_t{1} << 24;
  const Array fits =
      load_npy(put(npy_file(1, dict("<i8", "(3,)"), le_array<int64_t>({-limit, 0, limit}))));
  EXPECT_EQ(to_float_tensor(fits).to_vector<float>(), (std::vector<float>{-16777216, 0, 16777216}));

  const Array i8 =
      load_npy(put(npy_file(1, dict("<i8", "(2, 2)"), le_array<int64_t>({1, 2, 3, limit + 1}))));
  EXPECT_TRUE(throws_io_error([&] { to_float_tensor(i8); }, {"a.npy", "int64", "2^24", "16777217",
                                                             "at [1, 1]", ".astype('float32')"}));
  const Array i4 =
      load_npy(put(npy_file(1, dict("<i4", "(2,)"), le_array<int32_t>({7, -16777217}))));
  EXPECT_TRUE(throws_io_error([&] { to_float_tensor(i4); }, {"int32", "-16777217", "at [1]"}));
  const Array u4 =
      load_npy(put(npy_file(1, dict("<u4", "(1, 1, 2)"), le_array<uint32_t>({0, 4294967295u}))));
  EXPECT_TRUE(
      throws_io_error([&] { to_float_tensor(u4); }, {"uint32", "4294967295", "at [0, 0, 1]"}));
  const Array u8 =
      load_npy(put(npy_file(1, dict("<u8", "(1,)"), le_array<uint64_t>({18446744073709551615u}))));
  EXPECT_TRUE(throws_io_error([&] { to_float_tensor(u8); }, {"18446744073709551615", "at [0]"}));
  // Labels keep their own range, int32's: a uint64 past INT64_MAX must not wrap into it.
  const Array u8_labels = load_npy(
      put(npy_file(1, dict("<u8", "(2,)"), le_array<uint64_t>({1, 18446744073709551611u}))));
  EXPECT_TRUE(throws_io_error([&] { to_labels(u8_labels, "y.npy"); },
                              {"y.npy", "int32", "18446744073709551611", "row 1"}));
  const Array big_label =
      load_npy(put(npy_file(1, dict("<i8", "(1,)"), le_array<int64_t>({limit + 1}))));
  EXPECT_EQ(to_labels(big_label, "y.npy").to_vector<int32_t>(), (std::vector<int32_t>{16777217}));
}

// binary16 -> binary32 by the definition, independent of the reader's bit manipulation.
float float16_by_definition(uint16_t bits) {
  const int exponent = (bits >> 10) & 0x1f;
  const int mantissa = bits & 0x3ff;
  const double magnitude =
      exponent == 0 ? std::ldexp(mantissa, -24) : std::ldexp(1024 + mantissa, exponent - 25);
  return static_cast<float>((bits & 0x8000) ? -magnitude : magnitude);
}

TEST_F(Npy, Float16ConvertsExactlyIncludingSubnormals) {
  std::vector<uint16_t> finite;
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    if (((bits >> 10) & 0x1f) != 0x1f) finite.push_back(static_cast<uint16_t>(bits));
  }
  ASSERT_EQ(finite.size(), 63488u);
  const Array a = load_npy(
      put(npy_file(1, dict("<f2", "(" + std::to_string(finite.size()) + ",)"), le_vector(finite))));
  EXPECT_EQ(a.type, ElementType::kFloat16);
  const std::vector<float> got = to_float_tensor(a).to_vector<float>();
  ASSERT_EQ(got.size(), finite.size());
  int mismatches = 0;
  for (size_t i = 0; i < finite.size() && mismatches < 5; ++i) {
    const float want = float16_by_definition(finite[i]);
    if (std::memcmp(&got[i], &want, sizeof(float)) != 0) {  // bitwise: -0 is not 0
      ADD_FAILURE() << "bits 0x" << std::hex << finite[i] << ": got " << got[i] << ", want "
                    << want;
      ++mismatches;
    }
  }
  // Landmarks, as numpy prints them: 1, the smallest subnormal, the largest subnormal, the
  // largest finite, -0, -2.
  const Array landmarks =
      load_npy(put(npy_file(1, dict("<f2", "(6,)"),
                            le_array<uint16_t>({0x3c00, 0x0001, 0x03ff, 0x7bff, 0x8000, 0xc000}))));
  const std::vector<float> values = to_float_tensor(landmarks).to_vector<float>();
  EXPECT_EQ(values,
            (std::vector<float>{1.0f, 5.9604645e-08f, 6.0975552e-05f, 65504.0f, 0.0f, -2.0f}));
  EXPECT_TRUE(std::signbit(values[4]));
  // Labels may come as float16 too, holding integers exactly.
  const Array labels =
      load_npy(put(npy_file(1, dict("<f2", "(3,)"), le_array<uint16_t>({0x0000, 0x3c00, 0x4900}))));
  EXPECT_EQ(to_labels(labels, "y.npy").to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 10}));
  const Array fraction =
      load_npy(put(npy_file(1, dict("<f2", "(1,)"), le_array<uint16_t>({0x3e00}))));
  EXPECT_TRUE(throws_io_error([&] { to_labels(fraction, "y.npy"); }, {"y.npy", "1.5", "row 0"}));
}

// The same error float32 gets for a NaN or an infinity.
TEST_F(Npy, Float16NonFiniteValuesAreRejected) {
  EXPECT_TRUE(throws_io_error(
      [&] {
        load_npy(put(npy_file(1, dict("<f2", "(2, 2)"), le_array<uint16_t>({0, 0, 0, 0x7e00}))));
      },
      {"a.npy", "expected finite values", "nan", "row 1, column 1"}));
  EXPECT_TRUE(throws_io_error(
      [&] {
        load_npy(put(npy_file(1, dict("<f2", "(2,)"), le_array<uint16_t>({0x3c00, 0xfc00}))));
      },
      {"-inf", "row 1"}));
  EXPECT_TRUE(throws_io_error(
      [&] { load_npy(put(npy_file(1, dict("<f2", "(1,)"), le_array<uint16_t>({0x7c00})))); },
      {"found inf", "row 0"}));
}

// [N, F, 1] is a column per row: an error that says what was expected. Images keep loading:
// [N, H, W], and [N, H, W, 1] as Keras stores grayscale images.
TEST_F(Npy, RankThreeWithLastAxisOfOneIsAnError) {
  const Array column_per_row =
      load_npy(put(npy_file(1, dict("<f4", "(2, 3, 1)"), le_array<float>({1, 2, 3, 4, 5, 6}))));
  EXPECT_TRUE(throws_io_error(
      [&] { to_float_tensor(column_per_row); },
      {"a.npy", "expected an array [N] or [N, F]", "found [2, 3, 1]", "squeeze the last axis"}));
  const Array scalar_per_row =
      load_npy(put(npy_file(1, dict("<f4", "(2, 1, 1)"), le_array<float>({1, 2}))));
  EXPECT_TRUE(throws_io_error([&] { to_float_tensor(scalar_per_row); }, {"found [2, 1, 1]"}));
  EXPECT_TRUE(throws_io_error([&] { to_labels(scalar_per_row, "y.npy"); },
                              {"y.npy", "[N] or [N, 1]", "[2, 1, 1]"}));

  const Array images =
      load_npy(put(npy_file(1, dict("<f4", "(2, 1, 3)"), le_array<float>({1, 2, 3, 4, 5, 6}))));
  EXPECT_EQ(to_float_tensor(images).shape(), (Shape{2, 3}));
  const Array channels_last = load_npy(
      put(npy_file(1, dict("|u1", "(2, 2, 2, 1)"), raw("\x00\x01\x02\x03\x04\x05\x06\x07"))));
  const Tensor x = to_float_tensor(channels_last);
  EXPECT_EQ(x.shape(), (Shape{2, 4}));
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}));
}

}  // namespace
}  // namespace mlpx
