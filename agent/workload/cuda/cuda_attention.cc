// CudaAttentionStack: the GQA/MHA attention of a decoder layer on the backend's stream.
#include "agent/workload/cuda/cuda_attention.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/compute/cpu_backend.h"
#include "agent/compute/cuda/attention_kernels.h"
#include "agent/compute/cuda/cuda_device.h"
#include "agent/compute/cuda/cuda_kernels.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

constexpr int64_t kBf16Bytes = 2;

// The buffers Prepare allocates besides the caches, in bytes: the one place their sizes are
// worked out (Prepare and DeviceBytes).
struct ScratchPlan {
  int64_t act = 0, qkv = 0, q = 0, attn = 0, attn_act = 0, lens = 0, rope = 0;
  int64_t cache = 0;  // one layer's K (or V) cache
  int64_t Total(int64_t layers, int64_t workspace) const {
    return 2 * layers * cache + act + qkv + q + 2 * attn + attn_act + lens + 2 * rope + workspace;
  }
};

ScratchPlan PlanScratch(const ModelSpec& m, const SequenceBlock& block) {
  const GqaAttention& a = m.gqa;
  const int64_t rows = block.rows(), hd = a.heads * a.head_dim;
  ScratchPlan p;
  p.act = rows * m.hidden_size * kBf16Bytes;
  p.qkv = rows * (a.heads + 2 * a.kv_heads) * a.head_dim * 4;
  p.q = rows * hd * 4;
  p.attn = rows * hd * 4;
  p.attn_act = rows * hd * kBf16Bytes;
  p.lens = block.count * 4;
  p.rope = block.new_tokens * (a.head_dim / 2) * 4;
  p.cache = block.count * (block.cached + block.new_tokens) * a.kv_heads * a.head_dim * kBf16Bytes;
  return p;
}

absl::StatusOr<cuda::DecodeAttentionPlan> DecodePlan(const ModelSpec& m, const SequenceBlock& block,
                                                     int64_t sm_count) {
  if (!block.decode_step() || block.count == 0) return cuda::DecodeAttentionPlan{};
  const GqaAttention& a = m.gqa;
  return cuda::PlanGqaDecode(block.count, a.heads, a.kv_heads, a.head_dim, Dtype::kBf16,
                             block.cached + 1, sm_count);
}

absl::Status Upload(const void* host, size_t bytes, Buffer& device, cudaStream_t stream,
                    absl::string_view what) {
  if (bytes == 0) return absl::OkStatus();
  return cuda::CudaCheck(
      cudaMemcpyAsync(device.data(), host, bytes, cudaMemcpyHostToDevice, stream), what);
}

}  // namespace

absl::Status CudaAttentionSupported(const ModelSpec& scaled, Dtype dtype) {
  if (scaled.attention == AttentionKind::kMla) {
    return absl::InvalidArgumentError(absl::StrCat(
        "workload.layer: decoder: model '", scaled.name,
        "' has MLA attention, which runs on the cpu backend only for now (the GPU engine runs "
        "GQA/MHA attention)"));
  }
  if (dtype != Dtype::kBf16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "workload.dtype: ", DtypeName(dtype),
        ": the GPU engine's decoder layer runs in bf16 only (its KV caches and attention kernels "
        "are bf16)"));
  }
  MOECAP_RETURN_IF_ERROR(AttentionSupported(scaled));
  if (scaled.gqa.head_dim != 64 && scaled.gqa.head_dim != 128) {
    return absl::InvalidArgumentError(
        absl::StrCat("workload.layer: decoder: model '", scaled.name, "' has head dim ",
                     scaled.gqa.head_dim, "; the GPU attention kernels support 64 and 128"));
  }
  return absl::OkStatus();
}

CudaAttentionStack::CudaAttentionStack(const ModelSpec& scaled, int64_t layers, uint64_t seed,
                                       cuda::CudaBackend& backend)
    : model_(&scaled), backend_(&backend), layers_(layers), seed_(seed) {}

absl::StatusOr<CudaAttentionStack> CudaAttentionStack::Create(const ModelSpec& scaled,
                                                              int64_t layers, Dtype dtype,
                                                              uint64_t seed,
                                                              cuda::CudaBackend& backend) {
  MOECAP_RETURN_IF_ERROR(CudaAttentionSupported(scaled, dtype));
  MOECAP_RETURN_IF_ERROR(backend.MakeCurrent());
  CudaAttentionStack stack(scaled, layers, seed, backend);
  int sms = 0;
  MOECAP_RETURN_IF_ERROR(cuda::CudaCheck(
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, backend.device()),
      "cudaDeviceGetAttribute(multiprocessors)"));
  stack.sm_count_ = std::max(1, sms);
  // The weights as the CPU engine generates them (AttentionWeights::Fill on a host backend), so
  // the check's reference and both engines share them bit for bit.
  CpuBackend host(1);
  std::vector<char> staged;
  for (int64_t l = 0; l < layers; ++l) {
    for (AttentionPart part : {AttentionPart::kQkv, AttentionPart::kOut}) {
      const size_t bytes =
          static_cast<size_t>(AttentionPartShape(scaled, part).size() * kBf16Bytes);
      staged.resize(bytes);
      AttentionWeights::Fill(host, scaled, Dtype::kBf16, seed, l, part, staged.data());
      MOECAP_ASSIGN_OR_RETURN(Buffer device, backend.Allocate(bytes));
      MOECAP_RETURN_IF_ERROR(backend.Upload(device.data(), staged.data(), bytes));
      (part == AttentionPart::kQkv ? stack.qkv_weights_ : stack.out_weights_)
          .push_back(std::move(device));
    }
  }
  return stack;
}

