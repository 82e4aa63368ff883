// Training faults: a run that diverges in epoch 3 after two good epochs stops with an error that
// names epoch 3 and the step, and the checkpoint written after epoch 2 stays intact: it loads,
// says epoch 2, holds finite weights, and is bit-identical to the checkpoint of a run that
// stops after two epochs.
#include <cmath>

#include "mlpx/checkpoint.h"
#include "mlpx/error.h"
#include "mlpx/training.h"
#include "reliability_util.h"

namespace mlpx {
namespace {

using test::bitwise_equal;
using test::ScratchDir;

// Plain SGD at a sane rate for epochs 1 and 2; a multistep schedule multiplies the rate by
// 1e30 from epoch index 2 (the third epoch) on.
Config diverging_in_epoch_3(const ScratchDir& dir, const std::string& name) {
  Config c = Config::from_json(R"({
    "seed": 5, "device": "cpu",
    "data": {"source": "synthetic",
             "synthetic": {"train_samples": 400, "test_samples": 100, "features": 8, "classes": 4}},
    "model": {"layers": [{"units": 16, "activation": "relu"}, {"units": 4, "activation": "identity"}]},
    "loss": "mse",
    "optimizer": {"type": "sgd", "lr": 0.05},
    "schedule": {"type": "multistep", "milestones": [2], "gamma": 1e30},
    "train": {"epochs": 5, "batch_size": 20}
  })");
  c.output.checkpoint = dir.path(name + ".safetensors");
  c.output.log = dir.path(name + ".jsonl");
  return c;
}

TEST(TrainingFaultTest, DivergenceInEpoch3KeepsTheEpoch2CheckpointIntact) {
  ScratchDir dir;
  const Config diverging = diverging_in_epoch_3(dir, "diverging");
  try {
    run_training(diverging, {});
    FAIL() << "expected the run to diverge in epoch 3";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("epoch 3, step"), std::string::npos) << what;
  }
  const Checkpoint kept = load_checkpoint(diverging.output.checkpoint);
  EXPECT_EQ(kept.progress.epoch, 2);
  for (float w : kept.model.params().to_vector<float>()) ASSERT_TRUE(std::isfinite(w));

  // The same run stopped after two epochs wrote the same bits.
  Config two = diverging_in_epoch_3(dir, "two");
  two.train.epochs = 2;
  run_training(two, {});
  const Checkpoint reference = load_checkpoint(two.output.checkpoint);
  EXPECT_EQ(reference.progress.step, kept.progress.step);
  EXPECT_TRUE(bitwise_equal(kept.model.params(), reference.model.params()));

  // And it resumes: with a sane rate the run continues from epoch 2 to the end.
  Config resumed = two;
  resumed.train.epochs = 4;
  resumed.schedule.gamma = 1.0;  // no jump this time
  RunOptions options;
  options.resume = diverging.output.checkpoint;
  const RunResult result = run_training(resumed, options);
  ASSERT_FALSE(result.epochs.empty());
  EXPECT_EQ(result.epochs.back().epoch, 4);
  EXPECT_EQ(load_checkpoint(resumed.output.checkpoint).progress.epoch, 4);
}

}  // namespace
}  // namespace mlpx
