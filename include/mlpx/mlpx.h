// The whole public API of mlpx.
#pragma once

#include "mlpx/device.h"
#include "mlpx/error.h"
#include "mlpx/gemm.h"
#include "mlpx/init.h"
#include "mlpx/tensor.h"
