// CpuBackend: GEMMs against a naive product, SwiGLU against the formula, bf16 rounding, dtypes.
#include "agent/compute/cpu_backend.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "agent/compute/small_rows_matmul.h"

namespace moecap {
namespace {

// C = A·Wᵀ with A m×k and W n×k, row-major, in double.
std::vector<double> Naive(int m, int n, int k, const std::vector<float>& a,
                          const std::vector<float>& w) {
  std::vector<double> c(static_cast<size_t>(m * n), 0.0);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      for (int p = 0; p < k; ++p) c[i * n + j] += static_cast<double>(a[i * k + p]) * w[j * k + p];
    }
  }
  return c;
}

std::vector<float> Ramp(int count, float step) {
  std::vector<float> v(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) v[i] = std::sin(static_cast<float>(i) * step);
  return v;
}

TEST(CpuBackendTest, MatMulMatchesTheNaiveProductOnEveryPath) {
  CpuBackend backend(1);
  // Up to small_rows::kMaxRows (8) rows: the small-rows kernel of this CPU (or sgemv/sgemm
  // without AVX2); more: sgemm. k = 1037 leaves a remainder after the vector loop; n = 7 leaves
  // weight rows outside the 4- and 2-row tiles.
  for (int m : {1, 2, 3, 4, 5, 7, 8, 12}) {
    const int n = 7, k = 1037;
    const std::vector<float> a = Ramp(m * k, 0.7f), w = Ramp(n * k, 0.3f);
    std::vector<float> c(static_cast<size_t>(m * n), 1.0f);
    ASSERT_TRUE(
        backend.MatMul(Dtype::kFp32, m, n, k, a.data(), k, w.data(), k, c.data(), n, false).ok());
    const std::vector<double> want = Naive(m, n, k, a, w);
    for (int i = 0; i < m * n; ++i) EXPECT_NEAR(c[i], want[i], 1e-4) << "m=" << m << " i=" << i;
    // Accumulating adds the product again: 2·A·Wᵀ.
    ASSERT_TRUE(
        backend.MatMul(Dtype::kFp32, m, n, k, a.data(), k, w.data(), k, c.data(), n, true).ok());
    for (int i = 0; i < m * n; ++i) EXPECT_NEAR(c[i], 2 * want[i], 2e-4) << "m=" << m;
  }
}

// Each instruction set's kernel this CPU can run, on every row count and tile remainder, with
// leading dimensions wider than the matrices.
TEST(CpuBackendTest, SmallRowsKernelsMatchTheNaiveProduct) {
  using small_rows::Isa;
  std::vector<Isa> isas;
  if (small_rows::BestIsa() != Isa::kNone) isas.push_back(Isa::kAvx2);
  if (small_rows::BestIsa() == Isa::kAvx512) isas.push_back(Isa::kAvx512);
  if (isas.empty()) GTEST_SKIP() << "this CPU has neither AVX2 + FMA nor AVX-512";
  const int n = 11, k = 45, lda = 50, ldw = 47, ldc = 13;
  for (Isa isa : isas) {
    for (int m = 1; m <= small_rows::kMaxRows; ++m) {
      const std::vector<float> a = Ramp(m * lda, 0.7f), w = Ramp(n * ldw, 0.3f);
      std::vector<float> c(static_cast<size_t>(m * ldc), 5.0f);
      (isa == Isa::kAvx512 ? small_rows::MatMulAvx512 : small_rows::MatMulAvx2)(
          m, n, k, a.data(), lda, w.data(), ldw, c.data(), ldc, /*accumulate=*/true);
      for (int r = 0; r < m; ++r) {
        for (int j = 0; j < ldc; ++j) {
          double want = 5.0;
          if (j < n) {
            for (int i = 0; i < k; ++i) want += double{a[r * lda + i]} * w[j * ldw + i];
          }
          EXPECT_NEAR(c[r * ldc + j], want, 1e-4) << "isa " << static_cast<int>(isa) << " m=" << m;
        }
      }
    }
  }
}

