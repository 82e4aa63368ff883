// Crash safety of checkpoints.
//
// KillDuringSave: a child process saves a checkpoint over a previous one and is killed with
// SIGKILL at a random point of the save (200 kills spread over the save's measured duration).
// The target path must then hold either the previous checkpoint or the new one, complete and
// bit-identical to what was saved; never a mix, never a partial file. A killed save can leave
// its temporary file behind: the documented pattern "<dir>/.<name>.tmp-<pid>-<n>"
// (src/atomic_file.h); the test checks that nothing else appears, then removes them.
//
// CorruptedCheckpoints: 10,000 variants of a small real checkpoint (every truncation length,
// then random flips of 1 to 8 bits) are loaded; each must be rejected with an mlpx::Error or
// load a model of the original layout. Never a crash, never another exception type, and (in a
// build without AddressSanitizer, whose shadow memory counts against the limit) never an
// allocation past a 64 MiB data limit, when the file is a few kilobytes.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <regex>
#include <thread>
#include <vector>

#include "mlpx/checkpoint.h"
#include "mlpx/error.h"
#include "mlpx/safetensors.h"
#include "reliability_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define MLPX_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MLPX_TEST_ASAN 1
#endif
#endif
#ifndef MLPX_TEST_ASAN
#define MLPX_TEST_ASAN 0
#endif

namespace mlpx {
namespace {

namespace fs = std::filesystem;
using test::bitwise_equal;
using test::ScratchDir;

Config model_config(std::vector<int64_t> units) {
  Config c;
  c.device = "cpu";
  c.model.layers.clear();
  for (size_t i = 0; i < units.size(); ++i) {
    c.model.layers.push_back(
        {units[i], i + 1 == units.size() ? Activation::kIdentity : Activation::kRelu});
  }
  return c;
}

Sequential make_model(const Config& c, int64_t inputs, uint64_t seed) {
  Sequential model(inputs, c.model.resolved_layers());
  model.init(Init::kHeNormal, 0.0, seed);
  return model;
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(CheckpointCrashTest, KillDuringSaveLeavesThePreviousOrTheNewCheckpointWhole) {
  ScratchDir dir;
  const std::string path = dir.path("model.safetensors");
  // About 0.53 M parameters: a 2.1 MB checkpoint, written in two buffered chunks.
  const Config config = model_config({512, 512, 10});
  const int64_t inputs = 512;
  const Sequential previous = make_model(config, inputs, 1);
  const Sequential next = make_model(config, inputs, 2);
  TrainingProgress previous_progress, next_progress;
  previous_progress.epoch = 1;
  previous_progress.step = 100;
  next_progress.epoch = 2;
  next_progress.step = 200;

  // How long one save takes here, to spread the kills over it.
  const auto t0 = std::chrono::steady_clock::now();
  save_checkpoint(path, next, nullptr, config, next_progress);
  const double save_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  const std::vector<char> next_bytes = read_bytes(path);
  save_checkpoint(path, previous, nullptr, config, previous_progress);
  const std::vector<char> previous_bytes = read_bytes(path);
  ASSERT_NE(previous_bytes, next_bytes);

  constexpr int kKills = 200;
  std::mt19937_64 random(42);
  std::uniform_real_distribution<double> when(0.0, 1.3 * save_us);
  int saw_previous = 0, saw_next = 0;
  const std::regex temp_pattern(R"(\.model\.safetensors\.tmp-[0-9]+-[0-9]+)");
  for (int i = 0; i < kKills; ++i) {
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      try {
        save_checkpoint(path, next, nullptr, config, next_progress);
      } catch (...) {
        _exit(2);
      }
      _exit(0);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(when(random))));
    kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
        << "the saving child failed on its own (status " << status << ")";

    const std::vector<char> now = read_bytes(path);
    const bool is_previous = now == previous_bytes, is_next = now == next_bytes;
    ASSERT_TRUE(is_previous || is_next)
        << "kill " << i << ": the checkpoint is neither the previous nor the new one ("
        << now.size() << " bytes)";
    const Checkpoint loaded = load_checkpoint(path);
    EXPECT_TRUE(bitwise_equal(loaded.model.params(), (is_previous ? previous : next).params()));
    EXPECT_EQ(loaded.progress.step, is_previous ? 100 : 200);
    (is_previous ? saw_previous : saw_next)++;

    // Only the documented temporary files may be left; remove them and restore the previous
    // checkpoint for the next kill.
    for (const auto& entry : fs::directory_iterator(dir.dir())) {
      const std::string name = entry.path().filename().string();
      if (name == "model.safetensors") continue;
      ASSERT_TRUE(std::regex_match(name, temp_pattern)) << "unexpected leftover file " << name;
      fs::remove(entry.path());
    }
    if (is_next) save_checkpoint(path, previous, nullptr, config, previous_progress);
  }
  // The kills land both before and after the rename.
  EXPECT_GT(saw_previous, 0);
  EXPECT_GT(saw_next, 0);
  std::printf(
      "[ crash    ] %d kills over a %.0f us save: %d left the previous checkpoint, %d "
      "the new one, 0 damaged\n",
      kKills, save_us, saw_previous, saw_next);
}

// Limits this process's data segment (heap and anonymous mappings) to what it uses now plus
// `margin` bytes, for the lifetime of the object. Not under ASan (its shadow counts).
class DataLimit {
 public:
  explicit DataLimit(rlim_t margin) {
    if (MLPX_TEST_ASAN) return;
    std::ifstream status("/proc/self/status");
    std::string line;
    rlim_t vm_data_kb = 0;
    while (std::getline(status, line)) {
      if (line.rfind("VmData:", 0) == 0) vm_data_kb = std::stoull(line.substr(7));
    }
    if (vm_data_kb == 0 || getrlimit(RLIMIT_DATA, &saved_) != 0) return;
    rlimit limited = saved_;
    limited.rlim_cur = vm_data_kb * 1024 + margin;
    active_ = setrlimit(RLIMIT_DATA, &limited) == 0;
  }
  ~DataLimit() {
    if (active_) setrlimit(RLIMIT_DATA, &saved_);
  }
  bool active() const { return active_; }

