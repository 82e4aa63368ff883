// The ONNX exporter (mlpx/onnx.h), built on the ONNX library's protobuf classes, checker and
// shape inference (Debian's libonnx-dev). The graph is the model's inference pass, part by part:
//
//   input -> input normalisation -> per layer: Linear -> activation -> [dropout: none at
//   inference] -> output head (Softmax / Sigmoid, or nothing) -> output
//
// Each part is one function that appends its nodes and returns the name of the value it
// produced; a part that ONNX cannot express throws a ValueError naming the layer and why.
#include "mlpx/onnx.h"

#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "mlpx/array_io.h"
#include "mlpx/error.h"

namespace mlpx {

namespace {

constexpr const char* kInputName = "input";
constexpr const char* kOutputName = "output";
constexpr const char* kBatchDim = "batch";
constexpr double kPi = 3.14159265358979323846;
constexpr int64_t kFashionMnistFeatures = int64_t{28} * 28;  // 28 x 28 pixels

// A graph under construction: initializers, nodes with unique names, values named after the
// model's parts ("layers.0.linear", ...) so that a reader of the graph finds the layer.
class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto& graph) : graph_(graph) {}

  // A float32 initializer `name` of `shape` holding `values` (row-major).
  const std::string& constant(const std::string& name, const std::vector<int64_t>& shape,
                              const float* values) {
    onnx::TensorProto* t = graph_.add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t count = 1;
    for (int64_t d : shape) {
      t->add_dims(d);
      count *= d;
    }
    // raw_data is little-endian float32, what the host holds (x86-64, aarch64).
    t->set_raw_data(values, static_cast<size_t>(count) * sizeof(float));
    return t->name();
  }
  const std::string& scalar(const std::string& name, float value) {
    return constant(name, {}, &value);
  }

  // Appends node `op` reading `inputs` and writing one value `output`; returns `output`.
  std::string node(const std::string& op, const std::vector<std::string>& inputs,
                   const std::string& output) {
    onnx::NodeProto* n = graph_.add_node();
    n->set_op_type(op);
    n->set_name(output);
    for (const std::string& in : inputs) n->add_input(in);
    n->add_output(output);
    last_ = n;
    return output;
  }
  // Attributes of the node node() appended last.
  void attribute(const std::string& name, float value) {
    onnx::AttributeProto* a = last_->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(value);
  }
  void attribute(const std::string& name, int64_t value) {
    onnx::AttributeProto* a = last_->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
  }

  int64_t nodes() const { return graph_.node_size(); }

 private:
  onnx::GraphProto& graph_;
  onnx::NodeProto* last_ = nullptr;
};

// A float32 [batch, columns] value of the graph's signature.
void declare(onnx::ValueInfoProto* value, const std::string& name, int64_t columns) {
  value->set_name(name);
  onnx::TypeProto_Tensor* type = value->mutable_type()->mutable_tensor_type();
  type->set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto* shape = type->mutable_shape();
  shape->add_dim()->set_dim_param(kBatchDim);
  shape->add_dim()->set_dim_value(columns);
}

// What one layer's parts see: where it sits and what the export targets.
struct LayerContext {
  size_t index;           // the layer's index in the model (layers.{index})
  const LayerSpec& spec;  // alpha resolved
  int64_t opset;
  std::string prefix;  // "layers.{index}."
};

std::string layer_label(const LayerContext& layer) {
  return "layer " + std::to_string(layer.index) + " (" + activation_name(layer.spec.activation) +
         ", " + std::to_string(layer.spec.units) + " units)";
}

// --- The input normalisation ----------------------------------------------------------------

