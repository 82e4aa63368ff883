// The README's C++ snippet is examples/consumer/main.cpp, which `make test` builds against the
// installed package: this keeps the two from drifting apart.
#include <gtest/gtest.h>

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

TEST(Readme, CppSnippetIsTheConsumerExample) {
  const std::string example = read("examples/consumer/main.cpp");
  ASSERT_FALSE(example.empty());
  EXPECT_NE(read("README.md").find("```cpp\n" + example + "```"), std::string::npos)
      << "paste examples/consumer/main.cpp into README.md's ```cpp block";
}

// The README's PyTorch snippets are the marked blocks of examples/torch_interop.py, which
// ctest runs (test torch_interop) where torch and safetensors are installed.
TEST(Readme, TorchSnippetsAreTheInteropExample) {
  const std::string example = read("examples/torch_interop.py");
  const std::string readme = read("README.md");
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
        << "paste this block of examples/torch_interop.py into README.md:\n"
        << snippet;
    ++blocks;
  }
  EXPECT_EQ(blocks, 2);
}

// The README's Python section is the marked blocks ("# --- Python: ...") of
// examples/python_example.py, which ctest runs (test python_example) where the package is built.
TEST(Readme, PythonSnippetsAreThePythonExample) {
  const std::string example = read("examples/python_example.py");
  const std::string readme = read("README.md");
  const std::string marker = "# --- Python: ", end_marker = "# --- end ---";
  int blocks = 0;
  for (size_t start = example.find(marker); start != std::string::npos;
       start = example.find(marker, start + 1)) {
    const size_t body = example.find('\n', start) + 1;
    const size_t end = example.find(end_marker, body);
    ASSERT_NE(end, std::string::npos);
    const std::string snippet = example.substr(body, end - body);
    EXPECT_NE(readme.find("```python\n" + snippet + "```"), std::string::npos)
        << "paste this block of examples/python_example.py into README.md:\n"
        << snippet;
    ++blocks;
  }
  EXPECT_EQ(blocks, 2);
}

}  // namespace
