// libFuzzer target: Config::from_json. What it accepts must validate and round-trip:
// from_json(to_json(c)) gives the same JSON again.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "mlpx/config.h"
#include "mlpx/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  mlpx::Config config;
  try {
    config = mlpx::Config::from_json(text);
  } catch (const mlpx::Error&) {
    return 0;
  }
  const std::string once = config.to_json();
  mlpx::Config again;
  try {
    again = mlpx::Config::from_json(once);
  } catch (const mlpx::Error& e) {
    std::fprintf(stderr, "to_json() output rejected by from_json: %s\n%s\n", e.what(),
                 once.c_str());
    std::abort();
  }
  mlpx::fuzz::require(again.to_json() == once, "from_json(to_json(c)).to_json() == to_json(c)");
  return 0;
}
