// The decoder layer's attention kernels (attention_kernels.h), fp32 math on CUDA cores.
//
// Decode is bandwidth-bound for GQA: a block owns one split of one sequence's keys for the query
// heads of one KV group, streams that group's K and V rows once with 16-byte loads, and keeps
// every head's query slice and output accumulator in registers. The split's keys are walked in
// chunks whose scores sit in shared memory, so each chunk's softmax is exact (chunk max, then
// exp) and the chunks merge with the running max/sum rescaling of online softmax. Splits leave
// (max, sum, unnormalised output) in the workspace and a combine kernel merges them by
// log-sum-exp; with one split the block normalises and writes the output itself.
//
// MLA decode runs the same split and merge, with the cache tile staged in shared memory because
// every latent row is used by all the block's heads twice (scores over 576 values, then the
// weighted sum over the first 512).
//
// Prefill is flash-attention style: a block holds a tile of queries of one head, walks the key
// tiles the tile's causal window needs, and keeps a running max and sum per query row.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/compute/cuda/attention_kernels.h"
#include "agent/compute/cuda/cuda_device.h"
#include "common/status_macros.h"

namespace moecap::cuda {
namespace {

constexpr int kWarp = 32;

// ---- Cache element types --------------------------------------------------------------------

// A 16-byte vector of the cache holds kVec elements.
struct Bf16Cache {
  static constexpr int kVec = 8;
  static constexpr int kBytes = 2;
};
struct Fp8Cache {
  static constexpr int kVec = 16;
  static constexpr int kBytes = 1;
};

// bf16 is the upper half of an fp32, so widening is a shift or a mask.
__device__ __forceinline__ float2 Bf16PairToFloat2(uint32_t word) {
  return make_float2(__uint_as_float(word << 16), __uint_as_float(word & 0xffff0000u));
}

// Two e4m3 values (the lower byte first) to floats, through the hardware fp8x2 -> f16x2 convert.
__device__ __forceinline__ float2 Fp8PairToFloat2(uint32_t pair) {
  const __half2_raw raw =
      __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(pair & 0xffffu), __NV_E4M3);
  return __half22float2(__half2(raw));
}

__device__ __forceinline__ void Widen(const uint4& raw, float (&out)[Bf16Cache::kVec], Bf16Cache) {
  const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = Bf16PairToFloat2(words[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

__device__ __forceinline__ void Widen(const uint4& raw, float (&out)[Fp8Cache::kVec], Fp8Cache) {
  const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 lo = Fp8PairToFloat2(words[i]);
    const float2 hi = Fp8PairToFloat2(words[i] >> 16);
    out[4 * i] = lo.x;
    out[4 * i + 1] = lo.y;
    out[4 * i + 2] = hi.x;
    out[4 * i + 3] = hi.y;
  }
}

// Two consecutive cache elements (4-byte aligned for bf16, 2-byte for fp8) to floats.
__device__ __forceinline__ float2 LoadPair(const uint8_t* p, Bf16Cache) {
  return Bf16PairToFloat2(*reinterpret_cast<const uint32_t*>(p));
}
__device__ __forceinline__ float2 LoadPair(const uint8_t* p, Fp8Cache) {
  return Fp8PairToFloat2(*reinterpret_cast<const uint16_t*>(p));
}

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// exp(a − b) that is 0 where a is −inf (a masked key or an empty running max), never NaN.
__device__ __forceinline__ float ExpDiff(float a, float b) {
  return a == kNegInf ? 0.0f : __expf(a - b);
}

__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  return v;
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  }
  return v;
}

// The context of sequence s, clamped to the cache (a bad length must not read past it).
__device__ __forceinline__ int64_t ContextOf(const int32_t* lens, int64_t s, int64_t capacity) {
  const int64_t len = lens[s];
  return len < 0 ? 0 : (len > capacity ? capacity : len);
}

// Chunk softmax shared by the decode kernels: for the heads h < nh of `scores` (row stride
// `stride`, n ≥ 1 valid keys), replaces each score by exp(score − new max), folds the chunk into
// the running max m and sum l, and leaves the rescale factor of the old accumulator in alpha.
// Warp w handles heads w, w + warps, ...; the caller synchronises before and after.
__device__ void ChunkSoftmax(float* scores, int stride, int n, int nh, float* m, float* l,
                             float* alpha) {
  const int lane = threadIdx.x % kWarp;
  const int warps = blockDim.x / kWarp;
  for (int h = threadIdx.x / kWarp; h < nh; h += warps) {
    float* row = scores + h * stride;
    float chunk_max = kNegInf;
    for (int j = lane; j < n; j += kWarp) chunk_max = fmaxf(chunk_max, row[j]);
    chunk_max = WarpMax(chunk_max);
    const float old_max = m[h];
    const float new_max = fmaxf(old_max, chunk_max);
    float sum = 0;
    for (int j = lane; j < n; j += kWarp) {
      const float e = ExpDiff(row[j], new_max);
      row[j] = e;
      sum += e;
    }
    sum = WarpSum(sum);
    if (lane == 0) {
      const float a = ExpDiff(old_max, new_max);
      l[h] = l[h] * a + sum;
      m[h] = new_max;
      alpha[h] = a;
    }
  }
}

// Where a decode block leaves its split's result. With one split the output itself (normalised,
// times the value scale); otherwise the workspace: acc[((s·heads + h)·splits + split)·dv + d]
// unnormalised, then ml[(... )·2 + {0, 1}] = (max, sum).
struct DecodeOutput {
  float* out = nullptr;
  float* ws_acc = nullptr;
  float* ws_ml = nullptr;
  int64_t heads = 0;
  int64_t splits = 1;
  int64_t dv = 0;
  float value_scale = 1.0f;
};

__device__ __forceinline__ void StoreDecodeResult(const DecodeOutput& o, int64_t s, int64_t head,
                                                  int64_t split, int64_t d, float acc, float m,
                                                  float l, bool store_ml) {
  const int64_t row = s * o.heads + head;
  if (o.splits == 1) {
    o.out[row * o.dv + d] = l > 0 ? acc * o.value_scale / l : 0.0f;
    return;
  }
  const int64_t part = row * o.splits + split;
  o.ws_acc[part * o.dv + d] = acc * o.value_scale;
  if (store_ml) {
    o.ws_ml[part * 2] = m;
    o.ws_ml[part * 2 + 1] = l;
  }
}

// ---- GQA decode -----------------------------------------------------------------------------

constexpr int kGqaThreads = 128;
constexpr int kGqaWarps = kGqaThreads / kWarp;
constexpr int kGqaChunk = 512;  // keys whose scores one pass keeps in shared memory
constexpr int kGqaUnroll = 4;   // 16-byte loads a thread has in flight per batch

struct GqaParams {
  const float* q;
  const uint8_t* k;
  const uint8_t* v;
  float q_scale;  // softmax scale · k_scale, folded into the query
  int64_t heads;
  int64_t kv_heads;
  int64_t group;             // heads / kv_heads
  int64_t blocks_per_group;  // ceil(group / kH)
  int64_t capacity;
  const int32_t* context_lens;
  int64_t window;
  int64_t splits;
  int64_t keys_per_split;
  DecodeOutput output;
};

// Block b: head block b % blocks_per_group of (sequence, KV group, split). Thread t covers the
// 16-byte column t % kLanes of the rows t / kLanes, t / kLanes + kRows, ... of both K and V.
template <typename C, int kD, int kH>
__global__ void __launch_bounds__(kGqaThreads) GqaDecodeKernel(GqaParams p) {
  constexpr int kVec = C::kVec;
  constexpr int kLanes = kD / kVec;  // threads per row (4..16: a row never spans warps)
  constexpr int kRows = kGqaThreads / kLanes;
  constexpr int kRowBytes = kD * C::kBytes;
  constexpr int kScoreFloats = kH * kGqaChunk;
  constexpr int kReduceFloats = kGqaWarps * kH * kD;
  __shared__ __align__(16) float smem[kScoreFloats > kReduceFloats ? kScoreFloats : kReduceFloats];
  __shared__ float s_m[kH], s_l[kH], s_alpha[kH];

  int64_t b = blockIdx.x;
  const int64_t hb = b % p.blocks_per_group;
  b /= p.blocks_per_group;
  const int64_t split = b % p.splits;
  b /= p.splits;
  const int64_t g = b % p.kv_heads;
  const int64_t s = b / p.kv_heads;
  const int64_t h0 = g * p.group + hb * kH;
  const int nh = static_cast<int>(min(static_cast<int64_t>(kH), p.group - hb * kH));

  const int tid = threadIdx.x;
  const int col = tid % kLanes;
  const int row = tid / kLanes;
  const int64_t context = ContextOf(p.context_lens, s, p.capacity);
  const int64_t begin = DecodeSplitBegin(split, p.keys_per_split, context, p.window);
  const int64_t end = DecodeSplitEnd(split, p.splits, p.keys_per_split, context);

  float q[kH][kVec];
#pragma unroll
  for (int h = 0; h < kH; ++h) {
#pragma unroll
    for (int e = 0; e < kVec; e += 4) {
      float4 v4 = make_float4(0, 0, 0, 0);
      if (h < nh) {
        v4 = *reinterpret_cast<const float4*>(p.q + (s * p.heads + h0 + h) * kD + col * kVec + e);
      }
      q[h][e] = v4.x * p.q_scale;
      q[h][e + 1] = v4.y * p.q_scale;
      q[h][e + 2] = v4.z * p.q_scale;
      q[h][e + 3] = v4.w * p.q_scale;
    }
  }
  float acc[kH][kVec] = {};
  if (tid < kH) {
    s_m[tid] = kNegInf;
    s_l[tid] = 0;
  }
  __syncthreads();

  // Row key of the (sequence, group): its byte offset, plus this thread's column.
  const auto row_offset = [&](int64_t key) {
    return ((s * p.capacity + key) * p.kv_heads + g) * kRowBytes + col * 16;
  };
  float* scores = smem;
  for (int64_t chunk = begin; chunk < end; chunk += kGqaChunk) {
    const int n = static_cast<int>(min(static_cast<int64_t>(kGqaChunk), end - chunk));
    // Scores of the chunk's keys; every lane runs every batch so the shuffles see a full warp.
    for (int base = 0; base < n; base += kRows * kGqaUnroll) {
      uint4 raw[kGqaUnroll];
#pragma unroll
      for (int u = 0; u < kGqaUnroll; ++u) {
        const int j = base + u * kRows + row;
        raw[u] = j < n ? *reinterpret_cast<const uint4*>(p.k + row_offset(chunk + j))
                       : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < kGqaUnroll; ++u) {
        float kv[kVec];
        Widen(raw[u], kv, C{});
        const int j = base + u * kRows + row;
#pragma unroll
        for (int h = 0; h < kH; ++h) {
          float dot = 0;
#pragma unroll
          for (int e = 0; e < kVec; ++e) dot = fmaf(q[h][e], kv[e], dot);
#pragma unroll
          for (int offset = kLanes / 2; offset > 0; offset /= 2) {
            dot += __shfl_xor_sync(0xffffffffu, dot, offset);
          }
          if (col == 0 && j < n && h < nh) scores[h * kGqaChunk + j] = dot;
        }
      }
    }
    __syncthreads();
    ChunkSoftmax(scores, kGqaChunk, n, nh, s_m, s_l, s_alpha);
    __syncthreads();
#pragma unroll
    for (int h = 0; h < kH; ++h) {
      const float a = h < nh ? s_alpha[h] : 0.0f;
#pragma unroll
      for (int e = 0; e < kVec; ++e) acc[h][e] *= a;
    }
    for (int base = 0; base < n; base += kRows * kGqaUnroll) {
      uint4 raw[kGqaUnroll];
#pragma unroll
      for (int u = 0; u < kGqaUnroll; ++u) {
        const int j = base + u * kRows + row;
        raw[u] = j < n ? *reinterpret_cast<const uint4*>(p.v + row_offset(chunk + j))
                       : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < kGqaUnroll; ++u) {
        const int j = base + u * kRows + row;
        if (j >= n) continue;
        float vv[kVec];
        Widen(raw[u], vv, C{});
#pragma unroll
        for (int h = 0; h < kH; ++h) {
          const float w = h < nh ? scores[h * kGqaChunk + j] : 0.0f;
#pragma unroll
          for (int e = 0; e < kVec; ++e) acc[h][e] = fmaf(w, vv[e], acc[h][e]);
        }
      }
    }
    __syncthreads();  // the next chunk overwrites the scores
  }

  // Sum the rows' accumulators: over the lanes of a warp with the same column, then the warps.
#pragma unroll
  for (int h = 0; h < kH; ++h) {
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
#pragma unroll
      for (int offset = kLanes; offset < kWarp; offset *= 2) {
        acc[h][e] += __shfl_xor_sync(0xffffffffu, acc[h][e], offset);
      }
    }
  }
  float* reduce = smem;  // [warp][head][d]; the scores are no longer needed
  const int lane = tid % kWarp;
  if (lane < kLanes) {
#pragma unroll
    for (int h = 0; h < kH; ++h) {
#pragma unroll
      for (int e = 0; e < kVec; ++e)
        reduce[((tid / kWarp) * kH + h) * kD + col * kVec + e] = acc[h][e];
    }
  }
  __syncthreads();
  for (int idx = tid; idx < nh * kD; idx += kGqaThreads) {
    const int h = idx / kD;
    const int d = idx % kD;
    float sum = 0;
#pragma unroll
    for (int w = 0; w < kGqaWarps; ++w) sum += reduce[(w * kH + h) * kD + d];
    StoreDecodeResult(p.output, s, h0 + h, split, d, sum, s_m[h], s_l[h], d == 0);
  }
}