// Whether the features the model was trained on were uint8 and so divided by 255 (what
// features_from() does for data.normalize auto and scale01). Under auto, float features are
// standardized (the checkpoint holds the statistics), so no statistics means uint8; under
// scale01, float features are used as they are, and only the training file tells. (A model
// fitted in Python on arrays keeps the default source, fashion-mnist: its 784 inputs are the
// only sign; with other widths it was not Fashion-MNIST.)
bool trained_on_scaled_uint8(const Checkpoint& checkpoint) {
  const DataConfig& data = checkpoint.config.data;
  if (data.normalize != Normalize::kAuto && data.normalize != Normalize::kScale01) return false;
  if (checkpoint.standardization.defined()) return false;
  switch (data.source) {
    case DataSource::kFashionMnist:
      return checkpoint.model.inputs() == kFashionMnistFeatures;
    case DataSource::kSynthetic:
      return false;
    case DataSource::kFiles:
      break;
  }
  if (data.normalize == Normalize::kAuto) return true;
  try {
    return load_array(data.train.x).type == ElementType::kUint8;
  } catch (const Error& e) {
    throw ValueError(
        "export: the input scaling of a model trained with data.normalize 'scale01' on files "
        "depends on the training features' element type (uint8: divided by 255), and their "
        "file cannot be read: " +
        std::string(e.what()));
  }
}

// The input scaling and the stored standardisation as Div / Sub+Mul nodes, the same
// arithmetic as `mlpx predict` (v / 255, then (v - shift) * scale per feature). Returns the
// normalised value and describes it in `what` for the metadata.
std::string emit_input_normalization(GraphBuilder& graph, const Checkpoint& checkpoint,
                                     OnnxInputScale scale, const std::string& x,
                                     std::string& what) {
  std::string v = x;
  what = "float32 features";
  const bool divide = scale == OnnxInputScale::kDivide255 ||
                      (scale == OnnxInputScale::kAuto && trained_on_scaled_uint8(checkpoint));
  if (divide) {
    graph.scalar("input.divisor", 255.0f);
    v = graph.node("Div", {v, "input.divisor"}, "input.scaled");
    what = "uint8 feature values 0 to 255 as float32, divided by 255 inside the model";
  }
  const Standardization& st = checkpoint.standardization;
  if (st.defined()) {
    const Tensor shift = st.shift.to(Device::cpu());
    const Tensor scale = st.scale.to(Device::cpu());
    const int64_t n = shift.numel();
    graph.constant("input.shift", {n}, shift.data<float>());
    graph.constant("input.scale", {n}, scale.data<float>());
    const std::string centred = graph.node("Sub", {v, "input.shift"}, "input.centred");
    what += ", standardized inside the model: (x - input.shift) * input.scale per feature";
    return graph.node("Mul", {centred, "input.scale"}, "input.normalized");
  }
  if (!divide) what += ", used as they are";
  return v;
}

// --- Layer parts -----------------------------------------------------------------------------

// y = x W^T + b: Gemm with transB (weights are stored [out, in], as PyTorch's).
std::string emit_linear(GraphBuilder& graph, const LayerContext& layer, const Tensor& weight,
                        const Tensor& bias, const std::string& x) {
  const Tensor w = weight.to(Device::cpu());
  const std::string w_name =
      graph.constant(layer.prefix + "weight", {w.rows(), w.cols()}, w.data<float>());
  std::vector<std::string> inputs = {x, w_name};
  if (bias.defined()) {  // Gemm's C is optional: a Linear without a bias
    const Tensor b = bias.to(Device::cpu());
    inputs.push_back(graph.constant(layer.prefix + "bias", {b.numel()}, b.data<float>()));
  }
  const std::string y = graph.node("Gemm", inputs, layer.prefix + "linear");
  graph.attribute("transB", int64_t{1});
  return y;
}

// Activations by their config name, so that an activation added to mlpx without a mapping
// here is an export error that names it, never a silent wrong graph. Each appends the nodes of
// y = f(x) and returns y.
using ActivationEmitter = std::string (*)(GraphBuilder&, const LayerContext&, const std::string& x,
                                          const std::string& y);

std::string emit_unary(GraphBuilder& graph, const char* op, const std::string& x,
                       const std::string& y) {
  return graph.node(op, {x}, y);
}

// GELU with the erf formula, 0.5 x (1 + erf(x / sqrt 2)): ONNX has Gelu only from opset 20.
std::string emit_gelu_erf(GraphBuilder& graph, const LayerContext& layer, const std::string& x,
                          const std::string& y) {
  const std::string& p = layer.prefix;
  graph.scalar(p + "gelu.rsqrt2", static_cast<float>(1.0 / std::sqrt(2.0)));
  graph.scalar(p + "gelu.one", 1.0f);
  graph.scalar(p + "gelu.half", 0.5f);
  const std::string scaled = graph.node("Mul", {x, p + "gelu.rsqrt2"}, p + "gelu.scaled");
  const std::string erf = graph.node("Erf", {scaled}, p + "gelu.erf");
  const std::string plus = graph.node("Add", {erf, p + "gelu.one"}, p + "gelu.erf_plus_one");
  const std::string half_x = graph.node("Mul", {x, p + "gelu.half"}, p + "gelu.half_x");
  return graph.node("Mul", {half_x, plus}, y);
}

