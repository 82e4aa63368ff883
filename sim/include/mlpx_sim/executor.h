// The executor's controls beyond launch.h: the scheduling seed and the racecheck. See
// sim/README.md.
#pragma once

#include <cstdint>

namespace mlpx_sim {

// The seed that shuffles the order of the blocks of a launch and the order in which a block's
// threads start and resume after each rendezvous. Initially MLPX_SIM_SEED from the environment
// (read at the first launch), or kDefaultScheduleSeed when it is unset. 0 turns the shuffling
// off: blocks and threads then run in index order.
//
// Each launch derives its own order from the seed and the number of launches executed since
// the seed was set, so a program's run is reproducible for a given seed.
inline constexpr uint64_t kDefaultScheduleSeed = 0x5EED;
void set_schedule_seed(uint64_t seed);  // also restarts the launch count
uint64_t schedule_seed();

// The shared-memory racecheck (sim/README.md, "Racecheck"): on unless MLPX_SIM_RACECHECK=0 is in
// the environment (read at the first launch). Setting it here overrides the environment.
void set_racecheck(bool on);
bool racecheck_on();

}  // namespace mlpx_sim