// ---- MLA decode -----------------------------------------------------------------------------

constexpr int kMlaThreads = 256;
constexpr int kMlaLora = 512;
constexpr int kMlaRope = 64;
constexpr int kMlaWidth = kMlaLora + kMlaRope;
constexpr int kMlaHeads = static_cast<int>(kMlaHeadsPerBlock);
constexpr int kMlaTile = 16;  // keys staged in shared memory per pass
static_assert(kMlaHeads * kMlaTile * 2 == kMlaThreads, "two threads per (head, key) score");
static_assert(kMlaThreads / kWarp >= kMlaHeads, "one warp per head in the softmax");
static_assert(kMlaLora == 2 * kMlaThreads, "two output columns per thread");

struct MlaParams {
  const float* q;
  const uint8_t* cache;
  float q_scale;  // softmax scale · cache scale
  int64_t heads;
  int64_t blocks_per_group;  // ceil(heads / kMlaHeads)
  int64_t capacity;
  const int32_t* context_lens;
  int64_t splits;
  int64_t keys_per_split;
  DecodeOutput output;
};

// Block b: head block b % blocks_per_group of (sequence, split), so the head blocks of one split
// run side by side and share its rows through L2.
template <typename C>
__global__ void __launch_bounds__(kMlaThreads) MlaDecodeKernel(MlaParams p) {
  constexpr int kVec = C::kVec;
  constexpr int kRowBytes = kMlaWidth * C::kBytes;
  constexpr int kRowVecs = kRowBytes / 16;
  // Rows padded by 16 bytes so the two threads of a score and the keys of a warp hit
  // different banks.
  constexpr int kTileStride = kRowBytes + 16;
  constexpr int kHalf = kMlaWidth / 2;  // each of a score's two threads sums half the row
  static_assert(kHalf % kVec == 0, "a half row is whole vectors");
  __shared__ __align__(16) float s_q[kMlaHeads][kMlaWidth];
  __shared__ __align__(16) uint8_t s_tile[kMlaTile * kTileStride];
  __shared__ float s_scores[kMlaHeads][kMlaTile];
  __shared__ float s_m[kMlaHeads], s_l[kMlaHeads], s_alpha[kMlaHeads];

  int64_t b = blockIdx.x;
  const int64_t hb = b % p.blocks_per_group;
  b /= p.blocks_per_group;
  const int64_t split = b % p.splits;
  const int64_t s = b / p.splits;
  const int64_t h0 = hb * kMlaHeads;
  const int nh = static_cast<int>(min(static_cast<int64_t>(kMlaHeads), p.heads - h0));
  const int tid = threadIdx.x;
  const int64_t context = ContextOf(p.context_lens, s, p.capacity);
  const int64_t begin = DecodeSplitBegin(split, p.keys_per_split, context, 0);
  const int64_t end = DecodeSplitEnd(split, p.splits, p.keys_per_split, context);

  for (int idx = tid; idx < kMlaHeads * kMlaWidth; idx += kMlaThreads) {
    const int h = idx / kMlaWidth;
    s_q[h][idx % kMlaWidth] =
        h < nh ? p.q[(s * p.heads + h0 + h) * kMlaWidth + idx % kMlaWidth] * p.q_scale : 0.0f;
  }
  if (tid < kMlaHeads) {
    s_m[tid] = kNegInf;
    s_l[tid] = 0;
  }
  float acc[kMlaHeads][2] = {};
  const int score_head = tid / 2 / kMlaTile;
  const int score_key = tid / 2 % kMlaTile;
  const int half = tid % 2;
  const int out_col = 2 * tid;
  const uint8_t* rows = p.cache + s * p.capacity * kRowBytes;

  for (int64_t tile = begin; tile < end; tile += kMlaTile) {
    const int n = static_cast<int>(min(static_cast<int64_t>(kMlaTile), end - tile));
    __syncthreads();  // the previous tile's weighted sum is done (and s_q, s_m are written)
    for (int idx = tid; idx < n * kRowVecs; idx += kMlaThreads) {
      const int r = idx / kRowVecs;
      const int c = idx % kRowVecs;
      *reinterpret_cast<uint4*>(s_tile + r * kTileStride + c * 16) =
          *reinterpret_cast<const uint4*>(rows + (tile + r) * kRowBytes + c * 16);
    }
    __syncthreads();
    {
      const uint8_t* key = s_tile + score_key * kTileStride + half * kHalf * C::kBytes;
      const float* qh = s_q[score_head] + half * kHalf;
      float dot = 0;
      for (int v = 0; v < kHalf / kVec; ++v) {
        float kv[kVec];
        Widen(*reinterpret_cast<const uint4*>(key + v * 16), kv, C{});
#pragma unroll
        for (int e = 0; e < kVec; e += 4) {
          const float4 q4 = *reinterpret_cast<const float4*>(qh + v * kVec + e);
          dot = fmaf(q4.x, kv[e], dot);
          dot = fmaf(q4.y, kv[e + 1], dot);
          dot = fmaf(q4.z, kv[e + 2], dot);
          dot = fmaf(q4.w, kv[e + 3], dot);
        }
      }
      dot += __shfl_xor_sync(0xffffffffu, dot, 1);
      if (half == 0) s_scores[score_head][score_key] = dot;
    }
    __syncthreads();
    ChunkSoftmax(&s_scores[0][0], kMlaTile, n, nh, s_m, s_l, s_alpha);
    __syncthreads();
#pragma unroll
    for (int h = 0; h < kMlaHeads; ++h) {
      const float a = h < nh ? s_alpha[h] : 0.0f;
      acc[h][0] *= a;
      acc[h][1] *= a;
    }
    for (int j = 0; j < n; ++j) {
      const float2 v = LoadPair(s_tile + j * kTileStride + out_col * C::kBytes, C{});
#pragma unroll
      for (int h = 0; h < kMlaHeads; ++h) {
        const float w = h < nh ? s_scores[h][j] : 0.0f;
        acc[h][0] = fmaf(w, v.x, acc[h][0]);
        acc[h][1] = fmaf(w, v.y, acc[h][1]);
      }
    }
  }
  __syncthreads();
#pragma unroll  // a constant bound keeps acc in registers
  for (int h = 0; h < kMlaHeads; ++h) {
    if (h >= nh) break;
    StoreDecodeResult(p.output, s, h0 + h, split, out_col, acc[h][0], s_m[h], s_l[h], tid == 0);
    StoreDecodeResult(p.output, s, h0 + h, split, out_col + 1, acc[h][1], s_m[h], s_l[h], false);
  }
}

