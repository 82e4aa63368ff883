// The layer keys norm, bias and residual in a whole model (Sequential): training against
// PyTorch in float64 (tests/reference/deep_layers_torch.py), the backward against central
// differences, batch norm's eval form in predict(), the flat layout's names and kinds, and the
// residual width check.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "mlpx/error.h"
#include "mlpx/loss.h"
#include "mlpx/model.h"
#include "mlpx/optimizer.h"
#include "test_util.h"

namespace mlpx {
namespace {

// clang-format off
const std::vector<double> kTorchLosses = {1.0212704208284826, 0.39175929462885, 0.46316973997420596, 0.5083681697424256};
const std::vector<double> kTorchParams = {0.35267750832352635, 0.32029969059224717, -0.3514180124985251, -0.6117404606775808, 0.6177966379176386, 0.11395589842773812, -0.5155211472705121, -0.3809519155868436, 0.3203008310945873, -0.4250406364354883, -0.6957528842212525, -0.12799028708401697, 0.05672214453448069, -0.5272747209536798, -0.27858051808799017, 0.4548869369826372, -0.2778109562351107, -0.4544507635743774, 0.1796053292170446, 0.7169536951334984, 0.01281685364605675, -0.33955974560808905, -0.04409194273210012, 0.13475949524205635, 0.051894786304141176, 1.1055161827407198, 1.1135845089285883, 1.1161856023023184, 1.1113479956518422, 1.1232881482090764, 0.09646860296184612, 0.1092905789327389, 0.11072478443515604, 0.11814105783079042, 0.1763806480929125, -0.5657700722205261, -0.3633262035053245, 0.018405039268990002, 0.5326393837132016, 0.27870173814004084, -0.49090275732135885, -0.033588535216615784, 0.6538107715478098, 0.3117087358647517, -0.4028125403966515, -0.5911900629801656, 0.12892765961415256, 0.7028844618688365, 0.1958047833111602, -0.42712698272043864, -0.21246644439718923, 0.44231727564846623, 0.5028138055765612, -0.22605884786274777, -0.7161980270579743, 0.2769116543597393, 0.3916609571637691, 0.19399257323836522, -0.4489642321201045, -0.4893910322151075, 0.882421891905241, 0.8939119668799448, 1.0993881432832764, 0.8963803556134067, 0.867517175451305, -0.18313991507520208, 0.11489854170718003, -0.09031878798996582, 0.06522372645076037, 0.1721249624376502, 0.28078610611902066, 0.39929826393706047, -0.27364685062501853, -0.7396318615858735, -0.17200164217595254, 0.6516222558000976, 0.17805638772138818, -0.2704531895456731, -0.3221820796570023, 0.276239185840505, 0.5882982082046414, -0.2925528109850726, -0.7911651755537511, -0.12642274040702445, 0.6385164638119402, 0.10855628479936132, -0.6010072814087258, -0.596663472594674, 0.12245811310487449, 0.4711039142598358, -0.10569041044011969, -0.46036941006899784, 0.04169017425765276, 0.674319921994047, 0.4932703921500311, -0.24830670426437917, 0.13093544313180552, 0.2554325691186271, 0.06661385389172249, 0.17534449641640815, 0.846740188814364, 0.8741349817840257, 1.0596871923403495, 0.8694693195000375, 0.9907668125529191, -0.1350691179601849, -0.140233423592728, -0.06643026418106324, -0.11693032990397013, -0.07869901997559992, -0.17890935528763766, -0.4179483974342672, 0.055568070214832885, 0.45190996357812724, 0.14803343939918298, -0.408292863963606, -0.26470234736464615, 0.23379081200935303, 0.40691156598044087, -0.2811404640295929, -0.06808898584295787, 0.08227149656433072};
const std::vector<double> kTorchExpAvg = {0.012805206148946922, 0.011207123730653724, 0.005694070562268939, -0.0018080852729550293, -0.009720858187704816, -0.013730540520939392, -0.012943750020078693, -0.007635335243178246, -0.0032494939347235243, 0.02660565602883533, 0.047166684891991904, 0.051251033728331084, -0.010381356314182888, -0.011123093087078314, -0.007979213431259883, -0.0020479649604905246, 0.01054650228766427, -0.012959146151471415, -0.0319377920029223, -0.039759648251707295, -0.007869675168889543, 0.01973200757016713, -0.007641774211623852, -0.01212750498876963, 0.007906946799115891, -0.009886303058699586, 0.002701315390280733, -0.010904837467954625, -0.011020702287871944, -0.015135222092601985, 0.0003383559526566091, 0.004529699239345157, -0.002648724727951509, -0.01953685176859966, -0.01850628396514304, 0.00024111010863733643, -0.0008459460131174507, 0.006709677435030514, -0.001318585083732858, -0.007390310097411562, 0.00489536915433266, -0.009763655860486845, -0.00910842494880465, 0.0026140237815710323, 0.011057691534912071, 0.015675335394600618, 0.006225594190530585, -0.0014494843467666367, -0.0062933573619844375, -0.013512680738618684, 0.007415307118906554, -0.003025261215197689, -0.005268107782563519, -0.004974752233359727, 0.015158182185119388, 0.002280690250263277, 0.0041499709038263525, -0.012666584040526811, -0.0019619612774494128, 0.009847541554362006, 0.008880796267514967, 0.0025649530922492673, -0.00012163596095117829, 0.0013915876017467415, 0.01186318275313709, 0.0009098137712798308, 0.0025279127922071343, 0.008161690816425265, -0.0013089252471165161, -0.006469033842413771, 0.011760396091165836, 0.009277964099907778, 0.03305679603662624, 0.02313685245110204, -0.005275407840264191, 0.013253375102527845, 0.01078584543996575, -0.05790028590336571, -0.019207345521573115, 0.015148402158227615, -0.012779010643099014, 0.005336847977391427, 0.04207695696248801, -0.0015018912241672308, -0.02859188252286797, -0.0004330512176782121, 0.00021889908729487596, 0.04130224372205382, 0.03313477799234963, 0.021800108477813114, -0.01180170933291644, -0.025619556604559814, -0.05853571081780234, -0.03556239369771131, -0.003081220272908568, 0.019583930277924416, 0.011850950029806226, -0.023200916646172243, 0.02938678748780746, -0.03762075114936583, 0.01683888386538083, 0.009747453836216266, -0.023266626211148524, 0.03869031638744925, -0.005793350823774196, 0.013432496461546624, 0.010040169987173771, -0.007880528915291053, 0.024431805997231347, 0.0008288349874132031, -0.02288170293447285, -0.03194003023359174, -0.017559449049535082, 0.052079985535325134, 0.06960531097855852, -0.030345861498736516, -0.008877720181046315, 0.007666277582510439, 0.02993987793223217, 0.06361315340712223, 0.020638965726715554, -0.003592871416468642};
const std::vector<double> kTorchExpAvgSq = {3.964120355060988e-05, 4.456633062346104e-05, 3.7700217631419574e-05, 2.7799111987009976e-05, 2.0926544588821866e-05, 2.265968314933253e-05, 1.2862958592409858e-05, 4.029981808553263e-06, 0.00042814236667376785, 0.001003696243728272, 0.0010388997639467735, 0.0004888584239643711, 3.13662755959842e-05, 4.449726776606455e-05, 3.3564748009750886e-05, 1.25107892203312e-05, 0.00082941743553467, 0.0015911726795089032, 0.0014094841225720887, 0.0005160563635863948, 6.156119738706525e-05, 3.410994089442009e-05, 0.00013253631489891038, 2.307886274579031e-05, 0.0003435924918437392, 0.0005782498407815992, 8.258712569722227e-05, 0.00016365920201970953, 0.00016657785562262906, 0.0001247962886026848, 0.00032711762051987206, 0.00015120968093268138, 0.00020446302069417247, 0.00024896829770249424, 2.133877149583695e-05, 4.860648755576101e-07, 1.060461407244162e-07, 3.72467198814086e-06, 7.869750392706244e-07, 1.015276018631344e-05, 4.509219696554667e-05, 9.557374993758614e-05, 2.294014666353321e-05, 3.44471969936583e-05, 0.000224261986257062, 4.299986117539983e-05, 6.932362333652296e-06, 4.025577217210457e-07, 9.340368220808794e-06, 2.9840252215495266e-05, 0.000559414391455068, 0.00010914596025601045, 0.00027079281331564216, 0.0003690363791033118, 1.7447487225358255e-05, 1.174423360530237e-06, 7.833878699088651e-07, 9.929337818936178e-06, 1.1636658187422038e-06, 8.301990284638672e-06, 0.0001683065228481646, 0.00017262703374963447, 1.6642820243441968e-06, 6.425439881409168e-05, 3.781023145525808e-05, 4.304372531605109e-08, 5.4510657317892585e-05, 1.0606071909107591e-05, 4.389909422637683e-05, 1.945803901587395e-06, 4.467873396055178e-05, 1.1379817994715748e-05, 7.133750101316258e-05, 6.70665709058158e-05, 2.4039042998849995e-06, 1.9291625781398497e-05, 4.338097897962619e-05, 0.00012456159108085782, 3.1809087598773545e-05, 5.4567283523897313e-05, 2.7992356395579795e-05, 2.7995603906494706e-05, 6.683305136534925e-05, 1.5225841156554272e-05, 8.10597580846279e-05, 3.3611164360681946e-05, 1.760677530245802e-05, 0.00023447322566169779, 0.000253817294624837, 0.0001921033548156766, 7.567422242794827e-05, 0.00013689129190388685, 0.0005735759928070974, 0.00030605389863743197, 1.1578203557927589e-05, 0.0001029498657097586, 6.372918925984235e-05, 0.00013730757456557394, 0.0004227562245779677, 0.0004238254815874161, 2.3840976601599745e-05, 7.778190021772308e-06, 2.5338373858856993e-05, 0.00025662496303350684, 6.304663983485089e-06, 3.6058773177032705e-05, 7.469392356123673e-06, 1.8064952519985706e-05, 0.00024223357804158078, 5.74194527616399e-06, 6.857852223863265e-05, 9.608379288554842e-05, 5.086558103065961e-05, 0.00037164211993447445, 0.0004351693987849987, 4.5686621331910255e-05, 5.6384448623545655e-05, 8.639778352407322e-06, 0.00014430822912936476, 0.00025720919490003144, 7.091804712755613e-05, 5.698250630527031e-05};
const std::vector<double> kTorchRunningMean = {-0.09405165399562437, -0.14971213770800493, -0.17476546727061976, -0.1426788790925112, 0.01009612205432538};
const std::vector<double> kTorchRunningVar = {1.01665255098843, 0.8027303385534342, 0.772811377014309, 0.8228902356159777, 0.9641276973216876};
const std::vector<double> kTorchEval = {-0.37544699457405445, -0.19959511981344977, 0.49811331296333794, 0.4822516267751774, 0.25710903798244156, -0.027864041481025698, -0.09845613717280322, -0.29093747155287375, -0.29811771571124906, -0.5086392241014533, 0.28589450154081913, -0.023931073376346368, 0.2908969422617295, -0.08202639262895356, -0.2986988815417399, -0.2542713187763025};
// clang-format on

// The model of deep_layers_torch.py.
std::vector<LayerSpec> reference_layers() {
  LayerSpec first(5, Activation::kGelu);
  first.norm = Norm::kLayer;
  LayerSpec second(5, Activation::kTanh);
  second.bias = false;
  second.norm = Norm::kBatch;
  second.norm_momentum = 0.2;
  second.residual = true;
  LayerSpec third(5, Activation::kGeluTanh);
  third.norm = Norm::kLayer;
  third.norm_eps = 1e-3;
  third.residual = true;
  return {first, second, third, {2, Activation::kIdentity}};
}

// formulas.py's weights and biases (layer l: weight 0.6 sin(1 + 3 l + 0.7 i + 1.3 j), bias
// 0.2 cos(2 + l + 0.9 i)); norms as init() leaves them (weight 1, bias 0).
void set_reference_weights(Sequential& model) {
  model.init(Init::kZeros, 0.0, 0);
  for (size_t l = 0; l < model.num_layers(); ++l) {
    Tensor w = model.weight(l), b = model.bias(l);
    double* wp = w.data<double>();
    for (int64_t i = 0; i < w.rows(); ++i) {
      for (int64_t j = 0; j < w.cols(); ++j) {
        wp[i * w.cols() + j] =
            0.6 * std::sin(1.0 + 3.0 * static_cast<double>(l) + 0.7 * i + 1.3 * j);
      }
      if (b.defined()) b.data<double>()[i] = 0.2 * std::cos(2.0 + static_cast<double>(l) + 0.9 * i);
    }
  }
}

Tensor reference_x(int64_t rows) {
  std::vector<double> x;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < 4; ++c) x.push_back(2.0 * std::cos(0.5 + 1.7 * r + 0.6 * c));
  }
  return Tensor::from_vector(x, {rows, 4});
}
Tensor reference_targets(int64_t rows) {
  std::vector<double> t;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < 2; ++k) t.push_back(std::sin(0.3 + 0.8 * r + 1.1 * k));
  }
  return Tensor::from_vector(t, {rows, 2});
}

