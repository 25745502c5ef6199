// The decoder layer's attention on a GPU: the CUDA counterpart of AttentionStack
// (agent/workload/attention.h) for GQA/MHA models in bf16, with the same weights (generated on the
// host exactly as the CPU engine generates them, then uploaded), the same cached entries
// (CachedKvValue) and the same math: RMS norm, the QKV projection (cuBLAS), rotary positions on
// the queries and keys with the new tokens' keys and values appended to the caches
// (RopeAndAppendKv), split-KV decode attention for a decode step or causal tiled prefill
// attention otherwise (attention_kernels.h), the output projection and the residual. MLA runs on
// the CPU engine only for now.
#ifndef MOECAP_AGENT_WORKLOAD_CUDA_CUDA_ATTENTION_H_
#define MOECAP_AGENT_WORKLOAD_CUDA_CUDA_ATTENTION_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/compute/compute_backend.h"
#include "agent/compute/cuda/attention_plan.h"
#include "agent/compute/cuda/cuda_backend.h"
#include "agent/workload/attention.h"
#include "agent/workload/config.h"
#include "common/dtype.h"
#include "common/model.h"

namespace moecap {

// Whether the GPU attention runs `scaled`'s attention in `dtype`: InvalidArgument naming the field
// and the reason for MLA (the CPU engine only for now), a dtype other than bf16 (the caches and
// kernels are bf16) or head dims the kernels lack (64, 128). Needs no device.
absl::Status CudaAttentionSupported(const ModelSpec& scaled, Dtype dtype);

class CudaAttentionStack : public DecoderAttention {
 public:
  // The stack's attention weights on `backend`'s device, `layers` layers (IsSlidingLayer of
  // `scaled` says which keep a window). `scaled` and `backend` must outlive the stack.
  static absl::StatusOr<CudaAttentionStack> Create(const ModelSpec& scaled, int64_t layers,
                                                   Dtype dtype, uint64_t seed,
                                                   cuda::CudaBackend& backend);

  // Allocates the caches of `block` (bf16) and fills their cached entries, the scratch, the
  // split-KV workspace and the device-side context lengths and rotations; returns with all of it
  // on the device.
  absl::Status Prepare(const SequenceBlock& block) override;

  // out = x + Attention_layer(RmsNorm(x)) over the prepared block's rows (device fp32, rows × d
  // each, not overlapping); the new tokens' entries are written into the caches. Only enqueues
  // work on the backend's stream: no allocation, no host synchronisation.
  absl::Status Forward(int64_t layer, const float* x, float* out);

  // The rows Forward takes: the prepared block's tokens.
  int64_t rows() const { return block_.rows(); }

  // The device bytes Prepare allocates for `block` on a GPU with `sm_count` SMs (the memory
  // estimate): the caches, the scratch and the workspace.
  static int64_t DeviceBytes(const ModelSpec& scaled, int64_t layers, const SequenceBlock& block,
                             int64_t sm_count);

 private:
  CudaAttentionStack(const ModelSpec& scaled, int64_t layers, uint64_t seed,
                     cuda::CudaBackend& backend);
  // Layer `layer`'s window for the kernels: sliding_window where the layer slides, else 0.
  int64_t Window(int64_t layer) const;

  const ModelSpec* model_;
  cuda::CudaBackend* backend_;
  int64_t layers_;
  uint64_t seed_;
  int64_t sm_count_ = 1;
  SequenceBlock block_;
  int64_t capacity_ = 0;
  cuda::DecodeAttentionPlan plan_;

  // Per layer: kQkv and kOut, bf16.
  std::vector<Buffer> qkv_weights_;
  std::vector<Buffer> out_weights_;
  // Per layer: [seqs][capacity][kv_heads][head_dim] bf16.
  std::vector<Buffer> k_caches_;
  std::vector<Buffer> v_caches_;
  Buffer act_;        // rows × d bf16: the normed rows
  Buffer qkv_;        // rows × (n_h + 2·n_kv)·d_h fp32
  Buffer q_;          // rows × n_h·d_h fp32: the rotated queries
  Buffer attn_;       // rows × n_h·d_h fp32
  Buffer attn_act_;   // ... in bf16
  Buffer workspace_;  // the split-KV partial results
  Buffer lens_;       // seqs int32: decode, the context (cached + 1); prefill, the cached count
  Buffer rope_cos_;   // new_tokens × d_h/2 fp32
  Buffer rope_sin_;
};

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_CUDA_CUDA_ATTENTION_H_
