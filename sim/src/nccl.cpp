// The simulator's NCCL (sim/include/nccl.h): communicators of one rank, whose collectives are
// copies queued as stream work. See sim/README.md ("NCCL").
#include "nccl.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>

#include "cuda_runtime_api.h"
#include "mlpx_sim/runtime.h"

struct ncclComm {
  int device = 0;
  bool destroyed = false;
};

namespace {

thread_local std::string last_error;
thread_local int group_depth = 0;

ncclResult_t fail(ncclResult_t code, std::string why) {
  last_error = std::move(why);
  return code;
}

size_t element_bytes(ncclDataType_t type) {
  switch (type) {
    case ncclInt8:
    case ncclUint8:
      return 1;
    case ncclFloat16:
      return 2;
    case ncclInt32:
    case ncclUint32:
    case ncclFloat32:
      return 4;
    case ncclInt64:
    case ncclUint64:
    case ncclFloat64:
      return 8;
  }
  return 0;
}

// The checks NCCL makes at the call, then the copy recv <- send of `bytes` as stream work
// (nothing to copy in place).
ncclResult_t enqueue_copy(const char* op, const void* send, void* recv, size_t count,
                          ncclDataType_t type, ncclComm_t comm, cudaStream_t stream) {
  if (comm == nullptr || comm->destroyed) {
    return fail(ncclInvalidArgument, std::string(op) + ": invalid communicator");
  }
  const size_t bytes = element_bytes(type) * count;
  if (element_bytes(type) == 0) {
    return fail(ncclInvalidArgument, std::string(op) + ": invalid data type");
  }
  if (count == 0) return ncclSuccess;
  if (!mlpx_sim::is_device_pointer(send) || !mlpx_sim::is_device_pointer(recv)) {
    return fail(ncclInvalidArgument,
                std::string(op) + ": the send and receive buffers must be device memory");
  }
  const std::string what = std::string("nccl ") + op;
  const cudaError_t queued = mlpx_sim::enqueue_work(stream, what, [=] {
    std::string why;
    if (!mlpx_sim::check_device_range(send, bytes, why)) {
      mlpx_sim::raise_fault(cudaErrorIllegalAddress, what + ": send buffer: " + why);
      return;
    }
    if (!mlpx_sim::check_device_range(recv, bytes, why)) {
      mlpx_sim::raise_fault(cudaErrorIllegalAddress, what + ": receive buffer: " + why);
      return;
    }
    if (send != recv) std::memmove(recv, send, bytes);
  });
  if (queued != cudaSuccess) {
    return fail(ncclUnhandledCudaError, what + ": " + cudaGetErrorString(queued));
  }
  return ncclSuccess;
}

ncclResult_t check_sum(const char* op, ncclRedOp_t reduction) {
  if (reduction != ncclSum) {
    return fail(ncclInvalidArgument, std::string(op) + ": the simulator models ncclSum only");
  }
  return ncclSuccess;
}

ncclResult_t check_root(const char* op, int root) {
  if (root != 0) {
    return fail(ncclInvalidArgument,
                std::string(op) + ": root " + std::to_string(root) + " of a 1-rank communicator");
  }
  return ncclSuccess;
}

}  // namespace

extern "C" {

ncclResult_t ncclGetVersion(int* version) {
  if (version == nullptr) return fail(ncclInvalidArgument, "ncclGetVersion: null pointer");
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* uniqueId) {
  if (uniqueId == nullptr) return fail(ncclInvalidArgument, "ncclGetUniqueId: null pointer");
  static std::atomic<uint64_t> next{1};
  std::memset(uniqueId->internal, 0, sizeof uniqueId->internal);
  const uint64_t id = next++;
  std::memcpy(uniqueId->internal, &id, sizeof id);
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId, int rank) {
  if (comm == nullptr) return fail(ncclInvalidArgument, "ncclCommInitRank: null pointer");
  if (nranks != 1 || rank != 0) {
    return fail(ncclInvalidUsage,
                "ncclCommInitRank: the simulator forms communicators of one "
                "rank only, asked for rank " +
                    std::to_string(rank) + " of " + std::to_string(nranks));
  }
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    return fail(ncclUnhandledCudaError, "ncclCommInitRank: no current device");
  }
  *comm = new ncclComm{device, false};
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (comm == nullptr) return fail(ncclInvalidArgument, "ncclCommDestroy: invalid communicator");
  // Work already queued holds no reference to the communicator: it only copies.
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) { return ncclCommDestroy(comm); }

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError) {
  if (comm == nullptr || asyncError == nullptr) {
    return fail(ncclInvalidArgument, "ncclCommGetAsyncError: null pointer");
  }
  *asyncError = ncclSuccess;  // one rank has no peer to lose
  return ncclSuccess;
}

const char* ncclGetErrorString(ncclResult_t result) {
  switch (result) {
    case ncclSuccess:
      return "no error";
    case ncclUnhandledCudaError:
      return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError:
      return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError:
      return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument:
      return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage:
      return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError:
      return "remote process exited or there was a network error";
    case ncclInProgress:
      return "NCCL operation in progress";
  }
  return "unknown result code";
}

const char* ncclGetLastError(ncclComm_t) { return last_error.c_str(); }

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream) {
  if (const ncclResult_t r = check_sum("ncclAllReduce", op); r != ncclSuccess) return r;
  return enqueue_copy("ncclAllReduce", sendbuff, recvbuff, count, datatype, comm, stream);
}

ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                               ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                               cudaStream_t stream) {
  if (const ncclResult_t r = check_sum("ncclReduceScatter", op); r != ncclSuccess) return r;
  return enqueue_copy("ncclReduceScatter", sendbuff, recvbuff, recvcount, datatype, comm, stream);
}

ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                           ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream) {
  return enqueue_copy("ncclAllGather", sendbuff, recvbuff, sendcount, datatype, comm, stream);
}

ncclResult_t ncclReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                        ncclRedOp_t op, int root, ncclComm_t comm, cudaStream_t stream) {
  if (const ncclResult_t r = check_sum("ncclReduce", op); r != ncclSuccess) return r;
  if (const ncclResult_t r = check_root("ncclReduce", root); r != ncclSuccess) return r;
  return enqueue_copy("ncclReduce", sendbuff, recvbuff, count, datatype, comm, stream);
}

ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count,
                           ncclDataType_t datatype, int root, ncclComm_t comm,
                           cudaStream_t stream) {
  if (const ncclResult_t r = check_root("ncclBroadcast", root); r != ncclSuccess) return r;
  return enqueue_copy("ncclBroadcast", sendbuff, recvbuff, count, datatype, comm, stream);
}

ncclResult_t ncclGroupStart(void) {
  ++group_depth;
  return ncclSuccess;
}

ncclResult_t ncclGroupEnd(void) {
  if (group_depth == 0) return fail(ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart");
  --group_depth;
  return ncclSuccess;
}

}  // extern "C"
