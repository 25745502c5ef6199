// CudaBackend (cuBLAS GEMMs against CpuBackend and a widened reference, zero sizes, dtypes) and
// the device probes. Skipped without a GPU, except the test that creating a backend on a host
// without one fails with a reason.
#include "agent/compute/cuda/cuda_backend.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <iostream>
#include <vector>

#include "agent/compute/cpu_backend.h"
#include "agent/compute/cuda/cuda_probes.h"
#include "agent/workload/random.h"
#include "tests/unit/agent/compute/cuda/cuda_test_util.h"

namespace moecap::cuda {
namespace {

std::vector<float> Uniform(uint64_t key, size_t count, float lo, float hi) {
  std::vector<float> out(count);
  for (size_t i = 0; i < count; ++i) out[i] = lo + (hi - lo) * Uniform01(key, i);
  return out;
}

TEST(CudaBackendWithoutDevice, CreateFailsWithTheReason) {
  if (CudaDevicePresent().ok()) GTEST_SKIP() << "a CUDA device is present";
  absl::StatusOr<std::unique_ptr<CudaBackend>> backend = CudaBackend::Create(0);
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kFailedPrecondition);
  // "cannot create the CUDA backend on device 0: no usable CUDA device: cudaGetDeviceCount
  // failed: cudaErrorNoDevice (...)" or similar: the device and CUDA's reason are named.
  EXPECT_NE(backend.status().message().find("device 0"), absl::string_view::npos)
      << backend.status();
  EXPECT_NE(backend.status().message().find("no usable CUDA device"), absl::string_view::npos)
      << backend.status();
}

using CudaBackendTest = CudaTest;

TEST_F(CudaBackendTest, DescribesItselfAndItsDtypes) {
  EXPECT_EQ(backend_->name(), "cuda-cublas");
  EXPECT_EQ(backend_->threads(), 1);
  const std::string config = backend_->LibraryConfig();
  EXPECT_NE(config.find("cuBLAS"), std::string::npos) << config;
  EXPECT_NE(config.find("sm_"), std::string::npos) << config;
  std::cout << "device: " << config << "\n";
  EXPECT_TRUE(backend_->CheckDtype(Dtype::kFp32).ok());
  EXPECT_TRUE(backend_->CheckDtype(Dtype::kBf16).ok());
  for (const Dtype dtype : {Dtype::kFp16, Dtype::kFp8}) {
    const absl::Status s = backend_->CheckDtype(dtype);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
    EXPECT_NE(s.message().find(DtypeName(dtype)), absl::string_view::npos) << s;
  }
  // A device the runtime does not have.
  EXPECT_EQ(CudaBackend::Create(1 << 20).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CudaBackendTest, AllocateGivesZeroedMemory) {
  absl::StatusOr<Buffer> buffer = backend_->Allocate(1000);
  ASSERT_TRUE(buffer.ok()) << buffer.status();
  EXPECT_GE(buffer->bytes(), 1000u);
  const std::vector<uint8_t> bytes = Get<uint8_t>(buffer->data(), 1000);
  EXPECT_EQ(bytes, std::vector<uint8_t>(1000, 0));
}

// m×n×k with padded leading dimensions (lda = k + 3, ldw = k + 5, ldc = n + 2): fp32 against
// CpuBackend (OpenBLAS), fresh and accumulating.
TEST_F(CudaBackendTest, Fp32MatMulMatchesCpuBackend) {
  CpuBackend cpu(1);
  const int64_t m = 37, n = 53, k = 129;
  const int64_t lda = k + 3, ldw = k + 5, ldc = n + 2;
  const std::vector<float> a = Uniform(1, m * lda, -1.0f, 1.0f);
  const std::vector<float> w = Uniform(2, n * ldw, -1.0f, 1.0f);
  const std::vector<float> c0 = Uniform(3, m * ldc, -1.0f, 1.0f);
  Buffer da = Put(a);
  Buffer dw = Put(w);
  for (const bool accumulate : {false, true}) {
    SCOPED_TRACE(testing::Message() << "accumulate=" << accumulate);
    std::vector<float> want = c0;
    ASSERT_TRUE(cpu.MatMul(Dtype::kFp32, m, n, k, a.data(), lda, w.data(), ldw, want.data(), ldc,
                           accumulate)
                    .ok());
    Buffer dc = Put(c0);
    ASSERT_TRUE(backend_
                    ->MatMul(Dtype::kFp32, m, n, k, da.data(), lda, dw.data(), ldw, dc.as<float>(),
                             ldc, accumulate)
                    .ok());
    const std::vector<float> got = Get<float>(dc.data(), m * ldc);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < ldc; ++j) {
        // Sums of 129 products of magnitude < 1: fp32 rounding stays far below 1e-4. Padding
        // columns (j ≥ n) must be left as they were.
        ASSERT_NEAR(got[i * ldc + j], want[i * ldc + j], j < n ? 1e-4 : 0.0)
            << "C[" << i << "][" << j << "]";
      }
    }
  }
}

