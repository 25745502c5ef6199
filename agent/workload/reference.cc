// The single-rank reference and the comparison.
#include "agent/workload/reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "agent/workload/attention.h"
#include "agent/workload/layer_math.h"
#include "agent/workload/router.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

// Whether `ep` (k experts) is a valid top-k of `logits` up to `tie_tolerance`: no expert outside
// it beats its weakest member by more than the tolerance.
bool IsTopKWithinTolerance(const float* logits, int64_t experts, const int32_t* ep, int64_t k,
                           double tie_tolerance) {
  float weakest_in = logits[ep[0]];
  for (int64_t j = 1; j < k; ++j) weakest_in = std::min(weakest_in, logits[ep[j]]);
  for (int64_t e = 0; e < experts; ++e) {
    if (std::find(ep, ep + k, static_cast<int32_t>(e)) != ep + k) continue;
    if (logits[e] > weakest_in + tie_tolerance) return false;
  }
  return true;
}

bool SameSet(const int32_t* a, const int32_t* b, int64_t k) {
  for (int64_t j = 0; j < k; ++j) {
    if (std::find(b, b + k, a[j]) == b + k) return false;
  }
  return true;
}

}  // namespace

int64_t ReferenceWorkBytes(const ModelSpec& scaled, Dtype dtype, int64_t own_tokens) {
  const LayerShape s = LayerShape::Of(scaled);
  const int64_t p = static_cast<int64_t>(DtypeBytes(dtype));
  return own_tokens * s.hidden * (4 * 3 + p) + own_tokens * s.experts * 4 +
         (s.GateUpElements() + s.DownElements()) * p +
         ExpertScratch::Bytes(dtype, s.hidden, std::max(s.expert_ffn, s.shared_ffn));
}