void expect_near(const std::vector<double>& actual, const std::vector<double>& torch,
                 const char* what) {
  ASSERT_EQ(actual.size(), torch.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_NEAR(actual[i], torch[i], 1e-11 * std::abs(torch[i]) + 1e-12) << what << "[" << i << "]";
  }
}

TEST(DeepLayers, LayoutNamesAndKindsFollowPyTorch) {
  const std::vector<Parameter> layout = Sequential::parameter_layout(4, reference_layers());
  std::vector<std::string> names;
  for (const Parameter& p : layout) names.push_back(p.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"layers.0.weight", "layers.0.bias", "layers.0.norm.weight",
                                      "layers.0.norm.bias", "layers.1.weight",
                                      "layers.1.norm.weight", "layers.1.norm.bias",
                                      "layers.2.weight", "layers.2.bias", "layers.2.norm.weight",
                                      "layers.2.norm.bias", "layers.3.weight", "layers.3.bias"}));
  EXPECT_EQ(layout[0].kind, ParameterKind::kWeight);
  EXPECT_EQ(layout[1].kind, ParameterKind::kBias);
  EXPECT_EQ(layout[2].kind, ParameterKind::kNorm);
  EXPECT_EQ(layout[8].kind, ParameterKind::kBias);
  EXPECT_EQ(layout[8].layer, 2u);
  std::vector<std::string> buffers;
  for (const Parameter& b : Sequential::buffer_layout(reference_layers()))
    buffers.push_back(b.name);
  EXPECT_EQ(buffers,
            (std::vector<std::string>{"layers.1.norm.running_mean", "layers.1.norm.running_var",
                                      "layers.1.norm.num_batches_tracked"}));
  Sequential model(4, reference_layers(), DType::kFloat64);
  EXPECT_FALSE(model.bias(1).defined());
  EXPECT_EQ(model.layer_offset(1), 20 + 5 + 5 + 5);
  model.init(Init::kHeNormal, 0.0, 1);
  EXPECT_EQ(model.norm_weight(1).to_vector<double>(), std::vector<double>(5, 1.0));
  EXPECT_EQ(model.buffers().to_vector<double>(),
            (std::vector<double>{0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0}));
}

