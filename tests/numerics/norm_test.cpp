// LayerNorm and BatchNorm on the CPU in float64 (mlpx/norm.h): forward, backward, running
// statistics and eval against PyTorch 1.13's numbers (printed by tests/reference/norm_torch.py),
// and every gradient against central differences. The GPU kernels are checked against these
// loops by tests/parity/norm_parity_test.cpp.
#include "mlpx/norm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "mlpx/error.h"
#include "test_util.h"

namespace mlpx {
namespace {

constexpr int64_t kRows = 5, kCols = 6;

// clang-format off
const std::vector<double> kLayerY = {-0.2745016673835802, 0.5312931820126149, 1.2633972168093126, 1.140119114907034, -0.3181622283348868, -2.769965329901982, -0.9761114679998504, -1.2229562434396017, -0.900471144518501, 0.16032691393927379, 1.5764949320903725, 2.4799827780307893, 1.412520176921933, 1.0385414087953986, -0.10333952811563578, -1.3679099198030849, -1.630555989726055, 0.016236535718725804, -0.22379642275343742, 0.5681919208058452, 1.260653143931752, 1.0931187923771681, -0.37653240318826, -2.776138953303215, -1.0000233241697791, -1.2312429872388353, -0.8830411713303968, 0.194437846463972, 1.596055599573754, 2.445046574665687};
const std::vector<double> kLayerDx = {0.46593749513305505, 0.23155925553186613, -0.0792199610159458, -0.2702630599075294, -0.2478662484933545, -0.10014748124809081, 0.16884300194661905, 0.020313045504224858, -0.09311967714827973, -0.1417876737257857, -0.08156943004681738, 0.12732073347003886, -0.1346613705511105, 0.03102099256393459, -0.01658765780091659, -0.11980284890061293, -0.054294496533861536, 0.29432538122256663, 0.7769112344555451, 0.3285622563456936, -0.14386446432957667, -0.4243786587838769, -0.4004097316404588, -0.1368206360473262, -0.05980493301861223, 0.036912689314527625, 0.051806938327547736, -0.02360875384169797, -0.07516805677130511, 0.06986211598954001};
const std::vector<double> kLayerDweight = {1.4148117218704443, 2.9973327407902586, 1.6757945547116129, -1.2577744578034205, -1.4153105713516547, 3.0263596551558867};
const std::vector<double> kLayerDbias = {-0.026231273363670593, -0.14045636185959365, -0.2325064791731799, -0.28784893577912796, -0.29774637464961207, -0.260636207811926};
const std::vector<double> kBatchY = {0.2385335198260362, 0.9978502826751785, 1.3184687136456665, 0.8959662774406547, -0.3344407479141548, -1.3044475735296026, -1.4832222012677112, -1.4385460965834949, -0.9510382250229387, 0.20315498240830443, 1.4633210334789761, 1.890151837558494, 1.0714121971026436, -0.006179413195104277, -1.298128112668199, -2.475672370260819, -2.1496571331272443, -0.6952943547845185, 0.7257624878037103, 1.3176924535836159, 1.568800382116279, 1.0987794001360915, -0.1927386851585308, -1.1878873315405272, -1.052486003464679, -1.1208172264801954, -0.6381027580708075, 0.5277717102757686, 1.7135155327209535, 2.0474774222961543};
const std::vector<double> kBatchDx = {1.1871402100564399, 0.3297990996336437, 0.4845511140053912, 0.6070769609271138, -0.05876984604602741, -0.07946669439097284, 0.10343516433354254, -0.10044715887146499, -0.7080911948550922, -0.6730851227291054, -0.17052981881571838, -0.2917589732013774, -0.8615311945432617, 0.4613400287154516, 0.8632017292094433, 0.13083751413697206, 0.33291296793456415, 0.5883862404587642, 0.19733490409908894, -0.5093809167236556, -0.2716336101822226, -0.08778520442449539, -0.5889079672397015, -0.4023273575950447, -0.6263790839458099, -0.18131105275397455, -0.3680280381775195, 0.022955852089514665, 0.48529466416688316, 0.18516678472863085};
const std::vector<double> kBatchDweight = {2.901265350045389, 3.21465662710272, 0.8257697613534554, -2.2256467057591385, -1.8198402628193178, 1.1454058537839322};
const std::vector<double> kBatchDbias = {-0.026231273363670593, -0.14045636185959365, -0.2325064791731799, -0.28784893577912796, -0.29774637464961207, -0.260636207811926};
const std::vector<double> kBatchRunningMean = {0.01297475012537906, 0.03848508339472092, 0.09096070740274803, 0.139967108297505, 0.1470606871361238, 0.0911099520000305};
const std::vector<double> kBatchRunningVar = {0.9157960138176648, 1.115044735004723, 1.2835975560880133, 1.3769910547972273, 1.7675680833903389, 2.593193921084398};
const std::vector<double> kBatchEvalY = {0.19508828602133566, 1.2241907158454166, 2.0035653184341347, 1.7650819788859822, 0.07650442729184817, -1.9292341810020184, -1.0300363854780412, -1.3657838481818, -0.7821211891296623, 0.8682721451936682, 2.7362991122399194, 3.3831452310278216, 0.7877276502449325, 0.15687203323300594, -1.2081536459823623, -2.599336899092251, -2.6091144035184315, -0.9162580291874538, 0.5417787148816136, 1.5641941299894455, 2.310832742645498, 2.0276134995746284, 0.28615311226473633, -1.7354032337931873, -0.7235436952716134, -1.0280269467062524, -0.39801127821741356, 1.2884723870488044, 3.106462726893786, 3.644765888204752};
// clang-format on

// The inputs norm_torch.py builds.
std::vector<double> input_x() {
  std::vector<double> x;
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t c = 0; c < kCols; ++c) {
      x.push_back(std::sin(0.7 * static_cast<double>(r * kCols + c) + 0.3) *
                      (1 + 0.5 * static_cast<double>(c)) +
                  0.1 * static_cast<double>(r));
    }
  }
  return x;
}
std::vector<double> input_dy() {
  std::vector<double> dy;
  for (int64_t i = 0; i < kRows * kCols; ++i) dy.push_back(std::cos(0.4 * static_cast<double>(i)));
  return dy;
}
std::vector<double> input_weight() {
  std::vector<double> w;
  for (int64_t c = 0; c < kCols; ++c) w.push_back(1.0 + 0.1 * static_cast<double>(c));
  return w;
}
std::vector<double> input_bias() {
  std::vector<double> b;
  for (int64_t c = 0; c < kCols; ++c) b.push_back(0.05 * static_cast<double>(c) - 0.1);
  return b;
}

