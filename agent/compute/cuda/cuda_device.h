// Small CUDA runtime helpers shared by the GPU backend: turning cudaError_t into absl::Status with
// the call named, and asking whether a usable device is present at all (so a host without a GPU
// or driver reports why instead of failing deep inside a kernel launch).
#ifndef MOECAP_AGENT_COMPUTE_CUDA_CUDA_DEVICE_H_
#define MOECAP_AGENT_COMPUTE_CUDA_CUDA_DEVICE_H_

#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace moecap::cuda {

// OK for cudaSuccess; otherwise an error naming `what` (the call or kernel) and CUDA's own name
// and description of the error. Out-of-memory maps to ResourceExhausted, a missing driver or
// device to FailedPrecondition, anything else to Internal.
absl::Status CudaCheck(cudaError_t error, absl::string_view what);

// OK when the CUDA runtime sees at least one device; otherwise FailedPrecondition saying why
// (no driver, driver too old for this runtime, no device). Clears the runtime's sticky last error
// so a failed probe does not leak into the next launch check.
absl::Status CudaDevicePresent();

}  // namespace moecap::cuda

#endif  // MOECAP_AGENT_COMPUTE_CUDA_CUDA_DEVICE_H_
