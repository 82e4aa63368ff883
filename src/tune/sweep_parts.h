// What the parts of the sweep share (mlpx/sweep.h is the whole): src/tune/sweep_space.cpp (the
// search space and its draws), sweep_trials.cpp (trial records: trials.jsonl, scores, ranking),
// sweep_halving.cpp (successive halving's rungs) and sweep_runner.cpp (trials run side by side,
// the folder lock, resuming). Internal.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "mlpx/config.h"
#include "mlpx/sweep.h"

namespace mlpx::detail {

// The point as a JSON object: key -> value, in the space's order of keys.
nlohmann::json params_json(const std::vector<SearchParam>& space, const SearchPoint& point);

// Sets r.score and r.best_epoch from r.epochs: the best epoch's value of `metric` (NaN when no
// epoch has a finite one).
void score(TrialRecord& r, Metric metric);
// Best first: a higher rung, then a better score, then the earlier trial; NaN scores last.
bool ranks_before(const TrialRecord& a, const TrialRecord& b, Metric metric);

}  // namespace mlpx::detail
