// The dense-FFN layers of a decoder stack against a double-precision SwiGLU written out here.
#include "agent/workload/dense_ffn.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "agent/compute/cpu_backend.h"

namespace moecap {
namespace {

ModelSpec DenseToy() {
  ModelSpec m;
  m.name = "dense-toy";
  m.layers = 3;
  m.dense_layers = 2;
  m.hidden_size = 8;
  m.dense_ffn_size = 6;
  return m;
}

// out = x + W_d·(silu(W_g·n) ⊙ W_u·n), n = x / sqrt(mean(x²) + 1e-6), in double.
std::vector<double> Reference(CpuBackend& backend, const ModelSpec& m, uint64_t seed, int64_t layer,
                              const std::vector<float>& x, int64_t rows) {
  const int64_t d = m.hidden_size, f = m.dense_ffn_size;
  std::vector<float> gate_up(static_cast<size_t>(2 * f * d)), down(static_cast<size_t>(d * f));
  DenseFfnLayers::Fill(backend, m, Dtype::kFp32, seed, layer, gate_up.data(), down.data());
  std::vector<double> out(x.begin(), x.end());
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x.data() + r * d;
    double sq = 0;
    for (int64_t i = 0; i < d; ++i) sq += static_cast<double>(row[i]) * row[i];
    const double inv = 1.0 / std::sqrt(sq / d + 1e-6);
    std::vector<double> act(static_cast<size_t>(f));
    for (int64_t j = 0; j < f; ++j) {
      double g = 0, u = 0;
      for (int64_t i = 0; i < d; ++i) {
        g += gate_up[static_cast<size_t>(j * d + i)] * row[i] * inv;
        u += gate_up[static_cast<size_t>((f + j) * d + i)] * row[i] * inv;
      }
      act[static_cast<size_t>(j)] = g / (1 + std::exp(-g)) * u;
    }
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t j = 0; j < f; ++j) {
        out[static_cast<size_t>(r * d + i)] += down[static_cast<size_t>(i * f + j)] * act[j];
      }
    }
  }
  return out;
}

TEST(DenseFfnTest, EachLayerMatchesTheDoubleSwiGlu) {
  CpuBackend backend(1);
  const ModelSpec m = DenseToy();
  absl::StatusOr<DenseFfnLayers> dense = DenseFfnLayers::Generate(backend, m, 2, Dtype::kFp32, 7);
  ASSERT_TRUE(dense.ok()) << dense.status();
  constexpr int64_t kRows = 3;
  ASSERT_TRUE(dense->Prepare(kRows).ok());
  std::vector<float> x(static_cast<size_t>(kRows * m.hidden_size));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.7 * static_cast<double>(i)) * 2;
  std::vector<float> out(x.size());
  std::vector<double> first_layer;
  for (int64_t layer = 0; layer < 2; ++layer) {
    ASSERT_TRUE(dense->Forward(layer, x.data(), kRows, out.data()).ok());
    const std::vector<double> ref = Reference(backend, m, 7, layer, x, kRows);
    double max_ref = 0, max_err = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      max_ref = std::max(max_ref, std::fabs(ref[i]));
      max_err = std::max(max_err, std::fabs(out[i] - ref[i]));
    }
    EXPECT_LT(max_err / max_ref, 1e-5) << "layer " << layer;
    if (layer == 0) first_layer = ref;
  }
  // The two layers have their own weights.
  EXPECT_NE(first_layer, Reference(backend, m, 7, 1, x, kRows));
  EXPECT_EQ(DenseFfnLayers::Bytes(m, 2, Dtype::kFp32), 2 * 3 * 8 * 6 * 4);
}

TEST(DenseFfnTest, RefusesALayerOutsideTheStackAndRowsNotPrepared) {
  CpuBackend backend(1);
  const ModelSpec m = DenseToy();
  absl::StatusOr<DenseFfnLayers> dense = DenseFfnLayers::Generate(backend, m, 1, Dtype::kFp32, 7);
  ASSERT_TRUE(dense.ok());
  std::vector<float> x(16), out(16);
  EXPECT_EQ(dense->Forward(0, x.data(), 2, out.data()).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(dense->Prepare(2).ok());
  EXPECT_EQ(dense->Forward(1, x.data(), 2, out.data()).code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(dense->Forward(0, x.data(), 2, out.data()).ok());
}

}  // namespace
}  // namespace moecap
