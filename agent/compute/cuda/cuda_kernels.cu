// The MoE layer's CUDA kernels (cuda_kernels.h). Each mirrors a host function of agent/workload or
// CpuBackend operation for operation: float arithmetic uses the round-to-nearest intrinsics
// (__fmul_rn, __fadd_rn, ...) where the host does separate multiplies and adds, so nvcc cannot
// contract them into FMAs and the results stay bit-identical to the host's (x86-64 without -mfma
// has no FMA to contract into). Kernels are written for clarity first: grid-stride loops over
// 64-bit indices, row copies vectorised to 16 bytes when sizes and alignment allow.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/compute/cuda/cuda_device.h"
#include "agent/compute/cuda/cuda_kernels.h"
#include "agent/workload/random.h"
#include "common/status_macros.h"

namespace moecap::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;  // grid-stride loops cover the rest
constexpr int kWarp = 32;
constexpr int kMaxTopK = 32;
constexpr int64_t kMaxRouterExperts = 1024;
// CountAndSlot runs in one block of this many threads (kSlotWarps warps).
constexpr int kSlotThreads = 1024;
constexpr int kSlotWarps = kSlotThreads / kWarp;

int BlocksFor(int64_t work, int threads = kThreads) {
  return static_cast<int>(std::clamp<int64_t>((work + threads - 1) / threads, 1, kMaxBlocks));
}

// fp32 -> bf16 bits, round to nearest even, NaN kept quiet with its sign: the same bit operations
// as FloatToBf16 in cpu_backend.cc, so device and host agree on every input.
__device__ __forceinline__ uint16_t FloatToBf16Bits(float value) {
  uint32_t bits = __float_as_uint(value);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) {
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  }
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

__device__ __forceinline__ __nv_bfloat16 ToBf16(float value) {
  return __ushort_as_bfloat16(FloatToBf16Bits(value));
}

__device__ __forceinline__ float ToF32(float value) { return value; }
__device__ __forceinline__ float ToF32(__nv_bfloat16 value) { return __bfloat162float(value); }

// Stores `value` as element i of `out` in the element type T.
__device__ __forceinline__ void Store(float* out, int64_t i, float value) { out[i] = value; }
__device__ __forceinline__ void Store(__nv_bfloat16* out, int64_t i, float value) {
  out[i] = ToBf16(value);
}

// CpuBackend's FastExp, operation for operation (see cpu_backend.cc for the derivation).
__device__ __forceinline__ float FastExp(float x) {
  x = fminf(fmaxf(x, -87.0f), 88.0f);
  const float kLog2e = 1.44269504f;
  const float kRound = 12582912.0f;
  const float n = __fsub_rn(__fadd_rn(__fmul_rn(x, kLog2e), kRound), kRound);
  const float r = __fsub_rn(__fsub_rn(x, __fmul_rn(n, 0.693145751953125f)),
                            __fmul_rn(n, 1.428606765330187e-06f));
  float p = 1.0f / 720.0f;
  p = __fadd_rn(__fmul_rn(p, r), 1.0f / 120.0f);
  p = __fadd_rn(__fmul_rn(p, r), 1.0f / 24.0f);
  p = __fadd_rn(__fmul_rn(p, r), 1.0f / 6.0f);
  p = __fadd_rn(__fmul_rn(p, r), 0.5f);
  p = __fadd_rn(__fmul_rn(p, r), 1.0f);
  p = __fadd_rn(__fmul_rn(p, r), 1.0f);
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return __fmul_rn(p, __int_as_float(bits));
}

absl::Status CheckGemmDtype(Dtype dtype, absl::string_view what) {
  if (dtype == Dtype::kFp32 || dtype == Dtype::kBf16) return absl::OkStatus();
  return absl::UnimplementedError(absl::StrCat(what, ": dtype ", DtypeName(dtype),
                                               " is unsupported by the CUDA kernels (fp32, bf16)"));
}

