// safetensors: round trips, hand-built files (as other writers produce them), and every way a
// file can be malformed or cut short; atomic replacement on failed writes.
#include "mlpx/safetensors.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io_test_util.h"
#include "mlpx/error.h"
#include "test_util.h"

namespace mlpx {
namespace {

using test::le_array;
using test::le_bytes;
using test::TempDir;
using test::throws_io_error;
using test::write_bytes;

// A safetensors file built by hand: length, header text (unpadded, as some writers do), data.
std::string st_file(const std::string& header, const std::string& data) {
  return le_bytes<uint64_t>(header.size()) + header + data;
}

class Safetensors : public ::testing::Test {
 protected:
  std::string put(const std::string& bytes, const std::string& name = "m.safetensors") {
    const std::string path = dir_.file(name);
    write_bytes(path, bytes);
    return path;
  }
  TempDir dir_;
};

TEST_F(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  const std::string path = dir_.file("model.safetensors");
  const Tensor w = Tensor::from_vector<float>(test::random_values<float>(12, 3), {3, 4});
  const Tensor b = Tensor::from_vector<double>({0.5, -1.25, 1e-300}, {3});
  const Tensor steps = Tensor::from_vector<int32_t>({7, -2}, {2, 1});
  const Tensor empty = Tensor::zeros({0, 4});
  const std::map<std::string, std::string> metadata = {{"config", "{\"seed\": 0}"}, {"step", "42"}};
  save_safetensors(path,
                   {{"layers.0.weight", w}, {"layers.0.bias", b}, {"z", empty}, {"steps", steps}},
                   metadata);
  EXPECT_EQ(dir_.entries(), (std::vector<std::string>{"model.safetensors"}));

  const SafetensorsFile file = load_safetensors(path);
  EXPECT_EQ(file.metadata, metadata);
  ASSERT_EQ(file.tensors.size(), 4u);
  // Offset order is the order written (the empty tensor sorts by offset, before 'steps').
  EXPECT_EQ(file.tensors[0].first, "layers.0.weight");
  EXPECT_EQ(file.tensors[1].first, "layers.0.bias");
  EXPECT_EQ(file.get("layers.0.weight").to_vector<float>(), w.to_vector<float>());
  EXPECT_EQ(file.get("layers.0.weight").shape(), (Shape{3, 4}));
  EXPECT_EQ(file.get("layers.0.bias").to_vector<double>(), b.to_vector<double>());
  EXPECT_EQ(file.get("steps").to_vector<int32_t>(), steps.to_vector<int32_t>());
  EXPECT_EQ(file.get("steps").shape(), (Shape{2, 1}));
  EXPECT_EQ(file.get("z").shape(), (Shape{0, 4}));
  EXPECT_TRUE(file.get("z").device().is_cpu());
  EXPECT_TRUE(file.contains("steps"));
  EXPECT_FALSE(file.contains("nope"));
  EXPECT_TRUE(throws_io_error([&] { file.get("layers.1.weight"); },
                              {"model.safetensors", "'layers.1.weight'", "found none"}));

  // The bytes follow the format: 8-byte length, space-padded JSON, data in the order given.
  const std::string bytes = test::read_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(header["__metadata__"]["step"], "42");
  EXPECT_EQ(header["layers.0.weight"]["dtype"], "F32");
  EXPECT_EQ(header["layers.0.bias"]["dtype"], "F64");
  EXPECT_EQ(header["steps"]["dtype"], "I32");
  EXPECT_EQ(header["layers.0.bias"]["data_offsets"], nlohmann::json({48, 72}));
  EXPECT_EQ(header["steps"]["shape"], nlohmann::json({2, 1}));
  EXPECT_EQ(bytes.size(), 8 + n + 48 + 24 + 8);
  EXPECT_EQ(bytes.substr(8 + n + 48, 8), le_bytes<double>(0.5));
}

TEST_F(Safetensors, ReadsHandBuiltFiles) {
  // Keys out of offset order, a scalar, no metadata, no padding.
  const std::string header = R"({"b":{"dtype":"I32","shape":[2],"data_offsets":[4,12]},)"
                             R"("a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})";
  const SafetensorsFile file =
      load_safetensors(put(st_file(header, le_array<float>({2.5f}) + le_array<int32_t>({1, -1}))));
  ASSERT_EQ(file.tensors.size(), 2u);
  EXPECT_EQ(file.tensors[0].first, "a");
  EXPECT_EQ(file.tensors[0].second.shape(), (Shape{1}));
  EXPECT_EQ(file.tensors[0].second.to_vector<float>(), (std::vector<float>{2.5f}));
  EXPECT_EQ(file.tensors[1].second.to_vector<int32_t>(), (std::vector<int32_t>{1, -1}));
  EXPECT_TRUE(file.metadata.empty());

