// The training configuration: every field has a default, and a JSON file overrides any of
// them. Unknown keys, wrong types and out-of-domain values are ValueErrors that name the key
// path ("optimizer.lr"). Config::to_json() prints every key with its default.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mlpx/activation.h"
#include "mlpx/enums.h"
#include "mlpx/gemm.h"
#include "mlpx/init.h"
#include "mlpx/loss.h"
#include "mlpx/model.h"
#include "mlpx/optimizer.h"
#include "mlpx/schedule.h"

namespace mlpx {

// DataSource, Normalize, Task, NonFinitePolicy, Collectives and Metric, with their names and
// what each member means: mlpx/enums.h.

// "val_loss", "val_accuracy", "val_r2".
std::string metric_name(Metric metric);
// True when a higher value of `metric` is better.
inline bool higher_is_better(Metric metric) { return metric != Metric::kValLoss; }

struct FilePair {
  std::string x;  // features: .npy, .csv or IDX (*-ubyte[.gz])
  std::string y;  // class indices [N], or float targets [N] / [N, K] (data.task)
};

struct SyntheticConfig {
  int64_t train_samples = 6000;
  int64_t test_samples = 1000;
  int64_t features = 32;
  int64_t classes = 10;
};

struct DataConfig {
  DataSource source = DataSource::kFashionMnist;
  std::string dir = "/usr/share/datasets/fashion-mnist";  // where fashion-mnist's files are
  FilePair train;                                         // source "files"
  FilePair test;                                          // source "files"; optional
  double validation_split = 0.1;  // fraction of train held out, chosen from the seed
  Normalize normalize = Normalize::kAuto;
  Task task = Task::kAuto;
  SyntheticConfig synthetic;
};

struct ModelConfig {
  std::vector<LayerSpec> layers = {
      {256, Activation::kRelu}, {128, Activation::kRelu}, {10, Activation::kIdentity}};
  Init init = Init::kTorchDefault;
  double init_std = 0.01;  // the std of "normal", the bound of "uniform"
  // Overrides the default alpha (leaky_relu slope 0.01, elu scale 1.0) of every layer without
  // its own "alpha". Checkpoints written before per-layer alphas hold 0.01 here.
  std::optional<double> activation_alpha;

  // `layers` with every alpha decided: the layer's own, else activation_alpha, else the
  // activation's default. What a Sequential is built from.
  std::vector<LayerSpec> resolved_layers() const;
};

// train.early_stopping, as Keras's EarlyStopping: training ends once `patience` epochs in a row
// (at least one) brought no improvement of `metric` larger than `min_delta` over its best value.
// Needs a validation split.
struct EarlyStopping {
  Metric metric = Metric::kValLoss;
  int patience = 0;  // Keras's default; 0 and 1 both stop at the first epoch without improvement
  double min_delta = 0.0;