absl::Status CheckNonNegative(int64_t value, absl::string_view field, absl::string_view what) {
  if (value >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", field, " is ", value, " (< 0)"));
}

absl::Status CheckPointer(const void* p, absl::string_view field, absl::string_view what) {
  if (p != nullptr) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", field, " is null"));
}

// Launch errors (bad configuration, no kernel image for this GPU) surface here at once.
absl::Status LaunchStatus(absl::string_view what) {
  return CudaCheck(cudaGetLastError(), absl::StrCat(what, " kernel launch"));
}

// ---- FillUniform ----------------------------------------------------------------------------

template <typename T>
__global__ void FillUniformKernel(uint64_t key, int64_t count, float bound, T* out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float u = Uniform01(key, static_cast<uint64_t>(i));
    // (2·u − 1)·bound with each operation rounded on its own, as FillWeights does.
    Store(out, i, __fmul_rn(__fsub_rn(__fmul_rn(2.0f, u), 1.0f), bound));
  }
}

// ---- RmsNorm --------------------------------------------------------------------------------

constexpr int kNormThreads = 256;

// One block per row. Σx² in double (as RmsNormRows), reduced over warps then across them.
template <typename T>
__global__ void RmsNormKernel(const float* x, int64_t hidden, float* normed, T* act) {
  const int64_t row = blockIdx.x;
  const float* in = x + row * hidden;
  double sum = 0;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    const double v = in[i];
    sum += v * v;
  }
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    sum += __shfl_down_sync(0xffffffffu, sum, offset);
  }
  __shared__ double warp_sums[kNormThreads / kWarp];
  __shared__ float inv_shared;
  const int lane = threadIdx.x % kWarp;
  const int warp = threadIdx.x / kWarp;
  if (lane == 0) warp_sums[warp] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0;
    for (int w = 0; w < static_cast<int>(blockDim.x / kWarp); ++w) total += warp_sums[w];
    inv_shared = static_cast<float>(1.0 / sqrt(total / static_cast<double>(hidden) + 1e-6));
  }
  __syncthreads();
  const float inv = inv_shared;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    const float v = __fmul_rn(in[i], inv);
    if (normed != nullptr) normed[row * hidden + i] = v;
    if (act != nullptr) Store(act, row * hidden + i, v);
  }
}

// ---- RouteTopK ------------------------------------------------------------------------------

// Token t: TopK, RouterScores and ChosenWeights of router.cc, in the same order.
__device__ void RouteOneToken(const float* logits, int64_t t, int64_t experts, int64_t k,
                              bool sigmoid, bool normalize, const int32_t* override_choices,
                              int32_t* chosen, float* weights) {
  const float* l = logits + t * experts;
  int32_t top[kMaxTopK];
  if (override_choices != nullptr) {
    for (int64_t j = 0; j < k; ++j) top[j] = override_choices[t * k + j];
  } else {
    // Insertion into a sorted list of k, strict '>' so ties keep the lower index (TopK).
    float top_value[kMaxTopK];
    int64_t filled = 0;
    for (int64_t e = 0; e < experts; ++e) {
      const float v = l[e];
      if (filled == k && !(v > top_value[k - 1])) continue;
      int64_t pos = filled < k ? filled++ : k - 1;
      while (pos > 0 && v > top_value[pos - 1]) {
        top[pos] = top[pos - 1];
        top_value[pos] = top_value[pos - 1];
        --pos;
      }
      top[pos] = static_cast<int32_t>(e);
      top_value[pos] = v;
    }
  }
  float max_logit = 0;
  float sum = 0;
  if (!sigmoid) {  // softmax over all E, shifted by the largest logit (RouterScores)
    max_logit = l[0];
    for (int64_t e = 1; e < experts; ++e) max_logit = fmaxf(max_logit, l[e]);
    for (int64_t e = 0; e < experts; ++e) sum = __fadd_rn(sum, expf(__fsub_rn(l[e], max_logit)));
  }
  float chosen_sum = 0;
  for (int64_t j = 0; j < k; ++j) {
    const int32_t e = top[j];
    float score = 0;  // an out-of-range override id gets no weight
    if (e >= 0 && e < experts) {
      score = sigmoid ? __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-l[e])))
                      : __fdiv_rn(expf(__fsub_rn(l[e], max_logit)), sum);
    }
    chosen[t * k + j] = e;
    weights[t * k + j] = score;
    chosen_sum = __fadd_rn(chosen_sum, score);
  }
  if (normalize && chosen_sum > 0) {
    for (int64_t j = 0; j < k; ++j) {
      weights[t * k + j] = __fdiv_rn(weights[t * k + j], chosen_sum);
    }
  }
}

