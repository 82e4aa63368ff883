// Pictures through gnuplot (Debian package gnuplot-nox): the CLI writes a data file and a
// script, runs gnuplot on them and renames the finished PNG into place. CLI-only: the library
// computes numbers; drawing them is the command line's job, and a library that spawns programs
// would surprise its users.
#pragma once

#include <string>

namespace mlpx::cli {

// The Debian package to name when gnuplot is missing.
inline constexpr const char* kGnuplotPackage = "gnuplot-nox";

// The gnuplot to run: $MLPX_GNUPLOT when set (a path, or a name looked up on PATH), else
// "gnuplot" on PATH. Empty when there is none.
std::string find_gnuplot();

// Runs `gnuplot -e "outfile='TEMP'" SCRIPT` in folder `cwd` (stdin /dev/null), where SCRIPT
// draws into the file named by the variable outfile; TEMP is a fresh name in png's folder. Then
// renames TEMP over `png`, so a failed run leaves any previous picture intact. mlpx::Error with
// gnuplot's last lines of output when it fails or writes no PNG.
void run_gnuplot_to_png(const std::string& gnuplot, const std::string& script,
                        const std::string& cwd, const std::string& png);

// `text` as a gnuplot single-quoted string literal (no escapes are read inside; ' is doubled).
std::string gnuplot_quote(const std::string& text);

// Script lines choosing the pngcairo terminal (png where cairo is missing) at width x height
// pixels, without enhanced text (so "normal_std1" shows its underscore), output to outfile
// (default_output when the variable is unset: a user running the script by hand).
std::string gnuplot_png_terminal(int width, int height, int font_size,
                                 const std::string& default_output = "out.png");

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempFolder {
 public:
  explicit TempFolder(const std::string& prefix);
  ~TempFolder();
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace mlpx::cli