  const SafetensorsFile nothing = load_safetensors(put(st_file("{}", "")));
  EXPECT_TRUE(nothing.tensors.empty());
}

TEST_F(Safetensors, EveryTruncationIsAnIoError) {
  const std::string path = dir_.file("full.safetensors");
  save_safetensors(path,
                   {{"w", Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2})},
                    {"b", Tensor::from_vector<int32_t>({5}, {1})}},
                   {{"k", "v"}});
  const std::string bytes = test::read_bytes(path);
  ASSERT_NO_THROW(load_safetensors(path));
  for (size_t n = 0; n < bytes.size(); ++n) {
    SCOPED_TRACE(n);
    const std::string cut = put(bytes.substr(0, n));
    EXPECT_TRUE(throws_io_error([&] { load_safetensors(cut); }, {cut}));
  }
  EXPECT_TRUE(throws_io_error([&] { load_safetensors(put(bytes + "x")); },
                              {"expected 20 bytes of tensor data", "found 21"}));
}

TEST_F(Safetensors, RejectsBadHeaderLengths) {
  EXPECT_TRUE(throws_io_error([&] { load_safetensors(put(le_bytes<uint64_t>(100) + "{}")); },
                              {"truncated", "100-byte header", "found 2"}));
  EXPECT_TRUE(throws_io_error([&] { load_safetensors(put(le_bytes<uint64_t>(~0ull) + "{}")); },
                              {"at most 100000000 bytes"}));
  EXPECT_TRUE(throws_io_error([&] { load_safetensors(put(le_bytes<uint64_t>(0) + "{}")); },
                              {"not a safetensors file", "a length of 0"}));
  EXPECT_TRUE(throws_io_error([&] { load_safetensors(put("abc")); },
                              {"not a safetensors file", "found 3 bytes in all", "a text file"}));
  EXPECT_TRUE(throws_io_error([&] { load_safetensors(dir_.file("missing.safetensors")); },
                              {"missing.safetensors", "cannot open"}));
}

// A data file or a PyTorch checkpoint passed as a model: said so, not read as a huge header.
TEST_F(Safetensors, OtherFormatsAreNotSafetensors) {
  // .npy: the magic, version 1.0, a 2-byte header length (118), then the header text.
  const std::string npy = std::string("\x93NUMPY\x01\x00\x76\x00", 10) +
                          "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
  EXPECT_TRUE(throws_io_error([&] { load_safetensors(put(npy, "data.npy")); },
                              {"data.npy", "not a safetensors file",
                               "no JSON object after the length", "like a .npy array"}));
  EXPECT_TRUE(
      throws_io_error([&] { load_safetensors(put(std::string("PK\x03\x04", 4) + "xxxxxxxx")); },
                      {"not a safetensors file", "zip archive"}));
  EXPECT_TRUE(throws_io_error([&] { load_safetensors(put("x,y\n1,2\n3,4\n")); },
                              {"not a safetensors file", "a text file"}));
}