// One thread per token (k ≤ 32 and E ≤ 1024 keep the per-token loop short).
__global__ void RouteTopKKernel(const float* logits, int64_t rows, int64_t experts, int64_t k,
                                bool sigmoid, bool normalize, const int32_t* override_choices,
                                int32_t* chosen, float* weights) {
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < rows;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    RouteOneToken(logits, t, experts, k, sigmoid, normalize, override_choices, chosen, weights);
  }
}

// ---- CountAndSlot ---------------------------------------------------------------------------

// One block of kSlotWarps warps. Warp w owns the contiguous segment w of the pairs; `offsets`
// (kSlotWarps × experts, scratch) first holds each warp's count per expert, then the first slot
// each warp gives each expert. Pairs are walked in order within a segment, 32 at a time, and lanes
// with the same expert (found with __match_any_sync) are ranked by lane: so a pair's slot is the
// pairs of lower experts, plus those of its expert in earlier segments, earlier steps and lower
// lanes — the host's stable order. Ids outside [0, experts) are not counted and get slot −1.
__global__ void __launch_bounds__(kSlotThreads)
    CountAndSlotKernel(const int32_t* chosen, int64_t pairs, int64_t experts, int64_t* counts,
                       int64_t* slot, int64_t* offsets) {
  const int lane = threadIdx.x % kWarp;
  const int warp = threadIdx.x / kWarp;
  for (int64_t i = threadIdx.x; i < kSlotWarps * experts; i += blockDim.x) offsets[i] = 0;
  __syncthreads();

  const int64_t segment = (pairs + kSlotWarps - 1) / kSlotWarps;
  const int64_t begin = min(pairs, warp * segment);
  const int64_t end = min(pairs, begin + segment);
  int64_t* warp_offsets = offsets + warp * experts;
  const unsigned lower_lanes = (1u << lane) - 1u;

  // Pass 1: per-warp counts. One lane per distinct expert adds its group's size; __syncwarp
  // orders these updates against the next step's.
  for (int64_t base = begin; base < end; base += kWarp) {
    const int64_t i = base + lane;
    int32_t e = i < end ? chosen[i] : -1;
    if (e >= experts) e = -1;
    const unsigned group = __match_any_sync(0xffffffffu, e);
    if (e >= 0 && (group & lower_lanes) == 0) warp_offsets[e] += __popc(group);
    __syncwarp();
  }
  __syncthreads();

  // Pass 2: counts, then each expert's first slot (exclusive scan over experts, chunk by chunk
  // with a carry), then each warp's first slot within its expert.
  __shared__ int64_t scan[kSlotThreads];
  int64_t carry = 0;
  for (int64_t chunk = 0; chunk < experts; chunk += kSlotThreads) {
    const int64_t e = chunk + threadIdx.x;
    int64_t total = 0;
    if (e < experts) {
      for (int w = 0; w < kSlotWarps; ++w) total += offsets[w * experts + e];
      counts[e] = total;
    }
    scan[threadIdx.x] = total;
    __syncthreads();
    for (int stride = 1; stride < kSlotThreads; stride *= 2) {  // Hillis-Steele inclusive scan
      const int64_t add = threadIdx.x >= stride ? scan[threadIdx.x - stride] : 0;
      __syncthreads();
      scan[threadIdx.x] += add;
      __syncthreads();
    }
    if (e < experts) {
      int64_t next = carry + scan[threadIdx.x] - total;
      for (int w = 0; w < kSlotWarps; ++w) {
        const int64_t n = offsets[w * experts + e];
        offsets[w * experts + e] = next;
        next += n;
      }
    }
    carry += scan[kSlotThreads - 1];
    __syncthreads();
  }

  // Pass 3: slots. Every lane reads its group's base before the group's first lane advances it.
  for (int64_t base = begin; base < end; base += kWarp) {
    const int64_t i = base + lane;
    int32_t e = i < end ? chosen[i] : -1;
    if (e >= experts) e = -1;
    const unsigned group = __match_any_sync(0xffffffffu, e);
    if (i < end) slot[i] = e >= 0 ? warp_offsets[e] + __popc(group & lower_lanes) : -1;
    __syncwarp();
    if (e >= 0 && (group & lower_lanes) == 0) warp_offsets[e] += __popc(group);
    __syncwarp();
  }
}

// ---- Row copies -----------------------------------------------------------------------------