TEST(DeepLayers, AResidualLayerNeedsUnitsEqualToItsInputWidth) {
  std::vector<LayerSpec> layers = {{6, Activation::kRelu}, {3, Activation::kRelu}};
  layers[1].residual = true;
  try {
    Sequential(4, layers);
    FAIL() << "expected a ValueError";
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(),
                 "config: model.layers[1]: residual: expected units equal to the layer's input "
                 "width 6, found units 3");
  }
}

// The model of deep_layers_torch.py, 4 Adam steps: losses, parameters, Adam's state, the batch
// norm's running statistics and batch count, and the eval-mode outputs (predict) as PyTorch's.
TEST(DeepLayers, TrainAsPyTorch) {
  const int64_t rows = 8;
  Sequential model(4, reference_layers(), DType::kFloat64);
  set_reference_weights(model);
  OptimizerConfig adam;
  adam.lr = 0.05;
  Optimizer optimizer(adam, model.num_params(), DType::kFloat64, Device::cpu());
  const Tensor x = reference_x(rows), t = reference_targets(rows);
  Tensor row_loss({rows}, DType::kFloat64), grad({rows, 2}, DType::kFloat64);
  std::vector<double> losses;
  for (int step = 0; step < 4; ++step) {
    loss_forward_backward(Loss::kMse, model.forward(x), t, row_loss, &grad);
    double loss = 0;
    for (double v : row_loss.to_vector<double>()) loss += v / rows;
    losses.push_back(loss);
    model.backward(grad);
    optimizer.step(model.params(), model.grads(), adam.lr);
  }
  expect_near(losses, kTorchLosses, "loss");
  expect_near(model.params().to_vector<double>(), kTorchParams, "params");
  for (const auto& [name, buffer] : optimizer.state()) {
    expect_near(buffer.to_vector<double>(), name == "exp_avg" ? kTorchExpAvg : kTorchExpAvgSq,
                name.c_str());
  }
  std::vector<double> running_mean, running_var, count;
  for (const auto& [name, view] : model.named_buffers()) {
    const std::vector<double> v = view.to_vector<double>();
    if (name == "layers.1.norm.running_mean") running_mean = v;
    if (name == "layers.1.norm.running_var") running_var = v;
    if (name == "layers.1.norm.num_batches_tracked") count = v;
  }
  expect_near(running_mean, kTorchRunningMean, "running_mean");
  expect_near(running_var, kTorchRunningVar, "running_var");
  EXPECT_EQ(count, std::vector<double>{4.0});
  // Eval mode: the running statistics, and predict() changes none of them.
  const std::vector<double> before = model.buffers().to_vector<double>();
  expect_near(model.predict(x).to_vector<double>(), kTorchEval, "eval");
  EXPECT_EQ(model.buffers().to_vector<double>(), before);
}

