// The weights of a stack of MoE layers on one GPU, as MoeWeights holds them on the host: the same
// layout (router E × d; routed experts' gate_up 2f_e × d and down d × f_e, the rank's local experts
// back to back; the shared experts as one SwiGLU expert), the same stream keys and bounds, so the
// device weights are bit-identical to MoeWeights::Generate's (cuda::FillUniform mirrors
// FillWeights) and the host reference checks the GPU against exactly the weights it used.
#ifndef MOECAP_AGENT_WORKLOAD_CUDA_CUDA_MOE_WEIGHTS_H_
#define MOECAP_AGENT_WORKLOAD_CUDA_CUDA_MOE_WEIGHTS_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/compute/compute_backend.h"
#include "agent/compute/cuda/cuda_backend.h"
#include "agent/workload/config.h"
#include "agent/workload/weights.h"
#include "common/dtype.h"
#include "common/model.h"

namespace moecap {

class CudaMoeWeights {
 public:
  // Generates `layers` layers for a rank hosting routed experts `local` in `backend`'s device
  // memory, on its stream; returns once they are done. Bytes: MoeWeights::BytesPerRank.
  static absl::StatusOr<CudaMoeWeights> Generate(cuda::CudaBackend& backend,
                                                 const ModelSpec& scaled, int64_t layers,
                                                 Dtype dtype, uint64_t seed, Range local);

  // Device pointers, as MoeWeights' accessors.
  const void* router(int64_t layer) const { return layers_[layer].router.data(); }
  const void* gate_up(int64_t layer, int64_t local_expert) const;
  const void* down(int64_t layer, int64_t local_expert) const;
  const void* shared_gate_up(int64_t layer) const { return layers_[layer].shared_gate_up.data(); }
  const void* shared_down(int64_t layer) const { return layers_[layer].shared_down.data(); }

  const LayerShape& shape() const { return shape_; }
  Range local_experts() const { return local_; }
  Dtype dtype() const { return dtype_; }
  int64_t layers() const { return static_cast<int64_t>(layers_.size()); }

 private:
  struct Layer {
    Buffer router;
    Buffer experts_gate_up;
    Buffer experts_down;
    Buffer shared_gate_up;
    Buffer shared_down;
  };
  LayerShape shape_;
  Dtype dtype_ = Dtype::kFp32;
  Range local_;
  std::vector<Layer> layers_;
};

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_CUDA_CUDA_MOE_WEIGHTS_H_
