// The weight-init study reproduces the textbook behaviour of sigmoid / tanh / relu stacks.
#include "tune/init_study.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "mlpx/error.h"
#include "test_util.h"

namespace mlpx {
namespace {

// The default study (4 inits x 3 activations, 5 layers of 100, 1000 samples): run once.
const std::vector<LayerStats>& default_study() {
  static const std::vector<LayerStats> stats = run_init_study(InitStudyOptions{});
  return stats;
}

const LayerStats& find(const std::vector<LayerStats>& stats, const std::string& init,
                       Activation activation, int layer) {
  for (const LayerStats& s : stats) {
    if (s.init == init && s.activation == activation && s.layer == layer) return s;
  }
  throw Error("no stats for " + init + " " + activation_name(activation) + " layer " +
              std::to_string(layer));
}

TEST(InitStudy, DefaultShape) {
  const auto& stats = default_study();
  ASSERT_EQ(stats.size(), 4u * 3u * 5u);
  EXPECT_EQ(stats[0].init, "normal_std1");
  EXPECT_EQ(stats[0].activation, Activation::kSigmoid);
  EXPECT_EQ(stats[0].layer, 1);
  EXPECT_EQ(stats[4].layer, 5);
  EXPECT_EQ(stats[5].activation, Activation::kTanh);
  EXPECT_EQ(stats[15].init, "normal_std0.01");
  EXPECT_EQ(stats.back().init, "he_normal");
  EXPECT_EQ(stats.back().activation, Activation::kRelu);
  for (const LayerStats& s : stats) {
    ASSERT_EQ(s.histogram.size(), 30u);
    double total = s.below + s.above;
    for (double f : s.histogram) total += f;
    // relu's exact zeros are out of the histogram; everything else is in a bin or outside.
    EXPECT_NEAR(total + (s.activation == Activation::kRelu ? s.frac_near_0 : 0.0), 1.0, 1e-9)
        << s.init << " " << activation_name(s.activation) << " " << s.layer;
    EXPECT_TRUE(std::isfinite(s.grad_rms));
    EXPECT_GT(s.grad_rms, 0.0);
  }
}

TEST(InitStudy, NormalStd1SigmoidSaturates) {
  const auto& s = find(default_study(), "normal_std1", Activation::kSigmoid, 5);
  EXPECT_GT(s.frac_near_0 + s.frac_near_1, 0.40);
  const auto& x = find(default_study(), "lecun_normal", Activation::kSigmoid, 5);
  EXPECT_EQ(x.frac_near_0 + x.frac_near_1, 0.0);
}

TEST(InitStudy, NormalStd001SigmoidCollapsesAtOneHalf) {
  const auto& s = find(default_study(), "normal_std0.01", Activation::kSigmoid, 5);
  EXPECT_LT(s.std, 0.02);
  EXPECT_NEAR(s.mean, 0.5, 0.02);
}

TEST(InitStudy, LectureXavierTanhStaysSpread) {
  const auto& s = find(default_study(), "lecun_normal", Activation::kTanh, 5);
  EXPECT_GT(s.std, 0.1);
}

TEST(InitStudy, HeReluKeepsItsScale) {
  const auto& first = find(default_study(), "he_normal", Activation::kRelu, 1);
  const auto& last = find(default_study(), "he_normal", Activation::kRelu, 5);
  EXPECT_LT(last.std, 3 * first.std);
  EXPECT_GT(last.std, first.std / 3);
  // About half of relu's inputs are negative at every depth.
  EXPECT_NEAR(last.frac_near_0, 0.5, 0.1);
}

TEST(InitStudy, GradientsVanishThroughSaturatedSigmoids) {
  // Saturated sigmoids pass back almost nothing: the first layer's gradient is far smaller
  // than the last one's; xavier keeps them within one order of magnitude.
  const auto& stats = default_study();
  const double std1 = find(stats, "normal_std1", Activation::kSigmoid, 1).grad_rms /
                      find(stats, "normal_std1", Activation::kSigmoid, 5).grad_rms;
  const double small = find(stats, "normal_std0.01", Activation::kSigmoid, 1).grad_rms /
                       find(stats, "normal_std0.01", Activation::kSigmoid, 5).grad_rms;
  EXPECT_LT(small, 1e-3);
  EXPECT_LT(std1, 0.5);
  const double xavier = find(stats, "lecun_normal", Activation::kTanh, 1).grad_rms /
                        find(stats, "lecun_normal", Activation::kTanh, 5).grad_rms;
  EXPECT_GT(xavier, 0.1);
  EXPECT_LT(xavier, 10);
}

TEST(InitStudy, DeterministicForASeedAndSeedMatters) {
  InitStudyOptions options;
  options.inits = {parse_init_choice("xavier_normal")};
  options.activations = {Activation::kTanh};
  options.samples = 200;
  const std::string a = init_study_csv(run_init_study(options));
  EXPECT_EQ(a, init_study_csv(run_init_study(options)));
  options.seed = 1;
  EXPECT_NE(a, init_study_csv(run_init_study(options)));
}

TEST(InitStudy, OptionsChangeTheSets) {
  InitStudyOptions options;
  options.inits = {parse_init_choice("he_normal"), parse_init_choice("normal_std0.5")};
  options.activations = {Activation::kRelu};
  options.depth = 3;
  options.width = 20;
  options.samples = 50;
  options.features = 7;
  const auto stats = run_init_study(options);
  ASSERT_EQ(stats.size(), 6u);
  EXPECT_EQ(stats[3].init, "normal_std0.5");
  EXPECT_EQ(stats[5].layer, 3);
}

TEST(InitStudy, CsvColumnsAndFormat) {
  InitStudyOptions options;
  options.samples = 100;
  options.depth = 2;
  const auto stats = run_init_study(options);
  std::istringstream csv(init_study_csv(stats));
  std::string line;
  ASSERT_TRUE(std::getline(csv, line));
  EXPECT_EQ(line, "init,activation,layer,mean,std,frac_near_0,frac_near_1,grad_rms");
  size_t rows = 0;
  while (std::getline(csv, line)) {
    std::vector<std::string> cells;
    std::stringstream row(line);
    for (std::string cell; std::getline(row, cell, ',');) cells.push_back(cell);
    ASSERT_EQ(cells.size(), 8u) << line;
    const LayerStats& s = stats[rows];
    EXPECT_EQ(cells[0], s.init);
    EXPECT_EQ(cells[1], activation_name(s.activation));
    EXPECT_EQ(cells[2], std::to_string(s.layer));
    EXPECT_NEAR(std::stod(cells[4]), s.std, 1e-5 * (1 + s.std));
    ++rows;
  }
  EXPECT_EQ(rows, 4u * 3u * 2u);
  // The four init names as the CSV writes them, layers from 1.
  const std::string text = init_study_csv(stats);
  for (const char* row : {"\nnormal_std1,sigmoid,1,", "\nnormal_std0.01,tanh,2,",
                          "\nlecun_normal,relu,1,", "\nhe_normal,relu,2,"}) {
    EXPECT_NE(text.find(row), std::string::npos) << row;
  }

  char pattern[] = "/tmp/mlpx-study-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::string path = std::string(pattern) + "/init_study.csv";
  write_init_study_csv(path, stats);
  std::ifstream in(path);
  std::stringstream written;
  written << in.rdbuf();
  EXPECT_EQ(written.str(), text);
  std::filesystem::remove_all(pattern);
  EXPECT_THROW(write_init_study_csv("/nonexistent-folder/x.csv", stats), IoError);
}

TEST(InitStudy, NamesAndBadOptions) {
  EXPECT_EQ(parse_init_choice("normal_std1.0").name, "normal_std1");
  EXPECT_DOUBLE_EQ(parse_init_choice("normal_std0.01").param, 0.01);
  EXPECT_EQ(parse_init_choice("he_normal").init, Init::kHeNormal);
  EXPECT_EQ(parse_init_choice("xavier_normal").init, Init::kXavierNormal);
  EXPECT_EQ(parse_init_choice("lecun_normal").init, Init::kLecunNormal);
  EXPECT_EQ(parse_init_choice("torch_default").init, Init::kTorchDefault);
  // The plots name the lecture's Xavier with its formula.
  EXPECT_EQ(init_choice_label("lecun_normal"), "Xavier (lecture): std 1/sqrt(fan_in)");
  EXPECT_EQ(init_choice_label("xavier_normal"), "Glorot: std sqrt(2/(fan_in+fan_out))");
  EXPECT_EQ(init_choice_label("normal_std0.01"), "normal: std 0.01");
  for (const char* bad : {"normal", "normal_std", "normal_std-1", "normal_stdx", "zeros", "he"}) {
    EXPECT_THROW(parse_init_choice(bad), ValueError) << bad;
  }
  InitStudyOptions options;
  options.activations = {Activation::kSoftmax};
  EXPECT_THROW(run_init_study(options), ValueError);
  options = InitStudyOptions{};
  options.depth = 0;
  EXPECT_THROW(run_init_study(options), ValueError);
  options = InitStudyOptions{};
  options.inits.clear();
  EXPECT_THROW(run_init_study(options), ValueError);
}

TEST(InitStudy, CudaMatchesCpu) {
  MLPX_REQUIRE_CUDA();
  InitStudyOptions options;
  options.samples = 300;
  const auto cpu = run_init_study(options);
  options.device = Device::cuda();
  const auto gpu = run_init_study(options);
  ASSERT_EQ(cpu.size(), gpu.size());
  for (size_t i = 0; i < cpu.size(); ++i) {
    const double scale = 1 + std::abs(cpu[i].std);
    EXPECT_NEAR(gpu[i].mean, cpu[i].mean, 1e-3 * scale) << i;
    EXPECT_NEAR(gpu[i].std, cpu[i].std, 1e-3 * scale) << i;
    EXPECT_NEAR(gpu[i].grad_rms, cpu[i].grad_rms, 1e-2 * cpu[i].grad_rms + 1e-30) << i;
  }
}

}  // namespace
}  // namespace mlpx
