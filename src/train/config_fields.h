// The config's keys, each declared once, in the file's order: for_each_field() walks them,
// telling a visitor each key's JSON name, where its value lives in a Config, and its FieldInfo
// (help line, range, whether a sweep may search it). From this one walk come Config::from_json
// (reading, unknown keys and "did you mean"), Config::to_json (and so `mlpx config --defaults`
// and `--check`), the ranges Config::validate checks, and config_fields() (`mlpx config --keys`,
// the sweep's key check, the Python package's keywords). Internal (src/train/config.cpp).
//
// Adding a key: one line below (and its field in include/mlpx/config.h's struct).
#pragma once

#include <limits>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/names.h"
#include "mlpx/config.h"

namespace mlpx::detail {

// The values a number may take, and how an error says so.
struct Range {
  double low = -std::numeric_limits<double>::infinity();
  double high = std::numeric_limits<double>::infinity();
  bool high_open = false;       // high itself excluded
  const char* words = nullptr;  // "a probability in [0, 1)"; none: ">= low" in figures

  bool contains(double value) const {
    return value >= low && (high_open ? value < high : value <= high);
  }
};
inline Range at_least(double low, const char* words = nullptr) {
  return {low, std::numeric_limits<double>::infinity(), false, words};
}
inline Range in_unit_interval(const char* words) { return {0.0, 1.0, true, words}; }

// What a key is for.
struct FieldInfo {
  const char* help = "";
  Range range;            // numbers only
  bool sweepable = true;  // a hyperparameter a sweep may search (not a path, device or switch)
  bool required = false;  // no default: the key must be given (a layer's units)
};
inline FieldInfo hyper(const char* help, Range range = {}) { return {help, range, true, false}; }
inline FieldInfo fixed(const char* help, Range range = {}) { return {help, range, false, false}; }

// Walks every key of `c` (a Config, const or not) in the file's order. The visitor `v` has:
//   v.value(name, T& value, const FieldInfo&)       T: bool, int, int64_t, uint64_t, double,
//                                                    std::string, std::optional<double>,
//                                                    std::vector<int>
//   v.value_shown(name, std::optional<double>& value, double shown, const FieldInfo&)
//                                                    unset is written as `shown` (eps)
//   v.enumerated(name, E& value, names, const FieldInfo&)   names: core/names.h's table
//   v.enumerated_object(name, E& value, names, const FieldInfo&, plain, body())
//                                                    a name, or an object {"type": name, ...}
//                                                    with the keys of body(); written as the
//                                                    name alone while `plain` (the loss)
//   v.object(name, help, body())                    a nested object
//   v.optional_object(name, std::optional<T>& value, help, body(T&))   null or absent: unset
//   v.array(name, std::vector<T>& values, help, body(T&))              an array of objects
// and keeps the path ("optimizer", "model.layers[0]") itself.
template <typename Visitor, typename C>
void for_each_field(Visitor& v, C& c) {
  v.value("seed", c.seed,
          hyper("seed of the weights, the shuffles and the validation split", at_least(0)));
  v.value("device", c.device, fixed("where to train: auto, cpu, cuda or cuda:N"));
  v.enumerated("precision", c.precision, kPrecisionNames,
               hyper("the arithmetic of the GEMMs (tf32 needs a CUDA device)"));
  v.object("data", "the data set", [&] {
    v.enumerated("source", c.data.source, kDataSourceNames,
                 fixed("where the data comes from (files: data.train and data.test)"));
    v.value("dir", c.data.dir, fixed("where fashion-mnist's files are"));
    v.object("train", "the training set's files (data.source files)", [&] {
      v.value("x", c.data.train.x, fixed("features: .npy, .csv or IDX"));
      v.value("y", c.data.train.y, fixed("class indices [N], or float targets [N] / [N, K]"));
    });
    v.object("test", "the test set's files (optional)", [&] {
      v.value("x", c.data.test.x, fixed("features: .npy, .csv or IDX"));
      v.value("y", c.data.test.y, fixed("class indices [N], or float targets [N] / [N, K]"));
    });
    v.value("validation_split", c.data.validation_split,
            fixed("fraction of the training set held out, chosen from the seed",
                  in_unit_interval("a fraction in [0, 1)")));
    v.enumerated("normalize", c.data.normalize, kNormalizeNames,
                 hyper("how the features are scaled"));
    v.enumerated("task", c.data.task, kTaskNames,
                 fixed("what y holds (auto: regression for mse or sse on one float column)"));
    v.object("synthetic", "the built-in data set (data.source synthetic)", [&] {
      v.value("train_samples", c.data.synthetic.train_samples, fixed("training rows", at_least(1)));
      v.value("test_samples", c.data.synthetic.test_samples, fixed("test rows", at_least(0)));
      v.value("features", c.data.synthetic.features, fixed("columns of x", at_least(1)));
      v.value("classes", c.data.synthetic.classes, fixed("classes of y", at_least(2)));
    });
  });
  v.object("model", "the network", [&] {
    v.array("layers", c.model.layers, "the layers, input side first", [&](auto& layer) {
      v.value(
          "units", layer.units,
          FieldInfo{"a number of units (the layer's outputs; required)", at_least(1), true, true});
      v.enumerated("activation", layer.activation, kActivationNames,
                   hyper("the layer's activation"));
      v.value("alpha", layer.alpha,
              hyper("leaky_relu's slope or elu's scale (unset: model.activation_alpha, else "
                    "the activation's default)"));
      v.value("dropout", layer.dropout,
              hyper("probability of zeroing an output in training",
                    in_unit_interval("a probability in [0, 1)")));
      v.enumerated("norm", layer.norm, kNormNames,
                   hyper("the norm between the Linear and the activation: none, layer, batch"));
      v.value("norm_eps", layer.norm_eps,
              hyper("added to the norm's variance", {0.0, 1.0, false, "a number in [0, 1]"}));
      v.value("norm_momentum", layer.norm_momentum,
              hyper("batch norm: the running statistics' momentum",
                    {0.0, 1.0, false, "a momentum in [0, 1]"}));
      v.value("bias", layer.bias, hyper("the Linear has a bias (false: nn.Linear(bias=False))"));
      v.value("residual", layer.residual,
              hyper("add the layer's input to its output (units = the input width)"));
    });
    v.enumerated("init", c.model.init, kInitNames, hyper("how the weights start"));
    v.value("init_std", c.model.init_std,
            hyper("the std of init normal, the bound of init uniform", at_least(0, ">= 0")));
    v.value("activation_alpha", c.model.activation_alpha,
            hyper("alpha of every layer without its own (unset: each activation's default)"));
  });
  v.enumerated_object("loss", c.loss, kLossNames, hyper("the loss"), c.label_smoothing == 0.0, [&] {
    v.value("label_smoothing", c.label_smoothing,
            hyper("cross_entropy: the target's weight spread evenly over the classes",
                  {0.0, 1.0, false, "a fraction in [0, 1]"}));
  });
  v.object("optimizer", "the optimizer", [&] {
    v.enumerated("type", c.optimizer.type, kOptimizerNames, hyper("the update rule"));
    v.value("lr", c.optimizer.lr, hyper("learning rate"));
    v.value("beta1", c.optimizer.beta1, hyper("adam, adamw: decay of the first moment"));
    v.value("beta2", c.optimizer.beta2, hyper("adam, adamw: decay of the second moment"));
    v.value_shown("eps", c.optimizer.eps, c.optimizer.effective_eps(),
                  hyper("added to the denominator (unset: adagrad 1e-10, else 1e-8)"));
    v.value("alpha", c.optimizer.alpha, hyper("rmsprop: decay of the squared gradients"));
    v.value("momentum", c.optimizer.momentum, hyper("sgd, rmsprop: momentum"));
    v.value("nesterov", c.optimizer.nesterov, hyper("sgd: Nesterov momentum"));
    v.value("weight_decay", c.optimizer.weight_decay, hyper("L2 penalty (adamw: decoupled decay)"));
    v.enumerated("decay", c.optimizer.decay, kDecayNames,
                 hyper("what weight_decay applies to: all, or weights (not biases or norms)"));
  });
  v.object("schedule", "the learning-rate schedule", [&] {
    v.enumerated("type", c.schedule.type, kScheduleNames, hyper("how the rate changes by epoch"));
    v.value("step_size", c.schedule.step_size, hyper("step: epochs between decays", at_least(1)));
    v.value("gamma", c.schedule.gamma, hyper("step, multistep, exponential: decay factor"));
    v.value("milestones", c.schedule.milestones,
            hyper("multistep: epochs at which to decay (increasing)"));
    v.value("total_epochs", c.schedule.total_epochs,
            hyper("cosine: epochs of the whole run (unset in a file: train.epochs)", at_least(1)));
    v.value("min_lr", c.schedule.min_lr, hyper("cosine: the rate it decays to"));
    v.value("warmup_epochs", c.schedule.warmup_epochs,
            hyper("epochs of linear warmup before the schedule", at_least(0)));
    v.value("max_lr", c.schedule.max_lr, hyper("onecycle: the peak rate (unset: optimizer.lr)"));
    v.value("pct_start", c.schedule.pct_start,
            hyper("onecycle: the fraction of the steps spent rising"));
    v.enumerated("anneal", c.schedule.anneal, kAnnealNames,
                 hyper("onecycle: how the rate moves (anneal_strategy)"));
    v.value("div_factor", c.schedule.div_factor,
            hyper("onecycle: the first rate is max_lr / div_factor"));
    v.value("final_div_factor", c.schedule.final_div_factor,
            hyper("onecycle: the last rate is the first / final_div_factor"));
    v.value("cycle_momentum", c.schedule.cycle_momentum,
            hyper("onecycle: cycle sgd's momentum or adam's beta1 against the rate"));
    v.value("base_momentum", c.schedule.base_momentum,
            hyper("onecycle: the momentum at the peak rate"));
    v.value("max_momentum", c.schedule.max_momentum,
            hyper("onecycle: the momentum at the lowest rates"));
    v.enumerated("metric", c.schedule.metric, kMetricNames,
                 hyper("plateau: the validation figure it watches"));
    v.value("factor", c.schedule.factor, hyper("plateau: the rate's factor at a reduction"));
    v.value("patience", c.schedule.patience,
            hyper("plateau: epochs without improvement before a reduction", at_least(0)));
    v.value("threshold", c.schedule.threshold,
            hyper("plateau: the relative margin an improvement needs", at_least(0, ">= 0")));
    v.value("cooldown", c.schedule.cooldown,
            hyper("plateau: epochs after a reduction before counting again", at_least(0)));
  });
  v.object("train", "the training loop", [&] {
    v.value("epochs", c.train.epochs, hyper("epochs to train", at_least(0)));
    v.value("batch_size", c.train.batch_size,
            hyper("rows per step: 1 SGD, 0 (or the set's size) full-batch GD", at_least(0)));
    v.value("shuffle", c.train.shuffle, hyper("shuffle the rows every epoch"));
    v.value("clip_grad_norm", c.train.clip_grad_norm,
            hyper("clip the gradients' global L2 norm to this (0: off)", at_least(0, ">= 0")));
    v.value("accumulate_steps", c.train.accumulate_steps,
            hyper("batches whose gradients add up before each optimizer step", at_least(1)));
    v.value("layer_grad_norms", c.train.layer_grad_norms,
            fixed("log each Linear layer's weight-gradient L2 norm (the epoch's mean)"));
    v.value("cuda_graph", c.train.cuda_graph,
            fixed("replay each step from a CUDA graph (the same bits)"));
    v.enumerated("on_nonfinite", c.train.on_nonfinite, kNonFiniteNames,
                 fixed("what a step with a NaN or Inf loss or gradient does"));
    v.value("shard_optimizer", c.train.shard_optimizer,
            fixed("data parallel: each rank keeps 1/N of the optimizer state"));
    v.enumerated("collectives", c.train.collectives, kCollectivesNames,
                 fixed("how a GPU model's gradients are summed over the ranks"));
    v.value("bucket_mb", c.train.bucket_mb,
            fixed("NCCL: MB of gradients per overlapped all-reduce (0: one after the backward)",
                  at_least(0, "a size in MB >= 0")));
    v.enumerated("fused", c.train.fused, kFusedModeNames,
                 fixed("fused narrow-MLP GPU kernels after the first layer: auto, on, off"));
    v.value("gemm_epilogues", c.train.gemm_epilogues,
            fixed("GPU fp32/tf32: bias, relu, gelu_tanh, their backward and the bias gradients "
                  "in the GEMMs' cuBLASLt epilogues (false: separate kernels)"));
    v.value("sync_batchnorm", c.train.sync_batchnorm,
            fixed("data parallel: batch norm statistics over the whole batch (SyncBatchNorm)"));
    v.optional_object(
        "early_stopping", c.train.early_stopping,
        "stop once the metric stops improving (null or absent: every epoch runs)", [&](auto& stop) {
          v.enumerated("metric", stop.metric, kMetricNames, hyper("the validation figure"));
          v.value("patience", stop.patience,
                  hyper("epochs without improvement before stopping", at_least(0)));
          v.value("min_delta", stop.min_delta,
                  hyper("the least change that counts as an improvement", at_least(0, ">= 0")));
        });
  });
  v.object("output", "what the run writes", [&] {
    v.value("checkpoint", c.output.checkpoint, fixed("the checkpoint file (\"\": none)"));
    v.value(
        "checkpoint_every", c.output.checkpoint_every,
        fixed("save every this many epochs and after the last (0: the last only)", at_least(0)));
    v.value("init_checkpoint", c.output.init_checkpoint,
            fixed("where the weights before the first step go (\"\": nowhere)"));
    v.value("log", c.output.log, fixed("the metrics, one JSON line per epoch"));
    v.value("keep_best", c.output.keep_best,
            fixed("also keep the best epoch's checkpoint (needs a validation split)"));
  });
  v.object("dist", "the ranks of a data-parallel job", [&] {
    v.value("timeout_s", c.dist.timeout_s,
            fixed("seconds a collective may wait for the other ranks before the job is aborted "
                  "(0: forever)",
                  at_least(0, "seconds >= 0")));
  });
}

// The key of `known` a user probably meant by `unknown`: the name PyTorch or Keras gives it
// (learning_rate is lr here), a key it abbreviates, or one a typo or two away. "" if none.
std::string nearest_key(const std::string& unknown, const std::set<std::string>& known);

// The config key (a path of config_fields(): "optimizer.lr", "model.layers[i].units") a user
// probably meant by the unknown path `path`: at its first part the table does not know, the
// nearest sibling (nearest_key), with the rest of the path where that names a key. "" if none.
std::string nearest_config_key(const std::string& path);

}  // namespace mlpx::detail
