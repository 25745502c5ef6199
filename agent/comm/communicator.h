// The collectives the expert-parallel workload needs, behind one interface: Gloo over TCP for the
// CPU backend (GlooCommunicator), NCCL for the GPU backend (issue 6), and a one-rank
// LocalCommunicator. AllToAllV's buffers are in the memory the backend computes in (host memory
// for Gloo, device memory for NCCL); the other calls always take host memory (counts, histograms,
// statistics), which NCCL stages through the device (agent/comm/nccl/nccl_communicator.h). Every
// call is collective: all ranks call it, in the same order.
#ifndef MOECAP_AGENT_COMM_COMMUNICATOR_H_
#define MOECAP_AGENT_COMM_COMMUNICATOR_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace moecap {

// Where AllToAllV's buffers live: host memory (Gloo, the one-rank local exchange) or device
// memory (NCCL, the GPU engine's one-rank copy). An engine refuses a communicator whose memory
// is not the one it computes in.
enum class CommMemory { kHost, kDevice };

// Not thread-safe: one thread drives a communicator.
class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "gloo-tcp", "local", "nccl": for reports only; decide nothing by it (see memory()).
  virtual std::string name() const = 0;
  virtual CommMemory memory() const = 0;

  // Every rank sends `count_per_peer` integers to every rank (itself included): send[p·count ..
  // (p+1)·count) goes to rank p, and recv[p·count ..] receives what rank p sent to this rank.
  virtual absl::Status AllToAll(const int64_t* send, int64_t* recv, size_t count_per_peer) = 0;

  // All-to-all with a byte count per peer: `send` holds the chunks for ranks 0..size-1 back to
  // back (send_bytes[p] bytes for rank p), `recv` receives the chunks from ranks 0..size-1 back
  // to back (recv_bytes[p] from rank p). The counts must agree pairwise (the caller exchanged
  // them with AllToAll first); the chunk to itself is copied locally.
  virtual absl::Status AllToAllV(const void* send, absl::Span<const int64_t> send_bytes, void* recv,
                                 absl::Span<const int64_t> recv_bytes) = 0;

  virtual absl::Status Barrier() = 0;

  // In-place element-wise sums over all ranks (statistics, histograms).
  virtual absl::Status AllReduceSum(int64_t* data, size_t count) = 0;
  virtual absl::Status AllReduceSum(double* data, size_t count) = 0;

  // Every rank contributes `bytes` bytes; `recv` (size()·bytes) receives rank 0's, then rank 1's...
  virtual absl::Status AllGather(const void* send, size_t bytes, void* recv) = 0;

  // Tears the connections down so that the peers' pending and later collectives fail fast
  // instead of waiting for their timeouts; later calls here fail at once. Idempotent. Call it
  // from the driving thread after a failed collective (a cancel from outside kills the process).
  virtual void Abort() = 0;
};

}  // namespace moecap

#endif  // MOECAP_AGENT_COMM_COMMUNICATOR_H_
