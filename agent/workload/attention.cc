// GQA and MLA attention over per-sequence caches, blocked over queries, with the cache as GEMM
// weights wherever a product allows it.
#include "agent/workload/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "agent/workload/layer_math.h"
#include "agent/workload/random.h"
#include "agent/workload/weights.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

size_t ElementBytes(Dtype dtype) { return static_cast<size_t>(DtypeBytes(dtype)); }

// Queries scored together: a block's rows are its tokens × the group's query heads (MLA's
// expanded form: its tokens, one head at a time).
constexpr int64_t kQueryBlock = 64;

uint64_t AttentionKey(uint64_t seed, StreamPurpose purpose, int64_t layer) {
  return StreamKey({seed, static_cast<uint64_t>(purpose), static_cast<uint64_t>(layer)});
}

StreamPurpose PartPurpose(AttentionPart part) {
  switch (part) {
    case AttentionPart::kQkv:
      return StreamPurpose::kAttentionQkv;
    case AttentionPart::kQ:
      return StreamPurpose::kAttentionQ;
    case AttentionPart::kQa:
      return StreamPurpose::kAttentionQa;
    case AttentionPart::kKvA:
      return StreamPurpose::kAttentionKvA;
    case AttentionPart::kKvB:
      return StreamPurpose::kAttentionKvB;
    case AttentionPart::kOut:
      break;
  }
  return StreamPurpose::kAttentionOut;
}

bool IsMla(const ModelSpec& m) { return m.attention == AttentionKind::kMla; }

// The width of one cache entry: GQA d_h (per KV head, K and V apart), MLA the latent + rope.
int64_t CacheWidth(const ModelSpec& m) {
  return IsMla(m) ? m.mla.kv_lora_rank + m.mla.qk_rope_head_dim : m.gqa.head_dim;
}

int64_t RopeDim(const ModelSpec& m) { return IsMla(m) ? m.mla.qk_rope_head_dim : m.gqa.head_dim; }

// The window of query position `pos` in layer `layer`: keys [first, pos].
int64_t FirstKey(const ModelSpec& m, int64_t layer, int64_t pos) {
  return IsSlidingLayer(m, layer) ? std::max<int64_t>(0, pos - m.sliding_window + 1) : 0;
}

// The rotation angle of pair i of an r-wide rotary part at position `pos`.
double RopeAngle(int64_t pos, int64_t i, int64_t r) {
  return static_cast<double>(pos) *
         std::pow(kRopeBase, -2.0 * static_cast<double>(i) / static_cast<double>(r));
}

// Rotates the pairs (i, i + r/2) of `v` (r values) by `cos` and `sin` (r/2 each).
template <typename T, typename A>
void Rotate(T* v, int64_t r, const A* cos, const A* sin) {
  const int64_t half = r / 2;
  for (int64_t i = 0; i < half; ++i) {
    const A a = static_cast<A>(v[i]), b = static_cast<A>(v[i + half]);
    v[i] = static_cast<T>(a * cos[i] - b * sin[i]);
    v[i + half] = static_cast<T>(a * sin[i] + b * cos[i]);
  }
}

// Softmax of row[lo..hi] scaled by `scale`, the keys outside it zeroed (masked).
void MaskedSoftmax(float* row, int64_t keys, int64_t lo, int64_t hi, float scale) {
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t j = lo; j <= hi; ++j) max = std::max(max, row[j]);
  float sum = 0;
  std::fill(row, row + lo, 0.0f);
  for (int64_t j = lo; j <= hi; ++j) {
    row[j] = std::exp((row[j] - max) * scale);
    sum += row[j];
  }
  std::fill(row + hi + 1, row + keys, 0.0f);
  const float inv = 1.0f / sum;
  for (int64_t j = lo; j <= hi; ++j) row[j] *= inv;
}

// Double precision: RMS norm of `n` values in place (the engine's RmsNormRows, unit weights).
void RmsNormInPlace(double* v, int64_t n) {
  double ms = 0;
  for (int64_t i = 0; i < n; ++i) ms += v[i] * v[i];
  const double inv = 1.0 / std::sqrt(ms / static_cast<double>(n) + 1e-6);
  for (int64_t i = 0; i < n; ++i) v[i] *= inv;
}

// y (rows_w) = W·x for W (rows_w × cols, fp32 row-major), in double.
void MatVec(const std::vector<float>& w, int64_t rows_w, int64_t cols, const double* x, double* y) {
  for (int64_t o = 0; o < rows_w; ++o) {
    double acc = 0;
    const float* row = w.data() + o * cols;
    for (int64_t i = 0; i < cols; ++i) acc += row[i] * x[i];
    y[o] = acc;
  }
}

// `part` of layer `layer` as fp32, as `dtype` holds it.
std::vector<float> ReferencePart(ComputeBackend& host, const ModelSpec& m, Dtype dtype,
                                 uint64_t seed, int64_t layer, AttentionPart part) {
  const int64_t n = AttentionPartShape(m, part).size();
  std::vector<char> raw(static_cast<size_t>(n) * ElementBytes(dtype));
  std::vector<float> w(static_cast<size_t>(n));
  if (n == 0) return w;
  AttentionWeights::Fill(host, m, dtype, seed, layer, part, raw.data());
  host.ToFloat(raw.data(), n, dtype, w.data());
  return w;
}

void ReferenceGqa(ComputeBackend& host, const ModelSpec& m, Dtype dtype, uint64_t seed,
                  int64_t layer, const SequenceBlock& block, const double* x, double* out);
void ReferenceMla(ComputeBackend& host, const ModelSpec& m, Dtype dtype, uint64_t seed,
                  int64_t layer, const SequenceBlock& block, const double* x, double* out);

}  // namespace