// ---- Split combine --------------------------------------------------------------------------

constexpr int kCombineThreads = 128;

// One block per (sequence, head): out = Σ_i e^(m_i − M)·acc_i / Σ_i e^(m_i − M)·l_i, M the
// largest split max (the log-sum-exp merge); 0 where no split saw a key.
__global__ void __launch_bounds__(kCombineThreads)
    CombineSplitsKernel(const float* ws_acc, const float* ws_ml, int64_t splits, int64_t dv,
                        float* out) {
  const int64_t row = blockIdx.x;
  const float* ml = ws_ml + row * splits * 2;
  float max = kNegInf;
  for (int64_t i = 0; i < splits; ++i) max = fmaxf(max, ml[i * 2]);
  float denom = 0;
  for (int64_t i = 0; i < splits; ++i) denom += ExpDiff(ml[i * 2], max) * ml[i * 2 + 1];
  for (int64_t d = threadIdx.x; d < dv; d += blockDim.x) {
    float num = 0;
    for (int64_t i = 0; i < splits; ++i) {
      const float w = ExpDiff(ml[i * 2], max);
      if (w != 0) num += w * ws_acc[(row * splits + i) * dv + d];
    }
    out[row * dv + d] = denom > 0 ? num / denom : 0.0f;
  }
}