// A weight matrix of 16 MiB or more is split over the backend's threads by output rows.
TEST(CpuBackendTest, ThreadedSmallRowsProductMatchesTheNaiveProduct) {
  CpuBackend backend(3);
  const int m = 3, n = 4099, k = 1024;
  const std::vector<float> a = Ramp(m * k, 0.7f), w = Ramp(n * k, 0.3f);
  std::vector<float> c(static_cast<size_t>(m * n));
  ASSERT_TRUE(
      backend.MatMul(Dtype::kFp32, m, n, k, a.data(), k, w.data(), k, c.data(), n, false).ok());
  const std::vector<double> want = Naive(m, n, k, a, w);
  for (int i = 0; i < m * n; ++i) ASSERT_NEAR(c[i], want[i], 1e-3) << "i=" << i;
}

TEST(CpuBackendTest, MatMulHonoursLeadingDimensions) {
  CpuBackend backend(1);
  // A is the left 3 columns of a 2×4 block, W the top-left 2×3 of a 2×5 block, C the left 2
  // columns of a 2×3 block: [1 2 3; 4 5 6]·[1 0 1; 0 1 0]ᵀ = [4 2; 10 5].
  const float a[] = {1, 2, 3, -9, 4, 5, 6, -9};
  const float w[] = {1, 0, 1, -9, -9, 0, 1, 0, -9, -9};
  float c[6] = {0, 0, 77, 0, 0, 77};
  ASSERT_TRUE(backend.MatMul(Dtype::kFp32, 2, 2, 3, a, 4, w, 5, c, 3, false).ok());
  EXPECT_FLOAT_EQ(c[0], 4);
  EXPECT_FLOAT_EQ(c[1], 2);
  EXPECT_FLOAT_EQ(c[2], 77);  // outside C: untouched
  EXPECT_FLOAT_EQ(c[3], 10);
  EXPECT_FLOAT_EQ(c[4], 5);
}

TEST(CpuBackendTest, SwiGluIsSiluOfGateTimesUp) {
  CpuBackend backend(1);
  // Two rows of f = 3: gate then up, side by side.
  const std::vector<float> gate_up = {-2.0f, 0.0f,   3.0f, 1.0f, 2.0f, -1.0f,
                                      10.0f, -90.0f, 0.5f, 1.0f, 1.0f, 4.0f};
  std::vector<float> out(6);
  backend.SwiGlu(2, 3, gate_up.data(), Dtype::kFp32, out.data());
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 3; ++j) {
      const double g = gate_up[i * 6 + j];
      const double u = gate_up[i * 6 + 3 + j];
      const double want = g / (1 + std::exp(-g)) * u;
      EXPECT_NEAR(out[i * 3 + j], want, 1e-6 * std::max(1.0, std::fabs(want)));
    }
  }
}

TEST(CpuBackendTest, Bf16RoundsToNearestEven) {
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBf16(1.00390625f), 0x3f80);  // 1 + 2^-8: halfway, to even (0x3f80)
  EXPECT_EQ(FloatToBf16(1.01171875f), 0x3f82);  // 1 + 3·2^-8: halfway, to even (0x3f82)
  EXPECT_EQ(FloatToBf16(1.0078125f), 0x3f81);   // exact
  EXPECT_FLOAT_EQ(Bf16ToFloat(0x3f82), 1.015625f);
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::nanf("")))));
}

TEST(CpuBackendTest, Bf16NeedsSbgemmInTheLibrary) {
  CpuBackend backend(1);
  EXPECT_TRUE(backend.CheckDtype(Dtype::kFp32).ok());
  const absl::Status bf16 = backend.CheckDtype(Dtype::kBf16);
  if (CpuBackend::HasBf16Gemm()) {
    EXPECT_TRUE(bf16.ok());
  } else {
    EXPECT_EQ(bf16.code(), absl::StatusCode::kUnimplemented);
    EXPECT_NE(bf16.message().find("cblas_sbgemm"), std::string::npos) << bf16;
  }
  EXPECT_EQ(backend.CheckDtype(Dtype::kFp8).code(), absl::StatusCode::kUnimplemented);
}

TEST(CpuBackendTest, AllocateGivesZeroedAlignedMemory) {
  CpuBackend backend(1);
  absl::StatusOr<Buffer> b = backend.Allocate(100);
  ASSERT_TRUE(b.ok());
  EXPECT_GE(b->bytes(), 100u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b->data()) % 64, 0u);
  for (size_t i = 0; i < 100; ++i) EXPECT_EQ(b->as<char>()[i], 0);
}

}  // namespace
}  // namespace moecap
