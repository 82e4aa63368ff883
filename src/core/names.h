// The names of every closed set in mlpx (activations, losses, inits, optimizers, schedules,
// precisions, and the config's data source, normalisation and non-finite policy): one table
// per enum, written once here and read both ways by the two functions below. The public
// parse_*/..._name functions and the config reader use these tables. Internal.
#pragma once

#include <cstddef>
#include <string>

#include "mlpx/activation.h"
#include "mlpx/config.h"
#include "mlpx/error.h"
#include "mlpx/gemm.h"
#include "mlpx/init.h"
#include "mlpx/loss.h"
#include "mlpx/optimizer.h"
#include "mlpx/schedule.h"

namespace mlpx::detail {

template <typename Enum>
struct EnumName {
  Enum value;
  const char* name;
};

// "a, b or c": the names of a table, for messages.
template <typename Enum, size_t N>
std::string enum_names(const EnumName<Enum> (&table)[N]) {
  std::string names;
  for (size_t i = 0; i < N; ++i) {
    names += (i == 0 ? "" : i + 1 == N ? " or " : ", ") + std::string(table[i].name);
  }
  return names;
}

// The value named `text`; ValueError "<what>: expected a, b or c, found 'text'" otherwise
// (without the "<what>: " when `what` is empty).
template <typename Enum, size_t N>
Enum parse_enum(const EnumName<Enum> (&table)[N], const std::string& text,
                const std::string& what) {
  for (const EnumName<Enum>& entry : table) {
    if (text == entry.name) return entry.value;
  }
  throw ValueError((what.empty() ? "" : what + ": ") + "expected " + enum_names(table) +
                   ", found '" + text + "'");
}

// The name of `value` ("?" for a value outside the table, which a cast could make).
template <typename Enum, size_t N>
const char* enum_name(const EnumName<Enum> (&table)[N], Enum value) {
  for (const EnumName<Enum>& entry : table) {
    if (value == entry.value) return entry.name;
  }
  return "?";
}

inline constexpr EnumName<Activation> kActivationNames[] = {
    {Activation::kIdentity, "identity"},
    {Activation::kSigmoid, "sigmoid"},
    {Activation::kTanh, "tanh"},
    {Activation::kRelu, "relu"},
    {Activation::kLeakyRelu, "leaky_relu"},
    {Activation::kElu, "elu"},
    {Activation::kSoftmax, "softmax"},
};
inline constexpr EnumName<Loss> kLossNames[] = {
    {Loss::kMse, "mse"},      {Loss::kSse, "sse"}, {Loss::kCrossEntropy, "cross_entropy"},
    {Loss::kKlDiv, "kl_div"}, {Loss::kBce, "bce"},
};
inline constexpr EnumName<Init> kInitNames[] = {
    {Init::kZeros, "zeros"},
    {Init::kNormal, "normal"},
    {Init::kUniform, "uniform"},
    {Init::kXavierNormal, "xavier_normal"},
    {Init::kXavierUniform, "xavier_uniform"},
    {Init::kHeNormal, "he_normal"},
    {Init::kHeUniform, "he_uniform"},
};
inline constexpr EnumName<OptimizerType> kOptimizerNames[] = {
    {OptimizerType::kSgd, "sgd"},         {OptimizerType::kAdagrad, "adagrad"},
    {OptimizerType::kRmsprop, "rmsprop"}, {OptimizerType::kAdam, "adam"},
    {OptimizerType::kAdamW, "adamw"},
};
inline constexpr EnumName<ScheduleType> kScheduleNames[] = {
    {ScheduleType::kNone, "none"},           {ScheduleType::kStep, "step"},
    {ScheduleType::kMultiStep, "multistep"}, {ScheduleType::kExponential, "exponential"},
    {ScheduleType::kCosine, "cosine"},
};
inline constexpr EnumName<Precision> kPrecisionNames[] = {
    {Precision::kFp32, "fp32"},
    {Precision::kTf32, "tf32"},
    {Precision::kBf16, "bf16"},
};
inline constexpr EnumName<DataSource> kDataSourceNames[] = {
    {DataSource::kFashionMnist, "fashion-mnist"},
    {DataSource::kSynthetic, "synthetic"},
    {DataSource::kFiles, "files"},
};
inline constexpr EnumName<Normalize> kNormalizeNames[] = {
    {Normalize::kAuto, "auto"},
    {Normalize::kNone, "none"},
    {Normalize::kScale01, "scale01"},
    {Normalize::kStandardize, "standardize"},
};
inline constexpr EnumName<Task> kTaskNames[] = {
    {Task::kAuto, "auto"},
    {Task::kClassification, "classification"},
    {Task::kRegression, "regression"},
};
inline constexpr EnumName<NonFinitePolicy> kNonFiniteNames[] = {
    {NonFinitePolicy::kStop, "stop"},
    {NonFinitePolicy::kSkip, "skip"},
};
inline constexpr EnumName<Collectives> kCollectivesNames[] = {
    {Collectives::kAuto, "auto"},
    {Collectives::kNccl, "nccl"},
    {Collectives::kHost, "host"},
};
inline constexpr EnumName<Metric> kMetricNames[] = {
    {Metric::kValLoss, "val_loss"},
    {Metric::kValAccuracy, "val_accuracy"},
    {Metric::kValR2, "val_r2"},
};

}  // namespace mlpx::detail
