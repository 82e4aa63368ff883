// The README's C++ snippet is examples/consumer/main.cpp, which `make test` builds against the
// installed package, and the documentation's Python and PyTorch snippets are marked blocks of
// examples that ctest runs: this keeps each pair from drifting apart.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

std::string read(const std::string& relative) {
  std::ifstream in(std::string(MLPX_SOURCE_DIR) + "/" + relative);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// README.md and every docs/*.md page, one after the other: where a snippet may live.
std::string documentation() {
  std::string text = read("README.md");
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(MLPX_SOURCE_DIR) + "/docs")) {
    if (entry.path().extension() == ".md") text += read("docs/" + entry.path().filename().string());
  }
  return text;
}

TEST(Readme, CppSnippetIsTheConsumerExample) {
  const std::string example = read("examples/consumer/main.cpp");
  ASSERT_FALSE(example.empty());
  EXPECT_NE(read("README.md").find("```cpp\n" + example + "```"), std::string::npos)
      << "paste examples/consumer/main.cpp into README.md's ```cpp block";
}

// The PyTorch snippets (docs/checkpoints.md) are the marked blocks of examples/torch_interop.py,
// which ctest runs (test torch_interop) where torch and safetensors are installed.
TEST(Readme, TorchSnippetsAreTheInteropExample) {
  const std::string example = read("examples/torch_interop.py");
  const std::string readme = documentation();
  int blocks = 0;
  for (size_t start = example.find("# --- "); start != std::string::npos;
       start = example.find("# --- ", start + 1)) {
    const std::string end_marker = "# --- end ---";
    if (example.compare(start, end_marker.size(), end_marker) == 0) continue;
    const size_t body = example.find('\n', start) + 1;
    const size_t end = example.find(end_marker, body);
    ASSERT_NE(end, std::string::npos);
    const std::string snippet = example.substr(body, end - body);
    EXPECT_NE(readme.find("```python\n" + snippet + "```"), std::string::npos)
        << "paste this block of examples/torch_interop.py into README.md or a docs/ page:\n"
        << snippet;
    ++blocks;
  }
  EXPECT_EQ(blocks, 2);
}

// The Python snippets (README.md's quick start, docs/python.md) are the marked blocks
// ("# --- Python: ...") of examples/python_example.py, which ctest runs (test python_example)
// where the package is built.
TEST(Readme, PythonSnippetsAreThePythonExample) {
  const std::string example = read("examples/python_example.py");
  const std::string readme = documentation();
  const std::string marker = "# --- Python: ", end_marker = "# --- end ---";
  int blocks = 0;
  for (size_t start = example.find(marker); start != std::string::npos;
       start = example.find(marker, start + 1)) {
    const size_t body = example.find('\n', start) + 1;
    const size_t end = example.find(end_marker, body);
    ASSERT_NE(end, std::string::npos);
    const std::string snippet = example.substr(body, end - body);
    EXPECT_NE(readme.find("```python\n" + snippet + "```"), std::string::npos)
        << "paste this block of examples/python_example.py into README.md or a docs/ page:\n"
        << snippet;
    ++blocks;
  }
  EXPECT_EQ(blocks, 3);
  // The quick start's two (Fashion-MNIST, scikit-learn) are in the README itself.
  const std::string own = read("README.md");
  for (const char* marker :
       {"# --- Python: Fashion-MNIST ---\n", "# --- Python: scikit-learn ---\n"}) {
    const size_t body = example.find(marker) + std::string(marker).size();
    EXPECT_NE(own.find("```python\n" +
                       example.substr(body, example.find("# --- end ---", body) - body) + "```"),
              std::string::npos)
        << marker;
  }
}

}  // namespace