// dst row dst_index[i] (or i) = src row src_index[i] (or i / src_div), for i < rows; rows of
// `chunks` elements of type V (the copy unit: 16, 4 or 2 bytes). Negative indices skip the row.
template <typename V>
__global__ void CopyRowsKernel(const V* src, const int64_t* src_index, int64_t src_div,
                               const int64_t* dst_index, int64_t rows, int64_t chunks, V* dst) {
  const int64_t total = rows * chunks;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = idx / chunks;
    const int64_t c = idx - i * chunks;
    const int64_t from = src_index != nullptr ? src_index[i] : i / src_div;
    const int64_t to = dst_index != nullptr ? dst_index[i] : i;
    if (from < 0 || to < 0) continue;
    dst[to * chunks + c] = src[from * chunks + c];
  }
}

bool Aligned(const void* p, size_t alignment) {
  return reinterpret_cast<uintptr_t>(p) % alignment == 0;
}

absl::Status CopyRows(const void* src, const int64_t* src_index, int64_t src_div,
                      const int64_t* dst_index, int64_t rows, int64_t row_bytes, void* dst,
                      cudaStream_t stream, absl::string_view what) {
  MOECAP_RETURN_IF_ERROR(CheckNonNegative(rows, "rows", what));
  if (row_bytes < 0 || row_bytes % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": row_bytes is ", row_bytes, " (must be a non-negative even number)"));
  }
  if (rows == 0 || row_bytes == 0) return absl::OkStatus();
  for (const auto& [p, field] : {std::pair<const void*, const char*>{src, "src"}, {dst, "dst"}}) {
    MOECAP_RETURN_IF_ERROR(CheckPointer(p, field, what));
  }
  if (row_bytes % 16 == 0 && Aligned(src, 16) && Aligned(dst, 16)) {
    const int64_t chunks = row_bytes / 16;
    CopyRowsKernel<uint4><<<BlocksFor(rows * chunks), kThreads, 0, stream>>>(
        static_cast<const uint4*>(src), src_index, src_div, dst_index, rows, chunks,
        static_cast<uint4*>(dst));
  } else if (row_bytes % 4 == 0 && Aligned(src, 4) && Aligned(dst, 4)) {
    const int64_t chunks = row_bytes / 4;
    CopyRowsKernel<uint32_t><<<BlocksFor(rows * chunks), kThreads, 0, stream>>>(
        static_cast<const uint32_t*>(src), src_index, src_div, dst_index, rows, chunks,
        static_cast<uint32_t*>(dst));
  } else {
    const int64_t chunks = row_bytes / 2;
    CopyRowsKernel<uint16_t><<<BlocksFor(rows * chunks), kThreads, 0, stream>>>(
        static_cast<const uint16_t*>(src), src_index, src_div, dst_index, rows, chunks,
        static_cast<uint16_t*>(dst));
  }
  return LaunchStatus(what);
}

// ---- SwiGlu, conversions --------------------------------------------------------------------

template <typename T>
__global__ void SwiGluKernel(const float* gate_up, int64_t rows, int64_t f, T* out) {
  const int64_t total = rows * f;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = idx / f;
    const int64_t j = idx - i * f;
    const float gate = gate_up[i * 2 * f + j];
    const float up = gate_up[i * 2 * f + f + j];
    // gate / (1 + e^−gate) · up, as CpuBackend::SwiGlu.
    Store(out, idx, __fmul_rn(__fdiv_rn(gate, __fadd_rn(1.0f, FastExp(-gate))), up));
  }
}

__global__ void FloatToBf16Kernel(const float* in, int64_t count, __nv_bfloat16* out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = ToBf16(in[i]);
  }
}

__global__ void Bf16ToFloatKernel(const __nv_bfloat16* in, int64_t count, float* out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = __bfloat162float(in[i]);
  }
}

// ---- Combine --------------------------------------------------------------------------------