// GELU's tanh approximation, 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
std::string emit_gelu_tanh(GraphBuilder& graph, const LayerContext& layer, const std::string& x,
                           const std::string& y) {
  const std::string& p = layer.prefix;
  graph.scalar(p + "gelu.sqrt_2_over_pi", static_cast<float>(std::sqrt(2.0 / kPi)));
  graph.scalar(p + "gelu.cubic", 0.044715f);
  graph.scalar(p + "gelu.one", 1.0f);
  graph.scalar(p + "gelu.half", 0.5f);
  const std::string x2 = graph.node("Mul", {x, x}, p + "gelu.x2");
  const std::string x3 = graph.node("Mul", {x2, x}, p + "gelu.x3");
  const std::string cx3 = graph.node("Mul", {x3, p + "gelu.cubic"}, p + "gelu.cubic_term");
  const std::string inner = graph.node("Add", {x, cx3}, p + "gelu.inner");
  const std::string arg = graph.node("Mul", {inner, p + "gelu.sqrt_2_over_pi"}, p + "gelu.arg");
  const std::string t = graph.node("Tanh", {arg}, p + "gelu.tanh");
  const std::string plus = graph.node("Add", {t, p + "gelu.one"}, p + "gelu.tanh_plus_one");
  const std::string half_x = graph.node("Mul", {x, p + "gelu.half"}, p + "gelu.half_x");
  return graph.node("Mul", {half_x, plus}, y);
}

struct ActivationMapping {
  const char* name;  // activation_name()
  ActivationEmitter emit;
};

const ActivationMapping kActivationMappings[] = {
    {"identity", [](GraphBuilder& g, const LayerContext&, const std::string& x,
                    const std::string& y) { return emit_unary(g, "Identity", x, y); }},
    {"sigmoid", [](GraphBuilder& g, const LayerContext&, const std::string& x,
                   const std::string& y) { return emit_unary(g, "Sigmoid", x, y); }},
    {"tanh", [](GraphBuilder& g, const LayerContext&, const std::string& x,
                const std::string& y) { return emit_unary(g, "Tanh", x, y); }},
    {"relu", [](GraphBuilder& g, const LayerContext&, const std::string& x,
                const std::string& y) { return emit_unary(g, "Relu", x, y); }},
    {"leaky_relu",
     [](GraphBuilder& g, const LayerContext& layer, const std::string& x, const std::string& y) {
       const std::string out = g.node("LeakyRelu", {x}, y);
       g.attribute("alpha", static_cast<float>(layer.spec.alpha.value_or(0.01)));
       return out;
     }},
    {"elu",
     [](GraphBuilder& g, const LayerContext& layer, const std::string& x, const std::string& y) {
       const std::string out = g.node("Elu", {x}, y);
       g.attribute("alpha", static_cast<float>(layer.spec.alpha.value_or(1.0)));
       return out;
     }},
    {"softmax",
     [](GraphBuilder& g, const LayerContext&, const std::string& x, const std::string& y) {
       const std::string out = g.node("Softmax", {x}, y);
       g.attribute("axis", int64_t{-1});
       return out;
     }},
    {"gelu", emit_gelu_erf},
    {"gelu_tanh", emit_gelu_tanh},
    {"silu",  // x sigmoid(x), as torch.nn.SiLU
     [](GraphBuilder& g, const LayerContext& layer, const std::string& x, const std::string& y) {
       const std::string s = g.node("Sigmoid", {x}, layer.prefix + "silu.sigmoid");
       return g.node("Mul", {x, s}, y);
     }},
};

