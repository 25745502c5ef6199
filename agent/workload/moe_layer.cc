// ExpertParallelMoe: the expert-parallel step. Token rows travel in the compute dtype; the send
// buffer is sorted by global expert id, which (experts being in contiguous blocks per rank) is
// also sorted by destination rank, so the per-expert counts double as the all-to-all's counts.
#include "agent/workload/moe_layer.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

ExpertParallelMoe::ExpertParallelMoe(const ModelSpec& scaled, const MoeWeights& weights,
                                     ComputeBackend& backend, Communicator& comm)
    : model_(scaled),
      weights_(weights),
      backend_(backend),
      comm_(comm),
      shape_(LayerShape::Of(scaled)),
      dtype_(weights.dtype()),
      world_(comm.size()),
      local_experts_(weights.local_experts().count),
      row_bytes_(static_cast<size_t>(scaled.hidden_size * DtypeBytes(weights.dtype()))) {}

MoeBufferPlan MoeBufferPlan::Of(const ModelSpec& scaled, Dtype dtype, int64_t own_tokens,
                                int64_t global_tokens, int world_size, bool attention) {
  const LayerShape s = LayerShape::Of(scaled);
  const size_t p = static_cast<size_t>(DtypeBytes(dtype));
  const size_t t = static_cast<size_t>(own_tokens), d = static_cast<size_t>(s.hidden);
  const size_t k = static_cast<size_t>(s.top_k);
  MoeBufferPlan plan;
  plan.token_rows = t * d * sizeof(float);
  plan.token_buffers = attention ? 6 : 5;
  plan.act = dtype != Dtype::kFp32 ? t * d * p : 0;
  plan.logits = t * static_cast<size_t>(s.experts) * sizeof(float);
  plan.pair_rows = t * k * d * p;
  plan.received_rows =
      static_cast<size_t>(MaxReceivedRows(s.top_k, s.experts / world_size, global_tokens)) * d * p;
  plan.routing = t * k * (sizeof(int32_t) + sizeof(float) + sizeof(int64_t));
  plan.scratch = static_cast<size_t>(
      ExpertScratch::Bytes(dtype, s.hidden, std::max(s.expert_ffn, s.shared_ffn)));
  return plan;
}

int64_t MoeBufferPlan::Total() const {
  return static_cast<int64_t>(token_rows * static_cast<size_t>(token_buffers) + act + logits +
                              2 * pair_rows + 2 * received_rows + routing + scratch);
}

int64_t ExpertParallelMoe::WorkBytes(const ModelSpec& scaled, Dtype dtype, int64_t own_tokens,
                                     int64_t global_tokens, int world_size, bool attention) {
  return MoeBufferPlan::Of(scaled, dtype, own_tokens, global_tokens, world_size, attention).Total();
}

absl::Status ExpertParallelMoe::Prepare(int64_t own_tokens, int64_t global_tokens,
                                        std::vector<std::vector<int32_t>> overrides,
                                        const float* input) {
  MOECAP_RETURN_IF_ERROR(
      CheckRoutingOverrides(overrides, weights_.layers(), own_tokens, shape_.top_k));
  own_tokens_ = own_tokens;
  overrides_ = std::move(overrides);
  const size_t t = static_cast<size_t>(own_tokens);
  const size_t k = static_cast<size_t>(shape_.top_k);
  const MoeBufferPlan plan =
      MoeBufferPlan::Of(model_, dtype_, own_tokens, global_tokens, world_, attention_ != nullptr);
  std::vector<Buffer*> token_buffers = {&input_, &hidden_[0], &hidden_[1], &normed_, &shared_out_};
  if (attention_ != nullptr) token_buffers.push_back(&attended_);
  for (Buffer* b : token_buffers) {
    MOECAP_RETURN_IF_ERROR(GrowBuffer(backend_, *b, plan.token_rows));
  }
  if (t > 0) std::memcpy(input_.data(), input, plan.token_rows);
  if (dense_ != nullptr) MOECAP_RETURN_IF_ERROR(dense_->Prepare(own_tokens));
  stepped_ = false;
  if (plan.act > 0) MOECAP_RETURN_IF_ERROR(GrowBuffer(backend_, act_, plan.act));
  MOECAP_RETURN_IF_ERROR(GrowBuffer(backend_, logits_, plan.logits));
  for (Buffer* b : {&send_, &combined_}) {
    MOECAP_RETURN_IF_ERROR(GrowBuffer(backend_, *b, plan.pair_rows));
  }
  for (Buffer* b : {&received_, &results_}) {
    MOECAP_RETURN_IF_ERROR(GrowBuffer(backend_, *b, plan.received_rows));
  }
  if (scratch_.chunk_rows == 0) {
    absl::StatusOr<ExpertScratch> scratch = ExpertScratch::Make(
        backend_, dtype_, shape_.hidden, std::max(shape_.expert_ffn, shape_.shared_ffn));
    if (!scratch.ok()) return scratch.status();
    scratch_ = *std::move(scratch);
  }
  chosen_.assign(t * k, 0);
  weights_k_.assign(t * k, 0.0f);
  slot_.assign(t * k, 0);
  send_counts_.assign(static_cast<size_t>(shape_.experts), 0);
  recv_counts_.assign(static_cast<size_t>(shape_.experts), 0);  // world × local = E
  return absl::OkStatus();
}