absl::StatusOr<CheckResult> CheckAgainstReference(
    ComputeBackend& backend, const ModelSpec& scaled, const MoeWeights& weights, uint64_t seed,
    const float* input, int64_t own_tokens, const std::vector<std::vector<int32_t>>& overrides,
    const RoutingRecord& ep_routing, const float* ep_output, double tolerance,
    const SequenceBlock* attention, DenseFfnLayers* dense, const std::vector<bool>* dense_at) {
  const LayerShape shape = weights.shape();
  const Dtype dtype = weights.dtype();
  const int64_t t_own = own_tokens;
  const int64_t d = shape.hidden;
  const int64_t k = shape.top_k;
  const int64_t experts = shape.experts;
  const size_t rb = static_cast<size_t>(d * DtypeBytes(dtype));
  const size_t eb = static_cast<size_t>(DtypeBytes(dtype));
  CheckResult result;
  result.ran = true;
  result.tolerance = tolerance;

  std::vector<float> x(input, input + t_own * d);
  std::vector<float> normed(static_cast<size_t>(t_own * d));
  std::vector<float> out(static_cast<size_t>(t_own * d));
  std::vector<char> act(static_cast<size_t>(t_own) * rb);
  std::vector<float> logits(static_cast<size_t>(t_own * experts));
  std::vector<int32_t> chosen(static_cast<size_t>(t_own * k));
  std::vector<float> combine_weights(static_cast<size_t>(t_own * k));
  std::vector<float> scores(static_cast<size_t>(experts));
  std::vector<float> rounded(static_cast<size_t>(d));
  absl::StatusOr<Buffer> expert_gate_up = backend.Allocate(shape.GateUpElements() * eb);
  absl::StatusOr<Buffer> expert_down = backend.Allocate(shape.DownElements() * eb);
  if (!expert_gate_up.ok()) return expert_gate_up.status();
  if (!expert_down.ok()) return expert_down.status();
  absl::StatusOr<ExpertScratch> scratch =
      ExpertScratch::Make(backend, dtype, d, std::max(shape.expert_ffn, shape.shared_ffn));
  if (!scratch.ok()) return scratch.status();

  std::vector<double> attention_in, attention_out;
  const bool has_dense = dense != nullptr && dense_at != nullptr;
  const int64_t stack = weights.layers() + (has_dense ? dense->layers() : 0);
  // sl: the stack's layer (attention's index); l: the MoE layer (weights, overrides, routing).
  for (int64_t sl = 0, l = 0, dl = 0; sl < stack; ++sl) {
    if (attention != nullptr) {
      attention_in.assign(x.begin(), x.end());
      attention_out.resize(x.size());
      ReferenceAttention(backend, scaled, dtype, seed, sl, *attention, attention_in.data(),
                         attention_out.data());
      for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(attention_out[i]);
    }
    if (has_dense && (*dense_at)[static_cast<size_t>(sl)]) {
      MOECAP_RETURN_IF_ERROR(dense->Forward(dl++, x.data(), t_own, out.data()));
      x.swap(out);
      continue;
    }
    RmsNormRows(x.data(), t_own, d, normed.data());
    const void* xa = normed.data();
    if (dtype != Dtype::kFp32) {
      backend.FromFloat(normed.data(), t_own * d, dtype, act.data());
      xa = act.data();
    }
    const int32_t* override_choices = overrides.empty() ? nullptr : overrides[l].data();
    if (absl::Status s =
            RouteTokens(backend, dtype, scaled, xa, t_own, weights.router(l), override_choices,
                        logits.data(), chosen.data(), combine_weights.data());
        !s.ok()) {
      return s;
    }
    const std::vector<int32_t>& ep_chosen = ep_routing.chosen[l];
    for (int64_t t = 0; t < t_own; ++t) {
      int32_t* mine = chosen.data() + t * k;
      const int32_t* theirs = ep_chosen.data() + t * k;
      if (SameSet(mine, theirs, k)) continue;
      const float* token_logits = logits.data() + t * experts;
      float max_abs = 1.0f;
      for (int64_t e = 0; e < experts; ++e) max_abs = std::max(max_abs, std::fabs(token_logits[e]));
      if (override_choices == nullptr &&
          IsTopKWithinTolerance(token_logits, experts, theirs, k, tolerance * max_abs)) {
        ++result.near_ties;
      } else {
        ++result.routing_mismatches;
      }
      // Follow the expert-parallel choice so the outputs stay comparable.
      std::copy(theirs, theirs + k, mine);
      RouterScores(scaled.router_scoring, token_logits, experts, scores.data());
      ChosenWeights(scores.data(), mine, k, scaled.normalize_topk, combine_weights.data() + t * k);
    }

    // Residual plus shared experts, then each routed expert's weighted contribution.
    std::copy(x.begin(), x.end(), out.begin());
    const char* xa_bytes = static_cast<const char*>(xa);
    if (shape.shared_ffn > 0 && t_own > 0) {
      const RowSource source = [&](int64_t first, int64_t, void*) -> const void* {
        return xa_bytes + first * rb;
      };
      const RowSink sink = [&](int64_t first, int64_t count, const float* y) {
        for (int64_t i = 0; i < count * d; ++i) out[first * d + i] += y[i];
      };
      if (absl::Status s =
              ExpertForward(backend, dtype, d, shape.shared_ffn, weights.shared_gate_up(l),
                            weights.shared_down(l), t_own, source, sink, *scratch);
          !s.ok()) {
        return s;
      }
    }
    const Range local = weights.local_experts();
    std::vector<int64_t> pairs;  // t·k + j of the pairs routed to the current expert
    for (int64_t e = 0; e < experts; ++e) {
      pairs.clear();
      for (int64_t i = 0; i < t_own * k; ++i) {
        if (chosen[i] == e) pairs.push_back(i);
      }
      if (pairs.empty()) continue;
      const void* gate_up;
      const void* down;
      if (e >= local.begin && e < local.begin + local.count) {
        gate_up = weights.gate_up(l, e - local.begin);
        down = weights.down(l, e - local.begin);
      } else {
        FillExpertWeights(backend, shape, dtype, seed, l, e, expert_gate_up->data(),
                          expert_down->data());
        gate_up = expert_gate_up->data();
        down = expert_down->data();
      }
      const RowSource source = [&](int64_t first, int64_t count, void* dst) -> const void* {
        char* rows = static_cast<char*>(dst);
        for (int64_t r = 0; r < count; ++r) {
          std::memcpy(rows + r * rb, xa_bytes + (pairs[first + r] / k) * rb, rb);
        }
        return dst;
      };
      const RowSink sink = [&](int64_t first, int64_t count, const float* y) {
        for (int64_t r = 0; r < count; ++r) {
          const int64_t pair = pairs[first + r];
          const float* row = y + r * d;
          if (dtype != Dtype::kFp32) {
            // The expert-parallel path returns results in the compute dtype: round the same way.
            std::vector<char> tmp(rb);
            backend.FromFloat(row, d, dtype, tmp.data());
            backend.ToFloat(tmp.data(), d, dtype, rounded.data());
            row = rounded.data();
          }
          const float w = combine_weights[pair];
          float* o = out.data() + (pair / k) * d;
          for (int64_t i = 0; i < d; ++i) o[i] += w * row[i];
        }
      };
      if (absl::Status s =
              ExpertForward(backend, dtype, d, shape.expert_ffn, gate_up, down,
                            static_cast<int64_t>(pairs.size()), source, sink, *scratch);
          !s.ok()) {
        return s;
      }
    }
    x.swap(out);
    ++l;
  }

  double max_ref = 0;
  for (int64_t i = 0; i < t_own * d; ++i) {
    max_ref = std::max(max_ref, static_cast<double>(std::fabs(x[i])));
    result.max_abs_error =
        std::max(result.max_abs_error, static_cast<double>(std::fabs(ep_output[i] - x[i])));
    if (std::isnan(ep_output[i])) result.max_abs_error = std::numeric_limits<double>::infinity();
  }
  result.max_rel_error = max_ref > 0 ? result.max_abs_error / max_ref : result.max_abs_error;
  result.passed = result.routing_mismatches == 0 && result.max_rel_error <= tolerance;
  return result;
}

}  // namespace moecap
