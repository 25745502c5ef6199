// Weight and input generation.
#include "agent/workload/weights.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "agent/workload/random.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

uint64_t WeightKey(uint64_t seed, StreamPurpose purpose, int64_t layer, int64_t expert) {
  return StreamKey({seed, static_cast<uint64_t>(purpose), static_cast<uint64_t>(layer),
                    static_cast<uint64_t>(expert)});
}

size_t ElementBytes(Dtype dtype) { return static_cast<size_t>(DtypeBytes(dtype)); }

}  // namespace

LayerShape LayerShape::Of(const ModelSpec& m) {
  LayerShape s;
  s.hidden = m.hidden_size;
  s.expert_ffn = m.expert_ffn_size;
  s.experts = m.experts;
  s.top_k = m.experts_per_token;
  s.shared_ffn = m.shared_experts > 0 ? m.shared_experts * m.shared_expert_ffn_size : 0;
  return s;
}

void FillWeights(ComputeBackend& backend, uint64_t key, int64_t count, int64_t fan_in, Dtype dtype,
                 void* out) {
  // Uniform on [-a, a] has variance a²/3; a = sqrt(3 / fan_in) gives 1/fan_in.
  const float bound = static_cast<float>(std::sqrt(3.0 / static_cast<double>(fan_in)));
  constexpr int64_t kChunk = 1 << 14;
  float chunk[kChunk];
  for (int64_t begin = 0; begin < count; begin += kChunk) {
    const int64_t n = std::min(kChunk, count - begin);
    for (int64_t i = 0; i < n; ++i) {
      chunk[i] = (2.0f * Uniform01(key, static_cast<uint64_t>(begin + i)) - 1.0f) * bound;
    }
    backend.FromFloat(chunk, n, dtype, static_cast<char*>(out) + begin * ElementBytes(dtype));
  }
}

void FillExpertWeights(ComputeBackend& backend, const LayerShape& shape, Dtype dtype, uint64_t seed,
                       int64_t layer, int64_t expert, void* gate_up, void* down) {
  FillWeights(backend, WeightKey(seed, StreamPurpose::kExpertGateUp, layer, expert),
              shape.GateUpElements(), shape.hidden, dtype, gate_up);
  FillWeights(backend, WeightKey(seed, StreamPurpose::kExpertDown, layer, expert),
              shape.DownElements(), shape.expert_ffn, dtype, down);
}

void FillInputRows(uint64_t seed, int64_t tokens_total, int64_t first, int64_t count,
                   int64_t hidden, float* out) {
  const float bound = std::sqrt(3.0f);  // unit variance
  for (int64_t t = 0; t < count; ++t) {
    const uint64_t key =
        StreamKey({seed, static_cast<uint64_t>(StreamPurpose::kInput),
                   static_cast<uint64_t>(tokens_total), static_cast<uint64_t>(first + t)});
    for (int64_t i = 0; i < hidden; ++i) {
      out[t * hidden + i] = (2.0f * Uniform01(key, static_cast<uint64_t>(i)) - 1.0f) * bound;
    }
  }
}

int64_t MoeWeights::BytesPerRank(const ModelSpec& scaled, int64_t layers, Dtype dtype,
                                 int64_t local_experts) {
  const LayerShape s = LayerShape::Of(scaled);
  const int64_t per_layer = s.hidden * s.experts +
                            local_experts * (s.GateUpElements() + s.DownElements()) +
                            3 * s.hidden * s.shared_ffn;
  return per_layer * layers * static_cast<int64_t>(ElementBytes(dtype));
}

absl::StatusOr<MoeWeights> MoeWeights::Generate(ComputeBackend& backend, const ModelSpec& scaled,
                                                int64_t layers, Dtype dtype, uint64_t seed,
                                                Range local) {
  MOECAP_RETURN_IF_ERROR(backend.CheckDtype(dtype));
  MoeWeights w;
  w.shape_ = LayerShape::Of(scaled);
  w.dtype_ = dtype;
  w.local_ = local;
  const LayerShape& s = w.shape_;
  const size_t eb = ElementBytes(dtype);
  w.layers_.resize(static_cast<size_t>(layers));
  for (int64_t l = 0; l < layers; ++l) {
    Layer& layer = w.layers_[static_cast<size_t>(l)];
    absl::StatusOr<Buffer> router = backend.Allocate(eb * s.hidden * s.experts);
    absl::StatusOr<Buffer> gate_up = backend.Allocate(eb * local.count * s.GateUpElements());
    absl::StatusOr<Buffer> down = backend.Allocate(eb * local.count * s.DownElements());
    for (absl::StatusOr<Buffer>* b : {&router, &gate_up, &down}) {
      if (!b->ok()) return b->status();
    }
    layer.router = *std::move(router);
    layer.experts_gate_up = *std::move(gate_up);
    layer.experts_down = *std::move(down);
    FillWeights(backend, WeightKey(seed, StreamPurpose::kRouterWeights, l, 0), s.hidden * s.experts,
                s.hidden, dtype, layer.router.data());
    for (int64_t j = 0; j < local.count; ++j) {
      FillExpertWeights(backend, s, dtype, seed, l, local.begin + j,
                        layer.experts_gate_up.as<char>() + j * s.GateUpElements() * eb,
                        layer.experts_down.as<char>() + j * s.DownElements() * eb);
    }
    if (s.shared_ffn > 0) {
      absl::StatusOr<Buffer> sgu = backend.Allocate(eb * s.hidden * 2 * s.shared_ffn);
      absl::StatusOr<Buffer> sd = backend.Allocate(eb * s.shared_ffn * s.hidden);
      if (!sgu.ok()) return sgu.status();
      if (!sd.ok()) return sd.status();
      layer.shared_gate_up = *std::move(sgu);
      layer.shared_down = *std::move(sd);
      FillWeights(backend, WeightKey(seed, StreamPurpose::kSharedGateUp, l, 0),
                  s.hidden * 2 * s.shared_ffn, s.hidden, dtype, layer.shared_gate_up.data());
      FillWeights(backend, WeightKey(seed, StreamPurpose::kSharedDown, l, 0),
                  s.shared_ffn * s.hidden, s.shared_ffn, dtype, layer.shared_down.data());
    }
  }
  return w;
}

const void* MoeWeights::gate_up(int64_t layer, int64_t local_expert) const {
  return layers_[layer].experts_gate_up.as<char>() +
         local_expert * shape_.GateUpElements() * ElementBytes(dtype_);
}

const void* MoeWeights::down(int64_t layer, int64_t local_expert) const {
  return layers_[layer].experts_down.as<char>() +
         local_expert * shape_.DownElements() * ElementBytes(dtype_);
}

}  // namespace moecap