absl::Status ExpertParallelMoe::Step(PhaseTimes* times, StepTally* tally, RoutingRecord* record) {
  const int64_t layers = weights_.layers();
  if (tally != nullptr) *tally = StartTally(own_tokens_, layers, shape_.experts);
  if (record != nullptr) record->chosen.assign(static_cast<size_t>(layers), {});
  const float* x = input_.as<float>();
  const int64_t stack = StackLayers();
  for (int64_t l = 0, moe = 0, dense = 0; l < stack; ++l) {
    float* out = hidden_[l % 2].as<float>();
    if (attention_ != nullptr) {
      const Clock::time_point start = Clock::now();
      MOECAP_RETURN_IF_ERROR(attention_->Forward(l, x, attended_.as<float>()));
      if (times != nullptr) times->attention += Since(start);
      x = attended_.as<float>();
    }
    if (!dense_at_.empty() && dense_at_[static_cast<size_t>(l)]) {
      const Clock::time_point start = Clock::now();
      MOECAP_RETURN_IF_ERROR(dense_->Forward(dense++, x, own_tokens_, out));
      if (times != nullptr) times->dense_ffn += Since(start);
    } else {
      MOECAP_RETURN_IF_ERROR(Layer(moe++, x, out, times, tally, record));
    }
    x = out;
  }
  if (attention_ != nullptr && attention_->has_lm_head()) {
    const Clock::time_point start = Clock::now();
    MOECAP_RETURN_IF_ERROR(attention_->LmHead(x));
    if (times != nullptr) times->lm_head += Since(start);
  }
  stepped_ = true;
  return absl::OkStatus();
}

absl::Status ExpertParallelMoe::ReadOutput(float* output) {
  if (!stepped_) return absl::FailedPreconditionError("ReadOutput before a step");
  const size_t bytes = static_cast<size_t>(own_tokens_ * shape_.hidden) * sizeof(float);
  if (bytes > 0) std::memcpy(output, hidden_[(StackLayers() - 1) % 2].data(), bytes);
  return absl::OkStatus();
}

