// The shared-memory racecheck (sim/README.md, "Racecheck"): the executor's half of it.
//
// Kernel code is compiled with the compiler's ThreadSanitizer instrumentation
// (-fsanitize=thread, mlpx_sim_instrument() in sim/CMakeLists.txt), which calls
// __tsan_read4(address), __tsan_write8(address), ... before every memory access. The simulator,
// not the TSan runtime, defines those functions (racecheck.cpp): while a block runs, an access
// to static storage (where `__shared__` variables live: `static` in the simulator) is checked
// against the last accesses to the same bytes. Two threads of the block touching a byte, at
// least one of them writing, with no __syncthreads between them (or, for two lanes of one
// warp, no warp rendezvous both took part in) is a hazard, as in compute-sanitizer's racecheck.
// Accesses to device memory, the stacks and the heap are not tracked.
#pragma once

#include <cstdint>

namespace mlpx_sim::racecheck {

// One hazard: `thread` (linear index in the block) accessed `size` bytes at `address`, which
// `other` had accessed since their last common synchronisation.
struct Race {
  uintptr_t address = 0;
  unsigned size = 0;
  unsigned thread = 0, other = 0;
  bool write = false, other_write = false;
  const void* pc = nullptr;  // the accessing instruction (in the kernel's object file)
};

// On unless MLPX_SIM_RACECHECK=0 (read at the first launch or query); set_enabled overrides.
void set_enabled(bool on);
bool enabled();
// Tracks [begin, end) like static storage from now on (the dynamic shared memory arena).
void track_region(uintptr_t begin, uintptr_t end);
// A launch begins on this OS thread; false when the racecheck is off.
bool launch_started();
void launch_ended();
void block_started(unsigned threads);  // a new block: nothing it does is ordered yet
void set_thread(unsigned thread);      // the thread whose code runs now
void barrier_opened();                 // the whole block met at a __syncthreads
// The lanes `mask` of the warp whose first thread is `base` met at a warp rendezvous.
void warp_synced(unsigned base, unsigned mask);
// The first hazard found since the launch began, if any (then cleared).
bool take_race(Race& race);

}  // namespace mlpx_sim::racecheck
