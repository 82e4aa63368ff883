// The steps of the bf16 weight-copy tests, on the CPU (numerics/bf16_test.cpp) and on a GPU
// (parity/bf16_parity_test.cpp): the same loop on either device.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>

#include "mlpx/activation.h"
#include "mlpx/gemm.h"
#include "mlpx/linear.h"
#include "mlpx/model.h"
#include "mlpx/optimizer.h"
#include "test_util.h"

namespace mlpx::test {

// `steps` Adam steps (lr 0.05) of two copies of a model [inputs] -> tanh [hidden] -> identity
// [outputs] in bf16, on the device both are on, with the same x [batch, inputs] and upstream
// gradients: `model` the library's way (its optimizer writes the bf16 copy of the weights,
// which its GEMMs read), `rounding_each_gemm` by hand, every GEMM rounding its own weight
// (linear_forward / linear_backward without a copy), each bias gradient the row sums of its dz
// rounded to bf16 (the model's rule, docs/precision.md). Both must end with the same parameters.
inline void step_with_copy_and_rounding_each_gemm(Sequential& model, Sequential& rounding_each_gemm,
                                                  int64_t batch, int64_t steps) {
  const Device device = model.device();
  const int64_t inputs = model.inputs(), hidden = model.layer(0).units, outputs = model.outputs();
  OptimizerConfig config;
  config.lr = 0.05;
  Optimizer optimizer(config, model.num_params(), DType::kFloat32, device);
  Optimizer reference_optimizer(config, model.num_params(), DType::kFloat32, device);
  const Tensor x =
      Tensor::from_vector(random_values<float>(batch * inputs, 31, -2, 2), {batch, inputs})
          .to(device);
  Tensor z1({batch, hidden}, DType::kFloat32, device), a1({batch, hidden}, DType::kFloat32, device),
      z2({batch, outputs}, DType::kFloat32, device), da1({batch, hidden}, DType::kFloat32, device),
      dz1({batch, hidden}, DType::kFloat32, device),
      rounded({batch, hidden}, DType::kFloat32, device);
  for (int64_t step = 0; step < steps; ++step) {
    const Tensor dy =
        Tensor::from_vector(random_values<float>(batch * outputs, 40 + static_cast<uint64_t>(step)),
                            {batch, outputs})
            .to(device);
    model.forward(x);
    model.backward(dy);
    uint16_t* copy = model.bf16_params_for_step();
    ASSERT_NE(copy, nullptr);
    optimizer.step(model.params(), model.grads(), config.lr, nullptr, copy);
    model.bf16_params_written();

    Sequential& r = rounding_each_gemm;  // its params and grads as storage; the ops by hand
    linear_forward(x, r.weight(0), r.bias(0), z1, Precision::kBf16);
    activation_forward(Activation::kTanh, z1, a1, r.layer(0).alpha);
    linear_forward(a1, r.weight(1), r.bias(1), z2, Precision::kBf16);
    Tensor dw2 = r.weight_grad(1), db2 = r.bias_grad(1), dw1 = r.weight_grad(0),
           db1 = r.bias_grad(0);
    linear_backward(a1, r.weight(1), dy, dw2, db2, &da1, Precision::kBf16);
    Tensor dy_rounded = rounded.flat_view(0, {batch, outputs});
    round_to_bf16(dy, dy_rounded);
    sum_rows(dy_rounded, db2);
    activation_backward(Activation::kTanh, z1, a1, da1, dz1, r.layer(0).alpha);
    linear_backward(x, r.weight(0), dz1, dw1, db1, nullptr, Precision::kBf16);
    round_to_bf16(dz1, rounded);
    sum_rows(rounded, db1);
    reference_optimizer.step(r.params(), r.grads(), config.lr);
  }
}

}  // namespace mlpx::test
