// libFuzzer target (structured): random tensors (rank 1 or 2, float32 / float64 / int32, any bit
// patterns, NaN payloads included) and metadata strings go through save_safetensors and
// load_safetensors; what comes back must be bitwise equal, in order, with equal metadata.
// save_safetensors may refuse an input with an mlpx::Error (say, a name that is not UTF-8);
// then the file must keep its previous contents.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_util.h"
#include "mlpx/error.h"
#include "mlpx/safetensors.h"

namespace {

std::string random_name(FuzzedDataProvider& in) {
  // Mostly plain ASCII names (so most saves succeed), sometimes arbitrary bytes.
  if (in.ConsumeIntegralInRange<int>(0, 7) == 0) return in.ConsumeRandomLengthString(24);
  std::string name = in.ConsumeRandomLengthString(16);
  for (char& c : name) c = static_cast<char>(0x20 + static_cast<unsigned char>(c) % 0x5f);
  return name;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static mlpx::fuzz::ScratchFile file("roundtrip", ".safetensors");
  FuzzedDataProvider in(data, size);

  std::vector<std::pair<std::string, mlpx::Tensor>> tensors;
  const int count = in.ConsumeIntegralInRange<int>(0, 6);
  for (int i = 0; i < count; ++i) {
    const mlpx::DType dtype =
        in.PickValueInArray({mlpx::DType::kFloat32, mlpx::DType::kFloat64, mlpx::DType::kInt32});
    mlpx::Shape shape;
    shape.push_back(in.ConsumeIntegralInRange<int64_t>(0, 9));
    if (in.ConsumeBool()) shape.push_back(in.ConsumeIntegralInRange<int64_t>(0, 9));
    mlpx::Tensor t(shape, dtype);
    auto* bytes = static_cast<unsigned char*>(t.raw_data());
    for (size_t b = 0; b < t.nbytes(); ++b) bytes[b] = in.ConsumeIntegral<unsigned char>();
    tensors.emplace_back(random_name(in), std::move(t));
  }
  std::map<std::string, std::string> metadata;
  const int keys = in.ConsumeIntegralInRange<int>(0, 4);
  for (int i = 0; i < keys; ++i) metadata[random_name(in)] = in.ConsumeRandomLengthString(64);

  // A known previous file: a failed save must leave it as it was.
  const std::vector<std::pair<std::string, mlpx::Tensor>> previous = {
      {"previous", mlpx::Tensor::from_vector<int32_t>({7}, {1})}};
  mlpx::save_safetensors(file.path(), previous, {{"generation", "previous"}});

  try {
    mlpx::save_safetensors(file.path(), tensors, metadata);
  } catch (const mlpx::Error&) {
    const mlpx::SafetensorsFile kept = mlpx::load_safetensors(file.path());
    mlpx::fuzz::require(kept.tensors.size() == 1 && kept.tensors[0].first == "previous" &&
                            kept.metadata.at("generation") == "previous",
                        "a refused save keeps the previous file");
    return 0;
  }
  const mlpx::SafetensorsFile back = mlpx::load_safetensors(file.path());
  mlpx::fuzz::require(back.metadata == metadata, "metadata round-trips");
  mlpx::fuzz::require(back.tensors.size() == tensors.size(), "every tensor comes back");
  // Tensors come back in file offset order, which is the save order; empty tensors share their
  // offset with a neighbour, so only the non-empty ones have a fixed place.
  std::vector<std::string> saved_order, loaded_order;
  for (const auto& [name, t] : tensors) {
    if (t.nbytes() > 0) saved_order.push_back(name);
    mlpx::fuzz::require(back.contains(name), "every name comes back");
    const mlpx::Tensor& u = back.get(name);
    mlpx::fuzz::require(u.dtype() == t.dtype(), "dtypes round-trip");
    mlpx::fuzz::require(u.shape() == t.shape(), "shapes round-trip");
    mlpx::fuzz::require(
        u.nbytes() == t.nbytes() &&
            (t.nbytes() == 0 || std::memcmp(u.raw_data(), t.raw_data(), t.nbytes()) == 0),
        "data round-trips bitwise (NaN payloads included)");
  }
  for (const auto& [name, u] : back.tensors) {
    if (u.nbytes() > 0) loaded_order.push_back(name);
  }
  mlpx::fuzz::require(saved_order == loaded_order, "non-empty tensors keep their order");
  return 0;
}
