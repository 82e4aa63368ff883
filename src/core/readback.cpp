#include "core/readback.h"

#include <cstring>

#include "core/backend.h"
#include "mlpx/error.h"

namespace mlpx {

void read_to_host(const std::vector<HostRead>& reads) {
  if (reads.empty()) return;
  const Device device = reads.front().from.device();
  std::vector<void*> dst;
  std::vector<const void*> src;
  std::vector<size_t> bytes;
  for (const HostRead& r : reads) {
    MLPX_CHECK(r.from.device() == device, ShapeError, "read_to_host: expected every tensor on ",
               device.str(), ", found one on ", r.from.device().str());
    dst.push_back(r.to);
    src.push_back(r.from.raw_data());
    bytes.push_back(r.from.nbytes());
  }
  if (device.is_cpu()) {
    for (size_t i = 0; i < reads.size(); ++i) std::memcpy(dst[i], src[i], bytes[i]);
    return;
  }
  cuda::copy_to_host_and_check(dst.data(), src.data(), bytes.data(), reads.size(), device.index);
}

}  // namespace mlpx
