// GQA attention over per-sequence KV caches, blocked over queries, with the cache as GEMM weights.
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

// Queries scored together: a block's rows are its tokens × the group's query heads.
constexpr int64_t kQueryBlock = 64;

uint64_t AttentionKey(uint64_t seed, StreamPurpose purpose, int64_t layer) {
  return StreamKey({seed, static_cast<uint64_t>(purpose), static_cast<uint64_t>(layer)});
}

// The window of query position `pos` in layer `layer`: keys [first, pos].
int64_t FirstKey(const ModelSpec& m, int64_t layer, int64_t pos) {
  return IsSlidingLayer(m, layer) ? std::max<int64_t>(0, pos - m.sliding_window + 1) : 0;
}

// The rotation angle of pair i of d at position `pos`.
double RopeAngle(int64_t pos, int64_t i, int64_t d) {
  return static_cast<double>(pos) *
         std::pow(kRopeBase, -2.0 * static_cast<double>(i) / static_cast<double>(d));
}

// Rotates the pairs (i, i + d/2) of `v` (d values) by `cos` and `sin` (d/2 each).
template <typename T, typename A>
void Rotate(T* v, int64_t d, const A* cos, const A* sin) {
  const int64_t half = d / 2;
  for (int64_t i = 0; i < half; ++i) {
    const A a = static_cast<A>(v[i]), b = static_cast<A>(v[i + half]);
    v[i] = static_cast<T>(a * cos[i] - b * sin[i]);
    v[i + half] = static_cast<T>(a * sin[i] + b * cos[i]);
  }
}

}  // namespace

