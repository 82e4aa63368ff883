// The floor of the public API: every closed set of mlpx, each declared once. Nothing here
// includes anything else of mlpx; core, math, the backends and every public header above
// take their enums from this file.
//
// The four families (activations, losses, optimizers, schedules) are tables: an X-macro
// MLPX_<FAMILY>(X) calls X once per member with everything the code needs to know about it
// (its name, its flags, and for an activation its formula). The enum, the names the config
// and the command line read, the one `visit` that turns a runtime value into a compile-time
// member (src/math/<family>.h), the CPU loops and the CUDA kernels all expand these tables.
// Adding a member is a new line in its table (docs/architecture.md, "Adding a member").
#pragma once

namespace mlpx {

// ---- Activations ----------------------------------------------------------------------
//
// X(enumerator, "name", flags, default alpha, y = f(x), dx = f'(...) dy)
//   flags: kTakesAlpha (a layer may set alpha; the default is PyTorch's), kReadsInput and
//     kReadsOutput (what the backward pass reads: x, or the forward output y), kRowwise (taken
//     over each row, not elementwise: softmax, whose formulas are math::softmax_*, not the
//     columns below); the GEMM epilogue (cuBLASLt) that may compute the member after a
//     Linear layer's GEMM on a CUDA device: kEpilogueBias (identity: the bias alone),
//     kEpilogueBiasRelu (bias then ReLU) or kEpilogueBiasGeluTanh (bias then the tanh-form GELU,
//     the one cuBLASLt's GELU epilogue computes; the exact-erf gelu has no epilogue); a member
//     with none runs the plain path (GEMM, bias kernel, activation kernel).
//   The two formula columns are expressions in T (float or double) of x, y, dy and alpha,
//   expanded only by src/math/activation.h (the helpers they call, such as sigmoid and
//   exp_of, are its own); f' reads only what the flags say, and at the kink 0 takes the left
//   derivative, as PyTorch does. NaN goes through every formula as NaN.
// clang-format off
#define MLPX_ACTIVATIONS(X)                                                                     \
  X(kIdentity, "identity", kEpilogueBias, 0.0, x, dy)                                          \
  X(kSigmoid, "sigmoid", kReadsOutput, 0.0, sigmoid(x), dy * y * (T(1) - y))                   \
  X(kTanh, "tanh", kReadsOutput, 0.0, tanh_of(x), dy * (T(1) - y * y))                         \
  X(kRelu, "relu", kReadsInput | kEpilogueBiasRelu, 0.0, x < T(0) ? T(0) : x,                 \
    x > T(0) ? dy : T(0))                                                                      \
  X(kLeakyRelu, "leaky_relu", kTakesAlpha | kReadsInput, 0.01,                                 \
    x < T(0) ? alpha * x : x,                                                                  \
    x > T(0) ? dy : alpha * dy)                                                                \
  X(kElu, "elu", kTakesAlpha | kReadsInput, 1.0,                                               \
    x > T(0) ? x : alpha * expm1_of(x),                                                        \
    x > T(0) ? dy : dy * alpha * exp_of(x))                                                    \
  X(kSoftmax, "softmax", kReadsOutput | kRowwise, 0.0, x, dy)                                 \
  X(kSilu, "silu", kReadsInput, 0.0, x * sigmoid(x),                                           \
    dy * (sigmoid(x) * (T(1) + x * (T(1) - sigmoid(x)))))                                      \
  X(kGelu, "gelu", kReadsInput, 0.0, gelu_erf(x), dy * gelu_erf_slope(x))                      \
  X(kGeluTanh, "gelu_tanh", kReadsInput | kEpilogueBiasGeluTanh, 0.0, gelu_tanh(x),            \
    dy * gelu_tanh_slope(x))
// clang-format on

// The flags of the table's third column.
struct ActivationFlags {
  static constexpr unsigned kTakesAlpha = 1u;
  static constexpr unsigned kReadsInput = 2u;
  static constexpr unsigned kReadsOutput = 4u;
  static constexpr unsigned kRowwise = 8u;
  static constexpr unsigned kEpilogueBias = 16u;
  static constexpr unsigned kEpilogueBiasRelu = 32u;
  static constexpr unsigned kEpilogueBiasGeluTanh = 64u;
};

#define MLPX_ENUMERATOR(enumerator, ...) enumerator,

enum class Activation { MLPX_ACTIVATIONS(MLPX_ENUMERATOR) };

// ---- Losses ---------------------------------------------------------------------------
//
// X(enumerator, "name", flags)
//   flags: kClassLabels (the target is int32 class indices [B], not float rows [B, K]),
//     kRowwise (a row's loss reduces over the row through a log-sum-exp: computed by its own
//     fused kernel, math::cross_entropy_* / kl_div_*), kRegression (may fit float targets of
//     one column: mse and sse), kPredictsSoftmax / kPredictsSigmoid (what `predict` applies
//     to the model's outputs: class probabilities by a softmax over each row, or each
//     output's probability by a sigmoid; neither: the raw outputs).
//   math::LossMember<kind> (src/math/loss.h) holds each member's formulas: the element term
//   and the scales of an elementwise loss; a rowwise one names its fused pass.
// clang-format off
#define MLPX_LOSSES(X)                                                          \
  X(kMse, "mse", kRegression)                                                   \
  X(kSse, "sse", kRegression)                                                   \
  X(kCrossEntropy, "cross_entropy", kClassLabels | kRowwise | kPredictsSoftmax) \
  X(kKlDiv, "kl_div", kRowwise)                                                 \
  X(kBce, "bce", kPredictsSigmoid)
// clang-format on

struct LossFlags {
  static constexpr unsigned kClassLabels = 1u;
  static constexpr unsigned kRowwise = 2u;
  static constexpr unsigned kRegression = 4u;
  static constexpr unsigned kPredictsSoftmax = 8u;
  static constexpr unsigned kPredictsSigmoid = 16u;
};

enum class Loss { MLPX_LOSSES(MLPX_ENUMERATOR) };

// ---- Optimizers -----------------------------------------------------------------------
//
// X(enumerator, "name", rule)
//   rule: the update's formula, a struct math::<rule> in src/math/optimizers.h: its
//     hyperparameters (from OptimizerConfig), its state buffers (named as torch.optim names
//     them) and the update of one parameter. gd (full batch), sgd (batch 1) and mini-batch gd
//     are all sgd fed batches of different sizes.
// clang-format off
#define MLPX_OPTIMIZERS(X)              \
  X(kSgd, "sgd", SgdRule)               \
  X(kAdagrad, "adagrad", AdagradRule)   \
  X(kRmsprop, "rmsprop", RmspropRule)   \
  X(kAdam, "adam", AdamRule)            \
  X(kAdamW, "adamw", AdamWRule)
// clang-format on

enum class OptimizerType { MLPX_OPTIMIZERS(MLPX_ENUMERATOR) };

// ---- Learning-rate schedules ----------------------------------------------------------
//
// X(enumerator, "name"): the learning-rate factor of each is in src/nn/schedule.cpp (host
// code, evaluated once per epoch). onecycle changes the rate every optimizer step: its formula
// (src/math/onecycle.h) runs where the optimizer runs, from the device's step counter; plateau
// reads each epoch's validation metric (mlpx::PlateauState).
// clang-format off
#define MLPX_SCHEDULES(X)               \
  X(kNone, "none")                      \
  X(kStep, "step")                      \
  X(kMultiStep, "multistep")            \
  X(kExponential, "exponential")        \
  X(kCosine, "cosine")                  \
  X(kOneCycle, "onecycle")              \
  X(kPlateau, "plateau")
// clang-format on

enum class ScheduleType { MLPX_SCHEDULES(MLPX_ENUMERATOR) };

// ---- Other closed sets ----------------------------------------------------------------
//
// X(enumerator, "name") each.

// A layer's norm, between its Linear and its activation: "none", "layer" (nn.LayerNorm over the
// layer's units) or "batch" (nn.BatchNorm1d: batch statistics in training, running statistics
// outside it). Formulas in src/math/norm.h.
#define MLPX_NORMS(X) X(kNone, "none") X(kLayer, "layer") X(kBatch, "batch")
enum class Norm { MLPX_NORMS(MLPX_ENUMERATOR) };

// schedule.anneal (onecycle): how the rate moves between its points, as OneCycleLR's
// anneal_strategy.
#define MLPX_ANNEALS(X) X(kCos, "cos") X(kLinear, "linear")
enum class Anneal { MLPX_ANNEALS(MLPX_ENUMERATOR) };

// optimizer.decay: which parameters weight_decay applies to. "all" (every parameter); "weights"
// (Linear weights only: biases and norm parameters do not decay, PyTorch's usual two groups).
#define MLPX_DECAYS(X) X(kAll, "all") X(kWeights, "weights")
enum class Decay { MLPX_DECAYS(MLPX_ENUMERATOR) };

// What a parameter tensor of a model is (mlpx::Parameter::kind): a Linear layer's weight, a bias,
// or a norm's affine weight or bias. optimizer.decay "weights" decays kWeight only.
#define MLPX_PARAMETER_KINDS(X) X(kWeight, "weight") X(kBias, "bias") X(kNorm, "norm")
enum class ParameterKind { MLPX_PARAMETER_KINDS(MLPX_ENUMERATOR) };

// Weight initialisation schemes (formulas in src/math/init.h), a row each:
// X(enumerator, "name", draw, fan, k, bias): `draw` kNormalDraw N(0, s^2) or kUniformDraw
// U(-s, s), with s = sqrt(k / fan) for fan kFanIn (fan_in) or kFanSum (fan_in + fan_out), s the
// given param for kGiven, s = 0 for kNoFan; `bias` kBiasZero, or kBiasDrawn (the bias drawn as
// the weight, U(+-1/sqrt(fan_in)) for torch_default). xavier_* are torch.nn.init's Glorot
// (gain 1); lecun_* are std 1/sqrt(fan_in), what the lecture calls Xavier; torch_default is
// nn.Linear.reset_parameters. Before this table had lecun_*, xavier_* meant std 1/sqrt(fan_in).
// clang-format off
#define MLPX_INITS(X)                                                                                   \
  X(kZeros, "zeros", kNormalDraw, kNoFan, 0.0, kBiasZero)                                               \
  X(kNormal, "normal", kNormalDraw, kGiven, 0.0, kBiasZero)                  /* N(0, std^2) */          \
  X(kUniform, "uniform", kUniformDraw, kGiven, 0.0, kBiasZero)               /* U(-a, a) */             \
  X(kXavierNormal, "xavier_normal", kNormalDraw, kFanSum, 2.0, kBiasZero)    /* N(0, 2/(in+out)) */     \
  X(kXavierUniform, "xavier_uniform", kUniformDraw, kFanSum, 6.0, kBiasZero) /* U(+-sqrt(6/(in+out))) */\
  X(kHeNormal, "he_normal", kNormalDraw, kFanIn, 2.0, kBiasZero)             /* N(0, 2/in) */           \
  X(kHeUniform, "he_uniform", kUniformDraw, kFanIn, 6.0, kBiasZero)          /* U(+-sqrt(6/in)) */      \
  X(kLecunNormal, "lecun_normal", kNormalDraw, kFanIn, 1.0, kBiasZero)       /* N(0, 1/in) */           \
  X(kLecunUniform, "lecun_uniform", kUniformDraw, kFanIn, 3.0, kBiasZero)    /* U(+-sqrt(3/in)) */      \
  X(kTorchDefault, "torch_default", kUniformDraw, kFanIn, 1.0, kBiasDrawn)   /* U(+-1/sqrt(in)), bias too */
// clang-format on
enum class Init { MLPX_INITS(MLPX_ENUMERATOR) };

// The arithmetic of a float32 GEMM (mlpx/gemm.h says what each does).
#define MLPX_PRECISIONS(X) X(kFp32, "fp32") X(kTf32, "tf32") X(kBf16, "bf16")
enum class Precision { MLPX_PRECISIONS(MLPX_ENUMERATOR) };

// data.source: "fashion-mnist" (Debian's dataset-fashion-mnist), "synthetic" (built in),
// "files" (data.train / data.test).
#define MLPX_DATA_SOURCES(X) \
  X(kFashionMnist, "fashion-mnist") X(kSynthetic, "synthetic") X(kFiles, "files")
enum class DataSource { MLPX_DATA_SOURCES(MLPX_ENUMERATOR) };

// data.normalize: "auto" (uint8 features / 255, any other type standardized); "none";
// "scale01" (uint8 features / 255, others as they are); "standardize" (per feature, with
// statistics of the training split, saved in checkpoints for predict).
#define MLPX_NORMALIZES(X) \
  X(kAuto, "auto") X(kNone, "none") X(kScale01, "scale01") X(kStandardize, "standardize")
enum class Normalize { MLPX_NORMALIZES(MLPX_ENUMERATOR) };

// data.task: what y holds. "classification": class indices [N] (or target rows [N, K] whose
// argmax is the class, for mse, sse, kl_div and bce); accuracy is measured. "regression":
// float targets [N] or [N, K] for mse or sse; R^2 and MSE are measured instead of accuracy.
// "auto": regression when the loss is mse or sse and y is one column of floats ([N] or
// [N, 1]), else classification. Multi-output regression ([N, K] floats) says "regression".
#define MLPX_TASKS(X) \
  X(kAuto, "auto") X(kClassification, "classification") X(kRegression, "regression")
enum class Task { MLPX_TASKS(MLPX_ENUMERATOR) };

// train.on_nonfinite: "stop" (a NaN or Inf batch loss stops training after the epoch, naming
// the epoch and step) or "skip" (a step whose batch loss or any gradient is NaN or Inf changes
// nothing: parameters, optimizer state and step count stay; the epoch counts it).
#define MLPX_NONFINITE_POLICIES(X) X(kStop, "stop") X(kSkip, "skip")
enum class NonFinitePolicy { MLPX_NONFINITE_POLICIES(MLPX_ENUMERATOR) };

// train.collectives: how a model on a GPU sums gradients over the ranks. "nccl": NCCL on the
// device's stream, inside the step's CUDA graph, even for one rank; "host": MPI on host copies
// of the buffers, without a CUDA graph; "auto": nccl on several ranks when the build has NCCL,
// else host. A model on the CPU always reduces through MPI (nccl there is an error).
#define MLPX_COLLECTIVES(X) X(kAuto, "auto") X(kNccl, "nccl") X(kHost, "host")
enum class Collectives { MLPX_COLLECTIVES(MLPX_ENUMERATOR) };

// train.fused: the fused narrow-MLP GPU kernels (kernels/fused_mlp.cu) for the layers after the
// first. "auto": where the model's shapes and the device fit; "on": the same, an error naming
// why where they do not; "off": never.
#define MLPX_FUSED_MODES(X) X(kAuto, "auto") X(kOn, "on") X(kOff, "off")
enum class FusedMode { MLPX_FUSED_MODES(MLPX_ENUMERATOR) };

// A per-epoch validation figure (EpochMetrics' field of the same name), for early stopping,
// output.keep_best and the sweep. val_loss is better lower, val_accuracy and val_r2 higher.
#define MLPX_METRICS(X) X(kValLoss, "val_loss") X(kValAccuracy, "val_accuracy") X(kValR2, "val_r2")
enum class Metric { MLPX_METRICS(MLPX_ENUMERATOR) };

}  // namespace mlpx
