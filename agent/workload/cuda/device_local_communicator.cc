// DeviceLocalCommunicator: a size-1 world whose bulk exchange is a device copy.
#include "agent/workload/cuda/device_local_communicator.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/compute/cuda/cuda_device.h"

namespace moecap {
namespace {
absl::Status Aborted() { return absl::CancelledError("communicator was aborted"); }
}  // namespace

absl::Status DeviceLocalCommunicator::AllToAll(const int64_t* send, int64_t* recv,
                                               size_t count_per_peer) {
  if (aborted_) return Aborted();
  if (count_per_peer > 0) std::memmove(recv, send, count_per_peer * sizeof(int64_t));
  return absl::OkStatus();
}

absl::Status DeviceLocalCommunicator::AllToAllV(const void* send,
                                                absl::Span<const int64_t> send_bytes, void* recv,
                                                absl::Span<const int64_t> recv_bytes) {
  if (aborted_) return Aborted();
  if (send_bytes.size() != 1 || recv_bytes.size() != 1 || send_bytes[0] != recv_bytes[0]) {
    return absl::InvalidArgumentError(
        absl::StrCat("AllToAllV on one rank needs one send and one receive count, equal; got ",
                     send_bytes.size(), " and ", recv_bytes.size()));
  }
  if (send_bytes[0] <= 0 || send == recv) return absl::OkStatus();
  return cuda::CudaCheck(cudaMemcpyAsync(recv, send, static_cast<size_t>(send_bytes[0]),
                                         cudaMemcpyDeviceToDevice, stream_),
                         "cuda-local AllToAllV (cudaMemcpyAsync device to device)");
}

absl::Status DeviceLocalCommunicator::Barrier() { return aborted_ ? Aborted() : absl::OkStatus(); }

absl::Status DeviceLocalCommunicator::AllReduceSum(int64_t*, size_t) {
  return aborted_ ? Aborted() : absl::OkStatus();
}

absl::Status DeviceLocalCommunicator::AllReduceSum(double*, size_t) {
  return aborted_ ? Aborted() : absl::OkStatus();
}

absl::Status DeviceLocalCommunicator::AllGather(const void* send, size_t bytes, void* recv) {
  if (aborted_) return Aborted();
  if (bytes > 0) std::memmove(recv, send, bytes);
  return absl::OkStatus();
}

}  // namespace moecap
