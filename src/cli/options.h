// Checks of option values that fail in one human line: CLI11 reports a failed check as
// "--NAME: MESSAGE", and MESSAGE says what was expected and what was found, e.g.
// "--epochs: expected an integer >= 0, found -1".
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace mlpx::cli {

// An integer (no fraction, no exponent) >= `min`.
CLI::Validator integer_at_least(long long min);
// An integer in [low, high].
CLI::Validator integer_in(long long low, long long high);
// A finite number >= `min`, or > `min` when `strict`.
CLI::Validator number_at_least(double min, bool strict = false);
// A finite number in [low, high].
CLI::Validator number_in(double low, double high);
// A file that exists.
CLI::Validator existing_file();
// "auto", "cpu", "cuda" or "cuda:N"; a CUDA device must be visible.
CLI::Validator device_name();

// The one line for an option the command does not know, or an argument it did not expect:
// "unknown option --confg (did you mean --config?)". `known`: the command's option names.
std::string unexpected_arguments_message(const std::vector<std::string>& arguments,
                                         const std::vector<std::string>& known);

}  // namespace mlpx::cli