// ---- Prefill --------------------------------------------------------------------------------

constexpr int kPrefillThreads = 128;
constexpr int kPrefillQueries = 16;                           // a block's query tile
constexpr int kPrefillKeys = 16;                              // keys per tile
constexpr int kRowLanes = kPrefillThreads / kPrefillQueries;  // threads per query row: 8
static_assert(kRowLanes * kPrefillQueries == kPrefillThreads, "whole rows per block");
static_assert(kPrefillKeys % kRowLanes == 0, "whole keys per thread");
constexpr int kKeysPerLane = kPrefillKeys / kRowLanes;

struct PrefillParams {
  const void* q;
  const uint8_t* k;
  const uint8_t* v;
  float q_scale;  // softmax scale · k_scale
  float v_scale;
  int64_t new_tokens;
  int64_t heads;
  int64_t kv_heads;
  int64_t group;
  int64_t capacity;
  const int32_t* cached;
  int64_t window;
  int64_t query_tiles;
  float* out;
};

__device__ __forceinline__ float QueryValue(const float* q, int64_t i) { return q[i]; }
__device__ __forceinline__ float QueryValue(const __nv_bfloat16* q, int64_t i) {
  return __bfloat162float(q[i]);
}

// Loads `rows` cache rows (kDim wide) from the row at `first_key` into `tile` (row stride
// `stride` floats), zero past `valid` rows.
template <typename C, int kDim>
__device__ void LoadKeyTile(const uint8_t* cache, int64_t s, int64_t capacity, int64_t kv_heads,
                            int64_t g, int64_t first_key, int valid, float* tile, int stride) {
  constexpr int kVecs = kDim / C::kVec;
  for (int idx = threadIdx.x; idx < kPrefillKeys * kVecs; idx += blockDim.x) {
    const int r = idx / kVecs;
    const int c = idx % kVecs;
    float values[C::kVec];
    if (r < valid) {
      const int64_t offset =
          ((s * capacity + first_key + r) * kv_heads + g) * kDim * C::kBytes + c * 16;
      Widen(*reinterpret_cast<const uint4*>(cache + offset), values, C{});
    } else {
#pragma unroll
      for (int e = 0; e < C::kVec; ++e) values[e] = 0;
    }
#pragma unroll
    for (int e = 0; e < C::kVec; ++e) tile[r * stride + c * C::kVec + e] = values[e];
  }
}

