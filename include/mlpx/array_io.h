// Array files: readers for .npy, .csv and IDX (MNIST-style, optionally gzip-compressed) data
// sets, the conversions from what a file holds to the tensors training needs, and writers for
// .npy and .csv outputs. Every failure is an IoError (ValueError for a bad label) whose one-line
// message names the file, what was expected and what was found. Readers validate headers,
// dimensions and sizes against the file length before allocating; writers replace their target
// atomically (a failed write leaves the previous file as it was).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mlpx/tensor.h"

namespace mlpx {

// Element types that array files may hold (wider than DType: data sets come as uint8/int64, or
// as float16 to save space). float16 elements are kept as their IEEE binary16 bits.
enum class ElementType {
  kUint8,
  kInt32,
  kInt64,
  kFloat32,
  kFloat64,
  kInt8,
  kInt16,
  kUint16,
  kUint32,
  kUint64,
  kFloat16,
};

size_t element_size(ElementType type);            // 1, 4, 8, 4, 8, 1, 2, 2, 4, 8, 2
const char* element_type_name(ElementType type);  // "uint8", "int32", "int64", "float32", ...

// The contents of an array file, as read: any rank >= 1, never empty, floats (float16 too)
// always finite.
struct Array {
  Shape shape;  // e.g. [60000, 28, 28]; every size >= 1
  ElementType type = ElementType::kFloat32;
  std::vector<unsigned char> bytes;  // numel() * element_size(type) bytes, native, row-major
  std::string source;                // the path it was read from (for error messages)

  int64_t numel() const;  // product of shape
  int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  int64_t row_size() const;  // product of shape[1:] (1 for rank 1)
};

// Reads an array file, choosing the format by name: "*.npy", "*.csv", or IDX ("*-ubyte*",
// optionally "*.gz"). Anything else is an IoError naming the supported formats.
Array load_array(const std::string& path);
// .npy, format versions 1.0 / 2.0 / 3.0, little-endian dtypes float16/32/64 (<f2 <f4 <f8),
// int8/16/32/64 (|i1 <i2 <i4 <i8) and uint8/16/32/64 (|u1 <u2 <u4 <u8). A Fortran-ordered
// array (fortran_order True: np.asfortranarray(x), x.T) is rewritten in C order on load, so
// the Array holds the same values at the same indices as for np.ascontiguousarray(x); this
// needs a second buffer the size of the data for a moment.
Array load_npy(const std::string& path);
// IDX (0x00 0x00 type ndims, big-endian dims and data); gzip-compressed when path ends in .gz.
// Types 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
Array load_idx(const std::string& path);
// Comma-separated numbers -> float64 [rows, cols]; a first row that is not all numeric is a
// header and skipped; blank lines are skipped; every row must have the same column count.
Array load_csv(const std::string& path);

// Features (or float targets): float32 CPU tensor [N, prod(shape[1:])]. Accepted shapes: [N]
// (becomes [N, 1]), [N, F], images [N, H, W] and images with channels of rank >= 4 ([N, C, H, W]
// or [N, H, W, C], C = 1 included); each row is flattened in C order. An [N, F, 1] array (rank 3,
// last axis 1) is an IoError: it is nearly always a column vector saved per row, and no loss
// takes a 3-D target; squeeze the last axis. Every value must convert to float32 exactly or
// within rounding: float16 always does; integers must lie within +-2^24 (16777216), past which
// float32 cannot hold every integer, and float64 within float32's range; otherwise an IoError
// names the file, the value and its index, e.g. "[3, 1]". Convert such an array yourself
// (.astype('float32')) when rounding is acceptable.
Tensor to_float_tensor(const Array& array);
// Class indices: int32 CPU tensor [N] from a rank-1 array (or [N, 1]) of any integer type, or of
// floats (float16 too) holding integers exactly, every value in int32's range; IoError naming
// `name_for_errors` and the first bad value.
Tensor to_labels(const Array& array, const std::string& name_for_errors);
// Checks that every label of an int32 tensor [N] lies in [0, classes); ValueError naming the
// first bad label, its row and `what` (the file it came from) otherwise. Any device.
void check_labels(const Tensor& labels, int64_t classes, const std::string& what);

// Writes a float32/float64/int32 tensor [N] or [N, M] (any device) as .npy (version 1.0, header
// padded to 64 bytes as numpy does). Atomic: temp file in the same folder, fsync, rename.
void save_npy(const std::string& path, const Tensor& tensor);
// Writes a tensor [N] (one value a line) or [N, M] (M comma-separated values a line) as .csv;
// floats in the shortest form that reads back to the same value. Atomic as save_npy.
void save_csv(const std::string& path, const Tensor& tensor);

}  // namespace mlpx