// Each thread sums a group of W consecutive elements of one token's row: residual (+ shared),
// then weight · result for the k chosen experts in order, each multiply and add rounded on its
// own as the host loop does. W elements of T are loaded as one 16-byte vector when W·sizeof(T) is
// 16 (the caller checked alignment).
template <typename T, int W>
__global__ void CombineKernel(const float* residual, const float* shared, const T* combined,
                              const int64_t* slot, const float* weights, int64_t rows, int64_t k,
                              int64_t hidden, float* out) {
  const int64_t groups = hidden / W;
  const int64_t total = rows * groups;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = idx / groups;
    const int64_t col = (idx - t * groups) * W;
    float acc[W];
    for (int v = 0; v < W; ++v) {
      acc[v] = residual[t * hidden + col + v];
      if (shared != nullptr) acc[v] = __fadd_rn(acc[v], shared[t * hidden + col + v]);
    }
    for (int64_t j = 0; j < k; ++j) {
      const int64_t s = slot[t * k + j];
      if (s < 0) continue;
      const float w = weights[t * k + j];
      const T* row = combined + s * hidden + col;
      T values[W];
      if constexpr (W * sizeof(T) == 16) {
        const uint4 raw = *reinterpret_cast<const uint4*>(row);
        memcpy(values, &raw, sizeof(raw));
      } else {
        for (int v = 0; v < W; ++v) values[v] = row[v];
      }
      for (int v = 0; v < W; ++v) acc[v] = __fadd_rn(acc[v], __fmul_rn(w, ToF32(values[v])));
    }
    for (int v = 0; v < W; ++v) out[t * hidden + col + v] = acc[v];
  }
}

template <typename T, int W>
void LaunchCombine(const float* residual, const float* shared, const void* combined,
                   const int64_t* slot, const float* weights, int64_t rows, int64_t k,
                   int64_t hidden, float* out, cudaStream_t stream) {
  CombineKernel<T, W><<<BlocksFor(rows * (hidden / W)), kThreads, 0, stream>>>(
      residual, shared, static_cast<const T*>(combined), slot, weights, rows, k, hidden, out);
}

}  // namespace

absl::Status FillUniform(uint64_t key, int64_t count, float bound, Dtype dtype, void* out,
                         cudaStream_t stream) {
  constexpr absl::string_view kWhat = "FillUniform";
  MOECAP_RETURN_IF_ERROR(CheckGemmDtype(dtype, kWhat));
  MOECAP_RETURN_IF_ERROR(CheckNonNegative(count, "count", kWhat));
  if (count == 0) return absl::OkStatus();
  MOECAP_RETURN_IF_ERROR(CheckPointer(out, "out", kWhat));
  if (dtype == Dtype::kFp32) {
    FillUniformKernel<<<BlocksFor(count), kThreads, 0, stream>>>(key, count, bound,
                                                                 static_cast<float*>(out));
  } else {
    FillUniformKernel<<<BlocksFor(count), kThreads, 0, stream>>>(key, count, bound,
                                                                 static_cast<__nv_bfloat16*>(out));
  }
  return LaunchStatus(kWhat);
}

absl::Status RmsNorm(const float* x, int64_t rows, int64_t hidden, float* normed, Dtype dtype,
                     void* act, cudaStream_t stream) {
  constexpr absl::string_view kWhat = "RmsNorm";
  MOECAP_RETURN_IF_ERROR(CheckGemmDtype(dtype, kWhat));
  MOECAP_RETURN_IF_ERROR(CheckNonNegative(rows, "rows", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckNonNegative(hidden, "hidden", kWhat));
  if (rows == 0 || hidden == 0 || (normed == nullptr && act == nullptr)) return absl::OkStatus();
  MOECAP_RETURN_IF_ERROR(CheckPointer(x, "x", kWhat));
  if (rows > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, ": rows is ", rows, " (> 2^31 - 1)"));
  }
  const dim3 grid(static_cast<unsigned>(rows));
  if (dtype == Dtype::kFp32) {
    RmsNormKernel<float>
        <<<grid, kNormThreads, 0, stream>>>(x, hidden, normed, static_cast<float*>(act));
  } else {
    RmsNormKernel<__nv_bfloat16>
        <<<grid, kNormThreads, 0, stream>>>(x, hidden, normed, static_cast<__nv_bfloat16*>(act));
  }
  return LaunchStatus(kWhat);
}