// Block b: query tile b % query_tiles of (sequence, head). Thread t serves query row t / 8 of the
// tile: keys (t % 8) + 8·i of each key tile for the scores, columns (t % 8) + 8·i of the output.
template <typename C, typename Q, int kDqk, int kDv>
__global__ void __launch_bounds__(kPrefillThreads) PrefillKernel(PrefillParams p) {
  constexpr int kQStride = kDqk + 1;  // padded: the rows of a warp fall in different banks
  constexpr int kKStride = kDqk + 1;
  constexpr int kCols = kDv / kRowLanes;
  __shared__ float s_q[kPrefillQueries * kQStride];
  __shared__ float s_k[kPrefillKeys * kKStride];
  __shared__ float s_v[kPrefillKeys * kDv];
  __shared__ float s_p[kPrefillQueries][kPrefillKeys];

  int64_t b = blockIdx.x;
  const int64_t qt = b % p.query_tiles;
  b /= p.query_tiles;
  const int64_t h = b % p.heads;
  const int64_t s = b / p.heads;
  const int64_t g = h / p.group;
  const int64_t t0 = qt * kPrefillQueries;
  const int nq = static_cast<int>(min(static_cast<int64_t>(kPrefillQueries), p.new_tokens - t0));
  const int64_t cached = p.cached != nullptr ? max(0, p.cached[s]) : 0;
  const int64_t kv_end = min(p.capacity, cached + p.new_tokens);  // keys written so far

  const Q* q = static_cast<const Q*>(p.q);
  for (int idx = threadIdx.x; idx < kPrefillQueries * kDqk; idx += blockDim.x) {
    const int i = idx / kDqk;
    const int d = idx % kDqk;
    s_q[i * kQStride + d] =
        i < nq ? QueryValue(q, ((s * p.new_tokens + t0 + i) * p.heads + h) * kDqk + d) * p.q_scale
               : 0.0f;
  }

  const int tid = threadIdx.x;
  const int i = tid / kRowLanes;
  const int lane_in_row = tid % kRowLanes;
  const int64_t pos = cached + t0 + i;  // this row's query position
  const bool row_valid = i < nq;
  const int64_t row_first = FirstAttendedKey(pos, p.window);
  float m = kNegInf;
  float l = 0;
  float acc[kCols] = {};

  const int64_t first = FirstAttendedKey(cached + t0, p.window);
  const int64_t last = min(cached + t0 + nq - 1, kv_end - 1);
  for (int64_t kb = first; kb <= last; kb += kPrefillKeys) {
    const int valid = static_cast<int>(min(static_cast<int64_t>(kPrefillKeys), kv_end - kb));
    __syncthreads();  // the previous tile is used up (and s_q is written)
    LoadKeyTile<C, kDqk>(p.k, s, p.capacity, p.kv_heads, g, kb, valid, s_k, kKStride);
    LoadKeyTile<C, kDv>(p.v, s, p.capacity, p.kv_heads, g, kb, valid, s_v, kDv);
    __syncthreads();
    float score[kKeysPerLane];
    float tile_max = kNegInf;
#pragma unroll
    for (int u = 0; u < kKeysPerLane; ++u) {
      const int j = lane_in_row + u * kRowLanes;
      const int64_t key = kb + j;
      float dot = 0;
      for (int d = 0; d < kDqk; ++d) dot = fmaf(s_q[i * kQStride + d], s_k[j * kKStride + d], dot);
      const bool attended = row_valid && j < valid && key <= pos && key >= row_first;
      score[u] = attended ? dot : kNegInf;
      tile_max = fmaxf(tile_max, score[u]);
    }
    // The row's 8 threads are adjacent lanes of one warp.
#pragma unroll
    for (int offset = kRowLanes / 2; offset > 0; offset /= 2) {
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, offset));
    }
    const float new_max = fmaxf(m, tile_max);
    float sum = 0;
#pragma unroll
    for (int u = 0; u < kKeysPerLane; ++u) {
      const float e = ExpDiff(score[u], new_max);
      s_p[i][lane_in_row + u * kRowLanes] = e;
      sum += e;
    }
#pragma unroll
    for (int offset = kRowLanes / 2; offset > 0; offset /= 2) {
      sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    }
    const float alpha = ExpDiff(m, new_max);
    l = l * alpha + sum;
    m = new_max;
    __syncwarp();  // s_p of this row, written by its 8 lanes, is read by all of them
#pragma unroll
    for (int c = 0; c < kCols; ++c) acc[c] *= alpha;
    for (int j = 0; j < kPrefillKeys; ++j) {
      const float w = s_p[i][j];
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        acc[c] = fmaf(w, s_v[j * kDv + lane_in_row + c * kRowLanes], acc[c]);
      }
    }
  }
  if (!row_valid) return;
  float* out = p.out + ((s * p.new_tokens + t0 + i) * p.heads + h) * kDv;
#pragma unroll
  for (int c = 0; c < kCols; ++c) {
    out[lane_in_row + c * kRowLanes] = l > 0 ? acc[c] * p.v_scale / l : 0.0f;
  }
}

// ---- New tokens: rotary positions and the cache append --------------------------------------

// One thread per (row, head of the qkv row, pair i): query and key heads rotate their pair, value
// heads copy theirs.
__global__ void RopeAppendKernel(RopeAppendArgs a, int64_t total) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const int64_t half = a.head_dim / 2;
  const int64_t all_heads = a.heads + 2 * a.kv_heads;
  const int64_t i = idx % half;
  const int64_t h = (idx / half) % all_heads;
  const int64_t row = idx / (half * all_heads);
  const int64_t s = row / a.new_tokens, t = row % a.new_tokens;
  const float* in = a.qkv + row * all_heads * a.head_dim + h * a.head_dim;
  const float x0 = in[i], x1 = in[i + half];
  float y0 = x0, y1 = x1;
  if (h < a.heads + a.kv_heads) {
    const float c = a.rope_cos[t * half + i], sn = a.rope_sin[t * half + i];
    y0 = x0 * c - x1 * sn;
    y1 = x0 * sn + x1 * c;
  }
  if (h < a.heads) {
    float* q = a.q_out + (row * a.heads + h) * a.head_dim;
    q[i] = y0;
    q[i + half] = y1;
    return;
  }
  const bool value = h >= a.heads + a.kv_heads;
  const int64_t g = h - a.heads - (value ? a.kv_heads : 0);
  __nv_bfloat16* cache = static_cast<__nv_bfloat16*>(value ? a.v_cache : a.k_cache) +
                         ((s * a.capacity + a.cached + t) * a.kv_heads + g) * a.head_dim;
  cache[i] = __float2bfloat16_rn(y0);
  cache[i + half] = __float2bfloat16_rn(y1);
}