 private:
  rlimit saved_{};
  bool active_ = false;
};

TEST(CheckpointCrashTest, TruncatedAndBitFlippedCheckpointsAreRejectedOrLoadWhole) {
  ScratchDir dir;
  const std::string good = dir.path("good.safetensors"), bad = dir.path("bad.safetensors");
  const Config config = model_config({6, 3});
  const Sequential model = make_model(config, 5, 7);
  Optimizer optimizer(config.optimizer, model.num_params(), DType::kFloat32, Device::cpu());
  save_checkpoint(good, model, &optimizer, config, {3, 42});
  const std::vector<char> original = read_bytes(good);
  ASSERT_GT(original.size(), 100u);

  constexpr int kVariants = 10000;
  int loaded = 0, rejected = 0;
  std::mt19937_64 random(1234);
  {
    const DataLimit limit(64 << 20);
    for (int v = 0; v < kVariants; ++v) {
      std::vector<char> bytes = original;
      if (static_cast<size_t>(v) < original.size()) {
        bytes.resize(static_cast<size_t>(v));  // every truncation length
      } else {
        const int flips = 1 + static_cast<int>(random() % 8);
        for (int f = 0; f < flips; ++f) {
          const size_t bit = random() % (bytes.size() * 8);
          bytes[bit / 8] = static_cast<char>(bytes[bit / 8] ^ (1 << (bit % 8)));
        }
      }
      write_bytes(bad, bytes);
      try {
        const Checkpoint ck = load_checkpoint(bad);
        ++loaded;
        ASSERT_EQ(ck.model.inputs(), 5) << "variant " << v;
        ASSERT_EQ(ck.model.num_layers(), 2u) << "variant " << v;
        for (size_t i = 0; i < 2; ++i) {
          ASSERT_EQ(ck.model.weight(i).shape(), model.weight(i).shape()) << "variant " << v;
          ASSERT_EQ(ck.model.bias(i).shape(), model.bias(i).shape()) << "variant " << v;
        }
      } catch (const Error& e) {
        ++rejected;
        const std::string what = e.what();
        ASSERT_EQ(what.find("out of host memory"), std::string::npos)
            << "variant " << v << " asked for more memory than a " << bytes.size()
            << "-byte file justifies: " << what;
      }
    }
  }
  EXPECT_EQ(loaded + rejected, kVariants);
  EXPECT_GT(rejected, static_cast<int>(original.size()) - 1);  // every truncation is rejected
  std::printf(
      "[ corrupt  ] %d variants of a %zu-byte checkpoint: %d rejected with an error, %d "
      "loaded with the right layout\n",
      kVariants, original.size(), rejected, loaded);
}

}  // namespace
}  // namespace mlpx
