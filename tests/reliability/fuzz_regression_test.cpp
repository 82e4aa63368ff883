// The fuzz targets' inputs, replayed in the ordinary test build: every seed under fuzz/corpus/
// and every input that once crashed a reader (fuzz/regressions/<target>/) must load or be
// rejected with an mlpx::Error, nothing else. Plus the regressions too large to keep as files,
// built here, and the property checks each fixed bug broke.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "mlpx/array_io.h"
#include "mlpx/checkpoint.h"
#include "mlpx/config.h"
#include "mlpx/error.h"
#include "mlpx/safetensors.h"
#include "reliability_util.h"

namespace mlpx {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// What each fuzz target does with its input (minus the fuzzer's own property checks), on a file.
void run_target(const std::string& target, const fs::path& file) {
  const std::string path = file.string();
  try {
    if (target == "npy" || target == "idx" || target == "csv") {
      const Array array = target == "npy"   ? load_npy(path)
                          : target == "idx" ? load_idx(path)
                                            : load_csv(path);
      to_float_tensor(array);
      check_labels(to_labels(array, "labels"), 10, "labels");
    } else if (target == "safetensors") {
      load_safetensors(path);
      load_checkpoint(path);
    } else if (target == "config") {
      const Config c = Config::from_json(read_text(file));
      EXPECT_EQ(Config::from_json(c.to_json()).to_json(), c.to_json()) << path;
    }
  } catch (const Error&) {
  }
}

TEST(FuzzRegressionTest, EverySeedAndEveryKeptCrashInputLoadsOrFailsWithAnError) {
  int inputs = 0;
  for (const char* root : {"fuzz/corpus", "fuzz/regressions"}) {
    const fs::path dir = fs::path(MLPX_SOURCE_DIR) / root;
    if (!fs::exists(dir)) continue;
    for (const auto& target : fs::directory_iterator(dir)) {
      if (!target.is_directory()) continue;
      for (const auto& input : fs::directory_iterator(target.path())) {
        SCOPED_TRACE(input.path().string());
        run_target(target.path().filename().string(), input.path());
        ++inputs;
      }
    }
  }
  EXPECT_GT(inputs, 20);
}

// float(INT32_MAX) rounds up to 2^31, so a label of 2^31 passed the range check and its
// conversion to int32 was undefined (UBSan: float-cast-overflow).
TEST(FuzzRegressionTest, FloatLabelOf2Pow31IsRejected) {
  const fs::path dir = fs::path(MLPX_SOURCE_DIR) / "fuzz/regressions";
  EXPECT_THROW(to_labels(load_npy((dir / "npy/label-2pow31-f4.npy").string()), "y"), IoError);
  EXPECT_THROW(to_labels(load_idx((dir / "idx/label-2pow31-f32-ubyte").string()), "y"), IoError);
  Array a;
  a.shape = {2};
  a.type = ElementType::kFloat32;
  const float values[2] = {-2147483648.0f, 2147483520.0f};  // the extremes that fit
  a.bytes.assign(reinterpret_cast<const unsigned char*>(values),
                 reinterpret_cast<const unsigned char*>(values) + sizeof(values));
  EXPECT_EQ(to_labels(a, "y").to_vector<int32_t>(), (std::vector<int32_t>{INT32_MIN, 2147483520}));
}

// A finite double past float's range became an infinity in the features.
TEST(FuzzRegressionTest, CsvValueBeyondFloat32IsRejectedNotMadeInfinite) {
  const fs::path file = fs::path(MLPX_SOURCE_DIR) / "fuzz/regressions/csv/beyond-float32.csv";
  const Array array = load_csv(file.string());
  try {
    to_float_tensor(array);
    FAIL() << "expected an IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("float32's range"), std::string::npos) << e.what();
  }
}

// nlohmann::json throws out_of_range (not parse_error) for a number past double's range; it
// escaped Config::from_json (and load_checkpoint) as a foreign exception.
TEST(FuzzRegressionTest, ConfigNumberOverflowIsAValueError) {
  EXPECT_THROW(Config::from_json(R"({"seed": 1e400})"), ValueError);
  EXPECT_THROW(Config::from_json(R"({"optimizer": {"lr": -1e999}})"), ValueError);
}

// Milestones were narrowed to int unchecked: 4294967298 became epoch 2.
TEST(FuzzRegressionTest, ConfigMilestoneBeyondIntIsRejectedNotWrapped) {
  EXPECT_THROW(Config::from_json(R"({"schedule": {"milestones": [4294967298]}})"), ValueError);
  EXPECT_THROW(Config::from_json(R"({"schedule": {"milestones": [-4294967294]}})"), ValueError);
  EXPECT_EQ(Config::from_json(R"({"schedule": {"milestones": [2147483647]}})").schedule.milestones,
            (std::vector<int>{2147483647}));
}

// Error messages printed the offending shape with Json::dump(), which recurses once per nesting
// level: a 2 MB header of nested arrays overflowed the stack.
TEST(FuzzRegressionTest, DeeplyNestedShapeIsAnErrorNotAStackOverflow) {
  ScratchDir dir;
  const std::string path = dir.path("nested.safetensors");
  constexpr size_t kDepth = 1'000'000;
  for (const char* layout : {"rank", "size"}) {
    std::string nested = std::string(kDepth, '[') + std::string(kDepth, ']');
    std::string header = std::string(R"({"t": {"dtype": "F32", "shape": )") +
                         (layout == std::string("rank") ? "[1, 2, " + nested + "]" : nested) +
                         R"(, "data_offsets": [0, 4]}})";
    header.append((8 - header.size() % 8) % 8, ' ');
    std::string file(8, '\0');
    for (int i = 0; i < 8; ++i) file[i] = static_cast<char>(uint64_t{header.size()} >> (8 * i));
    file += header + std::string(4, '\0');
    std::ofstream(path, std::ios::binary) << file;
    EXPECT_THROW(load_safetensors(path), IoError) << layout;
  }
}

}  // namespace
}  // namespace mlpx