// bf16 operands against a double-precision product of the same (widened) bf16 values, with fp32
// and bf16 results.
TEST_F(CudaBackendTest, Bf16MatMulMatchesTheWidenedReference) {
  const int64_t m = 19, n = 40, k = 256;
  std::vector<uint16_t> a(m * k);
  std::vector<uint16_t> w(n * k);
  const std::vector<float> af = Uniform(4, a.size(), -1.0f, 1.0f);
  const std::vector<float> wf = Uniform(5, w.size(), -1.0f, 1.0f);
  for (size_t i = 0; i < a.size(); ++i) a[i] = FloatToBf16(af[i]);
  for (size_t i = 0; i < w.size(); ++i) w[i] = FloatToBf16(wf[i]);
  std::vector<double> want(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t p = 0; p < k; ++p) {
        want[i * n + j] += static_cast<double>(Bf16ToFloat(a[i * k + p])) *
                           static_cast<double>(Bf16ToFloat(w[j * k + p]));
      }
    }
  }
  Buffer da = Put(a);
  Buffer dw = Put(w);
  Buffer dc = Zeros<float>(m * n);
  ASSERT_TRUE(
      backend_->MatMul(Dtype::kBf16, m, n, k, da.data(), k, dw.data(), k, dc.as<float>(), n, false)
          .ok());
  const std::vector<float> got = Get<float>(dc.data(), m * n);
  for (int64_t i = 0; i < m * n; ++i) ASSERT_NEAR(got[i], want[i], 1e-2) << i;

  // bf16 output: the fp32 result rounded once, so within half a bf16 ulp (2^-8 relative) of the
  // reference, plus the accumulation error.
  Buffer dc16 = Zeros<uint16_t>(m * n);
  ASSERT_TRUE(backend_
                  ->MatMulTo(Dtype::kBf16, Dtype::kBf16, m, n, k, da.data(), k, dw.data(), k,
                             dc16.data(), n, false)
                  .ok());
  const std::vector<uint16_t> got16 = Get<uint16_t>(dc16.data(), m * n);
  for (int64_t i = 0; i < m * n; ++i) {
    ASSERT_NEAR(Bf16ToFloat(got16[i]), want[i], 1e-2 + std::fabs(want[i]) * 0x1.0p-8) << i;
  }
  // A bf16 result from fp32 operands is refused.
  EXPECT_EQ(backend_
                ->MatMulTo(Dtype::kFp32, Dtype::kBf16, m, n, k, da.data(), k, dw.data(), k,
                           dc16.data(), n, false)
                .code(),
            absl::StatusCode::kUnimplemented);
}

TEST_F(CudaBackendTest, ZeroSizedProducts) {
  const int64_t m = 3, n = 4, ldc = 6;
  const std::vector<float> c0(m * ldc, 2.5f);
  Buffer dummy = Zeros<float>(16);
  // k = 0, accumulating: C unchanged.
  Buffer dc = Put(c0);
  ASSERT_TRUE(backend_
                  ->MatMul(Dtype::kFp32, m, n, 0, dummy.data(), 1, dummy.data(), 1, dc.as<float>(),
                           ldc, true)
                  .ok());
  EXPECT_EQ(Get<float>(dc.data(), m * ldc), c0);
  // k = 0: the m×n block is zeroed, the padding columns kept.
  ASSERT_TRUE(backend_
                  ->MatMul(Dtype::kBf16, m, n, 0, dummy.data(), 1, dummy.data(), 1, dc.as<float>(),
                           ldc, false)
                  .ok());
  const std::vector<float> zeroed = Get<float>(dc.data(), m * ldc);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < ldc; ++j) EXPECT_EQ(zeroed[i * ldc + j], j < n ? 0.0f : 2.5f);
  }
  // m = 0 and n = 0: nothing happens (even with null C).
  EXPECT_TRUE(
      backend_->MatMul(Dtype::kFp32, 0, n, 8, nullptr, 8, nullptr, 8, nullptr, ldc, false).ok());
  EXPECT_TRUE(
      backend_->MatMul(Dtype::kFp32, m, 0, 8, nullptr, 8, nullptr, 8, nullptr, ldc, false).ok());
  EXPECT_TRUE(backend_->Synchronize().ok());
}

TEST_F(CudaBackendTest, ElementwiseOperationsRunOnTheStream) {
  CpuBackend cpu(1);
  const int64_t rows = 3, f = 50;
  const std::vector<float> gate_up = Uniform(6, rows * 2 * f, -5.0f, 5.0f);
  std::vector<uint16_t> want(rows * f);
  cpu.SwiGlu(rows, f, gate_up.data(), Dtype::kBf16, want.data());
  Buffer dgate_up = Put(gate_up);
  Buffer out = Zeros<uint16_t>(rows * f);
  backend_->SwiGlu(rows, f, dgate_up.as<float>(), Dtype::kBf16, out.data());
  const std::vector<uint16_t> got = Get<uint16_t>(out.data(), rows * f);
  for (int64_t i = 0; i < rows * f; ++i) {
    // The same float rounded the same way; one bf16 step of slack in case the fp32 values differ
    // in their last bit.
    ASSERT_LE(std::abs(static_cast<int>(got[i]) - static_cast<int>(want[i])), 1) << i;
  }
  // A void call's launch error is kept for Synchronize.
  backend_->FromFloat(gate_up.data(), -1, Dtype::kBf16, out.data());
  EXPECT_EQ(backend_->Synchronize().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(backend_->Synchronize().ok());
}

TEST_F(CudaBackendTest, ProbesReturnPositiveFiniteFigures) {
  absl::StatusOr<double> bandwidth = ProbeCopyBandwidth(*backend_);
  ASSERT_TRUE(bandwidth.ok()) << bandwidth.status();
  EXPECT_TRUE(std::isfinite(*bandwidth) && *bandwidth > 0) << *bandwidth;
  absl::StatusOr<double> flops = ProbeGemmFlops(*backend_, Dtype::kBf16);
  ASSERT_TRUE(flops.ok()) << flops.status();
  EXPECT_TRUE(std::isfinite(*flops) && *flops > 0) << *flops;
  std::cout << "copy bandwidth (read + write): " << *bandwidth / 1e9
            << " GB/s; bf16 GEMM: " << *flops / 1e12 << " TFLOP/s\n";
}

}  // namespace
}  // namespace moecap::cuda
