// Forced first into every source of the library (-include, src/CMakeLists.txt): the public
// headers are read here with default visibility, while the rest of the library compiles with
// -fvisibility=hidden. A declaration keeps the visibility of its first appearance, and
// #pragma once keeps later includes from reading these again, so libmlpx.so (MLPX_SHARED)
// exports the public API of include/mlpx and nothing else, without a macro on each declaration.
#pragma once

#pragma GCC visibility push(default)
#include "mlpx/mlpx.h"
#pragma GCC visibility pop
