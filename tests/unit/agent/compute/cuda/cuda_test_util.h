// Shared fixture of the CUDA kernel and backend tests: skips when no GPU is usable (CI has none),
// otherwise makes a CudaBackend on device 0 and moves vectors to and from the device.
#ifndef MOECAP_TESTS_UNIT_AGENT_COMPUTE_CUDA_CUDA_TEST_UTIL_H_
#define MOECAP_TESTS_UNIT_AGENT_COMPUTE_CUDA_CUDA_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "agent/compute/cuda/cuda_backend.h"
#include "agent/compute/cuda/cuda_device.h"

namespace moecap::cuda {

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (absl::Status s = CudaDevicePresent(); !s.ok()) {
      GTEST_SKIP() << "needs a CUDA device: " << s.message();
    }
    absl::StatusOr<std::unique_ptr<CudaBackend>> backend = CudaBackend::Create(0);
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = *std::move(backend);
  }

  // A device copy of `host` (at least one element's room, so empty vectors get a valid pointer).
  template <typename T>
  Buffer Put(const std::vector<T>& host) {
    absl::StatusOr<Buffer> buffer =
        backend_->Allocate(std::max<size_t>(1, host.size()) * sizeof(T));
    EXPECT_TRUE(buffer.ok()) << buffer.status();
    if (!buffer.ok()) return Buffer();
    EXPECT_TRUE(backend_->Upload(buffer->data(), host.data(), host.size() * sizeof(T)).ok());
    return *std::move(buffer);
  }

  // Zeroed device memory for `count` elements of T.
  template <typename T>
  Buffer Zeros(size_t count) {
    absl::StatusOr<Buffer> buffer = backend_->Allocate(std::max<size_t>(1, count) * sizeof(T));
    EXPECT_TRUE(buffer.ok()) << buffer.status();
    return buffer.ok() ? *std::move(buffer) : Buffer();
  }

  // Waits for the stream (so kernel errors surface here), then copies `count` elements back.
  template <typename T>
  std::vector<T> Get(const void* device, size_t count) {
    std::vector<T> host(count);
    const absl::Status sync = backend_->Synchronize();
    EXPECT_TRUE(sync.ok()) << sync;
    const absl::Status copy = backend_->Download(host.data(), device, count * sizeof(T));
    EXPECT_TRUE(copy.ok()) << copy;
    return host;
  }

  cudaStream_t stream() const { return backend_->stream(); }

  std::unique_ptr<CudaBackend> backend_;
};

}  // namespace moecap::cuda

#endif  // MOECAP_TESTS_UNIT_AGENT_COMPUTE_CUDA_CUDA_TEST_UTIL_H_