Tensor matrix(const std::vector<double>& v) { return Tensor::from_vector(v, {kRows, kCols}); }
Tensor vec(const std::vector<double>& v) {
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
}

void expect_near(const Tensor& actual, const std::vector<double>& torch, const char* what) {
  const std::vector<double> a = actual.to_vector<double>();
  ASSERT_EQ(a.size(), torch.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_NEAR(a[i], torch[i], 1e-12 * std::abs(torch[i]) + 1e-13) << what << "[" << i << "]";
  }
}

// The layer norm's training forward: y from x, weight and bias.
Tensor layer_norm(const std::vector<double>& x, const std::vector<double>& w,
                  const std::vector<double>& b, Tensor* mean = nullptr, Tensor* rstd = nullptr) {
  Tensor y({kRows, kCols}, DType::kFloat64), m({kRows}, DType::kFloat64),
      s({kRows}, DType::kFloat64);
  layer_norm_forward(matrix(x), vec(w), vec(b), 1e-5, y, m, s);
  if (mean != nullptr) *mean = m;
  if (rstd != nullptr) *rstd = s;
  return y;
}

// The batch norm's training forward with the batch's statistics (eps 1e-3, as norm_torch.py).
Tensor batch_norm(const std::vector<double>& x, const std::vector<double>& w,
                  const std::vector<double>& b, Tensor* mean = nullptr, Tensor* var = nullptr) {
  Tensor y({kRows, kCols}, DType::kFloat64), m({kCols}, DType::kFloat64),
      v({kCols}, DType::kFloat64);
  const Tensor xt = matrix(x);
  batch_norm_mean(xt, kRows, m);
  batch_norm_variance(xt, m, kRows, v);
  batch_norm_apply(xt, m, v, vec(w), vec(b), 1e-3, y);
  if (mean != nullptr) *mean = m;
  if (var != nullptr) *var = v;
  return y;
}

TEST(NormTest, LayerNormMatchesPyTorchInFloat64) {
  Tensor mean, rstd;
  const Tensor y = layer_norm(input_x(), input_weight(), input_bias(), &mean, &rstd);
  expect_near(y, kLayerY, "y");
  Tensor dx({kRows, kCols}, DType::kFloat64), dw({kCols}, DType::kFloat64),
      db({kCols}, DType::kFloat64);
  layer_norm_backward(matrix(input_x()), vec(input_weight()), mean, rstd, matrix(input_dy()), dx,
                      dw, db);
  expect_near(dx, kLayerDx, "dx");
  expect_near(dw, kLayerDweight, "dweight");
  expect_near(db, kLayerDbias, "dbias");
}

