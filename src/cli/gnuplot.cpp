#include "gnuplot.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "mlpx/error.h"

namespace mlpx::cli {

namespace fs = std::filesystem;

namespace {

bool is_executable_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && ::access(path.c_str(), X_OK) == 0;
}

// The last `max` non-blank lines of `text`, trimmed and joined by " | ": one line for an error.
std::string last_lines(const std::string& text, size_t max) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const size_t a = line.find_first_not_of(" \t\r^");
    if (a == std::string::npos) continue;
    const size_t b = line.find_last_not_of(" \t\r");
    lines.push_back(line.substr(a, b - a + 1));
  }
  std::string out;
  for (size_t i = lines.size() > max ? lines.size() - max : 0; i < lines.size(); ++i) {
    if (!out.empty()) out += " | ";
    out += lines[i];
  }
  return out.empty() ? "no output" : out;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::string find_gnuplot() {
  const char* env = std::getenv("MLPX_GNUPLOT");
  const std::string name = env && *env ? env : "gnuplot";
  if (name.find('/') != std::string::npos) return is_executable_file(name) ? name : "";
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (is_executable_file(candidate)) return candidate;
  }
  return "";
}

std::string gnuplot_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\n' || c == '\r') c = ' ';  // a string literal cannot span lines
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

std::string gnuplot_png_terminal(int width, int height, int font_size,
                                 const std::string& default_output) {
  std::ostringstream s;
  const std::string size = std::to_string(width) + "," + std::to_string(height);
  s << "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
    << "  set terminal pngcairo size " << size << " font 'sans," << font_size << "' noenhanced\n"
    << "} else {\n"
    << "  set terminal png size " << size << " noenhanced\n"
    << "}\n"
    << "if (!exists('outfile')) outfile = " << gnuplot_quote(default_output) << "\n"
    << "set output outfile\n";
  return s.str();
}

TempFolder::TempFolder(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  MLPX_CHECK(::mkdtemp(buf.data()) != nullptr, IoError, "cannot create a temporary folder '",
             pattern, "': ", std::strerror(errno));
  path_ = buf.data();
}

TempFolder::~TempFolder() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void run_gnuplot_to_png(const std::string& gnuplot, const std::string& script,
                        const std::string& cwd, const std::string& png) {
  const fs::path target = fs::absolute(png);
  const fs::path temp = target.parent_path() / ("." + target.filename().string() + ".tmp-" +
                                                std::to_string(::getpid()) + ".png");
  TempFolder scratch("mlpx-gnuplot");
  const std::string log = scratch.path() + "/gnuplot.out";
  const std::string set_output = "outfile=" + gnuplot_quote(temp.string());

  // Everything the child needs is prepared here: between fork and exec it only makes
  // async-signal-safe calls.
  const int out_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  MLPX_CHECK(out_fd >= 0, IoError, log, ": cannot create: ", std::strerror(errno));
  std::vector<std::string> args = {gnuplot, "-e", set_output, script};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(out_fd);
    throw Error(std::string("cannot start gnuplot: fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(out_fd, 2) < 0 ||
        ::chdir(cwd.c_str()) != 0) {
      ::_exit(126);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out_fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw Error(std::string("gnuplot: waitpid: ") + std::strerror(errno));
  }

  std::error_code ec;
  const auto remove_temp = [&] { fs::remove(temp, ec); };
  const std::string output = slurp(log);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    remove_temp();
    const std::string how = WIFEXITED(status)
                                ? "exit status " + std::to_string(WEXITSTATUS(status))
                                : "killed by signal " + std::to_string(WTERMSIG(status));
    throw Error("gnuplot (" + gnuplot + " " + script + ") failed with " + how + ": " +
                last_lines(output, 3));
  }
  std::string head(8, '\0');
  std::ifstream(temp, std::ios::binary).read(head.data(), 8);
  if (head != "\x89PNG\r\n\x1a\n") {
    remove_temp();
    throw Error("gnuplot (" + gnuplot + " " + script + ") wrote no PNG to " + temp.string() + ": " +
                last_lines(output, 3));
  }
  fs::rename(temp, target, ec);
  if (ec) {
    remove_temp();
    throw IoError(target.string() +
                  ": cannot rename the finished picture into place: " + ec.message());
  }
}

}  // namespace mlpx::cli
