// Communicator over NCCL for the GPU backend: one rank per GPU, the unique id exchanged through a
// KvStore (the coordinator's rendezvous store in a cluster, a FileKvStore standalone). The
// communicator is created non-blocking, so every wait (creation and each collective) polls with a
// deadline and a lost or stuck peer ends in ncclCommAbort and an error, never a hung rank.
//
// Memory contract:
// - AllToAllV takes DEVICE pointers (the dispatch and combine buffers of the GPU layer): grouped
//   ncclSend/ncclRecv of bytes, the chunk to itself a device-to-device copy, zero-byte peers
//   skipped. It reads `send` on the communicator's stream, so the caller must have finished
//   writing it (synchronise the producing stream first, or share the stream via
//   NcclOptions::stream).
// - AllToAll, AllReduceSum, AllGather and Barrier take HOST pointers (counts, histograms,
//   statistics): they are staged through a pinned host buffer and a device buffer.
// Every call returns once its result is complete (the stream has drained).
#ifndef MOECAP_AGENT_COMM_NCCL_NCCL_COMMUNICATOR_H_
#define MOECAP_AGENT_COMM_NCCL_NCCL_COMMUNICATOR_H_

#include <cuda_runtime_api.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/comm/communicator.h"
#include "agent/comm/kv_store.h"
#include "common/clock.h"

namespace moecap {

struct NcclOptions {
  int rank = 0;
  int size = 1;
  int device = 0;  // CUDA ordinal this rank runs on (NCCL refuses two ranks on one device)
  // Keys of this job in the store; the unique id goes under key_prefix + "/nccl-unique-id".
  std::string key_prefix = "moecap";
  // Bounds the rendezvous (waiting for rank 0's id), the communicator's creation and every
  // collective.
  absl::Duration timeout = absl::Seconds(60);
  // The stream the collectives run on: null makes the communicator create its own on `device`;
  // given (the compute engine's stream), it is used and not destroyed.
  cudaStream_t stream = nullptr;
};

// The key rank 0 publishes the unique id under.
std::string NcclUniqueIdKey(absl::string_view key_prefix);

// Joins the rendezvous and creates the communicator. FailedPrecondition (at once, without
// touching the store) when there is no CUDA device or `options.device` does not exist;
// InvalidArgument for a bad rank/size; DeadlineExceeded when rank 0's id or the peers do not
// show up within the timeout. `store` is only used during the call. `clock` times the creation
// and every collective's deadline and poll pauses; it must outlive the communicator.
absl::StatusOr<std::unique_ptr<Communicator>> ConnectNccl(KvStore& store,
                                                          const NcclOptions& options,
                                                          const Clock& clock = SystemClock());

// The number of CUDA devices this process sees (0 without a driver or a device), and why there
// are none when that is the case (for skip messages and logs).
int CudaDeviceCount(std::string* why_none = nullptr);

}  // namespace moecap

#endif  // MOECAP_AGENT_COMM_NCCL_NCCL_COMMUNICATOR_H_
