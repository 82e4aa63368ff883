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

}  // namespace