__global__ void AddInPlaceKernel(const float* x, int64_t count, float* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) out[i] += x[i];
}

constexpr int kElementwiseThreads = 256;

// ---- Host-side checks -----------------------------------------------------------------------

absl::Status CheckPointer(const void* ptr, absl::string_view field, absl::string_view what) {
  if (ptr != nullptr) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", field, " is null"));
}

absl::Status CheckAligned16(const void* ptr, absl::string_view field, absl::string_view what) {
  if (reinterpret_cast<uintptr_t>(ptr) % 16 == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, ": ", field, " is not 16-byte aligned (the kernels load 16-byte vectors)"));
}

absl::Status CheckAtLeast(int64_t value, int64_t least, absl::string_view field,
                          absl::string_view what) {
  if (value >= least) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": ", field, " is ", value, " (must be >= ", least, ")"));
}

absl::Status CheckCacheDtype(Dtype dtype, absl::string_view what) {
  if (dtype == Dtype::kBf16 || dtype == Dtype::kFp8) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": cache dtype ", DtypeName(dtype), " is unsupported (bf16, fp8 e4m3)"));
}

absl::Status CheckHeadDim(int64_t value, std::initializer_list<int64_t> supported,
                          absl::string_view field, absl::string_view what) {
  if (std::find(supported.begin(), supported.end(), value) != supported.end()) {
    return absl::OkStatus();
  }
  std::string list;
  for (int64_t d : supported) absl::StrAppend(&list, list.empty() ? "" : ", ", d);
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": ", field, " is ", value, " (supported: ", list, ")"));
}

// The plan and the workspace a decode launch with these many heads and this output width needs.
absl::Status CheckPlan(const DecodeAttentionPlan& plan, int64_t seqs, int64_t heads, int64_t dv,
                       const void* workspace, size_t workspace_bytes, absl::string_view what) {
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(plan.splits, 1, "plan.splits", what));
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(plan.keys_per_split, 1, "plan.keys_per_split", what));
  const int64_t needed = DecodeWorkspaceBytes(seqs, heads, plan.splits, dv);
  if (needed == 0) return absl::OkStatus();
  if (static_cast<int64_t>(workspace_bytes) < needed) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": workspace_bytes is ", workspace_bytes,
                                                   ", the plan's ", plan.splits, " splits need ",
                                                   needed));
  }
  MOECAP_RETURN_IF_ERROR(CheckPointer(workspace, "workspace", what));
  return CheckAligned16(workspace, "workspace", what);
}

absl::StatusOr<unsigned> GridSize(int64_t blocks, absl::string_view what) {
  if (blocks > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", blocks, " blocks exceed the grid limit (2^31 - 1)"));
  }
  return static_cast<unsigned>(blocks);
}

DecodeOutput MakeDecodeOutput(float* out, void* workspace, int64_t seqs, int64_t heads,
                              int64_t splits, int64_t dv, float value_scale) {
  DecodeOutput o;
  o.out = out;
  o.heads = heads;
  o.splits = splits;
  o.dv = dv;
  o.value_scale = value_scale;
  if (splits > 1) {
    o.ws_acc = static_cast<float*>(workspace);
    o.ws_ml = o.ws_acc + seqs * heads * splits * dv;
  }
  return o;
}

absl::Status LaunchCombine(const DecodeOutput& o, int64_t seqs, cudaStream_t stream,
                           absl::string_view what) {
  if (o.splits == 1) return absl::OkStatus();
  CombineSplitsKernel<<<static_cast<unsigned>(seqs * o.heads), kCombineThreads, 0, stream>>>(
      o.ws_acc, o.ws_ml, o.splits, o.dv, o.out);
  return CudaCheck(cudaGetLastError(), absl::StrCat(what, ": combine kernel launch"));
}

template <typename C, int kD>
void LaunchGqa(const GqaParams& p, int64_t heads_per_block, unsigned grid, cudaStream_t stream) {
  switch (heads_per_block) {
    case 1:
      GqaDecodeKernel<C, kD, 1><<<grid, kGqaThreads, 0, stream>>>(p);
      break;
    case 2:
      GqaDecodeKernel<C, kD, 2><<<grid, kGqaThreads, 0, stream>>>(p);
      break;
    case 4:
      GqaDecodeKernel<C, kD, 4><<<grid, kGqaThreads, 0, stream>>>(p);
      break;
    default:
      if constexpr (8 * C::kVec <= 64) {  // the fp8 cap is 4 heads
        GqaDecodeKernel<C, kD, 8><<<grid, kGqaThreads, 0, stream>>>(p);
      }
      break;
  }
}

template <typename C, typename Q>
void LaunchPrefill(const PrefillParams& p, int64_t dqk, int64_t dv, unsigned grid,
                   cudaStream_t stream) {
  if (dv == 64) {
    if (dqk == 64) {
      PrefillKernel<C, Q, 64, 64><<<grid, kPrefillThreads, 0, stream>>>(p);
    } else if (dqk == 128) {
      PrefillKernel<C, Q, 128, 64><<<grid, kPrefillThreads, 0, stream>>>(p);
    } else {
      PrefillKernel<C, Q, 192, 64><<<grid, kPrefillThreads, 0, stream>>>(p);
    }
  } else if (dqk == 64) {
    PrefillKernel<C, Q, 64, 128><<<grid, kPrefillThreads, 0, stream>>>(p);
  } else if (dqk == 128) {
    PrefillKernel<C, Q, 128, 128><<<grid, kPrefillThreads, 0, stream>>>(p);
  } else {
    PrefillKernel<C, Q, 192, 128><<<grid, kPrefillThreads, 0, stream>>>(p);
  }
}

}  // namespace