int64_t CudaAttentionStack::DeviceBytes(const ModelSpec& scaled, int64_t layers,
                                        const SequenceBlock& block, int64_t sm_count) {
  absl::StatusOr<cuda::DecodeAttentionPlan> plan = DecodePlan(scaled, block, sm_count);
  const int64_t workspace = plan.ok() ? plan->workspace_bytes : 0;
  return PlanScratch(scaled, block).Total(layers, workspace);
}

int64_t CudaAttentionStack::Window(int64_t layer) const {
  return IsSlidingLayer(*model_, layer) ? model_->sliding_window : 0;
}

absl::Status CudaAttentionStack::Prepare(const SequenceBlock& block) {
  const ModelSpec& m = *model_;
  const GqaAttention& a = m.gqa;
  MOECAP_RETURN_IF_ERROR(backend_->MakeCurrent());
  cudaStream_t stream = backend_->stream();
  block_ = block;
  capacity_ = block.cached + block.new_tokens;
  MOECAP_ASSIGN_OR_RETURN(plan_, DecodePlan(m, block, sm_count_));
  const ScratchPlan p = PlanScratch(m, block);
  for (auto [buffer, bytes] :
       std::initializer_list<std::pair<Buffer*, int64_t>>{{&act_, p.act},
                                                          {&qkv_, p.qkv},
                                                          {&q_, p.q},
                                                          {&attn_, p.attn},
                                                          {&attn_act_, p.attn_act},
                                                          {&lens_, p.lens},
                                                          {&rope_cos_, p.rope},
                                                          {&rope_sin_, p.rope},
                                                          {&workspace_, plan_.workspace_bytes}}) {
    MOECAP_RETURN_IF_ERROR(
        GrowBuffer(*backend_, *buffer, static_cast<size_t>(std::max<int64_t>(bytes, 1))));
  }

  // The caches, their cached entries generated on the host as the CPU engine generates them and
  // rounded to bf16 the same way, one layer at a time so the staging stays one layer's size.
  k_caches_.resize(static_cast<size_t>(layers_));
  v_caches_.resize(static_cast<size_t>(layers_));
  CpuBackend host(1);
  const int64_t dh = a.head_dim, kv = a.kv_heads;
  const int64_t entries = block.count * capacity_ * kv * dh;
  std::vector<float> values(block.cached > 0 ? static_cast<size_t>(entries) : 0);
  std::vector<char> staged(values.size() * kBf16Bytes);
  for (int64_t l = 0; l < layers_; ++l) {
    for (bool value : {false, true}) {
      Buffer& cache = (value ? v_caches_ : k_caches_)[static_cast<size_t>(l)];
      MOECAP_RETURN_IF_ERROR(
          GrowBuffer(*backend_, cache, static_cast<size_t>(std::max<int64_t>(p.cache, 1))));
      if (block.cached == 0) continue;
      std::fill(values.begin(), values.end(), 0.0f);
      for (int64_t s = 0; s < block.count; ++s) {
        for (int64_t pos = 0; pos < block.cached; ++pos) {
          for (int64_t g = 0; g < kv; ++g) {
            float* e = values.data() + ((s * capacity_ + pos) * kv + g) * dh;
            for (int64_t i = 0; i < dh; ++i) {
              e[i] = CachedKvValue(seed_, l, block.first + s, g, value, pos, i);
            }
          }
        }
      }
      host.FromFloat(values.data(), entries, Dtype::kBf16, staged.data());
      MOECAP_RETURN_IF_ERROR(backend_->Upload(cache.data(), staged.data(), staged.size()));
    }
  }

  // Decode: each sequence's context (its cached entries and the new token); prefill: the cached
  // entries before the new tokens.
  const std::vector<int32_t> lens(
      static_cast<size_t>(block.count),
      static_cast<int32_t>(block.decode_step() ? capacity_ : block.cached));
  // The new tokens' rotations, computed as the CPU engine computes them (double, then float).
  const int64_t half = dh / 2;
  std::vector<float> cos(static_cast<size_t>(block.new_tokens * half)), sin(cos.size());
  for (int64_t t = 0; t < block.new_tokens; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle =
          static_cast<double>(block.cached + t) *
          std::pow(kRopeBase, -2.0 * static_cast<double>(i) / static_cast<double>(dh));
      cos[static_cast<size_t>(t * half + i)] = static_cast<float>(std::cos(angle));
      sin[static_cast<size_t>(t * half + i)] = static_cast<float>(std::sin(angle));
    }
  }
  MOECAP_RETURN_IF_ERROR(Upload(lens.data(), lens.size() * 4, lens_, stream, "uploading lengths"));
  MOECAP_RETURN_IF_ERROR(
      Upload(cos.data(), cos.size() * 4, rope_cos_, stream, "uploading the rotations"));
  MOECAP_RETURN_IF_ERROR(
      Upload(sin.data(), sin.size() * 4, rope_sin_, stream, "uploading the rotations"));
  // The host vectors are pageable and go at return: the copies must be done first.
  return cuda::CudaCheck(cudaStreamSynchronize(stream), "preparing the GPU attention");
}

