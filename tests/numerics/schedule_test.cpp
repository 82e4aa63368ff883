// Learning-rate schedules against their closed forms.
#include "mlpx/schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "mlpx/error.h"

namespace mlpx {
namespace {

constexpr double kPi = 3.14159265358979323846;

ScheduleConfig make(ScheduleType type) {
  ScheduleConfig c;
  c.type = type;
  return c;
}

TEST(Schedule, ParseAndNameRoundTrip) {
  for (const char* name : {"none", "step", "multistep", "exponential", "cosine"}) {
    EXPECT_EQ(schedule_name(parse_schedule(name)), name);
  }
  try {
    parse_schedule("cyclic");
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("cyclic"), std::string::npos) << e.what();
  }
}

TEST(Schedule, NoneIsConstant) {
  const auto c = make(ScheduleType::kNone);
  for (int e = 0; e < 100; ++e) EXPECT_EQ(scheduled_lr(c, 0.3, e), 0.3);
}

// The contract: lr0 * gamma^floor(epoch / step_size), bit for bit.
TEST(Schedule, StepIsBitExactOverAThousandEpochs) {
  for (int step_size : {1, 3, 5, 7}) {
    for (double gamma : {0.1, 0.5, 0.9, 0.97}) {
      ScheduleConfig c = make(ScheduleType::kStep);
      c.step_size = step_size;
      c.gamma = gamma;
      const double lr0 = 0.05;
      for (int e = 0; e < 1000; ++e) {
        const double expected =
            lr0 * std::pow(gamma, std::floor(static_cast<double>(e) / step_size));
        ASSERT_EQ(scheduled_lr(c, lr0, e), expected)
            << "epoch " << e << " step_size " << step_size << " gamma " << gamma;
      }
    }
  }
}

TEST(Schedule, StepDecaysAtMultiplesOfStepSize) {
  ScheduleConfig c = make(ScheduleType::kStep);
  c.step_size = 5;  // gamma 0.1
  EXPECT_EQ(scheduled_lr(c, 1.0, 0), 1.0);
  EXPECT_EQ(scheduled_lr(c, 1.0, 4), 1.0);
  EXPECT_DOUBLE_EQ(scheduled_lr(c, 1.0, 5), 0.1);
  EXPECT_DOUBLE_EQ(scheduled_lr(c, 1.0, 9), 0.1);
  EXPECT_DOUBLE_EQ(scheduled_lr(c, 1.0, 10), 0.01);
}

// torch's MultiStepLR: a milestone m decays from epoch m on.
TEST(Schedule, MultiStepCountsMilestonesPassed) {
  ScheduleConfig c = make(ScheduleType::kMultiStep);
  c.milestones = {3, 7, 20};
  c.gamma = 0.5;
  for (int e = 0; e < 40; ++e) {
    const int passed = (e >= 3) + (e >= 7) + (e >= 20);
    EXPECT_DOUBLE_EQ(scheduled_lr(c, 0.2, e), 0.2 * std::pow(0.5, passed)) << e;
  }
  c.milestones = {};
  EXPECT_EQ(scheduled_lr(c, 0.2, 100), 0.2);
}

TEST(Schedule, ExponentialIsGammaToTheEpoch) {
  ScheduleConfig c = make(ScheduleType::kExponential);
  c.gamma = 0.95;
  for (int e = 0; e < 200; ++e) EXPECT_DOUBLE_EQ(scheduled_lr(c, 0.1, e), 0.1 * std::pow(0.95, e));
}

TEST(Schedule, CosineAnnealsFromLr0ToMin) {
  ScheduleConfig c = make(ScheduleType::kCosine);
  c.total_epochs = 20;
  c.min_lr = 1e-4;
  const double lr0 = 0.1;
  for (int e = 0; e <= 20; ++e) {
    const double expected = 1e-4 + (lr0 - 1e-4) * (1 + std::cos(kPi * e / 20)) / 2;
    EXPECT_NEAR(scheduled_lr(c, lr0, e), expected, 1e-15) << e;
  }
  EXPECT_DOUBLE_EQ(scheduled_lr(c, lr0, 0), lr0);
  EXPECT_NEAR(scheduled_lr(c, lr0, 10), (lr0 + 1e-4) / 2, 1e-15);
  EXPECT_NEAR(scheduled_lr(c, lr0, 20), 1e-4, 1e-15);
}

// W warmup epochs: epoch e < W at lr0 (e + 1) / (W + 1); then the schedule from its epoch 0.
TEST(Schedule, LinearWarmupThenSchedule) {
  const double lr0 = 0.4;
  ScheduleConfig step = make(ScheduleType::kStep);
  step.warmup_epochs = 3;
  step.step_size = 2;
  step.gamma = 0.5;
  EXPECT_DOUBLE_EQ(scheduled_lr(step, lr0, 0), 0.1);
  EXPECT_DOUBLE_EQ(scheduled_lr(step, lr0, 1), 0.2);
  EXPECT_DOUBLE_EQ(scheduled_lr(step, lr0, 2), 0.3);
  for (int e = 3; e < 50; ++e) {
    EXPECT_EQ(scheduled_lr(step, lr0, e),
              lr0 * std::pow(0.5, std::floor(static_cast<double>(e - 3) / 2)))
        << e;
  }

  ScheduleConfig none = make(ScheduleType::kNone);
  none.warmup_epochs = 4;
  for (int e = 0; e < 4; ++e) EXPECT_DOUBLE_EQ(scheduled_lr(none, lr0, e), lr0 * (e + 1) / 5);
  EXPECT_EQ(scheduled_lr(none, lr0, 4), lr0);
  EXPECT_EQ(scheduled_lr(none, lr0, 40), lr0);

  ScheduleConfig cosine = make(ScheduleType::kCosine);
  cosine.total_epochs = 12;
  cosine.warmup_epochs = 2;  // anneals over T = 10 epochs
  EXPECT_DOUBLE_EQ(scheduled_lr(cosine, lr0, 0), lr0 / 3);
  EXPECT_DOUBLE_EQ(scheduled_lr(cosine, lr0, 1), 2 * lr0 / 3);
  EXPECT_DOUBLE_EQ(scheduled_lr(cosine, lr0, 2), lr0);
  for (int e = 2; e < 12; ++e) {
    EXPECT_NEAR(scheduled_lr(cosine, lr0, e), lr0 * (1 + std::cos(kPi * (e - 2) / 10)) / 2, 1e-15);
  }

  ScheduleConfig multistep = make(ScheduleType::kMultiStep);
  multistep.warmup_epochs = 1;
  multistep.milestones = {2};
  EXPECT_DOUBLE_EQ(scheduled_lr(multistep, lr0, 0), lr0 / 2);
  EXPECT_EQ(scheduled_lr(multistep, lr0, 2), lr0);  // schedule epoch 1
  EXPECT_DOUBLE_EQ(scheduled_lr(multistep, lr0, 3), lr0 * 0.1);

  ScheduleConfig exponential = make(ScheduleType::kExponential);
  exponential.warmup_epochs = 1;
  exponential.gamma = 0.9;
  EXPECT_DOUBLE_EQ(scheduled_lr(exponential, lr0, 0), lr0 / 2);
  EXPECT_EQ(scheduled_lr(exponential, lr0, 1), lr0);
  EXPECT_DOUBLE_EQ(scheduled_lr(exponential, lr0, 3), lr0 * 0.81);
}

TEST(Schedule, ValidateNamesTheField) {
  struct Bad {
    const char* field;
    void (*spoil)(ScheduleConfig&);
  };
  const Bad bad[] = {
      {"step_size", [](ScheduleConfig& c) { c.step_size = 0; }},
      {"gamma", [](ScheduleConfig& c) { c.gamma = 0; }},
      {"gamma", [](ScheduleConfig& c) { c.gamma = std::nan(""); }},
      {"milestones",
       [](ScheduleConfig& c) {
         c.milestones = {5, 3};
       }},
      {"milestones", [](ScheduleConfig& c) { c.milestones = {-1}; }},
      {"total_epochs", [](ScheduleConfig& c) { c.total_epochs = 0; }},
      {"min_lr", [](ScheduleConfig& c) { c.min_lr = -1; }},
      {"warmup_epochs", [](ScheduleConfig& c) { c.warmup_epochs = -2; }},
      {"warmup_epochs",
       [](ScheduleConfig& c) {
         c.type = ScheduleType::kCosine;
         c.total_epochs = 5;
         c.warmup_epochs = 5;
       }},
  };
  for (const Bad& b : bad) {
    ScheduleConfig c;
    b.spoil(c);
    try {
      c.validate();
      ADD_FAILURE() << "expected ValueError for " << b.field;
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find(b.field), std::string::npos) << e.what();
    }
    EXPECT_THROW(scheduled_lr(c, 0.1, 0), ValueError) << b.field;
  }
  EXPECT_NO_THROW(ScheduleConfig{}.validate());
  EXPECT_THROW(scheduled_lr(ScheduleConfig{}, 0.1, -1), ValueError);
}

}  // namespace
}  // namespace mlpx

namespace mlpx {
namespace {

TEST(ScheduleWords, EachTypeIsDescribed) {
  ScheduleConfig c;
  EXPECT_EQ(describe_schedule(c, 0.001), "constant lr 0.001");
  c.type = ScheduleType::kStep;
  c.step_size = 10;
  c.gamma = 0.1;
  EXPECT_EQ(describe_schedule(c, 0.001), "lr 0.001, x0.1 every 10 epochs");
  c.type = ScheduleType::kMultiStep;
  c.milestones = {5, 8};
  EXPECT_EQ(describe_schedule(c, 0.01), "lr 0.01, x0.1 at epochs 5, 8");
  c.type = ScheduleType::kExponential;
  c.gamma = 0.95;
  EXPECT_EQ(describe_schedule(c, 0.1), "lr 0.1, x0.95 per epoch");
  c.type = ScheduleType::kCosine;
  c.total_epochs = 20;
  c.warmup_epochs = 2;
  EXPECT_EQ(describe_schedule(c, 0.1), "lr 0.1, cosine to 0 over 18 epochs, after 2 warmup epochs");
}

}  // namespace
}  // namespace mlpx