absl::Status GqaDecodeAttention(const GqaDecodeArgs& a, const DecodeAttentionPlan& plan,
                                void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  constexpr absl::string_view kWhat = "GqaDecodeAttention";
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.seqs, 0, "seqs", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.heads, 1, "heads", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.kv_heads, 1, "kv_heads", kWhat));
  if (a.heads % a.kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": heads ", a.heads, " is not a multiple of kv_heads ", a.kv_heads));
  }
  MOECAP_RETURN_IF_ERROR(CheckHeadDim(a.head_dim, {64, 128}, "head_dim", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckCacheDtype(a.kv_dtype, kWhat));
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.capacity, 1, "capacity", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.window, 0, "window", kWhat));
  MOECAP_RETURN_IF_ERROR(
      CheckPlan(plan, a.seqs, a.heads, a.head_dim, workspace, workspace_bytes, kWhat));
  if (a.seqs == 0) return absl::OkStatus();
  for (const auto& [ptr, field] : {std::pair<const void*, const char*>{a.q, "q"},
                                   {a.k_cache, "k_cache"},
                                   {a.v_cache, "v_cache"},
                                   {a.context_lens, "context_lens"},
                                   {a.out, "out"}}) {
    MOECAP_RETURN_IF_ERROR(CheckPointer(ptr, field, kWhat));
  }
  for (const auto& [ptr, field] : {std::pair<const void*, const char*>{a.q, "q"},
                                   {a.k_cache, "k_cache"},
                                   {a.v_cache, "v_cache"}}) {
    MOECAP_RETURN_IF_ERROR(CheckAligned16(ptr, field, kWhat));
  }
  const bool fp8 = a.kv_dtype == Dtype::kFp8;
  const int64_t group = a.heads / a.kv_heads;
  const int64_t heads_per_block = GqaDecodeHeadsPerBlock(group, a.kv_dtype);
  GqaParams p;
  p.q = a.q;
  p.k = static_cast<const uint8_t*>(a.k_cache);
  p.v = static_cast<const uint8_t*>(a.v_cache);
  p.q_scale = a.softmax_scale * (fp8 ? a.k_scale : 1.0f);
  p.heads = a.heads;
  p.kv_heads = a.kv_heads;
  p.group = group;
  p.blocks_per_group = (group + heads_per_block - 1) / heads_per_block;
  p.capacity = a.capacity;
  p.context_lens = a.context_lens;
  p.window = a.window;
  p.splits = plan.splits;
  p.keys_per_split = plan.keys_per_split;
  p.output = MakeDecodeOutput(a.out, workspace, a.seqs, a.heads, plan.splits, a.head_dim,
                              fp8 ? a.v_scale : 1.0f);
  absl::StatusOr<unsigned> grid =
      GridSize(a.seqs * a.kv_heads * plan.splits * p.blocks_per_group, kWhat);
  if (!grid.ok()) return grid.status();
  if (fp8) {
    if (a.head_dim == 64) {
      LaunchGqa<Fp8Cache, 64>(p, heads_per_block, *grid, stream);
    } else {
      LaunchGqa<Fp8Cache, 128>(p, heads_per_block, *grid, stream);
    }
  } else if (a.head_dim == 64) {
    LaunchGqa<Bf16Cache, 64>(p, heads_per_block, *grid, stream);
  } else {
    LaunchGqa<Bf16Cache, 128>(p, heads_per_block, *grid, stream);
  }
  MOECAP_RETURN_IF_ERROR(CudaCheck(cudaGetLastError(), absl::StrCat(kWhat, " kernel launch")));
  return LaunchCombine(p.output, a.seqs, stream, kWhat);
}

absl::Status MlaDecodeAttention(const MlaDecodeArgs& a, const DecodeAttentionPlan& plan,
                                void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  constexpr absl::string_view kWhat = "MlaDecodeAttention";
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.seqs, 0, "seqs", kWhat));
  if (a.heads < 1 || a.heads > 128) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": heads is ", a.heads, " (must be in 1..128)"));
  }
  if (a.kv_lora_rank != kMlaLora || a.rope_dim != kMlaRope) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, ": kv_lora_rank + rope_dim is ",
                                                   a.kv_lora_rank, " + ", a.rope_dim,
                                                   " (supported: 512 + 64)"));
  }
  MOECAP_RETURN_IF_ERROR(CheckCacheDtype(a.cache_dtype, kWhat));
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.capacity, 1, "capacity", kWhat));
  MOECAP_RETURN_IF_ERROR(
      CheckPlan(plan, a.seqs, a.heads, a.kv_lora_rank, workspace, workspace_bytes, kWhat));
  if (a.seqs == 0) return absl::OkStatus();
  for (const auto& [ptr, field] : {std::pair<const void*, const char*>{a.q_latent, "q_latent"},
                                   {a.cache, "cache"},
                                   {a.context_lens, "context_lens"},
                                   {a.out, "out"}}) {
    MOECAP_RETURN_IF_ERROR(CheckPointer(ptr, field, kWhat));
  }
  MOECAP_RETURN_IF_ERROR(CheckAligned16(a.cache, "cache", kWhat));
  const bool fp8 = a.cache_dtype == Dtype::kFp8;
  MlaParams p;
  p.q = a.q_latent;
  p.cache = static_cast<const uint8_t*>(a.cache);
  p.q_scale = a.softmax_scale * (fp8 ? a.cache_scale : 1.0f);
  p.heads = a.heads;
  p.blocks_per_group = (a.heads + kMlaHeads - 1) / kMlaHeads;
  p.capacity = a.capacity;
  p.context_lens = a.context_lens;
  p.splits = plan.splits;
  p.keys_per_split = plan.keys_per_split;
  p.output = MakeDecodeOutput(a.out, workspace, a.seqs, a.heads, plan.splits, a.kv_lora_rank,
                              fp8 ? a.cache_scale : 1.0f);
  absl::StatusOr<unsigned> grid = GridSize(a.seqs * plan.splits * p.blocks_per_group, kWhat);
  if (!grid.ok()) return grid.status();
  if (fp8) {
    MlaDecodeKernel<Fp8Cache><<<*grid, kMlaThreads, 0, stream>>>(p);
  } else {
    MlaDecodeKernel<Bf16Cache><<<*grid, kMlaThreads, 0, stream>>>(p);
  }
  MOECAP_RETURN_IF_ERROR(CudaCheck(cudaGetLastError(), absl::StrCat(kWhat, " kernel launch")));
  return LaunchCombine(p.output, a.seqs, stream, kWhat);
}

