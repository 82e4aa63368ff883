#include "cpu/onednn.h"

#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>

namespace mlpx::cpu {

namespace {

// A matmul's shape: operand type, transposes, m, n, k.
using MatmulKey = std::tuple<int, bool, bool, int64_t, int64_t, int64_t>;

struct OneDnn {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::mutex mutex;  // guards matmuls
  std::map<MatmulKey, dnnl::matmul> matmuls;
};

OneDnn& onednn() {
  static OneDnn instance;  // one engine and stream per process (oneDNN's own threads run it)
  return instance;
}

bool probe_bf16_matmul() {
  try {
    const uint16_t one = 0x3f80;  // 1.0
    float product = 0.0f;
    onednn_bf16_matmul(false, false, 1, 1, 1, &one, &one, &product);
    return product == 1.0f;
  } catch (const dnnl::error&) {
    return false;  // oneDNN has no bf16 matmul for this CPU
  }
}

const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41:
      return "SSE4.1";
    case dnnl::cpu_isa::avx:
      return "AVX";
    case dnnl::cpu_isa::avx2:
      return "AVX2";
    case dnnl::cpu_isa::avx2_vnni:
      return "AVX2 VNNI";
    case dnnl::cpu_isa::avx512_core:
      return "AVX-512";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "AVX-512 VNNI";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "AVX-512 BF16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "AVX-512 with AMX";
    default:
      return "another instruction set";
  }
}

}  // namespace

bool onednn_bf16_available() {
  static const bool available = probe_bf16_matmul();
  return available;
}

std::string onednn_cpu_isa() {
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch) + ", " + isa_name(dnnl::get_effective_cpu_isa());
}

namespace {

// product [M, N] float32 = op(a) op(b), a and b of `input_type`.
void matmul(dnnl::memory::data_type input_type, bool transpose_a, bool transpose_b, int64_t m,
            int64_t n, int64_t k, const void* a, const void* b, float* product) {
  using dnnl::memory;
  OneDnn& dnn = onednn();
  // The transposes are memory orders: a stored [K, M] is the [M, K] matrix in "ba" order.
  const memory::desc a_md({m, k}, input_type,
                          transpose_a ? memory::format_tag::ba : memory::format_tag::ab);
  const memory::desc b_md({k, n}, input_type,
                          transpose_b ? memory::format_tag::ba : memory::format_tag::ab);
  const memory::desc c_md({m, n}, memory::data_type::f32, memory::format_tag::ab);
  // One primitive per shape, kept for the process (a training step makes the same few shapes
  // every step): ONEDNN_VERBOSE=2 shows one `create` per shape and one `exec` per call. Created
  // per call, each call paid a primitive-descriptor creation and a lookup in oneDNN's cache.
  const MatmulKey key{static_cast<int>(input_type), transpose_a, transpose_b, m, n, k};
  dnnl::matmul primitive;
  {
    const std::lock_guard<std::mutex> lock(dnn.mutex);
    auto found = dnn.matmuls.find(key);
    if (found == dnn.matmuls.end()) {
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), dnn.engine);
      found = dnn.matmuls.emplace(key, dnnl::matmul(pd)).first;
    }
    primitive = found->second;
  }
  // oneDNN's memory objects take non-const handles; a matmul only reads its SRC and WEIGHTS.
  memory a_mem(a_md, dnn.engine, const_cast<void*>(a));
  memory b_mem(b_md, dnn.engine, const_cast<void*>(b));
  memory c_mem(c_md, dnn.engine, product);
  primitive.execute(dnn.stream,
                    {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}});
  dnn.stream.wait();
}

}  // namespace

int64_t onednn_matmul_primitives() {
  OneDnn& dnn = onednn();
  const std::lock_guard<std::mutex> lock(dnn.mutex);
  return static_cast<int64_t>(dnn.matmuls.size());
}

void onednn_bf16_matmul(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                        const uint16_t* a, const uint16_t* b, float* product) {
  matmul(dnnl::memory::data_type::bf16, transpose_a, transpose_b, m, n, k, a, b, product);
}

void onednn_f32_matmul(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                       const float* a, const float* b, float* product) {
  matmul(dnnl::memory::data_type::f32, transpose_a, transpose_b, m, n, k, a, b, product);
}

}  // namespace mlpx::cpu