TEST_F(Safetensors, RejectsBadJsonAndEntries) {
  const std::string data = le_array<float>({1, 2});
  auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
           ",\"data_offsets\":" + offsets + "}";
  };
  struct Case {
    std::string header;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {"{\"a\":", {"invalid JSON"}},
      {"[1, 2]", {"not a safetensors file", "no JSON object after the length"}},
      {" [1, 2]", {"expected a JSON object as the header", "array"}},
      {"{" + entry("a", "F16", "[2]", "[0,8]") + "}", {"'a'", "unsupported dtype 'F16'"}},
      {"{" + entry("a", "BF16", "[2]", "[0,8]") + "}", {"'BF16'"}},
      {"{\"a\":{\"dtype\":3,\"shape\":[2],\"data_offsets\":[0,8]}}", {"dtype to be a string"}},
      {"{" + entry("a", "F32", "[1,1,2]", "[0,8]") + "}", {"rank 0, 1 or 2", "found rank 3"}},
      {"{" + entry("a", "F32", "[-2]", "[0,8]") + "}", {"non-negative integer sizes"}},
      {"{" + entry("a", "F32", "[2.0]", "[0,8]") + "}", {"non-negative integer sizes"}},
      {"{" + entry("a", "F32", "2", "[0,8]") + "}", {"shape to be an array"}},
      {"{" + entry("a", "F32", "[2]", "[0,4]") + "}", {"expected 8 bytes", "[0, 4]"}},
      {"{" + entry("a", "F32", "[2]", "[8,0]") + "}", {"0 <= begin <= end"}},
      {"{" + entry("a", "F32", "[2]", "[0]") + "}", {"data_offsets [begin, end]"}},
      {"{" + entry("a", "F32", "[2]", "[4,12]") + "}", {"start at offset 0", "found 4", "gap"}},
      {"{" + entry("a", "F32", "[1]", "[0,4]") + "," + entry("b", "F32", "[1]", "[0,4]") + "}",
       {"start at offset 4", "found 0", "overlapping"}},
      {"{" + entry("a", "F32", "[1]", "[0,4]") + "," + entry("b", "F32", "[1]", "[5,9]") + "}",
       {"'b'", "start at offset 4", "after tensor 'a'", "gap"}},
      {"{" + entry("a", "F32", "[4]", "[0,16]") + "}", {"truncated", "ends at data offset 16"}},
      {"{" + entry("a", "F32", "[1]", "[0,4]") + "}",
       {"expected 4 bytes of tensor data", "found 8"}},
      {"{" + entry("a", "F32", "[1099511627776,1099511627776]", "[0,8]") + "}", {"too large"}},
      {"{" + entry("a", "F32", "[1073741824,1073741824]", "[0,4611686018427387904]") + "}",
       {"truncated"}},
      {"{" + entry("a", "F32", "[1]", "[0,4]") + "," + entry("a", "F32", "[1]", "[4,8]") + "}",
       {"unique tensor names", "'a' twice"}},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", {"'data_offsets' field"}},
      {"{\"a\":5}", {"'a'", "expected an object"}},
      {"{\"__metadata__\":{\"k\":1}," + entry("a", "F32", "[2]", "[0,8]") + "}",
       {"string values in __metadata__", "'k'"}},
      {"{\"__metadata__\":[]," + entry("a", "F32", "[2]", "[0,8]") + "}",
       {"__metadata__ to be an object"}},
      {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}," + entry("a", "F32", "[2]", "[0,8]") + "}",
       {"unique keys", "'k'"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.header);
    const std::string path = put(st_file(c.header, data));
    std::vector<std::string> parts = c.expected;
    parts.push_back(path);
    EXPECT_TRUE(throws_io_error([&] { load_safetensors(path); }, parts));
  }
}

TEST_F(Safetensors, RandomCorruptionsThrowIoErrorOrLoad) {
  const std::string path = dir_.file("f.safetensors");
  save_safetensors(path,
                   {{"w", Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2})},
                    {"b", Tensor::from_vector<double>({5}, {1})}},
                   {{"k", "v"}});
  test::expect_corruptions_handled(path, test::read_bytes(path), 1000, 17,
                                   [](const std::string& p) { load_safetensors(p); });
}

TEST_F(Safetensors, RejectsBadTensorsOnSave) {
  const std::string path = dir_.file("s.safetensors");
  const Tensor t = Tensor::zeros({2});
  EXPECT_TRUE(throws_io_error(
      [&] {
        save_safetensors(path, {{"a", t}, {"a", t}});
      },
      {"unique", "'a'"}));
  EXPECT_TRUE(throws_io_error(
      [&] {
        save_safetensors(path, {{"__metadata__", t}});
      },
      {"'__metadata__'"}));
  EXPECT_TRUE(throws_io_error([&] { save_safetensors(path, {{"", t}}); }, {"''"}));
  EXPECT_TRUE(throws_io_error([&] { save_safetensors(path, {{"u", Tensor()}}); }, {"undefined"}));
  EXPECT_TRUE(throws_io_error(
      [&] {
        save_safetensors(path, {{"a", t}}, {{"k", "\xff\xfe"}});
      },
      {"UTF-8"}));
  EXPECT_TRUE(dir_.entries().empty());
}

TEST_F(Safetensors, WriteFailuresLeaveThePreviousFileAndNoTemporary) {
  const std::string path = dir_.file("ckpt.safetensors");
  save_safetensors(path, {{"w", Tensor::from_vector<float>({1, 2}, {2})}});
  const std::string before = test::read_bytes(path);
  {
    test::FileSizeLimit limit(4096);
    EXPECT_TRUE(throws_io_error(
        [&] {
          save_safetensors(path, {{"w", Tensor::zeros({100, 100})}});
        },
        {"ckpt.safetensors", "write failed"}));
  }
  EXPECT_EQ(test::read_bytes(path), before);
  EXPECT_EQ(dir_.entries(), (std::vector<std::string>{"ckpt.safetensors"}));
  EXPECT_EQ(load_safetensors(path).get("w").to_vector<float>(), (std::vector<float>{1, 2}));
  EXPECT_TRUE(throws_io_error(
      [&] {
        save_safetensors(dir_.file("nowhere/x.safetensors"), {{"w", Tensor::zeros({1})}});
      },
      {"x.safetensors", "temporary file"}));
}

}  // namespace
}  // namespace mlpx