absl::Status CudaAttentionStack::Forward(int64_t layer, const float* x, float* out) {
  if (layer < 0 || layer >= layers_ || k_caches_.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("CudaAttentionStack::Forward(layer ", layer,
                                                      ") of ", layers_,
                                                      " layers, before Prepare or out of range"));
  }
  const ModelSpec& m = *model_;
  const GqaAttention& a = m.gqa;
  const int64_t rows = block_.rows(), d = m.hidden_size;
  if (rows == 0) return absl::OkStatus();
  const int64_t heads = a.heads, kv = a.kv_heads, dh = a.head_dim, hd = heads * dh;
  const int64_t width = (heads + 2 * kv) * dh;
  const size_t l = static_cast<size_t>(layer);
  cudaStream_t stream = backend_->stream();
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dh)));

  MOECAP_RETURN_IF_ERROR(cuda::RmsNorm(x, rows, d, nullptr, Dtype::kBf16, act_.data(), stream));
  MOECAP_RETURN_IF_ERROR(backend_->MatMul(Dtype::kBf16, rows, width, d, act_.data(), d,
                                          qkv_weights_[l].data(), d, qkv_.as<float>(), width,
                                          false));
  cuda::RopeAppendArgs r;
  r.qkv = qkv_.as<float>();
  r.seqs = block_.count;
  r.new_tokens = block_.new_tokens;
  r.heads = heads;
  r.kv_heads = kv;
  r.head_dim = dh;
  r.cached = block_.cached;
  r.capacity = capacity_;
  r.rope_cos = rope_cos_.as<float>();
  r.rope_sin = rope_sin_.as<float>();
  r.q_out = q_.as<float>();
  r.k_cache = k_caches_[l].data();
  r.v_cache = v_caches_[l].data();
  MOECAP_RETURN_IF_ERROR(cuda::RopeAndAppendKv(r, stream));

  if (block_.decode_step()) {
    cuda::GqaDecodeArgs g;
    g.q = q_.as<float>();
    g.seqs = block_.count;
    g.heads = heads;
    g.kv_heads = kv;
    g.head_dim = dh;
    g.k_cache = k_caches_[l].data();
    g.v_cache = v_caches_[l].data();
    g.kv_dtype = Dtype::kBf16;
    g.capacity = capacity_;
    g.context_lens = lens_.as<int32_t>();
    g.window = Window(layer);
    g.softmax_scale = scale;
    g.out = attn_.as<float>();
    MOECAP_RETURN_IF_ERROR(
        cuda::GqaDecodeAttention(g, plan_, workspace_.data(), workspace_.bytes(), stream));
  } else {
    cuda::PrefillAttentionArgs p;
    p.q = q_.data();
    p.q_dtype = Dtype::kFp32;
    p.seqs = block_.count;
    p.new_tokens = block_.new_tokens;
    p.heads = heads;
    p.kv_heads = kv;
    p.head_dim_qk = dh;
    p.head_dim_v = dh;
    p.k_cache = k_caches_[l].data();
    p.v_cache = v_caches_[l].data();
    p.kv_dtype = Dtype::kBf16;
    p.capacity = capacity_;
    p.cached = block_.cached > 0 ? lens_.as<int32_t>() : nullptr;
    p.window = Window(layer);
    p.softmax_scale = scale;
    p.out = attn_.as<float>();
    MOECAP_RETURN_IF_ERROR(cuda::PrefillAttention(p, stream));
  }

  MOECAP_RETURN_IF_ERROR(
      cuda::FromFloat(attn_.as<float>(), rows * hd, Dtype::kBf16, attn_act_.data(), stream));
  MOECAP_RETURN_IF_ERROR(backend_->MatMul(Dtype::kBf16, rows, d, hd, attn_act_.data(), hd,
                                          out_weights_[l].data(), hd, out, d, false));
  return cuda::AddInPlace(x, rows * d, out, stream);
}

}  // namespace moecap
