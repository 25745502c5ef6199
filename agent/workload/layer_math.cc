// Shared MoE layer arithmetic.
#include "agent/workload/layer_math.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "agent/workload/router.h"
#include "common/status_macros.h"

namespace moecap {

void RmsNormRows(const float* x, int64_t rows, int64_t hidden, float* out) {
  for (int64_t t = 0; t < rows; ++t) {
    const float* row = x + t * hidden;
    double sum = 0;
    for (int64_t i = 0; i < hidden; ++i) sum += static_cast<double>(row[i]) * row[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(sum / hidden + 1e-6));
    float* o = out + t * hidden;
    for (int64_t i = 0; i < hidden; ++i) o[i] = row[i] * inv;
  }
}

absl::Status RouteTokens(ComputeBackend& backend, Dtype dtype, const ModelSpec& model,
                         const void* x, int64_t rows, const void* router,
                         const int32_t* override_choices, float* logits, int32_t* chosen,
                         float* weights) {
  const int64_t d = model.hidden_size;
  const int64_t experts = model.experts;
  const int64_t k = model.experts_per_token;
  if (absl::Status s =
          backend.MatMul(dtype, rows, experts, d, x, d, router, d, logits, experts, false);
      !s.ok()) {
    return s;
  }
  std::vector<float> scores(static_cast<size_t>(experts));
  for (int64_t t = 0; t < rows; ++t) {
    const float* token_logits = logits + t * experts;
    int32_t* token_chosen = chosen + t * k;
    // Scores are monotonic in the logits, so the top-k of either is the same set.
    if (override_choices != nullptr) {
      std::copy(override_choices + t * k, override_choices + (t + 1) * k, token_chosen);
    } else {
      TopK(token_logits, experts, k, token_chosen);
    }
    RouterScores(model.router_scoring, token_logits, experts, scores.data());
    ChosenWeights(scores.data(), token_chosen, k, model.normalize_topk, weights + t * k);
  }
  return absl::OkStatus();
}

int64_t ExpertScratch::ChunkRows(int64_t max_ffn) {
  constexpr int64_t kTargetBytes = 32LL << 20;
  return std::clamp<int64_t>(kTargetBytes / (2 * max_ffn * 4), 64, 4096);
}

int64_t ExpertScratch::Bytes(Dtype dtype, int64_t hidden, int64_t max_ffn) {
  const int64_t chunk = ChunkRows(max_ffn);
  const int64_t p = static_cast<int64_t>(DtypeBytes(dtype));
  return chunk * (hidden * p + 2 * max_ffn * 4 + max_ffn * p + hidden * 4);
}

absl::StatusOr<ExpertScratch> ExpertScratch::Make(ComputeBackend& backend, Dtype dtype,
                                                  int64_t hidden, int64_t max_ffn) {
  ExpertScratch s;
  s.chunk_rows = ChunkRows(max_ffn);
  const size_t p = static_cast<size_t>(DtypeBytes(dtype));
  const size_t chunk = static_cast<size_t>(s.chunk_rows);
  absl::StatusOr<Buffer> rows = backend.Allocate(chunk * hidden * p);
  absl::StatusOr<Buffer> gate_up = backend.Allocate(chunk * 2 * max_ffn * sizeof(float));
  absl::StatusOr<Buffer> act = backend.Allocate(chunk * max_ffn * p);
  absl::StatusOr<Buffer> out = backend.Allocate(chunk * hidden * sizeof(float));
  for (absl::StatusOr<Buffer>* b : {&rows, &gate_up, &act, &out}) {
    if (!b->ok()) return b->status();
  }
  s.rows = *std::move(rows);
  s.gate_up = *std::move(gate_up);
  s.act = *std::move(act);
  s.out = *std::move(out);
  return s;
}

absl::Status ExpertForward(ComputeBackend& backend, Dtype dtype, int64_t hidden, int64_t ffn,
                           const void* gate_up, const void* down, int64_t rows,
                           const RowSource& source, const RowSink& sink, ExpertScratch& scratch) {
  for (int64_t first = 0; first < rows; first += scratch.chunk_rows) {
    const int64_t count = std::min(scratch.chunk_rows, rows - first);
    const void* x = source(first, count, scratch.rows.data());
    float* h = scratch.gate_up.as<float>();
    MOECAP_RETURN_IF_ERROR(backend.MatMul(dtype, count, 2 * ffn, hidden, x, hidden, gate_up, hidden,
                                          h, 2 * ffn, false));
    backend.SwiGlu(count, ffn, h, dtype, scratch.act.data());
    float* y = scratch.out.as<float>();
    MOECAP_RETURN_IF_ERROR(backend.MatMul(dtype, count, hidden, ffn, scratch.act.data(), ffn, down,
                                          ffn, y, hidden, false));
    sink(first, count, y);
  }
  return absl::OkStatus();
}

}  // namespace moecap