absl::Status RouteTopK(const float* logits, int64_t rows, int64_t experts, int64_t k,
                       RouterScoring scoring, bool normalize, const int32_t* override_choices,
                       int32_t* chosen, float* weights, cudaStream_t stream) {
  constexpr absl::string_view kWhat = "RouteTopK";
  MOECAP_RETURN_IF_ERROR(CheckNonNegative(rows, "rows", kWhat));
  if (experts < 1 || experts > kMaxRouterExperts) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": experts is ", experts, " (must be in 1..", kMaxRouterExperts, ")"));
  }
  if (k < 1 || k > kMaxTopK || k > experts) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, ": k is ", k, " (must be in 1..",
                                                   std::min<int64_t>(kMaxTopK, experts), ")"));
  }
  if (rows == 0) return absl::OkStatus();
  for (const auto& [p, field] : {std::pair<const void*, const char*>{logits, "logits"},
                                 {chosen, "chosen"},
                                 {weights, "weights"}}) {
    MOECAP_RETURN_IF_ERROR(CheckPointer(p, field, kWhat));
  }
  RouteTopKKernel<<<BlocksFor(rows, 128), 128, 0, stream>>>(
      logits, rows, experts, k, scoring == RouterScoring::kSigmoid, normalize, override_choices,
      chosen, weights);
  return LaunchStatus(kWhat);
}

size_t CountAndSlotScratchBytes(int64_t experts) {
  return static_cast<size_t>(std::max<int64_t>(experts, 1)) * kSlotWarps * sizeof(int64_t);
}

absl::Status CountAndSlot(const int32_t* chosen, int64_t pairs, int64_t experts, int64_t* counts,
                          int64_t* slot, void* scratch, cudaStream_t stream) {
  constexpr absl::string_view kWhat = "CountAndSlot";
  MOECAP_RETURN_IF_ERROR(CheckNonNegative(pairs, "pairs", kWhat));
  if (experts < 1) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, ": experts is ", experts, " (< 1)"));
  }
  if (pairs > 0) {
    MOECAP_RETURN_IF_ERROR(CheckPointer(chosen, "chosen", kWhat));
    MOECAP_RETURN_IF_ERROR(CheckPointer(slot, "slot", kWhat));
  }
  MOECAP_RETURN_IF_ERROR(CheckPointer(counts, "counts", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckPointer(scratch, "scratch", kWhat));
  CountAndSlotKernel<<<1, kSlotThreads, 0, stream>>>(chosen, pairs, experts, counts, slot,
                                                     static_cast<int64_t*>(scratch));
  return LaunchStatus(kWhat);
}

absl::Status ScatterRows(const void* src, int64_t pairs, int64_t k, const int64_t* slot,
                         int64_t row_bytes, void* dst, cudaStream_t stream) {
  constexpr absl::string_view kWhat = "ScatterRows";
  if (k < 1) return absl::InvalidArgumentError(absl::StrCat(kWhat, ": k is ", k, " (< 1)"));
  if (pairs > 0) {
    MOECAP_RETURN_IF_ERROR(CheckPointer(slot, "slot", kWhat));
  }
  return CopyRows(src, nullptr, k, slot, pairs, row_bytes, dst, stream, kWhat);
}

absl::Status GatherRows(const void* src, const int64_t* index, int64_t rows, int64_t row_bytes,
                        void* dst, cudaStream_t stream) {
  constexpr absl::string_view kWhat = "GatherRows";
  if (rows > 0) {
    MOECAP_RETURN_IF_ERROR(CheckPointer(index, "index", kWhat));
  }
  return CopyRows(src, index, 1, nullptr, rows, row_bytes, dst, stream, kWhat);
}

