// The one-rank Communicator of the GPU engine ("cuda-local"): AllToAllV takes DEVICE pointers and
// is a device-to-device copy enqueued on the engine's stream (so it runs in stream order, without
// a host synchronisation, as NCCL's copy to self would); the host-pointer calls (AllToAll,
// AllReduceSum, AllGather, Barrier) are local copies, as LocalCommunicator's.
#ifndef MOECAP_AGENT_WORKLOAD_CUDA_DEVICE_LOCAL_COMMUNICATOR_H_
#define MOECAP_AGENT_WORKLOAD_CUDA_DEVICE_LOCAL_COMMUNICATOR_H_

#include <cuda_runtime_api.h>

#include <string>

#include "agent/comm/communicator.h"

namespace moecap {

class DeviceLocalCommunicator : public Communicator {
 public:
  // `stream`: where AllToAllV's copy is enqueued; RunCudaRank sets it to its backend's stream
  // (set_stream) before the first step, since the caller creates the communicator first.
  explicit DeviceLocalCommunicator(cudaStream_t stream = nullptr) : stream_(stream) {}

  void set_stream(cudaStream_t stream) { stream_ = stream; }
  cudaStream_t stream() const { return stream_; }

  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "cuda-local"; }
  CommMemory memory() const override { return CommMemory::kDevice; }
  absl::Status AllToAll(const int64_t* send, int64_t* recv, size_t count_per_peer) override;
  // Enqueues the copy and returns at once: the result is ready in `stream` order.
  absl::Status AllToAllV(const void* send, absl::Span<const int64_t> send_bytes, void* recv,
                         absl::Span<const int64_t> recv_bytes) override;
  absl::Status Barrier() override;
  absl::Status AllReduceSum(int64_t* data, size_t count) override;
  absl::Status AllReduceSum(double* data, size_t count) override;
  absl::Status AllGather(const void* send, size_t bytes, void* recv) override;
  void Abort() override { aborted_ = true; }

 private:
  cudaStream_t stream_;
  bool aborted_ = false;
};

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_CUDA_DEVICE_LOCAL_COMMUNICATOR_H_
