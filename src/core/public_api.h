// Forced first into every source of the library (-include, src/CMakeLists.txt): the public
// headers are read here with default visibility, while the rest of the library compiles with
// -fvisibility=hidden. A declaration keeps the visibility of its first appearance, and
// #pragma once keeps later includes from reading these again, so libmlpx.so (MLPX_SHARED)
// exports the public API of include/mlpx and nothing else, without a macro on each declaration.
#pragma once

// Internal types that a public header names only through a pointer (include/mlpx/training.h:
// the trainer's captured step, the data-parallel ranks) are declared here first, outside the
// push: hidden, as the rest of the library.
namespace mlpx::cuda {
class StepGraph;
}  // namespace mlpx::cuda
namespace mlpx::dist {
class Communicator;
class DeviceCommunicator;
struct GradientBucket;
struct Shard;
}  // namespace mlpx::dist

#pragma GCC visibility push(default)
#include "mlpx/mlpx.h"
#pragma GCC visibility pop
