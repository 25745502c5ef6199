// The dense-FFN layers of a decoder stack (DeepSeek's first three, Llama-4's interleaved ones): in
// place of the MoE block, out = x + SwiGLU(RmsNorm(x)) with the model's f_dense, data-parallel like
// attention: every rank holds every dense layer's weights and runs its own sequences' rows, as
// DP-attention serving runs them with its dense layers' data-parallel option (SGLang's
// --moe-dense-tp-size 1).
#ifndef MOECAP_AGENT_WORKLOAD_DENSE_FFN_H_
#define MOECAP_AGENT_WORKLOAD_DENSE_FFN_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/compute/compute_backend.h"
#include "agent/workload/layer_math.h"
#include "common/dtype.h"
#include "common/model.h"

namespace moecap {

class DenseFfnLayers {
 public:
  // `layers` dense layers of `scaled` (f_dense = scaled.dense_ffn_size), weights uniform with
  // variance 1/fan_in from `seed` (random.h), stored as ComputeBackend::MatMul takes them: gate_up
  // 2f × d (the gate's f rows, then the up projection's), down d × f.
  static absl::StatusOr<DenseFfnLayers> Generate(ComputeBackend& backend, const ModelSpec& scaled,
                                                 int64_t layers, Dtype dtype, uint64_t seed);
  // The bytes Generate allocates (the memory estimate), and Prepare's for `rows` rows.
  static int64_t Bytes(const ModelSpec& scaled, int64_t layers, Dtype dtype);
  static int64_t WorkBytes(const ModelSpec& scaled, Dtype dtype, int64_t rows);

  // Writes dense layer `layer`'s weights exactly as Generate does (the tests' reference uses it):
  // gate_up 2f × d, down d × f, in `dtype`.
  static void Fill(ComputeBackend& backend, const ModelSpec& scaled, Dtype dtype, uint64_t seed,
                   int64_t layer, void* gate_up, void* down);

  // Allocates the scratch of a step over `rows` rows.
  absl::Status Prepare(int64_t rows);
  // out = x + SwiGLU_layer(RmsNorm(x)) over `rows` ≤ the prepared rows (fp32, rows × d each; they
  // must not overlap). `layer` counts the dense layers only (0 ≤ layer < layers()).
  absl::Status Forward(int64_t layer, const float* x, int64_t rows, float* out);

  int64_t layers() const { return static_cast<int64_t>(layers_.size()); }

 private:
  struct Layer {
    Buffer gate_up;
    Buffer down;
  };
  DenseFfnLayers(const ModelSpec& scaled, ComputeBackend& backend, Dtype dtype)
      : model_(&scaled), backend_(&backend), dtype_(dtype) {}

  const ModelSpec* model_;
  ComputeBackend* backend_;
  Dtype dtype_;
  std::vector<Layer> layers_;
  Buffer normed_;  // rows × d fp32
  Buffer act_;     // rows × d in the dtype (not fp32)
  ExpertScratch scratch_;
};

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_DENSE_FFN_H_