absl::Status AttentionSupported(const ModelSpec& scaled) {
  if (IsMla(scaled)) {
    const MlaAttention& a = scaled.mla;
    if (a.heads < 1 || a.kv_lora_rank < 1 || a.qk_nope_head_dim < 1 || a.v_head_dim < 1 ||
        a.qk_rope_head_dim < 2 || a.qk_rope_head_dim % 2 != 0 || a.q_lora_rank < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model '", scaled.name, "': MLA heads ", a.heads, ", kv_lora_rank ", a.kv_lora_rank,
          ", qk_nope_head_dim ", a.qk_nope_head_dim, ", qk_rope_head_dim ", a.qk_rope_head_dim,
          ", v_head_dim ", a.v_head_dim,
          ": the decoder layer needs each at least 1 and an even rope part of at least 2"));
    }
    return absl::OkStatus();
  }
  const GqaAttention& a = scaled.gqa;
  if (a.heads < 1 || a.kv_heads < 1 || a.heads % a.kv_heads != 0 || a.head_dim < 2 ||
      a.head_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", scaled.name, "': attention heads ", a.heads, ", kv heads ",
                     a.kv_heads, ", head dim ", a.head_dim,
                     ": the decoder layer needs kv heads dividing the heads and an "
                     "even head dim"));
  }
  return absl::OkStatus();
}

float CachedKvValue(uint64_t seed, int64_t layer, int64_t sequence, int64_t kv_head, bool value,
                    int64_t position, int64_t i) {
  const uint64_t key =
      StreamKey({seed, static_cast<uint64_t>(StreamPurpose::kKvCache), static_cast<uint64_t>(layer),
                 static_cast<uint64_t>(sequence), static_cast<uint64_t>(kv_head), value ? 1u : 0u});
  // A large stride keeps positions apart whatever the entry's width.
  const uint64_t index = static_cast<uint64_t>(position) * 4096u + static_cast<uint64_t>(i);
  return (2.0f * Uniform01(key, index) - 1.0f) * std::sqrt(3.0f);
}

MatrixShape AttentionPartShape(const ModelSpec& m, AttentionPart part) {
  const int64_t d = m.hidden_size;
  if (!IsMla(m)) {
    const GqaAttention& a = m.gqa;
    switch (part) {
      case AttentionPart::kQkv:
        return {(a.heads + 2 * a.kv_heads) * a.head_dim, d};
      case AttentionPart::kOut:
        return {d, a.heads * a.head_dim};
      default:
        return {};
    }
  }
  const MlaAttention& a = m.mla;
  const int64_t qk = a.qk_nope_head_dim + a.qk_rope_head_dim;
  switch (part) {
    case AttentionPart::kQ:
      return {a.heads * qk, a.q_lora_rank > 0 ? a.q_lora_rank : d};
    case AttentionPart::kQa:
      return a.q_lora_rank > 0 ? MatrixShape{a.q_lora_rank, d} : MatrixShape{};
    case AttentionPart::kKvA:
      return {a.kv_lora_rank + a.qk_rope_head_dim, d};
    case AttentionPart::kKvB:
      return {a.heads * (a.qk_nope_head_dim + a.v_head_dim), a.kv_lora_rank};
    case AttentionPart::kOut:
      return {d, a.heads * a.v_head_dim};
    case AttentionPart::kQkv:
      break;
  }
  return {};
}

void AttentionWeights::Fill(ComputeBackend& backend, const ModelSpec& m, Dtype dtype, uint64_t seed,
                            int64_t layer, AttentionPart part, void* out) {
  const MatrixShape shape = AttentionPartShape(m, part);
  FillWeights(backend, AttentionKey(seed, PartPurpose(part), layer), shape.size(), shape.cols,
              dtype, out);
}

int64_t AttentionWeights::Bytes(const ModelSpec& m, int64_t layers, Dtype dtype, bool lm_head) {
  const int64_t keys_up_t =
      IsMla(m) ? m.mla.heads * m.mla.qk_nope_head_dim * m.mla.kv_lora_rank : 0;
  return ((AttentionParamsPerLayer(m) + keys_up_t) * layers + (lm_head ? LmHeadParams(m) : 0)) *
         static_cast<int64_t>(ElementBytes(dtype));
}

absl::StatusOr<AttentionWeights> AttentionWeights::Generate(ComputeBackend& backend,
                                                            const ModelSpec& m, int64_t layers,
                                                            Dtype dtype, uint64_t seed,
                                                            bool lm_head) {
  MOECAP_RETURN_IF_ERROR(AttentionSupported(m));
  const size_t eb = ElementBytes(dtype);
  AttentionWeights w;
  w.dtype_ = dtype;
  for (int64_t l = 0; l < layers; ++l) {
    Layer layer;
    for (int p = 0; p < kAttentionParts; ++p) {
      const auto part = static_cast<AttentionPart>(p);
      const int64_t n = AttentionPartShape(m, part).size();
      if (n == 0) continue;
      MOECAP_ASSIGN_OR_RETURN(layer.parts[static_cast<size_t>(p)],
                              backend.Allocate(eb * static_cast<size_t>(n)));
      Fill(backend, m, dtype, seed, l, part, layer.parts[static_cast<size_t>(p)].data());
    }
    if (IsMla(m)) {
      // Head h's key rows of kKvB (nope × kv_lora_rank) transposed to kv_lora_rank × nope.
      const MlaAttention& a = m.mla;
      const int64_t lora = a.kv_lora_rank, nope = a.qk_nope_head_dim, per = nope + a.v_head_dim;
      std::vector<float> kv_b(static_cast<size_t>(a.heads * per * lora));
      std::vector<float> t(static_cast<size_t>(a.heads * lora * nope));
      backend.ToFloat(layer.parts[static_cast<size_t>(AttentionPart::kKvB)].data(),
                      static_cast<int64_t>(kv_b.size()), dtype, kv_b.data());
      for (int64_t h = 0; h < a.heads; ++h) {
        for (int64_t i = 0; i < nope; ++i) {
          for (int64_t c = 0; c < lora; ++c) {
            t[static_cast<size_t>((h * lora + c) * nope + i)] =
                kv_b[static_cast<size_t>((h * per + i) * lora + c)];
          }
        }
      }
      MOECAP_ASSIGN_OR_RETURN(layer.keys_up_t, backend.Allocate(eb * t.size()));
      backend.FromFloat(t.data(), static_cast<int64_t>(t.size()), dtype, layer.keys_up_t.data());
    }
    w.layers_.push_back(std::move(layer));
  }
  if (lm_head) {
    const int64_t v = m.vocab_size, d = m.hidden_size;
    MOECAP_ASSIGN_OR_RETURN(w.lm_head_, backend.Allocate(eb * static_cast<size_t>(v * d)));
    FillWeights(backend, AttentionKey(seed, StreamPurpose::kLmHead, 0), v * d, d, dtype,
                w.lm_head_.data());
  }
  return w;
}

