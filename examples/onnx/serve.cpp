// An exported mlpx model in ONNX Runtime's C++ API (docs/deploy.md):
//   serve MODEL.onnx INPUTS.f32 ROWS   (INPUTS.f32: ROWS x features float32, row-major)
// prints each row's outputs, one row a line.
#include <onnxruntime_cxx_api.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: serve MODEL.onnx INPUTS.f32 ROWS\n");
    return 2;
  }
  Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "mlpx");
  Ort::Session session(env, argv[1], Ort::SessionOptions{});
  const int64_t rows = std::stoll(argv[3]);
  const int64_t features = session.GetInputTypeInfo(0).GetTensorTypeAndShapeInfo().GetShape()[1];
  std::vector<float> x(rows * features);
  std::ifstream(argv[2], std::ios::binary).read(reinterpret_cast<char*>(x.data()), x.size() * 4);

  const std::array<int64_t, 2> shape{rows, features};  // the batch dimension is dynamic
  const auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  Ort::Value input = Ort::Value::CreateTensor<float>(memory, x.data(), x.size(), shape.data(), 2);
  const char* input_names[] = {"input"};
  const char* output_names[] = {"output"};
  auto outputs = session.Run(Ort::RunOptions{}, input_names, &input, 1, output_names, 1);

  const float* y = outputs[0].GetTensorData<float>();
  const int64_t columns = outputs[0].GetTensorTypeAndShapeInfo().GetShape()[1];
  for (int64_t r = 0; r < rows; ++r, std::printf("\n"))
    for (int64_t c = 0; c < columns; ++c) std::printf("%s%.9g", c ? " " : "", y[r * columns + c]);
}
