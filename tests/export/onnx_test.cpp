// The ONNX exporter's own rules (mlpx/onnx.h): options, metrics from a training log, the errors
// a model or an option that cannot be exported gives, and the atomic write. Whether the graphs
// compute what `mlpx predict` computes is checked in ONNX Runtime by tests/python/test_onnx.py.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/names.h"
#include "mlpx/mlpx.h"
#include "test_util.h"

namespace mlpx {
namespace {

class OnnxExporter : public test::TempDirTest {
 protected:
  OnnxExporter() : test::TempDirTest("mlpx-onnx") {}

  // A checkpoint of a small model on synthetic features (no input scaling) for `loss`.
  static Checkpoint checkpoint_for(Loss loss, std::vector<LayerSpec> layers) {
    Config config;
    config.data.source = DataSource::kSynthetic;
    config.loss = loss;
    config.model.layers = layers;
    Sequential model(5, config.model.resolved_layers());
    model.init(Init::kHeNormal, 0.0, 1);
    return Checkpoint{config, {3, 42}, std::move(model), {}, {}};
  }
  static Checkpoint classifier() {
    return checkpoint_for(Loss::kCrossEntropy,
                          {{8, Activation::kTanh}, {3, Activation::kIdentity}});
  }

  void write(const std::string& name, const std::string& text) {
    std::ofstream(path(name)) << text;
  }
};

TEST(OnnxOutputNames, RoundTripAndNameTheChoices) {
  for (OnnxOutput o : {OnnxOutput::kAuto, OnnxOutput::kProbabilities, OnnxOutput::kRaw}) {
    EXPECT_EQ(parse_onnx_output(onnx_output_name(o)), o);
  }
  for (OnnxInputScale s :
       {OnnxInputScale::kAuto, OnnxInputScale::kDivide255, OnnxInputScale::kNone}) {
    EXPECT_EQ(parse_onnx_input_scale(onnx_input_scale_name(s)), s);
  }
  try {
    parse_onnx_output("logits");
    FAIL() << "expected a ValueError";
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "export: --output: expected auto, probabilities or raw, found 'logits'");
  }
}

TEST_F(OnnxExporter, MetricsAreTheLastEpochMergedWithTheTestLine) {
  write(
      "log.jsonl",
      "{\"epoch\": 1, \"train_loss\": 0.9}\n\n{\"epoch\": 2, \"train_loss\": 0.5, "
      "\"val_accuracy\": 0.8}\n{\"test_loss\": 0.6, \"test_accuracy\": 0.79, \"elapsed_s\": 3}\n");
  EXPECT_EQ(onnx_metrics_from_log(path("log.jsonl")),
            "{\"epoch\":2,\"test_accuracy\":0.79,\"test_loss\":0.6,\"train_loss\":0.5,"
            "\"val_accuracy\":0.8}");
  write("empty.jsonl", "");
  EXPECT_EQ(onnx_metrics_from_log(path("empty.jsonl")), "");
  write("bad.jsonl", "{\"epoch\": 1}\nnot json\n");
  try {
    onnx_metrics_from_log(path("bad.jsonl"));
    FAIL() << "expected an IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2: expected a JSON object per line"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(onnx_metrics_from_log(path("missing.jsonl")), IoError);
}

TEST_F(OnnxExporter, WithoutTheOnnxLibraryEveryEntrySaysHowToBuildItIn) {
  if (onnx_export_available()) GTEST_SKIP() << "built with ONNX export (MLPX_ONNX)";
  try {
    export_onnx(classifier(), path("m.onnx"));
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("apt-get install libonnx-dev"), std::string::npos);
  }
  EXPECT_FALSE(std::filesystem::exists(path("m.onnx")));
}

TEST_F(OnnxExporter, WritesTheCheckedModelAtomically) {
  if (!onnx_export_available()) GTEST_SKIP() << "built without ONNX export (MLPX_ONNX)";
  EXPECT_GE(onnx_max_opset(), 17);
  const OnnxExport result = export_onnx(classifier(), path("m.onnx"));
  EXPECT_EQ(result.output, OnnxOutput::kProbabilities);
  EXPECT_EQ(result.inputs, 5);
  EXPECT_EQ(result.outputs, 3);
  EXPECT_EQ(result.nodes, 5);  // Gemm, Tanh, Gemm, Identity, Softmax
  EXPECT_EQ(result.input, "float32 features, used as they are");
  EXPECT_EQ(std::filesystem::file_size(path("m.onnx")), result.model.size());
  // The ONNX library's checks run before the file is touched: a failed export leaves the
  // previous file as it was.
  OnnxExportOptions bad;
  bad.opset = 12;
  EXPECT_THROW(export_onnx(classifier(), path("m.onnx"), bad), ValueError);
  EXPECT_EQ(std::filesystem::file_size(path("m.onnx")), result.model.size());
  EXPECT_THROW(export_onnx(classifier(), path("no-such-folder/m.onnx")), IoError);
}

TEST_F(OnnxExporter, OptionsAndModelsThatCannotBeExportedAreOneLineErrors) {
  if (!onnx_export_available()) GTEST_SKIP() << "built without ONNX export (MLPX_ONNX)";
  auto message = [](const Checkpoint& c, const OnnxExportOptions& o) {
    try {
      onnx_model(c, o);
    } catch (const ValueError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  OnnxExportOptions options;
  options.opset = onnx_max_opset() + 1;
  EXPECT_EQ(message(classifier(), options), "export: --opset: expected an ONNX opset from 13 to " +
                                                std::to_string(onnx_max_opset()) +
                                                " (the ONNX library's newest), found " +
                                                std::to_string(onnx_max_opset() + 1));
  options = {};
  options.output = OnnxOutput::kProbabilities;
  const Checkpoint regression =
      checkpoint_for(Loss::kMse, {{4, Activation::kRelu}, {2, Activation::kIdentity}});
  EXPECT_NE(message(regression, options).find("expected a classification loss"), std::string::npos);
  options.output = OnnxOutput::kAuto;
  EXPECT_EQ(onnx_model(regression, options).output, OnnxOutput::kRaw);
  // Every member of the activations' table has its ONNX mapping: a member added without one
  // fails here (the exporter's error names the layer and the activation).
  for (const auto& member : detail::kActivationNames) {
    const Checkpoint each =
        checkpoint_for(Loss::kCrossEntropy, {{4, member.value}, {3, Activation::kIdentity}});
    EXPECT_EQ(message(each, {}), "no error") << member.name;
  }
  // A scale01 model trained on files whose element type is unknown cannot be exported blind.
  Checkpoint scaled = classifier();
  scaled.config.data.source = DataSource::kFiles;
  scaled.config.data.normalize = Normalize::kScale01;
  scaled.config.data.train.x = path("gone.npy");
  EXPECT_NE(message(scaled, {}).find("depends on the training features' element type"),
            std::string::npos);
  options.input_scale = OnnxInputScale::kNone;  // the model's own features: nothing to know
  EXPECT_EQ(onnx_model(scaled, options).nodes, 5);
}

// Norms, a Linear without a bias and residual layers pass the ONNX library's checker and shape
// inference: LayerNormalization (opset 17 and newer; older opsets are a one-line error),
// BatchNormalization with the running statistics, Gemm without C, Add. (ONNX Runtime's outputs
// against `mlpx predict`: tests/python/test_onnx.py.)
TEST_F(OnnxExporter, NormsBiasFreeLinearsAndResidualLayersExport) {
  if (!onnx_export_available()) GTEST_SKIP() << "built without ONNX export (MLPX_ONNX)";
  LayerSpec batch_normed(6, Activation::kGelu);
  batch_normed.norm = Norm::kBatch;
  batch_normed.bias = false;
  LayerSpec residual(6, Activation::kTanh);
  residual.norm = Norm::kLayer;
  residual.residual = true;
  const Checkpoint c =
      checkpoint_for(Loss::kCrossEntropy, {batch_normed, residual, {3, Activation::kIdentity}});
  OnnxExportOptions options;
  options.opset = 17;
  // Gemm, BatchNormalization, gelu's 5 nodes, Gemm, LayerNormalization, Tanh, Add, Gemm,
  // Identity, Softmax.
  EXPECT_EQ(onnx_model(c, options).nodes, 14);
  options.opset = 16;
  try {
    onnx_model(c, options);
    FAIL() << "expected a ValueError";
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(),
                 "export: layer 1 (tanh, 6 units): layer norm: expected --opset 17 or newer "
                 "(ONNX's LayerNormalization), found 16");
  }
}

TEST_F(OnnxExporter, InputScaleDecidesTheDivisionBy255) {
  if (!onnx_export_available()) GTEST_SKIP() << "built without ONNX export (MLPX_ONNX)";
  Checkpoint pixels = checkpoint_for(Loss::kCrossEntropy, {{3, Activation::kIdentity}});
  OnnxExportOptions options;
  EXPECT_EQ(onnx_model(pixels, options).nodes, 3);  // synthetic features: Gemm, Identity, Softmax
  options.input_scale = OnnxInputScale::kDivide255;
  const OnnxExport divided = onnx_model(pixels, options);
  EXPECT_EQ(divided.nodes, 4);
  EXPECT_NE(divided.input.find("divided by 255"), std::string::npos);
  // Fashion-MNIST's 784 pixels are uint8: auto divides; 5 inputs cannot be Fashion-MNIST (a
  // model fitted in Python on arrays keeps that default source).
  options.input_scale = OnnxInputScale::kAuto;
  pixels.config.data.source = DataSource::kFashionMnist;
  EXPECT_EQ(onnx_model(pixels, options).nodes, 3);
  Checkpoint fashion = pixels;
  fashion.model = Sequential(784, pixels.config.model.resolved_layers());
  fashion.model.init(Init::kHeNormal, 0.0, 1);
  EXPECT_EQ(onnx_model(fashion, options).nodes, 4);
  options.input_scale = OnnxInputScale::kNone;
  EXPECT_EQ(onnx_model(fashion, options).nodes, 3);
}

}  // namespace
}  // namespace mlpx