AttentionStack::AttentionStack(const ModelSpec& scaled, const AttentionWeights& weights,
                               int64_t layers, uint64_t seed, ComputeBackend& backend)
    : model_(scaled),
      weights_(weights),
      backend_(backend),
      layers_(layers),
      seed_(seed),
      dtype_(weights.dtype()),
      rope_dim_(RopeDim(scaled)) {}

int64_t AttentionStack::BufferPlan::Total() const {
  int64_t total = caches * cache_bytes;
  for (int64_t b : scratch) total += b;
  return total;
}

AttentionStack::BufferPlan AttentionStack::Plan(const ModelSpec& m, int64_t layers, Dtype dtype,
                                                const SequenceBlock& block) {
  const int64_t eb = static_cast<int64_t>(ElementBytes(dtype));
  const int64_t capacity = block.cached + block.new_tokens;
  const int64_t rows = block.rows(), d = m.hidden_size;
  const int64_t qblock = std::min(kQueryBlock, block.new_tokens);
  BufferPlan plan;
  std::array<int64_t, kScratchCount>& s = plan.scratch;
  s[kNormed] = rows * d * 4;
  s[kAct] = rows * d * eb;
  plan.cache_bytes = capacity * CacheWidth(m) * eb;
  if (!IsMla(m)) {
    const GqaAttention& a = m.gqa;
    const int64_t group = a.heads / std::max<int64_t>(1, a.kv_heads), qrows = qblock * group;
    plan.caches = 2 * layers * block.count * a.kv_heads;
    s[kProj] = rows * (a.heads + 2 * a.kv_heads) * a.head_dim * 4;
    s[kAttn] = rows * a.heads * a.head_dim * 4;
    s[kAttnAct] = rows * a.heads * a.head_dim * eb;
    s[kQ] = qrows * a.head_dim * eb;
    s[kScores] = qrows * capacity * 4;
    s[kProbs] = qrows * capacity * eb;
    s[kO] = qrows * a.head_dim * 4;
    return plan;
  }
  const MlaAttention& a = m.mla;
  const int64_t qk = a.qk_nope_head_dim + a.qk_rope_head_dim;
  const int64_t lat = a.kv_lora_rank + a.qk_rope_head_dim;
  plan.caches = layers * block.count;
  s[kProj] = rows * a.heads * qk * 4;
  s[kProjAct] = rows * a.heads * qk * eb;
  s[kLatent] = rows * lat * 4;
  s[kQa] = rows * a.q_lora_rank * 4;
  s[kQaAct] = rows * a.q_lora_rank * eb;
  s[kAttn] = rows * a.heads * a.v_head_dim * 4;
  s[kAttnAct] = rows * a.heads * a.v_head_dim * eb;
  if (block.decode_step()) {
    // The absorbed form: a sequence's n_h queries in the latent space score every key at once.
    s[kQ] = a.heads * lat * eb;
    s[kLatentQ] = rows * a.heads * lat * 4;
    s[kScores] = a.heads * capacity * 4;
    s[kO] = lat * 4;  // one cache row as fp32
    s[kLatentOut] = rows * a.heads * a.kv_lora_rank * 4;
    s[kLatentOutAct] = rows * a.heads * a.kv_lora_rank * eb;
  } else {
    s[kQ] = qblock * qk * eb;
    s[kScores] = qblock * capacity * 4;
    s[kProbs] = qblock * capacity * eb;
    s[kO] = qblock * a.v_head_dim * 4;
    s[kExpanded] = capacity * a.heads * (a.qk_nope_head_dim + a.v_head_dim) * 4;
    s[kHeadK] = capacity * qk * 4;
    s[kHeadKAct] = capacity * qk * eb;
    s[kHeadVt] = a.v_head_dim * capacity * 4;
    s[kHeadVtAct] = a.v_head_dim * capacity * eb;
  }
  return plan;
}

int64_t AttentionStack::CacheBytes(const ModelSpec& m, int64_t layers, Dtype dtype,
                                   const SequenceBlock& block) {
  return Plan(m, layers, dtype, block).Total();
}

char* AttentionStack::CacheEntry(size_t cache, int64_t position, int64_t width) {
  return keys_[cache].as<char>() + static_cast<size_t>(position * width) * ElementBytes(dtype_);
}