  // True when `value` improves on `best` by more than min_delta (any value improves on NaN,
  // the best of no epoch).
  bool improves(double value, double best) const;
};

struct TrainConfig {
  int epochs = 15;
  int64_t batch_size = 128;  // 1: SGD; 0 or the training-set size: full-batch GD
  bool shuffle = true;
  // torch.nn.utils.clip_grad_norm_(every parameter, clip_grad_norm) before each optimizer step:
  // the gradients' global L2 norm is scaled to at most this (scale min(1, max / (norm + 1e-6)));
  // 0: off. The log then holds grad_norm, the epoch's mean norm before clipping.
  double clip_grad_norm = 0.0;
  // The optimizer steps once per this many batches, each batch's gradient scaled by 1 / k (a
  // PyTorch loop's loss / k); the last group of an epoch steps even when shorter, still at 1 / k.
  // Schedules count optimizer steps.
  int accumulate_steps = 1;
  // Record, per Linear layer, the L2 norm of its weight's gradient at every optimizer step (the
  // whole step's gradient, before clipping); the log then holds layer_grad_norm, each layer's
  // mean over the epoch's steps (the init study's per-layer view, during real training).
  bool layer_grad_norms = false;
  // On a CUDA device, replay each full-size training step from a CUDA graph (ignored on the
  // CPU; false: plain launches, the same kernels and the same bits).
  bool cuda_graph = true;
  NonFinitePolicy on_nonfinite = NonFinitePolicy::kStop;
  // Data parallel (several ranks): each rank keeps and updates only its 1/N of the optimizer
  // state and parameters (ZeRO stage 1: gradients reduce-scattered, parameters all-gathered).
  // The same training and the same checkpoints as without; ignored by a single process.
  bool shard_optimizer = false;
  Collectives collectives = Collectives::kAuto;
  // With NCCL on several ranks: gradients are all-reduced in buckets of whole layers of at least
  // this many MB (10^6 bytes; PyTorch DDP's bucket_cap_mb), each started on a second stream as
  // soon as its layers' backward is enqueued, so that it overlaps the backward of the layers
  // below. 0: one all-reduce after the whole backward pass.
  double bucket_mb = 25.0;
  // Data parallel: batch norms take their statistics over the whole batch (all-reduced over the
  // ranks), as torch's SyncBatchNorm; false: each rank over its own rows, as DDP without it.
  bool sync_batchnorm = false;
  std::optional<EarlyStopping> early_stopping;  // unset: every epoch runs
  // The fused narrow-MLP kernels for layers 1..L-1 on a CUDA device (mlpx/model.h,
  // fused_mlp_unfit_reason).
  FusedMode fused = FusedMode::kAuto;
  // On a CUDA device in fp32 or tf32, run each layer's bias, ReLU or gelu_tanh, their backward
  // and the bias gradients in the GEMMs' cuBLASLt epilogues where the activation table allows
  // (mlpx/model.h, Sequential::set_gemm_epilogues); false: the plain kernels after each GEMM.
  bool gemm_epilogues = true;
};

struct OutputConfig {
  std::string checkpoint = "model.safetensors";  // "": none
  // Save the checkpoint every this many epochs, and after the last; 0: after the last only.
  int checkpoint_every = 1;
  std::string init_checkpoint;  // when set, the weights before the first step go here
  std::string log = "metrics.jsonl";
  // Also keep the best epoch's checkpoint (by train.early_stopping's metric, else val_loss) in
  // best_checkpoint_path(checkpoint). Needs a checkpoint and a validation split.
  bool keep_best = false;
};

// The ranks of a data-parallel job (ignored by a single process).
struct DistConfig {
  // The collective watchdog: a collective (a gradient all-reduce, the per-step stop agreement,
  // ...) that has not completed this many seconds after this rank entered it is an error that
  // names the collective, the step and the ranks that did not arrive, and the job is aborted
  // (docs/cluster.md). As PyTorch's NCCL timeout; 0: wait forever.
  double timeout_s = 600.0;
};

// Where output.keep_best puts the best epoch's checkpoint: "dir/model.safetensors" ->
// "dir/model.best.safetensors"; a name without the .safetensors ending gets ".best" appended.
std::string best_checkpoint_path(const std::string& checkpoint);

// What a Trainer needs: the part of the configuration that one training step reads.
struct TrainerOptions {
  uint64_t seed = 0;  // of the weights, the shuffles and the validation split
  Loss loss = Loss::kCrossEntropy;
  // cross_entropy's label smoothing, as nn.CrossEntropyLoss(label_smoothing=...): in [0, 1]. The
  // config's "loss" is then an object {"type": "cross_entropy", "label_smoothing": 0.1}. It
  // shapes the training loss and gradient; val_loss and test_loss stay the plain loss.
  double label_smoothing = 0.0;
  OptimizerConfig optimizer;
  TrainConfig train;
};

// The whole job. It is a TrainerOptions (passing a Config where TrainerOptions are expected
// copies that part), plus the data, the model, the device, the schedule and the outputs.
struct Config : TrainerOptions {
  std::string device = "auto";  // "auto", "cpu", "cuda" or "cuda:N"
  Precision precision = Precision::kFp32;
  DataConfig data;
  ModelConfig model;
  ScheduleConfig schedule;
  OutputConfig output;
  DistConfig dist;

  // Parses a JSON document over the defaults. ValueError on unknown keys, wrong types and
  // bad values, naming the key path ("optimizer.lr").
  static Config from_json(const std::string& text);
  // Reads and parses a JSON file; IoError when it cannot be read. Every path the file sets
  // (data.dir, data.train / data.test x and y, output.*) is relative to the file's folder and
  // comes back absolute; keys it leaves out keep their defaults.
  static Config load(const std::string& path);
  // This config with every relative path made absolute against the working directory (what a
  // checkpoint stores, so that it can be evaluated or resumed from anywhere).
  Config with_absolute_paths() const;
  // The whole configuration as JSON (round-trips through from_json).
  std::string to_json() const;
  // Checks cross-field rules (loss vs last activation, sizes, ranges); ValueError.
  void validate() const;
};

// One key of the config file, as the one table of keys declares it (`mlpx config --keys`).
struct ConfigField {
  std::string path;          // "optimizer.lr"; a layer's keys "model.layers[i].units"
  std::string type;          // "integer", "number", "boolean", "string", "array of integers",
                             // "object", "object or null", "array of objects"
  std::string default_json;  // the default as JSON ("null": unset; "": an object, or required)
  std::string range;         // the values it takes beyond its type ("" if any): ">= 1",
                             // "a fraction in [0, 1)", the names of an enum
  std::string help;          // what it is for, one line
  bool sweepable = false;    // a hyperparameter `mlpx sweep` may search (an object: all inside)
};

// Every key of the config file in the file's order, objects before the keys inside them.
std::vector<ConfigField> config_fields();

}  // namespace mlpx