// Every parameter's gradient (Linear weights and biases, norms' weights and biases) of a model
// with both norms, a Linear without a bias, residual layers and dropout, against central
// differences of the training forward (batch statistics), float64.
TEST(DeepLayers, GradientMatchesCentralDifferences) {
  const int64_t rows = 6;
  std::vector<LayerSpec> layers = reference_layers();
  layers[1].dropout = 0.3;
  layers[2].activation = Activation::kSigmoid;  // a backward that reads the activation's output
  Sequential model(4, layers, DType::kFloat64);
  model.init(Init::kXavierNormal, 0.0, 5);
  // Norm weights and biases away from 1 and 0, so that every term matters.
  Tensor params = model.params();
  std::vector<double> p = params.to_vector<double>();
  const std::vector<double> noise = test::random_values<double>(p.size(), 9, -0.3, 0.3);
  for (size_t k = 0; k < p.size(); ++k) p[k] += noise[k];
  params.copy_from(Tensor::from_vector(p, {model.num_params()}));
  const Tensor x = Tensor::from_vector(test::random_values<double>(rows * 4, 3, -2, 2), {rows, 4});
  const Tensor t = Tensor::from_vector(test::random_values<double>(rows * 2, 4, -1, 1), {rows, 2});
  DropoutStep step;
  step.seed = 11;
  auto loss_of = [&](const std::vector<double>& values) {
    Sequential copy(4, layers, DType::kFloat64);
    copy.params().copy_from(Tensor::from_vector(values, {model.num_params()}));
    Tensor row_loss({rows}, DType::kFloat64);
    loss_forward_backward(Loss::kMse, copy.forward(x, step), t, row_loss, nullptr);
    double loss = 0;
    for (double v : row_loss.to_vector<double>()) loss += v / rows;
    return loss;
  };
  Tensor row_loss({rows}, DType::kFloat64), grad({rows, 2}, DType::kFloat64);
  loss_forward_backward(Loss::kMse, model.forward(x, step), t, row_loss, &grad);
  model.backward(grad);
  EXPECT_TRUE(test::all_close(model.grads().to_vector<double>(), test::numeric_gradient(loss_of, p),
                              test::kGradAtol, test::kGradRtol));
}

}  // namespace
}  // namespace mlpx