absl::Status AttentionSupported(const ModelSpec& scaled) {
  if (scaled.attention != AttentionKind::kGqa) {
    return absl::UnimplementedError(absl::StrCat(
        "workload.layer: decoder: model '", scaled.name,
        "' has MLA attention, which the decoder layer does not run yet; use layer: moe"));
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
  // A large stride keeps positions apart whatever the head width.
  const uint64_t index = static_cast<uint64_t>(position) * 4096u + static_cast<uint64_t>(i);
  return (2.0f * Uniform01(key, index) - 1.0f) * std::sqrt(3.0f);
}

void AttentionWeights::Fill(ComputeBackend& backend, const ModelSpec& m, Dtype dtype, uint64_t seed,
                            int64_t layer, void* qkv, void* out) {
  const GqaAttention& a = m.gqa;
  const int64_t d = m.hidden_size, width = (a.heads + 2 * a.kv_heads) * a.head_dim;
  FillWeights(backend, AttentionKey(seed, StreamPurpose::kAttentionQkv, layer), width * d, d, dtype,
              qkv);
  FillWeights(backend, AttentionKey(seed, StreamPurpose::kAttentionOut, layer),
              d * a.heads * a.head_dim, a.heads * a.head_dim, dtype, out);
}

int64_t AttentionWeights::Bytes(const ModelSpec& m, int64_t layers, Dtype dtype, bool lm_head) {
  return (AttentionParamsPerLayer(m) * layers + (lm_head ? LmHeadParams(m) : 0)) *
         static_cast<int64_t>(ElementBytes(dtype));
}

absl::StatusOr<AttentionWeights> AttentionWeights::Generate(ComputeBackend& backend,
                                                            const ModelSpec& m, int64_t layers,
                                                            Dtype dtype, uint64_t seed,
                                                            bool lm_head) {
  MOECAP_RETURN_IF_ERROR(AttentionSupported(m));
  const GqaAttention& a = m.gqa;
  const size_t eb = ElementBytes(dtype);
  const int64_t d = m.hidden_size, width = (a.heads + 2 * a.kv_heads) * a.head_dim;
  AttentionWeights w;
  w.dtype_ = dtype;
  for (int64_t l = 0; l < layers; ++l) {
    Layer layer;
    MOECAP_ASSIGN_OR_RETURN(layer.qkv, backend.Allocate(eb * static_cast<size_t>(width * d)));
    MOECAP_ASSIGN_OR_RETURN(layer.out,
                            backend.Allocate(eb * static_cast<size_t>(d * a.heads * a.head_dim)));
    Fill(backend, m, dtype, seed, l, layer.qkv.data(), layer.out.data());
    w.layers_.push_back(std::move(layer));
  }
  if (lm_head) {
    const int64_t v = m.vocab_size;
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
      heads_(scaled.gqa.heads),
      kv_heads_(scaled.gqa.kv_heads),
      head_dim_(scaled.gqa.head_dim),
      group_(scaled.gqa.kv_heads > 0 ? scaled.gqa.heads / scaled.gqa.kv_heads : 1) {}

int64_t AttentionStack::CacheBytes(const ModelSpec& m, int64_t layers, Dtype dtype,
                                   const SequenceBlock& block) {
  const int64_t capacity = block.cached + block.new_tokens;
  const int64_t eb = static_cast<int64_t>(ElementBytes(dtype));
  const int64_t cache = layers * block.count * KvElementsPerTokenPerLayer(m) * capacity * eb;
  const GqaAttention& a = m.gqa;
  const int64_t rows = block.rows(), d = m.hidden_size, hd = a.heads * a.head_dim;
  const int64_t qrows =
      std::min(kQueryBlock, block.new_tokens) * (a.heads / std::max<int64_t>(1, a.kv_heads));
  const int64_t scratch = rows * d * (4 + eb) + rows * (a.heads + 2 * a.kv_heads) * a.head_dim * 4 +
                          rows * hd * (4 + eb) +
                          qrows * (a.head_dim * (eb + 4) + capacity * (4 + eb));
  return cache + scratch;
}

absl::Status AttentionStack::Prepare(const SequenceBlock& block) {
  MOECAP_RETURN_IF_ERROR(AttentionSupported(model_));
  block_ = block;
  capacity_ = block.cached + block.new_tokens;
  const size_t eb = ElementBytes(dtype_);
  const size_t per_head = static_cast<size_t>(capacity_ * head_dim_) * eb;
  keys_.clear();
  values_t_.clear();
  std::vector<float> row(static_cast<size_t>(std::max(capacity_, head_dim_)));
  for (int64_t l = 0; l < layers_; ++l) {
    for (int64_t s = 0; s < block.count; ++s) {
      for (int64_t g = 0; g < kv_heads_; ++g) {
        MOECAP_ASSIGN_OR_RETURN(Buffer k, backend_.Allocate(per_head));
        MOECAP_ASSIGN_OR_RETURN(Buffer vt, backend_.Allocate(per_head));
        const int64_t sequence = block.first + s;
        for (int64_t p = 0; p < block.cached; ++p) {
          for (int64_t i = 0; i < head_dim_; ++i) {
            row[static_cast<size_t>(i)] = CachedKvValue(seed_, l, sequence, g, false, p, i);
          }
          backend_.FromFloat(row.data(), head_dim_, dtype_, k.as<char>() + p * head_dim_ * eb);
        }
        for (int64_t i = 0; i < head_dim_; ++i) {
          for (int64_t p = 0; p < block.cached; ++p) {
            row[static_cast<size_t>(p)] = CachedKvValue(seed_, l, sequence, g, true, p, i);
          }
          backend_.FromFloat(row.data(), block.cached, dtype_, vt.as<char>() + i * capacity_ * eb);
        }
        keys_.push_back(std::move(k));
        values_t_.push_back(std::move(vt));
      }
    }
  }
  const int64_t rows = block.rows(), d = model_.hidden_size, hd = heads_ * head_dim_;
  const int64_t width = (heads_ + 2 * kv_heads_) * head_dim_;
  const int64_t qrows = std::min(kQueryBlock, block.new_tokens) * group_;
  const auto grow = [&](Buffer& b, int64_t bytes) {
    return GrowBuffer(backend_, b, static_cast<size_t>(std::max<int64_t>(bytes, 1)));
  };
  MOECAP_RETURN_IF_ERROR(grow(normed_, rows * d * 4));
  MOECAP_RETURN_IF_ERROR(grow(act_, rows * d * static_cast<int64_t>(eb)));
  MOECAP_RETURN_IF_ERROR(grow(qkv_, rows * width * 4));
  MOECAP_RETURN_IF_ERROR(grow(attn_, rows * hd * 4));
  MOECAP_RETURN_IF_ERROR(grow(attn_act_, rows * hd * static_cast<int64_t>(eb)));
  MOECAP_RETURN_IF_ERROR(grow(q_, qrows * head_dim_ * static_cast<int64_t>(eb)));
  MOECAP_RETURN_IF_ERROR(grow(scores_, qrows * capacity_ * 4));
  MOECAP_RETURN_IF_ERROR(grow(probs_, qrows * capacity_ * static_cast<int64_t>(eb)));
  MOECAP_RETURN_IF_ERROR(grow(o_, qrows * head_dim_ * 4));
  // The new tokens' rotations, once per point rather than per head and step.
  const int64_t half = head_dim_ / 2;
  rope_cos_.resize(static_cast<size_t>(block.new_tokens * half));
  rope_sin_.resize(rope_cos_.size());
  for (int64_t t = 0; t < block.new_tokens; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = RopeAngle(block.cached + t, i, head_dim_);
      rope_cos_[static_cast<size_t>(t * half + i)] = static_cast<float>(std::cos(angle));
      rope_sin_[static_cast<size_t>(t * half + i)] = static_cast<float>(std::sin(angle));
    }
  }
  return absl::OkStatus();
}

absl::Status AttentionStack::Forward(int64_t layer, const float* x, float* out) {
  const int64_t rows = block_.rows(), d = model_.hidden_size, hd = heads_ * head_dim_;
  const int64_t width = (heads_ + 2 * kv_heads_) * head_dim_;
  const size_t eb = ElementBytes(dtype_);
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  RmsNormRows(x, rows, d, normed_.as<float>());
  const void* act = normed_.data();
  if (dtype_ != Dtype::kFp32) {
    backend_.FromFloat(normed_.as<float>(), rows * d, dtype_, act_.data());
    act = act_.data();
  }
  MOECAP_RETURN_IF_ERROR(backend_.MatMul(dtype_, rows, width, d, act, d, weights_.qkv(layer), d,
                                         qkv_.as<float>(), width, false));
  float* qkv = qkv_.as<float>();
  for (int64_t s = 0; s < block_.count; ++s) {
    for (int64_t t = 0; t < block_.new_tokens; ++t) {
      const int64_t row = s * block_.new_tokens + t, pos = block_.cached + t;
      float* r = qkv + row * width;
      const float* cos = rope_cos_.data() + t * (head_dim_ / 2);
      const float* sin = rope_sin_.data() + t * (head_dim_ / 2);
      for (int64_t h = 0; h < heads_ + kv_heads_; ++h) {
        Rotate(r + h * head_dim_, head_dim_, cos, sin);
      }
      for (int64_t g = 0; g < kv_heads_; ++g) {
        const size_t cache = static_cast<size_t>((layer * block_.count + s) * kv_heads_ + g);
        const float* k = r + (heads_ + g) * head_dim_;
        const float* v = r + (heads_ + kv_heads_ + g) * head_dim_;
        backend_.FromFloat(k, head_dim_, dtype_,
                           keys_[cache].as<char>() + static_cast<size_t>(pos * head_dim_) * eb);
        char* vt = values_t_[cache].as<char>();
        for (int64_t i = 0; i < head_dim_; ++i) {
          backend_.FromFloat(v + i, 1, dtype_, vt + static_cast<size_t>(i * capacity_ + pos) * eb);
        }
      }
    }
  }

  float* attn = attn_.as<float>();
  for (int64_t s = 0; s < block_.count; ++s) {
    for (int64_t g = 0; g < kv_heads_; ++g) {
      const size_t cache = static_cast<size_t>((layer * block_.count + s) * kv_heads_ + g);
      for (int64_t t0 = 0; t0 < block_.new_tokens; t0 += kQueryBlock) {
        const int64_t t1 = std::min(block_.new_tokens, t0 + kQueryBlock);
        // Keys from the first query's window start to the last query's position.
        const int64_t first = FirstKey(model_, layer, block_.cached + t0);
        const int64_t last = block_.cached + t1 - 1;
        const int64_t keys = last - first + 1;
        const int64_t qrows = (t1 - t0) * group_;
        for (int64_t t = t0; t < t1; ++t) {
          const float* q = qkv + (s * block_.new_tokens + t) * width + g * group_ * head_dim_;
          backend_.FromFloat(
              q, group_ * head_dim_, dtype_,
              q_.as<char>() + static_cast<size_t>((t - t0) * group_ * head_dim_) * eb);
        }
        float* scores = scores_.as<float>();
        MOECAP_RETURN_IF_ERROR(
            backend_.MatMul(dtype_, qrows, keys, head_dim_, q_.data(), head_dim_,
                            keys_[cache].as<char>() + static_cast<size_t>(first * head_dim_) * eb,
                            head_dim_, scores, keys, false));
        for (int64_t r = 0; r < qrows; ++r) {
          const int64_t pos = block_.cached + t0 + r / group_;
          const int64_t lo = FirstKey(model_, layer, pos) - first, hi = pos - first;
          float* row = scores + r * keys;
          float max = -std::numeric_limits<float>::infinity();
          for (int64_t j = lo; j <= hi; ++j) max = std::max(max, row[j]);
          const float fscale = static_cast<float>(scale);
          float sum = 0;
          std::fill(row, row + lo, 0.0f);
          for (int64_t j = lo; j <= hi; ++j) {
            row[j] = std::exp((row[j] - max) * fscale);
            sum += row[j];
          }
          std::fill(row + hi + 1, row + keys, 0.0f);
          const float inv = 1.0f / sum;
          for (int64_t j = lo; j <= hi; ++j) row[j] *= inv;
        }
        backend_.FromFloat(scores, qrows * keys, dtype_, probs_.data());
        MOECAP_RETURN_IF_ERROR(
            backend_.MatMul(dtype_, qrows, head_dim_, keys, probs_.data(), keys,
                            values_t_[cache].as<char>() + static_cast<size_t>(first) * eb,
                            capacity_, o_.as<float>(), head_dim_, false));
        for (int64_t r = 0; r < qrows; ++r) {
          const int64_t t = t0 + r / group_, h = g * group_ + r % group_;
          std::copy_n(o_.as<float>() + r * head_dim_, head_dim_,
                      attn + (s * block_.new_tokens + t) * hd + h * head_dim_);
        }
      }
    }
  }
  const void* attn_in = attn;
  if (dtype_ != Dtype::kFp32) {
    backend_.FromFloat(attn, rows * hd, dtype_, attn_act_.data());
    attn_in = attn_act_.data();
  }
  MOECAP_RETURN_IF_ERROR(
      backend_.MatMul(dtype_, rows, d, hd, attn_in, hd, weights_.out(layer), hd, out, d, false));
  for (int64_t i = 0; i < rows * d; ++i) out[i] += x[i];
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
  const GqaAttention& a = m.gqa;
  const int64_t d = m.hidden_size, hd = a.heads * a.head_dim, dh = a.head_dim;
  const int64_t width = (a.heads + 2 * a.kv_heads) * dh, group = a.heads / a.kv_heads;
  const size_t eb = ElementBytes(dtype);
  std::vector<char> qkv_raw(static_cast<size_t>(width * d) * eb),
      out_raw(static_cast<size_t>(d * hd) * eb);
  AttentionWeights::Fill(host, m, dtype, seed, layer, qkv_raw.data(), out_raw.data());
  std::vector<float> wqkv(static_cast<size_t>(width * d)), wo(static_cast<size_t>(d * hd));
  host.ToFloat(qkv_raw.data(), width * d, dtype, wqkv.data());
  host.ToFloat(out_raw.data(), d * hd, dtype, wo.data());

  const int64_t rows = block.rows(), capacity = block.cached + block.new_tokens;
  std::vector<double> qkv(static_cast<size_t>(rows * width));
  for (int64_t r = 0; r < rows; ++r) {
    double ms = 0;
    for (int64_t i = 0; i < d; ++i) ms += x[r * d + i] * x[r * d + i];
    const double inv = 1.0 / std::sqrt(ms / static_cast<double>(d) + 1e-6);
    for (int64_t o = 0; o < width; ++o) {
      double acc = 0;
      for (int64_t i = 0; i < d; ++i)
        acc += x[r * d + i] * inv * wqkv[static_cast<size_t>(o * d + i)];
      qkv[static_cast<size_t>(r * width + o)] = acc;
    }
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
    for (int64_t o = 0; o < d; ++o) {
      double acc = 0;
      for (int64_t i = 0; i < hd; ++i)
        acc += attn[static_cast<size_t>(r * hd + i)] * wo[static_cast<size_t>(o * hd + i)];
      out[r * d + o] = x[r * d + o] + acc;
    }
  }
}

}  // namespace moecap
