// Reads several tensors of one device back to the host at once: on a GPU with one wait for the
// device (kernels' copy_to_host_and_check), so that an epoch's figures cost one host wait, not
// one per tensor. Internal.
#pragma once

#include <vector>

#include "mlpx/tensor.h"

namespace mlpx {

struct HostRead {
  Tensor from;  // contiguous, on the device every read shares (or the CPU)
  void* to;     // from.numel() elements of from's dtype
};

// Copies every `from` to its `to`, after the work queued so far; then throws what device code
// flagged, as synchronize() does.
void read_to_host(const std::vector<HostRead>& reads);

}  // namespace mlpx
