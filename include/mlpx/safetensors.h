// safetensors files (checkpoints): an 8-byte little-endian header length N, N bytes of JSON
//   {"__metadata__": {"key": "value", ...},
//    "name": {"dtype": "F32" | "F64" | "I32", "shape": [...], "data_offsets": [begin, end]}, ...}
// padded with spaces to a multiple of 8, then the tensors' raw little-endian bytes, back to
// back, with offsets counted from the end of the header.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mlpx/tensor.h"

namespace mlpx {

// Writes `tensors` (float32 / float64 / int32, rank 1 or 2, any device) in the given order with
// `metadata` as "__metadata__". Names must be unique, non-empty and not "__metadata__".
// Atomic: a temporary file in the same folder, fsynced, renamed over `path`; the folder is
// fsynced after. IoError on failure, and `path` keeps its previous contents.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// The contents of a safetensors file.
struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // CPU tensors, in file offset order
  std::map<std::string, std::string> metadata;          // "__metadata__" (empty when absent)
  std::string source;                                   // the path it was read from

  // The tensor called `name`; IoError naming the file and the missing name otherwise.
  const Tensor& get(const std::string& name) const;
  bool contains(const std::string& name) const;
};

// Reads a safetensors file, validating everything before allocating any tensor: the header
// length against the file size (and a 100 MB cap), the JSON, unique names, dtypes F32/F64/I32,
// shapes of rank 0..2 (rank 0 loads as [1]), data_offsets that match each shape and tile the
// data section from 0 to the end of the file without gaps or overlaps, string metadata values.
// Every failure is an IoError naming the file and what was expected and found.
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace mlpx
