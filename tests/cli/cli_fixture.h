// What the tests of the mlpx binary share: a fresh folder per test and a runner.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "test_util.h"

namespace mlpx::test {

struct CliResult {
  int status = -1;  // the exit status (-1 when killed by a signal)
  std::string out, err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class CliTest : public TempDirTest {
 protected:
  CliTest() : TempDirTest("mlpx-cli") {}

  // Runs `env mlpx args` with no standard input. The binary is $MLPX_BINARY when set (tests
  // run from a relocated build), else the one built beside these tests.
  CliResult run(const std::string& args, const std::string& env = "") const {
    const char* binary = std::getenv("MLPX_BINARY");
    const std::string mlpx = binary ? binary : std::string(MLPX_BINARY_DIR) + "/mlpx";
    const std::string out = path("stdout.txt"), err = path("stderr.txt");
    const std::string cmd =
        env + " " + mlpx + " " + args + " > " + out + " 2> " + err + " < /dev/null";
    const int raw = std::system(cmd.c_str());
    CliResult r;
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }
};

}  // namespace mlpx::test
