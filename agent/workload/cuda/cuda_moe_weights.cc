// Device weight generation with the host generator's keys and bounds (weights.cc).
#include "agent/workload/cuda/cuda_moe_weights.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "agent/compute/cuda/cuda_device.h"
#include "agent/compute/cuda/cuda_kernels.h"
#include "agent/workload/random.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

// The key weights.cc's WeightKey builds for (seed, purpose, layer, expert).
uint64_t WeightKey(uint64_t seed, StreamPurpose purpose, int64_t layer, int64_t expert) {
  return StreamKey({seed, static_cast<uint64_t>(purpose), static_cast<uint64_t>(layer),
                    static_cast<uint64_t>(expert)});
}

// FillWeights' bound for `fan_in`: uniform on [-a, a] with a = sqrt(3 / fan_in), computed the
// same way (in double, then rounded to float).
float Bound(int64_t fan_in) {
  return static_cast<float>(std::sqrt(3.0 / static_cast<double>(fan_in)));
}

absl::Status Fill(uint64_t key, int64_t count, int64_t fan_in, Dtype dtype, void* out,
                  cudaStream_t stream) {
  return cuda::FillUniform(key, count, Bound(fan_in), dtype, out, stream);
}

}  // namespace

absl::StatusOr<CudaMoeWeights> CudaMoeWeights::Generate(cuda::CudaBackend& backend,
                                                        const ModelSpec& scaled, int64_t layers,
                                                        Dtype dtype, uint64_t seed, Range local) {
  MOECAP_RETURN_IF_ERROR(backend.CheckDtype(dtype));
  MOECAP_RETURN_IF_ERROR(backend.MakeCurrent());
  cudaStream_t stream = backend.stream();
  CudaMoeWeights w;
  w.shape_ = LayerShape::Of(scaled);
  w.dtype_ = dtype;
  w.local_ = local;
  const LayerShape& s = w.shape_;
  const size_t eb = static_cast<size_t>(DtypeBytes(dtype));
  w.layers_.resize(static_cast<size_t>(layers));
  const auto allocate = [&](Buffer& buffer, int64_t elements) -> absl::Status {
    absl::StatusOr<Buffer> b = backend.Allocate(eb * static_cast<size_t>(elements));
    if (!b.ok()) return b.status();
    buffer = *std::move(b);
    return absl::OkStatus();
  };
  for (int64_t l = 0; l < layers; ++l) {
    Layer& layer = w.layers_[static_cast<size_t>(l)];
    MOECAP_RETURN_IF_ERROR(allocate(layer.router, s.hidden * s.experts));
    MOECAP_RETURN_IF_ERROR(allocate(layer.experts_gate_up, local.count * s.GateUpElements()));
    MOECAP_RETURN_IF_ERROR(allocate(layer.experts_down, local.count * s.DownElements()));
    MOECAP_RETURN_IF_ERROR(Fill(WeightKey(seed, StreamPurpose::kRouterWeights, l, 0),
                                s.hidden * s.experts, s.hidden, dtype, layer.router.data(),
                                stream));
    for (int64_t j = 0; j < local.count; ++j) {
      const int64_t expert = local.begin + j;
      if (absl::Status st =
              Fill(WeightKey(seed, StreamPurpose::kExpertGateUp, l, expert), s.GateUpElements(),
                   s.hidden, dtype, layer.experts_gate_up.as<char>() + j * s.GateUpElements() * eb,
                   stream);
          !st.ok()) {
        return st;
      }
      MOECAP_RETURN_IF_ERROR(Fill(
          WeightKey(seed, StreamPurpose::kExpertDown, l, expert), s.DownElements(), s.expert_ffn,
          dtype, layer.experts_down.as<char>() + j * s.DownElements() * eb, stream));
    }
    if (s.shared_ffn > 0) {
      MOECAP_RETURN_IF_ERROR(allocate(layer.shared_gate_up, s.hidden * 2 * s.shared_ffn));
      MOECAP_RETURN_IF_ERROR(allocate(layer.shared_down, s.shared_ffn * s.hidden));
      if (absl::Status st =
              Fill(WeightKey(seed, StreamPurpose::kSharedGateUp, l, 0), s.hidden * 2 * s.shared_ffn,
                   s.hidden, dtype, layer.shared_gate_up.data(), stream);
          !st.ok()) {
        return st;
      }
      if (absl::Status st =
              Fill(WeightKey(seed, StreamPurpose::kSharedDown, l, 0), s.shared_ffn * s.hidden,
                   s.shared_ffn, dtype, layer.shared_down.data(), stream);
          !st.ok()) {
        return st;
      }
    }
  }
  if (absl::Status st =
          cuda::CudaCheck(cudaStreamSynchronize(stream), "generating the device weights");
      !st.ok()) {
    return st;
  }
  return w;
}

const void* CudaMoeWeights::gate_up(int64_t layer, int64_t local_expert) const {
  return layers_[layer].experts_gate_up.as<char>() +
         local_expert * shape_.GateUpElements() * static_cast<int64_t>(DtypeBytes(dtype_));
}

const void* CudaMoeWeights::down(int64_t layer, int64_t local_expert) const {
  return layers_[layer].experts_down.as<char>() +
         local_expert * shape_.DownElements() * static_cast<int64_t>(DtypeBytes(dtype_));
}

}  // namespace moecap