absl::Status SwiGlu(const float* gate_up, int64_t rows, int64_t f, Dtype out_dtype, void* out,
                    cudaStream_t stream) {
  constexpr absl::string_view kWhat = "SwiGlu";
  MOECAP_RETURN_IF_ERROR(CheckGemmDtype(out_dtype, kWhat));
  MOECAP_RETURN_IF_ERROR(CheckNonNegative(rows, "rows", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckNonNegative(f, "f", kWhat));
  if (rows == 0 || f == 0) return absl::OkStatus();
  MOECAP_RETURN_IF_ERROR(CheckPointer(gate_up, "gate_up", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckPointer(out, "out", kWhat));
  if (out_dtype == Dtype::kFp32) {
    SwiGluKernel<<<BlocksFor(rows * f), kThreads, 0, stream>>>(gate_up, rows, f,
                                                               static_cast<float*>(out));
  } else {
    SwiGluKernel<<<BlocksFor(rows * f), kThreads, 0, stream>>>(gate_up, rows, f,
                                                               static_cast<__nv_bfloat16*>(out));
  }
  return LaunchStatus(kWhat);
}

absl::Status FromFloat(const float* in, int64_t count, Dtype dtype, void* out,
                       cudaStream_t stream) {
  constexpr absl::string_view kWhat = "FromFloat";
  MOECAP_RETURN_IF_ERROR(CheckGemmDtype(dtype, kWhat));
  MOECAP_RETURN_IF_ERROR(CheckNonNegative(count, "count", kWhat));
  if (count == 0) return absl::OkStatus();
  MOECAP_RETURN_IF_ERROR(CheckPointer(in, "in", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckPointer(out, "out", kWhat));
  if (dtype == Dtype::kFp32) {
    if (out == in) return absl::OkStatus();
    return CudaCheck(cudaMemcpyAsync(out, in, sizeof(float) * static_cast<size_t>(count),
                                     cudaMemcpyDeviceToDevice, stream),
                     "FromFloat: cudaMemcpyAsync");
  }
  FloatToBf16Kernel<<<BlocksFor(count), kThreads, 0, stream>>>(in, count,
                                                               static_cast<__nv_bfloat16*>(out));
  return LaunchStatus(kWhat);
}

absl::Status ToFloat(const void* in, int64_t count, Dtype dtype, float* out, cudaStream_t stream) {
  constexpr absl::string_view kWhat = "ToFloat";
  MOECAP_RETURN_IF_ERROR(CheckGemmDtype(dtype, kWhat));
  MOECAP_RETURN_IF_ERROR(CheckNonNegative(count, "count", kWhat));
  if (count == 0) return absl::OkStatus();
  MOECAP_RETURN_IF_ERROR(CheckPointer(in, "in", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckPointer(out, "out", kWhat));
  if (dtype == Dtype::kFp32) {
    if (out == in) return absl::OkStatus();
    return CudaCheck(cudaMemcpyAsync(out, in, sizeof(float) * static_cast<size_t>(count),
                                     cudaMemcpyDeviceToDevice, stream),
                     "ToFloat: cudaMemcpyAsync");
  }
  Bf16ToFloatKernel<<<BlocksFor(count), kThreads, 0, stream>>>(
      static_cast<const __nv_bfloat16*>(in), count, out);
  return LaunchStatus(kWhat);
}

absl::Status Combine(const float* residual, const float* shared, const void* combined, Dtype dtype,
                     const int64_t* slot, const float* weights, int64_t rows, int64_t k,
                     int64_t hidden, float* out, cudaStream_t stream) {
  constexpr absl::string_view kWhat = "Combine";
  MOECAP_RETURN_IF_ERROR(CheckGemmDtype(dtype, kWhat));
  MOECAP_RETURN_IF_ERROR(CheckNonNegative(rows, "rows", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckNonNegative(k, "k", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckNonNegative(hidden, "hidden", kWhat));
  if (rows == 0 || hidden == 0) return absl::OkStatus();
  MOECAP_RETURN_IF_ERROR(CheckPointer(residual, "residual", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckPointer(out, "out", kWhat));
  if (k > 0) {
    for (const auto& [p, field] : {std::pair<const void*, const char*>{combined, "combined"},
                                   {slot, "slot"},
                                   {weights, "weights"}}) {
      MOECAP_RETURN_IF_ERROR(CheckPointer(p, field, kWhat));
    }
  }
  const bool vector16 = Aligned(combined, 16);
  if (dtype == Dtype::kBf16) {
    if (vector16 && hidden % 8 == 0) {
      LaunchCombine<__nv_bfloat16, 8>(residual, shared, combined, slot, weights, rows, k, hidden,
                                      out, stream);
    } else {
      LaunchCombine<__nv_bfloat16, 1>(residual, shared, combined, slot, weights, rows, k, hidden,
                                      out, stream);
    }
  } else if (vector16 && hidden % 4 == 0) {
    LaunchCombine<float, 4>(residual, shared, combined, slot, weights, rows, k, hidden, out,
                            stream);
  } else {
    LaunchCombine<float, 1>(residual, shared, combined, slot, weights, rows, k, hidden, out,
                            stream);
  }
  return LaunchStatus(kWhat);
}

}  // namespace moecap::cuda
