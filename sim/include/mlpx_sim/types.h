// The CUDA vector types the kernels and the runtime use, as plain host structs with CUDA's
// layout and alignment. Part of the simulator's stand-in for <cuda_runtime.h>.
#pragma once

struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x = 1, y = 1, z = 1;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}  // NOLINT: implicit, as in CUDA
  constexpr operator uint3() const { return {x, y, z}; }
};

struct alignas(16) float4 {
  float x, y, z, w;
};

struct alignas(8) ushort4 {
  unsigned short x, y, z, w;
};

struct alignas(8) float2 {
  float x, y;
};