absl::Status AttentionStack::PrepareCaches() {
  const size_t eb = ElementBytes(dtype_);
  const int64_t width = CacheWidth(model_);
  const size_t bytes = static_cast<size_t>(capacity_ * width) * eb;
  keys_.clear();
  values_t_.clear();
  std::vector<float> row(static_cast<size_t>(std::max(capacity_, width)));
  const int64_t kv_heads = IsMla(model_) ? 1 : model_.gqa.kv_heads;
  for (int64_t l = 0; l < layers_; ++l) {
    for (int64_t s = 0; s < block_.count; ++s) {
      const int64_t sequence = block_.first + s;
      for (int64_t g = 0; g < kv_heads; ++g) {
        MOECAP_ASSIGN_OR_RETURN(Buffer k, backend_.Allocate(bytes));
        for (int64_t p = 0; p < block_.cached; ++p) {
          for (int64_t i = 0; i < width; ++i) {
            row[static_cast<size_t>(i)] = CachedKvValue(seed_, l, sequence, g, false, p, i);
          }
          backend_.FromFloat(row.data(), width, dtype_, k.as<char>() + p * width * eb);
        }
        keys_.push_back(std::move(k));
        if (IsMla(model_)) continue;
        MOECAP_ASSIGN_OR_RETURN(Buffer vt, backend_.Allocate(bytes));
        for (int64_t i = 0; i < width; ++i) {
          for (int64_t p = 0; p < block_.cached; ++p) {
            row[static_cast<size_t>(p)] = CachedKvValue(seed_, l, sequence, g, true, p, i);
          }
          backend_.FromFloat(row.data(), block_.cached, dtype_, vt.as<char>() + i * capacity_ * eb);
        }
        values_t_.push_back(std::move(vt));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status AttentionStack::Prepare(const SequenceBlock& block) {
  MOECAP_RETURN_IF_ERROR(AttentionSupported(model_));
  block_ = block;
  capacity_ = block.cached + block.new_tokens;
  MOECAP_RETURN_IF_ERROR(PrepareCaches());
  const BufferPlan plan = Plan(model_, layers_, dtype_, block);
  for (int i = 0; i < kScratchCount; ++i) {
    MOECAP_RETURN_IF_ERROR(GrowBuffer(
        backend_, scratch_[static_cast<size_t>(i)],
        static_cast<size_t>(std::max<int64_t>(plan.scratch[static_cast<size_t>(i)], 1))));
  }
  // The new tokens' rotations, once per point rather than per head and step.
  const int64_t half = rope_dim_ / 2;
  rope_cos_.resize(static_cast<size_t>(block.new_tokens * half));
  rope_sin_.resize(rope_cos_.size());
  for (int64_t t = 0; t < block.new_tokens; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = RopeAngle(block.cached + t, i, rope_dim_);
      rope_cos_[static_cast<size_t>(t * half + i)] = static_cast<float>(std::cos(angle));
      rope_sin_[static_cast<size_t>(t * half + i)] = static_cast<float>(std::sin(angle));
    }
  }
  return absl::OkStatus();
}

const void* AttentionStack::AsDtype(const float* x, int64_t count, Buffer& scratch) {
  if (dtype_ == Dtype::kFp32) return x;
  backend_.FromFloat(x, count, dtype_, scratch.data());
  return scratch.data();
}

absl::Status AttentionStack::Forward(int64_t layer, const float* x, float* out) {
  return IsMla(model_) ? ForwardMla(layer, x, out) : ForwardGqa(layer, x, out);
}

absl::Status AttentionStack::ForwardGqa(int64_t layer, const float* x, float* out) {
  const GqaAttention& a = model_.gqa;
  const int64_t heads = a.heads, kv_heads = a.kv_heads, head_dim = a.head_dim;
  const int64_t group = heads / kv_heads;
  const int64_t rows = block_.rows(), d = model_.hidden_size, hd = heads * head_dim;
  const int64_t width = (heads + 2 * kv_heads) * head_dim;
  const size_t eb = ElementBytes(dtype_);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  float* normed = scratch_[kNormed].as<float>();
  RmsNormRows(x, rows, d, normed);
  const void* act = AsDtype(normed, rows * d, scratch_[kAct]);
  float* qkv = scratch_[kProj].as<float>();
  MOECAP_RETURN_IF_ERROR(backend_.MatMul(dtype_, rows, width, d, act, d,
                                         weights_.part(layer, AttentionPart::kQkv), d, qkv, width,
                                         false));
  for (int64_t s = 0; s < block_.count; ++s) {
    for (int64_t t = 0; t < block_.new_tokens; ++t) {
      const int64_t row = s * block_.new_tokens + t, pos = block_.cached + t;
      float* r = qkv + row * width;
      const float* cos = rope_cos_.data() + t * (head_dim / 2);
      const float* sin = rope_sin_.data() + t * (head_dim / 2);
      for (int64_t h = 0; h < heads + kv_heads; ++h) Rotate(r + h * head_dim, head_dim, cos, sin);
      for (int64_t g = 0; g < kv_heads; ++g) {
        const size_t cache = static_cast<size_t>((layer * block_.count + s) * kv_heads + g);
        const float* k = r + (heads + g) * head_dim;
        const float* v = r + (heads + kv_heads + g) * head_dim;
        backend_.FromFloat(k, head_dim, dtype_, CacheEntry(cache, pos, head_dim));
        char* vt = values_t_[cache].as<char>();
        for (int64_t i = 0; i < head_dim; ++i) {
          backend_.FromFloat(v + i, 1, dtype_, vt + static_cast<size_t>(i * capacity_ + pos) * eb);
        }
      }
    }
  }

  float* attn = scratch_[kAttn].as<float>();
  float* scores = scratch_[kScores].as<float>();
  float* o = scratch_[kO].as<float>();
  char* q_blk = scratch_[kQ].as<char>();
  for (int64_t s = 0; s < block_.count; ++s) {
    for (int64_t g = 0; g < kv_heads; ++g) {
      const size_t cache = static_cast<size_t>((layer * block_.count + s) * kv_heads + g);
      for (int64_t t0 = 0; t0 < block_.new_tokens; t0 += kQueryBlock) {
        const int64_t t1 = std::min(block_.new_tokens, t0 + kQueryBlock);
        // Keys from the first query's window start to the last query's position.
        const int64_t first = FirstKey(model_, layer, block_.cached + t0);
        const int64_t last = block_.cached + t1 - 1;
        const int64_t keys = last - first + 1;
        const int64_t qrows = (t1 - t0) * group;
        for (int64_t t = t0; t < t1; ++t) {
          const float* q = qkv + (s * block_.new_tokens + t) * width + g * group * head_dim;
          backend_.FromFloat(q, group * head_dim, dtype_,
                             q_blk + static_cast<size_t>((t - t0) * group * head_dim) * eb);
        }
        MOECAP_RETURN_IF_ERROR(backend_.MatMul(dtype_, qrows, keys, head_dim, q_blk, head_dim,
                                               CacheEntry(cache, first, head_dim), head_dim, scores,
                                               keys, false));
        for (int64_t r = 0; r < qrows; ++r) {
          const int64_t pos = block_.cached + t0 + r / group;
          MaskedSoftmax(scores + r * keys, keys, FirstKey(model_, layer, pos) - first, pos - first,
                        scale);
        }
        backend_.FromFloat(scores, qrows * keys, dtype_, scratch_[kProbs].data());
        MOECAP_RETURN_IF_ERROR(
            backend_.MatMul(dtype_, qrows, head_dim, keys, scratch_[kProbs].data(), keys,
                            values_t_[cache].as<char>() + static_cast<size_t>(first) * eb,
                            capacity_, o, head_dim, false));
        for (int64_t r = 0; r < qrows; ++r) {
          const int64_t t = t0 + r / group, h = g * group + r % group;
          std::copy_n(o + r * head_dim, head_dim,
                      attn + (s * block_.new_tokens + t) * hd + h * head_dim);
        }
      }
    }
  }
  const void* attn_in = AsDtype(attn, rows * hd, scratch_[kAttnAct]);
  MOECAP_RETURN_IF_ERROR(backend_.MatMul(dtype_, rows, d, hd, attn_in, hd,
                                         weights_.part(layer, AttentionPart::kOut), hd, out, d,
                                         false));
  for (int64_t i = 0; i < rows * d; ++i) out[i] += x[i];
  return absl::OkStatus();
}

absl::Status AttentionStack::ForwardMla(int64_t layer, const float* x, float* out) {
  const MlaAttention& a = model_.mla;
  const int64_t rows = block_.rows(), d = model_.hidden_size, nh = a.heads;
  const int64_t nope = a.qk_nope_head_dim, rope = a.qk_rope_head_dim, lora = a.kv_lora_rank;
  const int64_t qk = nope + rope, lat = lora + rope, qw = nh * qk, hv = nh * a.v_head_dim;
  float* normed = scratch_[kNormed].as<float>();
  RmsNormRows(x, rows, d, normed);
  const void* act = AsDtype(normed, rows * d, scratch_[kAct]);
  // The queries: through the query LoRA (its RMS norm between) where the model has one.
  float* q = scratch_[kProj].as<float>();
  if (a.q_lora_rank > 0) {
    const int64_t ql = a.q_lora_rank;
    float* qa = scratch_[kQa].as<float>();
    MOECAP_RETURN_IF_ERROR(backend_.MatMul(
        dtype_, rows, ql, d, act, d, weights_.part(layer, AttentionPart::kQa), d, qa, ql, false));
    RmsNormRows(qa, rows, ql, qa);
    MOECAP_RETURN_IF_ERROR(
        backend_.MatMul(dtype_, rows, qw, ql, AsDtype(qa, rows * ql, scratch_[kQaAct]), ql,
                        weights_.part(layer, AttentionPart::kQ), ql, q, qw, false));
  } else {
    MOECAP_RETURN_IF_ERROR(backend_.MatMul(
        dtype_, rows, qw, d, act, d, weights_.part(layer, AttentionPart::kQ), d, q, qw, false));
  }
  // The latent (RMS-normed) and the rope key, which the new tokens write into the cache.
  float* kv = scratch_[kLatent].as<float>();
  MOECAP_RETURN_IF_ERROR(backend_.MatMul(
      dtype_, rows, lat, d, act, d, weights_.part(layer, AttentionPart::kKvA), d, kv, lat, false));
  for (int64_t s = 0; s < block_.count; ++s) {
    for (int64_t t = 0; t < block_.new_tokens; ++t) {
      const int64_t row = s * block_.new_tokens + t;
      const float* cos = rope_cos_.data() + t * (rope / 2);
      const float* sin = rope_sin_.data() + t * (rope / 2);
      float* entry = kv + row * lat;
      RmsNormRows(entry, 1, lora, entry);
      Rotate(entry + lora, rope, cos, sin);
      for (int64_t h = 0; h < nh; ++h) Rotate(q + row * qw + h * qk + nope, rope, cos, sin);
      backend_.FromFloat(
          entry, lat, dtype_,
          CacheEntry(static_cast<size_t>(layer * block_.count + s), block_.cached + t, lat));
    }
  }
  float* attn = scratch_[kAttn].as<float>();
  MOECAP_RETURN_IF_ERROR(block_.decode_step() ? AbsorbedMla(layer, attn)
                                              : ExpandedMla(layer, attn));
  MOECAP_RETURN_IF_ERROR(
      backend_.MatMul(dtype_, rows, d, hv, AsDtype(attn, rows * hv, scratch_[kAttnAct]), hv,
                      weights_.part(layer, AttentionPart::kOut), hv, out, d, false));
  for (int64_t i = 0; i < rows * d; ++i) out[i] += x[i];
  return absl::OkStatus();
}

// One new token per sequence (rows = sequences). Per head, q_nope·W_UK (W_UKᵀ kept per head) is
// the query in the latent space; with the rope part it scores the cache rows as they are; the
// probabilities weight the latent rows, streamed once for all heads; W_UV takes the result back
// to the head's values.
absl::Status AttentionStack::AbsorbedMla(int64_t layer, float* attn) {
  const MlaAttention& a = model_.mla;
  const int64_t n = block_.count, nh = a.heads, nope = a.qk_nope_head_dim;
  const int64_t rope = a.qk_rope_head_dim, lora = a.kv_lora_rank, vd = a.v_head_dim;
  const int64_t qk = nope + rope, lat = lora + rope, qw = nh * qk, per = nope + vd;
  const size_t eb = ElementBytes(dtype_);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(qk)));
  const float* q = scratch_[kProj].as<float>();
  const char* q_act = static_cast<const char*>(AsDtype(q, n * qw, scratch_[kProjAct]));
  float* qlat = scratch_[kLatentQ].as<float>();   // n × n_h × lat
  float* scores = scratch_[kScores].as<float>();  // n_h × keys
  const char* keys_up_t = static_cast<const char*>(weights_.keys_up_t(layer));
  for (int64_t h = 0; h < nh; ++h) {
    MOECAP_RETURN_IF_ERROR(backend_.MatMul(dtype_, n, lora, nope,
                                           q_act + static_cast<size_t>(h * qk) * eb, qw,
                                           keys_up_t + static_cast<size_t>(h * lora * nope) * eb,
                                           nope, qlat + h * lat, nh * lat, false));
    for (int64_t s = 0; s < n; ++s) {
      std::copy_n(q + s * qw + h * qk + nope, rope, qlat + (s * nh + h) * lat + lora);
    }
  }
  float* latent_out = scratch_[kLatentOut].as<float>();  // n × n_h × lora
  float* row = scratch_[kO].as<float>();
  const int64_t pos = block_.cached;
  const int64_t first = FirstKey(model_, layer, pos), keys = pos - first + 1;
  for (int64_t s = 0; s < n; ++s) {
    const size_t cache = static_cast<size_t>(layer * n + s);
    backend_.FromFloat(qlat + s * nh * lat, nh * lat, dtype_, scratch_[kQ].data());
    MOECAP_RETURN_IF_ERROR(backend_.MatMul(dtype_, nh, keys, lat, scratch_[kQ].data(), lat,
                                           CacheEntry(cache, first, lat), lat, scores, keys,
                                           false));
    for (int64_t h = 0; h < nh; ++h) MaskedSoftmax(scores + h * keys, keys, 0, keys - 1, scale);
    float* o = latent_out + s * nh * lora;
    std::fill(o, o + nh * lora, 0.0f);
    for (int64_t j = 0; j < keys; ++j) {
      const float* c = row;
      if (dtype_ == Dtype::kFp32) {
        c = reinterpret_cast<const float*>(CacheEntry(cache, first + j, lat));
      } else {
        backend_.ToFloat(CacheEntry(cache, first + j, lat), lora, dtype_, row);
      }
      for (int64_t h = 0; h < nh; ++h) {
        const float p = scores[h * keys + j];
        float* oh = o + h * lora;
        for (int64_t i = 0; i < lora; ++i) oh[i] += p * c[i];
      }
    }
  }
  const char* lat_act =
      static_cast<const char*>(AsDtype(latent_out, n * nh * lora, scratch_[kLatentOutAct]));
  const char* kv_b = static_cast<const char*>(weights_.part(layer, AttentionPart::kKvB));
  for (int64_t h = 0; h < nh; ++h) {
    MOECAP_RETURN_IF_ERROR(backend_.MatMul(dtype_, n, vd, lora,
                                           lat_act + static_cast<size_t>(h * lora) * eb, nh * lora,
                                           kv_b + static_cast<size_t>((h * per + nope) * lora) * eb,
                                           lora, attn + h * vd, nh * vd, false));
  }
  return absl::OkStatus();
}

// Any number of new tokens per sequence: its cache rows up-projected through W_kvb to every
// head's keys (with the shared rope part) and values, then causal MHA in query blocks.
absl::Status AttentionStack::ExpandedMla(int64_t layer, float* attn) {
  const MlaAttention& a = model_.mla;
  const int64_t nh = a.heads, nope = a.qk_nope_head_dim, rope = a.qk_rope_head_dim;
  const int64_t lora = a.kv_lora_rank, vd = a.v_head_dim;
  const int64_t qk = nope + rope, lat = lora + rope, qw = nh * qk, per = nope + vd;
  const int64_t tokens = block_.new_tokens;
  const size_t eb = ElementBytes(dtype_);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(qk)));
  const float* q = scratch_[kProj].as<float>();
  float* expanded = scratch_[kExpanded].as<float>();
  float* scores = scratch_[kScores].as<float>();
  float* o = scratch_[kO].as<float>();
  float* head_k = scratch_[kHeadK].as<float>();    // span × qk
  float* head_vt = scratch_[kHeadVt].as<float>();  // vd × span
  char* q_blk = scratch_[kQ].as<char>();
  for (int64_t s = 0; s < block_.count; ++s) {
    const size_t cache = static_cast<size_t>(layer * block_.count + s);
    const int64_t first0 = FirstKey(model_, layer, block_.cached);
    const int64_t span = block_.cached + tokens - first0;
    MOECAP_RETURN_IF_ERROR(backend_.MatMul(
        dtype_, span, nh * per, lora, CacheEntry(cache, first0, lat), lat,
        weights_.part(layer, AttentionPart::kKvB), lora, expanded, nh * per, false));
    // Every head's keys end in the same rope part: written once per sequence, as the cache holds
    // it; each head then fills in its own nope part.
    for (int64_t j = 0; j < span; ++j) {
      backend_.ToFloat(CacheEntry(cache, first0 + j, lat) + static_cast<size_t>(lora) * eb, rope,
                       dtype_, head_k + j * qk + nope);
    }
    for (int64_t h = 0; h < nh; ++h) {
      for (int64_t j = 0; j < span; ++j) {
        const float* e = expanded + j * nh * per + h * per;
        std::copy_n(e, nope, head_k + j * qk);
        for (int64_t i = 0; i < vd; ++i) head_vt[i * span + j] = e[nope + i];
      }
      const char* k_act = static_cast<const char*>(AsDtype(head_k, span * qk, scratch_[kHeadKAct]));
      const char* vt_act =
          static_cast<const char*>(AsDtype(head_vt, vd * span, scratch_[kHeadVtAct]));
      for (int64_t t0 = 0; t0 < tokens; t0 += kQueryBlock) {
        const int64_t t1 = std::min(tokens, t0 + kQueryBlock), qrows = t1 - t0;
        const int64_t first = FirstKey(model_, layer, block_.cached + t0);
        const int64_t keys = block_.cached + t1 - first, offset = first - first0;
        for (int64_t t = t0; t < t1; ++t) {
          backend_.FromFloat(q + (s * tokens + t) * qw + h * qk, qk, dtype_,
                             q_blk + static_cast<size_t>((t - t0) * qk) * eb);
        }
        MOECAP_RETURN_IF_ERROR(backend_.MatMul(dtype_, qrows, keys, qk, q_blk, qk,
                                               k_act + static_cast<size_t>(offset * qk) * eb, qk,
                                               scores, keys, false));
        for (int64_t r = 0; r < qrows; ++r) {
          const int64_t pos = block_.cached + t0 + r;
          MaskedSoftmax(scores + r * keys, keys, FirstKey(model_, layer, pos) - first, pos - first,
                        scale);
        }
        backend_.FromFloat(scores, qrows * keys, dtype_, scratch_[kProbs].data());
        MOECAP_RETURN_IF_ERROR(backend_.MatMul(dtype_, qrows, vd, keys, scratch_[kProbs].data(),
                                               keys, vt_act + static_cast<size_t>(offset) * eb,
                                               span, o, vd, false));
        for (int64_t r = 0; r < qrows; ++r) {
          std::copy_n(o + r * vd, vd, attn + (s * tokens + t0 + r) * nh * vd + h * vd);
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::Status AttentionStack::LmHead(const float* x) {
  if (!has_lm_head()) return absl::FailedPreconditionError("LmHead without LM head weights");
  const int64_t d = model_.hidden_size, v = model_.vocab_size, n = block_.count;
  MOECAP_RETURN_IF_ERROR(
      GrowBuffer(backend_, last_, static_cast<size_t>(std::max<int64_t>(n * d * 4, 1))));
  MOECAP_RETURN_IF_ERROR(
      GrowBuffer(backend_, logits_, static_cast<size_t>(std::max<int64_t>(n * v * 4, 1))));
  float* normed = last_.as<float>();
  for (int64_t s = 0; s < n; ++s) {
    RmsNormRows(x + ((s + 1) * block_.new_tokens - 1) * d, 1, d, normed + s * d);
  }
  // In place: the dtype's rows never outgrow the fp32 ones.
  if (dtype_ != Dtype::kFp32) backend_.FromFloat(normed, n * d, dtype_, last_.data());
  return backend_.MatMul(dtype_, n, v, d, last_.data(), d, weights_.lm_head(), d,
                         logits_.as<float>(), v, false);
}

void ReferenceAttention(ComputeBackend& host, const ModelSpec& m, Dtype dtype, uint64_t seed,
                        int64_t layer, const SequenceBlock& block, const double* x, double* out) {
  if (IsMla(m)) {
    ReferenceMla(host, m, dtype, seed, layer, block, x, out);
  } else {
    ReferenceGqa(host, m, dtype, seed, layer, block, x, out);
  }
}

namespace {

void ReferenceGqa(ComputeBackend& host, const ModelSpec& m, Dtype dtype, uint64_t seed,
                  int64_t layer, const SequenceBlock& block, const double* x, double* out) {
  const GqaAttention& a = m.gqa;
  const int64_t d = m.hidden_size, hd = a.heads * a.head_dim, dh = a.head_dim;
  const int64_t width = (a.heads + 2 * a.kv_heads) * dh, group = a.heads / a.kv_heads;
  const std::vector<float> wqkv = ReferencePart(host, m, dtype, seed, layer, AttentionPart::kQkv);
  const std::vector<float> wo = ReferencePart(host, m, dtype, seed, layer, AttentionPart::kOut);

  const int64_t rows = block.rows(), capacity = block.cached + block.new_tokens;
  std::vector<double> qkv(static_cast<size_t>(rows * width)), xn(static_cast<size_t>(d));
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(x + r * d, d, xn.begin());
    RmsNormInPlace(xn.data(), d);
    MatVec(wqkv, width, d, xn.data(), &qkv[static_cast<size_t>(r * width)]);
    const int64_t pos = block.cached + r % block.new_tokens;
    std::vector<double> cos(static_cast<size_t>(dh / 2)), sin(cos.size());
    for (int64_t i = 0; i < dh / 2; ++i) {
      cos[static_cast<size_t>(i)] = std::cos(RopeAngle(pos, i, dh));
      sin[static_cast<size_t>(i)] = std::sin(RopeAngle(pos, i, dh));
    }
    for (int64_t h = 0; h < a.heads + a.kv_heads; ++h) {
      Rotate(&qkv[static_cast<size_t>(r * width + h * dh)], dh, cos.data(), sin.data());
    }
  }
  std::vector<double> attn(static_cast<size_t>(rows * hd));
  std::vector<double> k(static_cast<size_t>(capacity * dh)), v(static_cast<size_t>(capacity * dh));
  for (int64_t s = 0; s < block.count; ++s) {
    for (int64_t g = 0; g < a.kv_heads; ++g) {
      for (int64_t p = 0; p < capacity; ++p) {
        for (int64_t i = 0; i < dh; ++i) {
          const size_t at = static_cast<size_t>(p * dh + i);
          if (p < block.cached) {
            k[at] = CachedKvValue(seed, layer, block.first + s, g, false, p, i);
            v[at] = CachedKvValue(seed, layer, block.first + s, g, true, p, i);
          } else {
            const double* r =
                &qkv[static_cast<size_t>((s * block.new_tokens + p - block.cached) * width)];
            k[at] = r[(a.heads + g) * dh + i];
            v[at] = r[(a.heads + a.kv_heads + g) * dh + i];
          }
        }
      }
      for (int64_t t = 0; t < block.new_tokens; ++t) {
        const int64_t pos = block.cached + t, first = FirstKey(m, layer, pos);
        for (int64_t j = 0; j < group; ++j) {
          const int64_t h = g * group + j;
          const double* q = &qkv[static_cast<size_t>((s * block.new_tokens + t) * width + h * dh)];
          std::vector<double> p(static_cast<size_t>(pos - first + 1));
          double max = -std::numeric_limits<double>::infinity();
          for (int64_t u = first; u <= pos; ++u) {
            double dot = 0;
            for (int64_t i = 0; i < dh; ++i) dot += q[i] * k[static_cast<size_t>(u * dh + i)];
            p[static_cast<size_t>(u - first)] = dot / std::sqrt(static_cast<double>(dh));
            max = std::max(max, p[static_cast<size_t>(u - first)]);
          }
          double sum = 0;
          for (double& e : p) sum += (e = std::exp(e - max));
          double* o = &attn[static_cast<size_t>((s * block.new_tokens + t) * hd + h * dh)];
          for (int64_t i = 0; i < dh; ++i) {
            double acc = 0;
            for (int64_t u = first; u <= pos; ++u)
              acc += p[static_cast<size_t>(u - first)] * v[static_cast<size_t>(u * dh + i)];
            o[i] = acc / sum;
          }
        }
      }
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    MatVec(wo, d, hd, &attn[static_cast<size_t>(r * hd)], out + r * d);
    for (int64_t o = 0; o < d; ++o) out[r * d + o] += x[r * d + o];
  }
}

// MLA in double, in the absorbed form for every pass: per head the query taken into the latent
// space (W_UKᵀ·q_nope) and its rope part score [latent | rope key] rows; the probabilities weight
// the latent rows; W_UV maps the result to the head's values.
void ReferenceMla(ComputeBackend& host, const ModelSpec& m, Dtype dtype, uint64_t seed,
                  int64_t layer, const SequenceBlock& block, const double* x, double* out) {
  const MlaAttention& a = m.mla;
  const int64_t d = m.hidden_size, nh = a.heads, nope = a.qk_nope_head_dim;
  const int64_t rope = a.qk_rope_head_dim, lora = a.kv_lora_rank, vd = a.v_head_dim;
  const int64_t qk = nope + rope, lat = lora + rope, per = nope + vd, ql = a.q_lora_rank;
  const std::vector<float> wq = ReferencePart(host, m, dtype, seed, layer, AttentionPart::kQ);
  const std::vector<float> wqa = ReferencePart(host, m, dtype, seed, layer, AttentionPart::kQa);
  const std::vector<float> wkva = ReferencePart(host, m, dtype, seed, layer, AttentionPart::kKvA);
  const std::vector<float> wkvb = ReferencePart(host, m, dtype, seed, layer, AttentionPart::kKvB);
  const std::vector<float> wo = ReferencePart(host, m, dtype, seed, layer, AttentionPart::kOut);

  const int64_t rows = block.rows(), capacity = block.cached + block.new_tokens;
  std::vector<double> q(static_cast<size_t>(rows * nh * qk)), kv(static_cast<size_t>(rows * lat));
  std::vector<double> xn(static_cast<size_t>(d)), qa(static_cast<size_t>(std::max<int64_t>(ql, 1)));
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(x + r * d, d, xn.begin());
    RmsNormInPlace(xn.data(), d);
    double* qr = &q[static_cast<size_t>(r * nh * qk)];
    if (ql > 0) {
      MatVec(wqa, ql, d, xn.data(), qa.data());
      RmsNormInPlace(qa.data(), ql);
      MatVec(wq, nh * qk, ql, qa.data(), qr);
    } else {
      MatVec(wq, nh * qk, d, xn.data(), qr);
    }
    double* kvr = &kv[static_cast<size_t>(r * lat)];
    MatVec(wkva, lat, d, xn.data(), kvr);
    RmsNormInPlace(kvr, lora);
    const int64_t pos = block.cached + r % block.new_tokens;
    std::vector<double> cos(static_cast<size_t>(rope / 2)), sin(cos.size());
    for (int64_t i = 0; i < rope / 2; ++i) {
      cos[static_cast<size_t>(i)] = std::cos(RopeAngle(pos, i, rope));
      sin[static_cast<size_t>(i)] = std::sin(RopeAngle(pos, i, rope));
    }
    Rotate(kvr + lora, rope, cos.data(), sin.data());
    for (int64_t h = 0; h < nh; ++h) Rotate(qr + h * qk + nope, rope, cos.data(), sin.data());
  }
  std::vector<double> attn(static_cast<size_t>(rows * nh * vd));
  std::vector<double> cache(static_cast<size_t>(capacity * lat));
  std::vector<double> qlat(static_cast<size_t>(lat)), olat(static_cast<size_t>(lora));
  for (int64_t s = 0; s < block.count; ++s) {
    for (int64_t p = 0; p < capacity; ++p) {
      for (int64_t i = 0; i < lat; ++i) {
        cache[static_cast<size_t>(p * lat + i)] =
            p < block.cached
                ? CachedKvValue(seed, layer, block.first + s, 0, false, p, i)
                : kv[static_cast<size_t>((s * block.new_tokens + p - block.cached) * lat + i)];
      }
    }
    for (int64_t t = 0; t < block.new_tokens; ++t) {
      const int64_t row = s * block.new_tokens + t, pos = block.cached + t;
      const int64_t first = FirstKey(m, layer, pos);
      for (int64_t h = 0; h < nh; ++h) {
        const double* qh = &q[static_cast<size_t>((row * nh + h) * qk)];
        for (int64_t c = 0; c < lora; ++c) {
          double acc = 0;
          for (int64_t i = 0; i < nope; ++i) {
            acc += qh[i] * wkvb[static_cast<size_t>((h * per + i) * lora + c)];
          }
          qlat[static_cast<size_t>(c)] = acc;
        }
        std::copy_n(qh + nope, rope, qlat.begin() + lora);
        std::vector<double> p(static_cast<size_t>(pos - first + 1));
        double max = -std::numeric_limits<double>::infinity();
        for (int64_t u = first; u <= pos; ++u) {
          double dot = 0;
          for (int64_t i = 0; i < lat; ++i) {
            dot += qlat[static_cast<size_t>(i)] * cache[static_cast<size_t>(u * lat + i)];
          }
          p[static_cast<size_t>(u - first)] = dot / std::sqrt(static_cast<double>(qk));
          max = std::max(max, p[static_cast<size_t>(u - first)]);
        }
        double sum = 0;
        for (double& e : p) sum += (e = std::exp(e - max));
        std::fill(olat.begin(), olat.end(), 0.0);
        for (int64_t u = first; u <= pos; ++u) {
          for (int64_t c = 0; c < lora; ++c) {
            olat[static_cast<size_t>(c)] +=
                p[static_cast<size_t>(u - first)] / sum * cache[static_cast<size_t>(u * lat + c)];
          }
        }
        for (int64_t i = 0; i < vd; ++i) {
          double acc = 0;
          for (int64_t c = 0; c < lora; ++c) {
            acc += wkvb[static_cast<size_t>((h * per + nope + i) * lora + c)] *
                   olat[static_cast<size_t>(c)];
          }
          attn[static_cast<size_t>((row * nh + h) * vd + i)] = acc;
        }
      }
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    MatVec(wo, d, nh * vd, &attn[static_cast<size_t>(r * nh * vd)], out + r * d);
    for (int64_t o = 0; o < d; ++o) out[r * d + o] += x[r * d + o];
  }
}

}  // namespace
}  // namespace moecap
