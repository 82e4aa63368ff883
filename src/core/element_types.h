// Every element type mlpx reads or writes, in one table: its name, size, and its code in each
// file format (numpy descr, safetensors dtype, IDX type byte), and the Tensor dtype it is,
// when it is one. Tensor, the .npy / IDX readers and the safetensors codec all look here.
// Internal.
#pragma once

#include <cstddef>
#include <string_view>

#include "mlpx/array_io.h"
#include "mlpx/tensor.h"

namespace mlpx::detail {

struct ElementTypeInfo {
  ElementType type;
  const char* name;         // "float32"
  size_t size;              // bytes
  const char* npy;          // numpy descr, little-endian: "<f4"
  const char* safetensors;  // "F32"; nullptr: not stored in checkpoints
  int idx;                  // IDX type byte; -1: none
  bool is_dtype;            // whether a Tensor can hold it, as `dtype`
  DType dtype;
};

// Ordered by kind then size, the order error messages list them in.
inline constexpr ElementTypeInfo kElementTypes[] = {
    {ElementType::kFloat16, "float16", 2, "<f2", nullptr, -1, false, DType::kFloat32},
    {ElementType::kFloat32, "float32", 4, "<f4", "F32", 0x0D, true, DType::kFloat32},
    {ElementType::kFloat64, "float64", 8, "<f8", "F64", 0x0E, true, DType::kFloat64},
    {ElementType::kInt8, "int8", 1, "|i1", nullptr, 0x09, false, DType::kFloat32},
    {ElementType::kInt16, "int16", 2, "<i2", nullptr, 0x0B, false, DType::kFloat32},
    {ElementType::kInt32, "int32", 4, "<i4", "I32", 0x0C, true, DType::kInt32},
    {ElementType::kInt64, "int64", 8, "<i8", nullptr, -1, false, DType::kFloat32},
    {ElementType::kUint8, "uint8", 1, "|u1", nullptr, 0x08, false, DType::kFloat32},
    {ElementType::kUint16, "uint16", 2, "<u2", nullptr, -1, false, DType::kFloat32},
    {ElementType::kUint32, "uint32", 4, "<u4", nullptr, -1, false, DType::kFloat32},
    {ElementType::kUint64, "uint64", 8, "<u8", nullptr, -1, false, DType::kFloat32},
};

inline const ElementTypeInfo& element_type_info(ElementType type) {
  for (const ElementTypeInfo& info : kElementTypes) {
    if (info.type == type) return info;
  }
  return kElementTypes[0];  // unreachable for a valid enum value
}

inline const ElementTypeInfo& element_type_info(DType dtype) {
  for (const ElementTypeInfo& info : kElementTypes) {
    if (info.is_dtype && info.dtype == dtype) return info;
  }
  return kElementTypes[0];  // unreachable for a valid enum value
}

// The entry whose code in a file format matches, or nullptr.
inline const ElementTypeInfo* find_npy_descr(std::string_view descr) {
  for (const ElementTypeInfo& info : kElementTypes) {
    if (descr == info.npy) return &info;
  }
  // numpy writes one-byte types with '|' and reads them with '<' as well.
  if (descr == "<u1") return &element_type_info(ElementType::kUint8);
  if (descr == "<i1") return &element_type_info(ElementType::kInt8);
  return nullptr;
}
inline const ElementTypeInfo* find_safetensors_code(std::string_view code) {
  for (const ElementTypeInfo& info : kElementTypes) {
    if (info.safetensors != nullptr && code == info.safetensors) return &info;
  }
  return nullptr;
}
inline const ElementTypeInfo* find_idx_code(int code) {
  for (const ElementTypeInfo& info : kElementTypes) {
    if (info.idx == code) return &info;
  }
  return nullptr;
}

}  // namespace mlpx::detail