absl::Status ExpertParallelMoe::Layer(int64_t l, const float* x, float* out, PhaseTimes* times,
                                      StepTally* tally, RoutingRecord* record) {
  const int64_t t_own = own_tokens_;
  const int64_t d = shape_.hidden;
  const int64_t k = shape_.top_k;
  const int64_t experts = shape_.experts;
  const int64_t local = local_experts_;
  const size_t rb = row_bytes_;

  // Gate.
  Clock::time_point start = Clock::now();
  float* normed = normed_.as<float>();
  RmsNormRows(x, t_own, d, normed);
  const void* xa = normed;
  if (dtype_ != Dtype::kFp32) {
    backend_.FromFloat(normed, t_own * d, dtype_, act_.data());
    xa = act_.data();
  }
  MOECAP_RETURN_IF_ERROR(RouteTokens(backend_, dtype_, model_, xa, t_own, weights_.router(l),
                                     overrides_.empty() ? nullptr : overrides_[l].data(),
                                     logits_.as<float>(), chosen_.data(), weights_k_.data()));
  std::fill(send_counts_.begin(), send_counts_.end(), 0);
  for (int64_t i = 0; i < t_own * k; ++i) ++send_counts_[chosen_[i]];
  {
    std::vector<int64_t> next(static_cast<size_t>(experts), 0);
    for (int64_t e = 1; e < experts; ++e) next[e] = next[e - 1] + send_counts_[e - 1];
    for (int64_t i = 0; i < t_own * k; ++i) slot_[i] = next[chosen_[i]]++;
  }
  if (times != nullptr) times->gate += Since(start);

  // Dispatch: counts first, so every rank knows what it will receive from whom.
  start = Clock::now();
  if (absl::Status s =
          comm_.AllToAll(send_counts_.data(), recv_counts_.data(), static_cast<size_t>(local));
      !s.ok()) {
    return s;
  }
  char* send = send_.as<char>();
  const char* xa_bytes = static_cast<const char*>(xa);
  for (int64_t i = 0; i < t_own * k; ++i) {
    std::memcpy(send + slot_[i] * rb, xa_bytes + (i / k) * rb, rb);
  }
  std::vector<int64_t> send_bytes;
  std::vector<int64_t> recv_bytes;
  PeerBytes(send_counts_, recv_counts_, world_, rb, send_bytes, recv_bytes);
  MOECAP_RETURN_IF_ERROR(comm_.AllToAllV(send, send_bytes, received_.data(), recv_bytes));
  if (times != nullptr) times->dispatch += Since(start);

  // Experts. received_ holds, for each source rank q, its rows for local experts 0..local-1 in
  // turn; expert j's rows are the segments (q, j) for q = 0..world-1.
  start = Clock::now();
  std::vector<int64_t> segment_begin(static_cast<size_t>(world_ * local), 0);
  {
    int64_t row = 0;
    for (int q = 0; q < world_; ++q) {
      for (int64_t j = 0; j < local; ++j) {
        segment_begin[q * local + j] = row;
        row += recv_counts_[q * local + j];
      }
    }
  }
  for (int64_t j = 0; j < local; ++j) {
    int64_t rows = 0;
    for (int q = 0; q < world_; ++q) rows += recv_counts_[q * local + j];
    if (rows == 0) continue;  // an expert without tokens reads no weights
    // Calls fn(row in received_/results_, expert-row index, count) for each contiguous piece of
    // the expert's rows [first, first + count).
    const auto for_pieces = [&](int64_t first, int64_t count, auto&& fn) {
      int64_t offset = 0;  // expert-row index where segment q starts
      for (int q = 0; q < world_ && count > 0; ++q) {
        const int64_t n = recv_counts_[q * local + j];
        if (first < offset + n) {
          const int64_t skip = first - offset;
          const int64_t take = std::min(count, n - skip);
          fn(segment_begin[q * local + j] + skip, first, take);
          first += take;
          count -= take;
        }
        offset += n;
      }
    };
    const char* received = received_.as<char>();
    char* results = results_.as<char>();
    const RowSource source = [&](int64_t first, int64_t count, void* scratch) -> const void* {
      if (world_ == 1) return received + (segment_begin[j] + first) * rb;
      char* dst = static_cast<char*>(scratch);
      const int64_t base = first;
      for_pieces(first, count, [&](int64_t row, int64_t expert_row, int64_t n) {
        std::memcpy(dst + (expert_row - base) * rb, received + row * rb, n * rb);
      });
      return scratch;
    };
    const RowSink sink = [&](int64_t first, int64_t count, const float* y) {
      const int64_t base = first;
      for_pieces(first, count, [&](int64_t row, int64_t expert_row, int64_t n) {
        backend_.FromFloat(y + (expert_row - base) * d, n * d, dtype_, results + row * rb);
      });
    };
    if (absl::Status s =
            ExpertForward(backend_, dtype_, d, shape_.expert_ffn, weights_.gate_up(l, j),
                          weights_.down(l, j), rows, source, sink, scratch_);
        !s.ok()) {
      return s;
    }
  }
  float* shared_out = shared_out_.as<float>();
  if (shape_.shared_ffn > 0 && t_own > 0) {
    const RowSource source = [&](int64_t first, int64_t, void*) -> const void* {
      return xa_bytes + first * rb;
    };
    const RowSink sink = [&](int64_t first, int64_t count, const float* y) {
      std::memcpy(shared_out + first * d, y, sizeof(float) * count * d);
    };
    if (absl::Status s =
            ExpertForward(backend_, dtype_, d, shape_.shared_ffn, weights_.shared_gate_up(l),
                          weights_.shared_down(l), t_own, source, sink, scratch_);
        !s.ok()) {
      return s;
    }
  }
  if (times != nullptr) times->experts += Since(start);

  // Combine: the results go back the way the rows came, then each token sums its k results.
  start = Clock::now();
  MOECAP_RETURN_IF_ERROR(
      comm_.AllToAllV(results_.data(), recv_bytes, combined_.data(), send_bytes));
  const char* combined = combined_.as<char>();
  std::vector<float> row_f32(dtype_ == Dtype::kFp32 ? 0 : static_cast<size_t>(d));
  for (int64_t t = 0; t < t_own; ++t) {
    float* o = out + t * d;
    const float* residual = x + t * d;
    if (shape_.shared_ffn > 0) {
      const float* sh = shared_out + t * d;
      for (int64_t i = 0; i < d; ++i) o[i] = residual[i] + sh[i];
    } else {
      std::memcpy(o, residual, sizeof(float) * d);
    }
    for (int64_t s = 0; s < k; ++s) {
      const float w = weights_k_[t * k + s];
      const void* row = combined + slot_[t * k + s] * rb;
      const float* y = static_cast<const float*>(row);
      if (dtype_ != Dtype::kFp32) {
        backend_.ToFloat(row, d, dtype_, row_f32.data());
        y = row_f32.data();
      }
      for (int64_t i = 0; i < d; ++i) o[i] += w * y[i];
    }
  }
  if (times != nullptr) times->combine += Since(start);

  if (tally != nullptr) {
    TallyLayer(l, comm_.rank(), world_, t_own, k, send_counts_, recv_counts_, *tally);
  }
  if (record != nullptr) record->chosen[l] = chosen_;
  return absl::OkStatus();
}

}  // namespace moecap