std::string emit_activation(GraphBuilder& graph, const LayerContext& layer, const std::string& x) {
  const std::string name = activation_name(layer.spec.activation);
  for (const ActivationMapping& mapping : kActivationMappings) {
    if (name == mapping.name) return mapping.emit(graph, layer, x, layer.prefix + name);
  }
  throw ValueError("export: " + layer_label(layer) + ": expected an activation with an ONNX " +
                   "mapping, found '" + name + "', which the exporter does not know");
}

// The layer's norm in eval form: LayerNormalization over the last axis (opset 17 and newer),
// or BatchNormalization with the running statistics (torch's eval mode).
std::string emit_norm(GraphBuilder& graph, const Sequential& model, const LayerContext& layer,
                      const std::string& x) {
  const std::string p = layer.prefix + "norm.";
  auto constant = [&](const std::string& name, const Tensor& t) {
    const Tensor cpu = t.to(Device::cpu());
    return graph.constant(p + name, {cpu.numel()}, cpu.data<float>());
  };
  std::vector<std::string> inputs = {x, constant("weight", model.norm_weight(layer.index)),
                                     constant("bias", model.norm_bias(layer.index))};
  std::string y;
  if (layer.spec.norm == Norm::kLayer) {
    MLPX_CHECK(layer.opset >= 17, ValueError, "export: ", layer_label(layer),
               ": layer norm: expected --opset 17 or newer (ONNX's LayerNormalization), found ",
               layer.opset);
    y = graph.node("LayerNormalization", inputs, p + "layer_norm");
    graph.attribute("axis", int64_t{-1});
  } else {
    for (const auto& [name, view] : model.named_buffers()) {
      if (name == p + "running_mean" || name == p + "running_var") {
        inputs.push_back(constant(name.substr(p.size()), view));
      }
    }
    y = graph.node("BatchNormalization", inputs, p + "batch_norm");
  }
  graph.attribute("epsilon", static_cast<float>(layer.spec.norm_eps));
  return y;
}

// One layer of the model: Linear -> norm -> activation, plus its input for a residual layer.
// Dropout is the identity at inference, as in torch's eval mode, so it adds nothing.
std::string emit_layer(GraphBuilder& graph, const Sequential& model, const LayerContext& layer,
                       const std::string& x) {
  std::string y = emit_linear(graph, layer, model.weight(layer.index), model.bias(layer.index), x);
  if (layer.spec.norm != Norm::kNone) y = emit_norm(graph, model, layer, y);
  y = emit_activation(graph, layer, y);
  if (layer.spec.residual) y = graph.node("Add", {x, y}, layer.prefix + "residual");
  return y;
}

// --- The output head -------------------------------------------------------------------------

// kAuto resolved for `loss` (what `mlpx predict` gives for it); a ValueError for probabilities
// of a regression loss.
OnnxOutput resolve_output(OnnxOutput asked, Loss loss) {
  if (asked == OnnxOutput::kAuto) {  // what `mlpx predict` gives
    return prediction_activation(loss) == Activation::kIdentity ? OnnxOutput::kRaw
                                                                : OnnxOutput::kProbabilities;
  }
  const bool regression = loss == Loss::kMse || loss == Loss::kSse;
  MLPX_CHECK(!(regression && asked == OnnxOutput::kProbabilities), ValueError,
             "export: --output probabilities: expected a classification loss (cross_entropy, "
             "kl_div or bce), found '",
             loss_name(loss), "', whose outputs are values; use --output raw");
  return asked;
}

// Softmax over each row for cross_entropy and kl_div, Sigmoid for bce: the functions their
// losses fuse in. Describes the output in `what`.
std::string emit_output_head(GraphBuilder& graph, Loss loss, OnnxOutput output,
                             const std::string& x, std::string& what) {
  if (output == OnnxOutput::kRaw) {
    const bool regression = loss == Loss::kMse || loss == Loss::kSse;
    what = regression ? "raw: the predicted values"
                      : "raw: the last layer's outputs (logits of the " + loss_name(loss) +
                            " loss), as `mlpx predict --raw` gives them";
    return graph.node("Identity", {x}, kOutputName);
  }
  if (loss == Loss::kBce) {
    what = "probabilities: sigmoid of each output (bce)";
    return graph.node("Sigmoid", {x}, kOutputName);
  }
  what = "probabilities: softmax over each row (" + loss_name(loss) + ")";
  const std::string y = graph.node("Softmax", {x}, kOutputName);
  graph.attribute("axis", int64_t{-1});
  return y;
}

