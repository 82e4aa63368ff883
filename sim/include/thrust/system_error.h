// The simulator's stand-in for <thrust/system_error.h>: the exception Thrust throws when a CUDA
// call of an algorithm fails ("<where>: <cudaGetErrorName>: <cudaGetErrorString>").
#pragma once

#include <stdexcept>
#include <string>

#include "cuda_runtime_api.h"

namespace thrust {
namespace system {

class system_error : public std::runtime_error {
 public:
  system_error(cudaError_t code, const std::string& where)
      : std::runtime_error(where + ": " + cudaGetErrorName(code) + ": " + cudaGetErrorString(code)),
        code_(code) {}
  cudaError_t cuda_error() const { return code_; }

 private:
  cudaError_t code_;
};

}  // namespace system

using system::system_error;

}  // namespace thrust
