// Warp-level matrix multiply-accumulate as PTX's `mma.sync.aligned.m16n8k16.row.col.f32.bf16.
// bf16.f32` computes it, for kernels compiled as C++: D (16x8, fp32) = A (16x16, bf16) *
// B (16x8, bf16) + C (16x8, fp32), each operand spread over the 32 lanes of a warp in the
// fragment layout the PTX ISA documents ("Matrix Fragments for mma.m16n8k16 with floating point
// type"). With groupID = lane / 4 and t = lane % 4:
//   A: 4 registers of 2 bf16 (the lower half holds the even element a0, a2, ...);
//      a0,a1: row groupID,     columns 2t, 2t+1;   a2,a3: row groupID+8, columns 2t, 2t+1;
//      a4,a5: row groupID,     columns 2t+8, 2t+9; a6,a7: row groupID+8, columns 2t+8, 2t+9.
//   B: 2 registers of 2 bf16; b0,b1: rows (k) 2t, 2t+1; b2,b3: rows 2t+8, 2t+9; column groupID.
//   C, D: 4 floats; c0,c1: row groupID, columns 2t, 2t+1; c2,c3: row groupID+8, same columns.
// A kernel that places an element in the wrong register or half therefore computes a wrong
// product here, as it would on the device.
//
// The call is a warp rendezvous ("mma.sync" in fault messages): all 32 lanes of the warp must
// reach an mma (the instruction is .aligned: the block's size must be a multiple of 32 and no
// lane may have ended), and like a shuffle it orders the lanes' earlier shared-memory accesses
// for the racecheck. Each product of two bf16 values is exact in fp32; the 16 products are summed
// in fp32, k ascending, then C is added (the hardware's order of accumulation is not specified:
// compare with a tolerance, never bit for bit). Implemented by sim/src/device_extensions.cpp.
#pragma once

#include <cstdint>

namespace mlpx_sim {

void mma_m16n8k16_bf16_at(const char* file, int line, float d[4], const uint32_t a[4],
                          const uint32_t b[2], const float c[4]);

}  // namespace mlpx_sim