TEST(NormTest, BatchNormMatchesPyTorchInTrainingAndEvalInFloat64) {
  Tensor mean, var;
  const Tensor y = batch_norm(input_x(), input_weight(), input_bias(), &mean, &var);
  expect_near(y, kBatchY, "y");
  const Tensor x = matrix(input_x()), dy = matrix(input_dy()), w = vec(input_weight());
  Tensor dx({kRows, kCols}, DType::kFloat64), dw({kCols}, DType::kFloat64),
      db({kCols}, DType::kFloat64);
  batch_norm_param_grads(x, mean, var, 1e-3, dy, dw, db);
  expect_near(dw, kBatchDweight, "dweight");
  expect_near(db, kBatchDbias, "dbias");
  batch_norm_input_grad(x, mean, var, w, dw, db, 1e-3, kRows, dy, dx);
  expect_near(dx, kBatchDx, "dx");
  // torch starts the running statistics at 0 and 1; one batch at momentum 0.2.
  Tensor running_mean = Tensor::zeros({kCols}, DType::kFloat64);
  Tensor running_var = vec(std::vector<double>(kCols, 1.0));
  Tensor batches = Tensor::zeros({1}, DType::kFloat64);
  batch_norm_update_running(mean, var, kRows, 0.2, running_mean, running_var, batches);
  EXPECT_EQ(batches.to_vector<double>(), std::vector<double>{1.0});
  expect_near(running_mean, kBatchRunningMean, "running_mean");
  expect_near(running_var, kBatchRunningVar, "running_var");
  Tensor eval_y({kRows, kCols}, DType::kFloat64);
  batch_norm_apply(x, running_mean, running_var, w, vec(input_bias()), 1e-3, eval_y);
  expect_near(eval_y, kBatchEvalY, "eval y");
  // A training batch of one row has no unbiased variance (torch refuses it too).
  EXPECT_THROW(batch_norm_update_running(mean, var, 1, 0.2, running_mean, running_var, batches),
               ValueError);
}

// d/dx, d/dweight, d/dbias of sum(dy * y) by central differences, float64, for both norms.
TEST(NormTest, GradientsMatchCentralDifferences) {
  const std::vector<double> x = input_x(), w = input_weight(), b = input_bias(), g = input_dy();
  using Forward = std::function<Tensor(const std::vector<double>&, const std::vector<double>&,
                                       const std::vector<double>&)>;
  auto dot = [&](const Tensor& y) {
    const std::vector<double> yv = y.to_vector<double>();
    double s = 0;
    for (size_t i = 0; i < yv.size(); ++i) s += g[i] * yv[i];
    return s;
  };
  auto check = [&](const Forward& forward, const Tensor& dx, const Tensor& dw, const Tensor& db) {
    EXPECT_TRUE(
        test::all_close(dx.to_vector<double>(),
                        test::numeric_gradient(
                            [&](const std::vector<double>& v) { return dot(forward(v, w, b)); }, x),
                        test::kGradAtol, test::kGradRtol));
    EXPECT_TRUE(
        test::all_close(dw.to_vector<double>(),
                        test::numeric_gradient(
                            [&](const std::vector<double>& v) { return dot(forward(x, v, b)); }, w),
                        test::kGradAtol, test::kGradRtol));
    EXPECT_TRUE(
        test::all_close(db.to_vector<double>(),
                        test::numeric_gradient(
                            [&](const std::vector<double>& v) { return dot(forward(x, w, v)); }, b),
                        test::kGradAtol, test::kGradRtol));
  };
  Tensor dx({kRows, kCols}, DType::kFloat64), dw({kCols}, DType::kFloat64),
      db({kCols}, DType::kFloat64);
  Tensor mean, stat;
  layer_norm(x, w, b, &mean, &stat);
  layer_norm_backward(matrix(x), vec(w), mean, stat, matrix(g), dx, dw, db);
  {
    SCOPED_TRACE("layer");
    check([](const auto& xv, const auto& wv, const auto& bv) { return layer_norm(xv, wv, bv); }, dx,
          dw, db);
  }
  batch_norm(x, w, b, &mean, &stat);
  batch_norm_param_grads(matrix(x), mean, stat, 1e-3, matrix(g), dw, db);
  batch_norm_input_grad(matrix(x), mean, stat, vec(w), dw, db, 1e-3, kRows, matrix(g), dx);
  {
    SCOPED_TRACE("batch");
    check([](const auto& xv, const auto& wv, const auto& bv) { return batch_norm(xv, wv, bv); }, dx,
          dw, db);
  }
}

}  // namespace
}  // namespace mlpx