void add_metadata(onnx::ModelProto& model, const std::string& key, const std::string& value) {
  onnx::StringStringEntryProto* entry = model.add_metadata_props();
  entry->set_key(key);
  entry->set_value(value);
}

}  // namespace

bool onnx_export_available() { return true; }

int64_t onnx_max_opset() {
  const auto& ranges = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  return ranges.at(onnx::ONNX_DOMAIN).second;
}

OnnxExport onnx_model(const Checkpoint& checkpoint, const OnnxExportOptions& options) {
  const int64_t max_opset = onnx_max_opset();
  MLPX_CHECK(options.opset >= kMinOnnxOpset && options.opset <= max_opset, ValueError,
             "export: --opset: expected an ONNX opset from ", kMinOnnxOpset, " to ", max_opset,
             " (the ONNX library's newest), found ", options.opset);
  const Sequential& net = checkpoint.model;
  MLPX_CHECK(net.dtype() == DType::kFloat32, ValueError, "export: expected a float32 model, found ",
             dtype_name(net.dtype()));
  const Loss loss = checkpoint.config.loss;
  const OnnxOutput output = resolve_output(options.output, loss);

  onnx::ModelProto model;
  model.set_ir_version(onnx::IR_VERSION);
  model.set_producer_name("mlpx");
  model.set_producer_version(MLPX_VERSION);
  model.set_model_version(checkpoint.progress.step);
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain(onnx::ONNX_DOMAIN);
  opset->set_version(options.opset);

  onnx::GraphProto& graph_proto = *model.mutable_graph();
  graph_proto.set_name("mlpx");
  declare(graph_proto.add_input(), kInputName, net.inputs());
  GraphBuilder graph(graph_proto);

  std::string input_what;
  std::string x =
      emit_input_normalization(graph, checkpoint, options.input_scale, kInputName, input_what);
  for (size_t i = 0; i < net.num_layers(); ++i) {
    const LayerContext layer{i, net.layer(i), options.opset, "layers." + std::to_string(i) + "."};
    x = emit_layer(graph, net, layer, x);
  }
  std::string output_what;
  emit_output_head(graph, loss, output, x, output_what);
  declare(graph_proto.add_output(), kOutputName, net.outputs());
  graph_proto.set_doc_string("mlpx " + std::to_string(net.num_layers()) + "-layer MLP, " +
                             loss_name(loss) + " loss; input: " + input_what +
                             "; output: " + output_what);

  add_metadata(model, "mlpx.version", MLPX_VERSION);
  add_metadata(model, "mlpx.config", checkpoint.config.to_json());
  add_metadata(model, "mlpx.epoch", std::to_string(checkpoint.progress.epoch));
  add_metadata(model, "mlpx.step", std::to_string(checkpoint.progress.step));
  add_metadata(model, "mlpx.input", input_what);
  add_metadata(model, "mlpx.output", output_what);
  if (!options.metrics_json.empty()) add_metadata(model, "mlpx.metrics", options.metrics_json);

  // The ONNX library's word on the graph before anything is written: the checker (types,
  // attributes, topological order, opset), then shape inference in strict mode, which must
  // find the declared [batch, outputs] output.
  try {
    onnx::checker::check_model(model);
    onnx::ShapeInferenceOptions strict(/*check_type_val=*/true, /*strict_mode_val=*/1);
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(), strict);
  } catch (const std::exception& e) {
    throw Error(std::string("export: the ONNX library rejected the graph mlpx built (a bug in ") +
                "mlpx; please report it): " + e.what());
  }
  OnnxExport result;
  MLPX_CHECK(model.SerializeToString(&result.model), Error,
             "export: protobuf could not serialize the ONNX model");
  result.output = output;
  result.inputs = net.inputs();
  result.outputs = net.outputs();
  result.nodes = graph.nodes();
  result.input = input_what;
  return result;
}

OnnxExport export_onnx(const Checkpoint& checkpoint, const std::string& path,
                       const OnnxExportOptions& options) {
  OnnxExport result = onnx_model(checkpoint, options);
  detail::write_file_atomic(path, result.model);
  return result;
}

}  // namespace mlpx