absl::Status PrefillAttention(const PrefillAttentionArgs& a, cudaStream_t stream) {
  constexpr absl::string_view kWhat = "PrefillAttention";
  if (a.q_dtype != Dtype::kFp32 && a.q_dtype != Dtype::kBf16) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": q dtype ", DtypeName(a.q_dtype), " is unsupported (fp32, bf16)"));
  }
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.seqs, 0, "seqs", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.new_tokens, 0, "new_tokens", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.heads, 1, "heads", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.kv_heads, 1, "kv_heads", kWhat));
  if (a.heads % a.kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": heads ", a.heads, " is not a multiple of kv_heads ", a.kv_heads));
  }
  MOECAP_RETURN_IF_ERROR(CheckHeadDim(a.head_dim_qk, {64, 128, 192}, "head_dim_qk", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckHeadDim(a.head_dim_v, {64, 128}, "head_dim_v", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckCacheDtype(a.kv_dtype, kWhat));
  MOECAP_RETURN_IF_ERROR(
      CheckAtLeast(a.capacity, std::max<int64_t>(1, a.new_tokens), "capacity", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.window, 0, "window", kWhat));
  if (a.seqs == 0 || a.new_tokens == 0) return absl::OkStatus();
  for (const auto& [ptr, field] : {std::pair<const void*, const char*>{a.q, "q"},
                                   {a.k_cache, "k_cache"},
                                   {a.v_cache, "v_cache"},
                                   {a.out, "out"}}) {
    MOECAP_RETURN_IF_ERROR(CheckPointer(ptr, field, kWhat));
  }
  for (const auto& [ptr, field] :
       {std::pair<const void*, const char*>{a.k_cache, "k_cache"}, {a.v_cache, "v_cache"}}) {
    MOECAP_RETURN_IF_ERROR(CheckAligned16(ptr, field, kWhat));
  }
  const bool fp8 = a.kv_dtype == Dtype::kFp8;
  PrefillParams p;
  p.q = a.q;
  p.k = static_cast<const uint8_t*>(a.k_cache);
  p.v = static_cast<const uint8_t*>(a.v_cache);
  p.q_scale = a.softmax_scale * (fp8 ? a.k_scale : 1.0f);
  p.v_scale = fp8 ? a.v_scale : 1.0f;
  p.new_tokens = a.new_tokens;
  p.heads = a.heads;
  p.kv_heads = a.kv_heads;
  p.group = a.heads / a.kv_heads;
  p.capacity = a.capacity;
  p.cached = a.cached;
  p.window = a.window;
  p.query_tiles = (a.new_tokens + kPrefillQueries - 1) / kPrefillQueries;
  p.out = a.out;
  absl::StatusOr<unsigned> grid = GridSize(a.seqs * a.heads * p.query_tiles, kWhat);
  if (!grid.ok()) return grid.status();
  const bool bf16_q = a.q_dtype == Dtype::kBf16;
  if (fp8) {
    if (bf16_q) {
      LaunchPrefill<Fp8Cache, __nv_bfloat16>(p, a.head_dim_qk, a.head_dim_v, *grid, stream);
    } else {
      LaunchPrefill<Fp8Cache, float>(p, a.head_dim_qk, a.head_dim_v, *grid, stream);
    }
  } else if (bf16_q) {
    LaunchPrefill<Bf16Cache, __nv_bfloat16>(p, a.head_dim_qk, a.head_dim_v, *grid, stream);
  } else {
    LaunchPrefill<Bf16Cache, float>(p, a.head_dim_qk, a.head_dim_v, *grid, stream);
  }
  return CudaCheck(cudaGetLastError(), absl::StrCat(kWhat, " kernel launch"));
}

absl::Status RopeAndAppendKv(const RopeAppendArgs& a, cudaStream_t stream) {
  constexpr absl::string_view kWhat = "RopeAndAppendKv";
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.seqs, 0, "seqs", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.new_tokens, 0, "new_tokens", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.heads, 1, "heads", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.kv_heads, 1, "kv_heads", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.head_dim, 2, "head_dim", kWhat));
  if (a.head_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": head_dim ", a.head_dim, " is odd (rotary pairs need it even)"));
  }
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.cached, 0, "cached", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(a.capacity, a.cached + a.new_tokens, "capacity", kWhat));
  const int64_t total = a.seqs * a.new_tokens * (a.heads + 2 * a.kv_heads) * (a.head_dim / 2);
  if (total == 0) return absl::OkStatus();
  for (const auto& [ptr, field] : {std::pair<const void*, const char*>{a.qkv, "qkv"},
                                   {a.rope_cos, "rope_cos"},
                                   {a.rope_sin, "rope_sin"},
                                   {a.q_out, "q_out"},
                                   {a.k_cache, "k_cache"},
                                   {a.v_cache, "v_cache"}}) {
    MOECAP_RETURN_IF_ERROR(CheckPointer(ptr, field, kWhat));
  }
  absl::StatusOr<unsigned> grid =
      GridSize((total + kElementwiseThreads - 1) / kElementwiseThreads, kWhat);
  if (!grid.ok()) return grid.status();
  RopeAppendKernel<<<*grid, kElementwiseThreads, 0, stream>>>(a, total);
  return CudaCheck(cudaGetLastError(), absl::StrCat(kWhat, " kernel launch"));
}

absl::Status AddInPlace(const float* x, int64_t count, float* out, cudaStream_t stream) {
  constexpr absl::string_view kWhat = "AddInPlace";
  MOECAP_RETURN_IF_ERROR(CheckAtLeast(count, 0, "count", kWhat));
  if (count == 0) return absl::OkStatus();
  MOECAP_RETURN_IF_ERROR(CheckPointer(x, "x", kWhat));
  MOECAP_RETURN_IF_ERROR(CheckPointer(out, "out", kWhat));
  absl::StatusOr<unsigned> grid =
      GridSize((count + kElementwiseThreads - 1) / kElementwiseThreads, kWhat);
  if (!grid.ok()) return grid.status();
  AddInPlaceKernel<<<*grid, kElementwiseThreads, 0, stream>>>(x, count, out);
  return CudaCheck(cudaGetLastError(), absl::StrCat(kWhat, " kernel launch"));
}

}  // namespace moecap::cuda
