// The names of every closed set in mlpx, read both ways by the two functions below. The names
// themselves are written once, in each set's table in mlpx/enums.h; this file knows no set,
// only how to expand a table. The public parse_*/..._name functions and the config reader use
// these. Internal.
#pragma once

#include <cstddef>
#include <string>

#include "mlpx/enums.h"
#include "mlpx/error.h"

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

// One name table per closed set, expanded from its X-macro in mlpx/enums.h.
#define MLPX_NAME_TABLE(Enum, TABLE, table_name) \
  inline constexpr EnumName<Enum> table_name[] = {TABLE(MLPX_NAME_ENTRY_OF_##Enum)};
#define MLPX_NAME_ENTRY(Enum, enumerator, name, ...) {Enum::enumerator, name},
#define MLPX_NAME_ENTRY_OF_Activation(...) MLPX_NAME_ENTRY(Activation, __VA_ARGS__)
#define MLPX_NAME_ENTRY_OF_Loss(...) MLPX_NAME_ENTRY(Loss, __VA_ARGS__)
#define MLPX_NAME_ENTRY_OF_Init(...) MLPX_NAME_ENTRY(Init, __VA_ARGS__)
#define MLPX_NAME_ENTRY_OF_Norm(...) MLPX_NAME_ENTRY(Norm, __VA_ARGS__)
#define MLPX_NAME_ENTRY_OF_OptimizerType(...) MLPX_NAME_ENTRY(OptimizerType, __VA_ARGS__)
#define MLPX_NAME_ENTRY_OF_ScheduleType(...) MLPX_NAME_ENTRY(ScheduleType, __VA_ARGS__)
#define MLPX_NAME_ENTRY_OF_Precision(...) MLPX_NAME_ENTRY(Precision, __VA_ARGS__)
#define MLPX_NAME_ENTRY_OF_DataSource(...) MLPX_NAME_ENTRY(DataSource, __VA_ARGS__)
#define MLPX_NAME_ENTRY_OF_Normalize(...) MLPX_NAME_ENTRY(Normalize, __VA_ARGS__)
#define MLPX_NAME_ENTRY_OF_Task(...) MLPX_NAME_ENTRY(Task, __VA_ARGS__)
#define MLPX_NAME_ENTRY_OF_NonFinitePolicy(...) MLPX_NAME_ENTRY(NonFinitePolicy, __VA_ARGS__)
#define MLPX_NAME_ENTRY_OF_Collectives(...) MLPX_NAME_ENTRY(Collectives, __VA_ARGS__)
#define MLPX_NAME_ENTRY_OF_FusedMode(...) MLPX_NAME_ENTRY(FusedMode, __VA_ARGS__)
#define MLPX_NAME_ENTRY_OF_Metric(...) MLPX_NAME_ENTRY(Metric, __VA_ARGS__)
#define MLPX_NAME_ENTRY_OF_Anneal(...) MLPX_NAME_ENTRY(Anneal, __VA_ARGS__)
#define MLPX_NAME_ENTRY_OF_Decay(...) MLPX_NAME_ENTRY(Decay, __VA_ARGS__)

MLPX_NAME_TABLE(Activation, MLPX_ACTIVATIONS, kActivationNames)
MLPX_NAME_TABLE(Loss, MLPX_LOSSES, kLossNames)
MLPX_NAME_TABLE(Init, MLPX_INITS, kInitNames)
MLPX_NAME_TABLE(Norm, MLPX_NORMS, kNormNames)
MLPX_NAME_TABLE(OptimizerType, MLPX_OPTIMIZERS, kOptimizerNames)
MLPX_NAME_TABLE(ScheduleType, MLPX_SCHEDULES, kScheduleNames)
MLPX_NAME_TABLE(Precision, MLPX_PRECISIONS, kPrecisionNames)
MLPX_NAME_TABLE(DataSource, MLPX_DATA_SOURCES, kDataSourceNames)
MLPX_NAME_TABLE(Normalize, MLPX_NORMALIZES, kNormalizeNames)
MLPX_NAME_TABLE(Task, MLPX_TASKS, kTaskNames)
MLPX_NAME_TABLE(NonFinitePolicy, MLPX_NONFINITE_POLICIES, kNonFiniteNames)
MLPX_NAME_TABLE(Collectives, MLPX_COLLECTIVES, kCollectivesNames)
MLPX_NAME_TABLE(FusedMode, MLPX_FUSED_MODES, kFusedModeNames)
MLPX_NAME_TABLE(Metric, MLPX_METRICS, kMetricNames)
MLPX_NAME_TABLE(Anneal, MLPX_ANNEALS, kAnnealNames)
MLPX_NAME_TABLE(Decay, MLPX_DECAYS, kDecayNames)

}  // namespace mlpx::detail
