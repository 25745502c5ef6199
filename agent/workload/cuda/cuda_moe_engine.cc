// CudaExpertParallelMoe: the expert-parallel step on a GPU. The layout is ExpertParallelMoe's
// (token rows in the compute dtype; the send buffer sorted by global expert id, hence by
// destination rank), so the per-expert counts double as the all-to-all's counts and TallyLayer
// counts both engines alike.
#include "agent/workload/cuda/cuda_moe_engine.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/compute/cuda/cuda_device.h"
#include "agent/compute/cuda/cuda_kernels.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

// Pinned (page-locked) host memory, so the device copies to and from it are truly asynchronous.
absl::Status GrowPinned(Buffer& buffer, size_t bytes) {
  if (buffer.data() != nullptr && buffer.bytes() >= bytes) return absl::OkStatus();
  buffer = Buffer();
  void* data = nullptr;
  MOECAP_RETURN_IF_ERROR(cuda::CudaCheck(cudaMallocHost(&data, std::max<size_t>(bytes, 1)),
                                         absl::StrCat("cudaMallocHost(", bytes, " bytes)")));
  buffer = Buffer(data, bytes, [](void* p) { cudaFreeHost(p); });
  return absl::OkStatus();
}

int64_t MaxFfn(const LayerShape& s) { return std::max(s.expert_ffn, s.shared_ffn); }

int64_t ChunkRows(int64_t option, const LayerShape& s, int64_t own_tokens, int64_t rows_max) {
  const int64_t chunk = option > 0 ? option : CudaExpertParallelMoe::DefaultChunkRows(MaxFfn(s));
  // No larger than the most rows one GEMM can get (decode needs little scratch).
  return std::max<int64_t>(1, std::min(chunk, std::max(own_tokens, rows_max)));
}

}  // namespace

void ExpertMajorOrder(absl::Span<const int64_t> recv_counts, int world,
                      std::vector<int64_t>& expert_begin, int64_t* to_expert_major,
                      int64_t* to_source_major) {
  const int64_t local = static_cast<int64_t>(recv_counts.size()) / world;
  std::vector<int64_t> segment_begin(recv_counts.size(), 0);  // source-major row of (q, j)
  int64_t row = 0;
  for (size_t i = 0; i < recv_counts.size(); ++i) {
    segment_begin[i] = row;
    row += recv_counts[i];
  }
  expert_begin.assign(static_cast<size_t>(local + 1), 0);
  int64_t r = 0;
  for (int64_t j = 0; j < local; ++j) {
    for (int q = 0; q < world; ++q) {
      const int64_t n = recv_counts[q * local + j];
      const int64_t begin = segment_begin[q * local + j];
      for (int64_t i = 0; i < n; ++i, ++r) {
        if (to_expert_major != nullptr) to_expert_major[r] = begin + i;
        if (to_source_major != nullptr) to_source_major[begin + i] = r;
      }
    }
    expert_begin[j + 1] = r;
  }
}

int64_t CudaExpertParallelMoe::DefaultChunkRows(int64_t max_ffn) {
  constexpr int64_t kTargetBytes = 256LL << 20;
  return std::clamp<int64_t>(kTargetBytes / (2 * std::max<int64_t>(max_ffn, 1) * 4), 256, 65536);
}

int64_t CudaExpertParallelMoe::WorkBytes(const ModelSpec& scaled, Dtype dtype, int64_t layers,
                                         int64_t own_tokens, int64_t global_tokens, int world_size,
                                         int64_t chunk_rows, bool attention) {
  const LayerShape s = LayerShape::Of(scaled);
  const int64_t p = static_cast<int64_t>(DtypeBytes(dtype));
  const int64_t rb = s.hidden * p;
  const int64_t rows_max = MaxReceivedRows(s.top_k, s.experts / world_size, global_tokens);
  const int64_t chunk = ChunkRows(chunk_rows, s, own_tokens, rows_max);
  const int64_t max_ffn = MaxFfn(s);
  int64_t bytes = own_tokens * s.hidden * 4 * 4;      // input, hidden ×2, shared_out
  if (attention) bytes += own_tokens * s.hidden * 4;  // the attention's output
  bytes += own_tokens * rb;                           // act
  bytes += own_tokens * s.experts * 4;                // logits
  bytes += own_tokens * s.top_k * (4 + 4 + 8);        // chosen, combine weights, slots
  bytes += s.experts * 8 + static_cast<int64_t>(cuda::CountAndSlotScratchBytes(s.experts));
  bytes += layers * own_tokens * s.top_k * 4;                                  // overrides
  bytes += 2 * own_tokens * s.top_k * rb;                                      // send, combined
  bytes += 2 * rows_max * rb;                                                  // received, results
  if (world_size > 1) bytes += 2 * rows_max * rb + layers * 2 * rows_max * 8;  // grouped, index
  bytes += chunk * (2 * max_ffn * 4 + max_ffn * p);
  return bytes;
}

CudaExpertParallelMoe::CudaExpertParallelMoe(const ModelSpec& scaled, const CudaMoeWeights& weights,
                                             cuda::CudaBackend& backend, Communicator& comm,
                                             CudaEngineOptions options)
    : model_(scaled),
      weights_(weights),
      backend_(backend),
      stream_(backend.stream()),
      comm_(comm),
      options_(options),
      shape_(LayerShape::Of(scaled)),
      dtype_(weights.dtype()),
      world_(comm.size()),
      rank_(comm.rank()),
      layers_(weights.layers()),
      local_experts_(weights.local_experts().count),
      row_bytes_(static_cast<size_t>(scaled.hidden_size) *
                 static_cast<size_t>(DtypeBytes(weights.dtype()))) {}

CudaExpertParallelMoe::~CudaExpertParallelMoe() {
  for (cudaEvent_t e : marks_) cudaEventDestroy(e);
  for (cudaEvent_t e : attention_marks_) cudaEventDestroy(e);
  if (counts_ready_ != nullptr) cudaEventDestroy(counts_ready_);
}

absl::Status CudaExpertParallelMoe::Prepare(int64_t own_tokens, int64_t global_tokens,
                                            std::vector<std::vector<int32_t>> overrides,
                                            const float* input) {
  const int64_t k = shape_.top_k;
  MOECAP_RETURN_IF_ERROR(CheckRoutingOverrides(overrides, layers_, own_tokens, k));
  MOECAP_RETURN_IF_ERROR(backend_.MakeCurrent());
  stepped_ = false;
  own_tokens_ = own_tokens;
  has_overrides_ = !overrides.empty();
  rows_max_ = MaxReceivedRows(shape_.top_k, local_experts_, global_tokens);
  chunk_rows_ = ChunkRows(options_.chunk_rows, shape_, own_tokens, rows_max_);
  const size_t t = static_cast<size_t>(own_tokens);
  const size_t d = static_cast<size_t>(shape_.hidden);
  const size_t e = static_cast<size_t>(shape_.experts);
  const size_t kk = static_cast<size_t>(k);
  const size_t rows_max = static_cast<size_t>(rows_max_);
  const size_t chunk = static_cast<size_t>(chunk_rows_);
  const size_t max_ffn = static_cast<size_t>(MaxFfn(shape_));
  const size_t layers = static_cast<size_t>(layers_);
  const size_t p = static_cast<size_t>(DtypeBytes(dtype_));

  std::vector<std::pair<Buffer*, size_t>> sizes = {
      {&input_, t * d * 4},
      {&hidden_[0], t * d * 4},
      {&hidden_[1], t * d * 4},
      {&shared_out_, t * d * 4},
      {&act_, t * row_bytes_},
      {&logits_, t * e * 4},
      {&chosen_, t * kk * 4},
      {&combine_w_, t * kk * 4},
      {&slot_, t * kk * 8},
      {&counts_, e * 8},
      {&count_scratch_, cuda::CountAndSlotScratchBytes(shape_.experts)},
      {&send_, t * kk * row_bytes_},
      {&combined_, t * kk * row_bytes_},
      {&received_, rows_max * row_bytes_},
      {&results_, rows_max * row_bytes_},
      {&gate_up_out_, chunk * 2 * max_ffn * 4},
      {&ffn_act_, chunk * max_ffn * p},
  };
  if (has_overrides_) sizes.push_back({&overrides_, layers * t * kk * 4});
  if (attention_ != nullptr) {
    if (attention_->rows() != own_tokens) {
      return absl::FailedPreconditionError(
          absl::StrCat("the GPU attention is prepared for ", attention_->rows(),
                       " rows, the MoE engine for ", own_tokens, " tokens"));
    }
    sizes.push_back({&attended_, t * d * 4});
  }
  if (world_ > 1) {
    sizes.push_back({&grouped_in_, rows_max * row_bytes_});
    sizes.push_back({&grouped_out_, rows_max * row_bytes_});
    sizes.push_back({&index_, layers * 2 * rows_max * 8});
  }
  for (auto& [buffer, bytes] : sizes) {
    MOECAP_RETURN_IF_ERROR(GrowBuffer(backend_, *buffer, bytes));
  }
  MOECAP_RETURN_IF_ERROR(GrowPinned(counts_host_, layers * e * 8));
  MOECAP_RETURN_IF_ERROR(GrowPinned(record_host_, layers * t * kk * 4));
  if (world_ > 1) {
    MOECAP_RETURN_IF_ERROR(GrowPinned(index_host_, layers * 2 * rows_max * 8));
  }
  recv_counts_.assign(e, 0);  // world × local = E

  if (marks_.empty()) {
    marks_.assign(layers * kMarks, nullptr);
    for (cudaEvent_t& event : marks_) {
      MOECAP_RETURN_IF_ERROR(cuda::CudaCheck(cudaEventCreate(&event), "cudaEventCreate"));
    }
    MOECAP_RETURN_IF_ERROR(cuda::CudaCheck(
        cudaEventCreateWithFlags(&counts_ready_, cudaEventDisableTiming), "cudaEventCreate"));
  }
  if (attention_ != nullptr && attention_marks_.empty()) {
    attention_marks_.assign(layers * 2, nullptr);
    for (cudaEvent_t& event : attention_marks_) {
      MOECAP_RETURN_IF_ERROR(cuda::CudaCheck(cudaEventCreate(&event), "cudaEventCreate"));
    }
  }

  if (t > 0) {
    MOECAP_RETURN_IF_ERROR(cuda::CudaCheck(
        cudaMemcpyAsync(input_.data(), input, t * d * 4, cudaMemcpyHostToDevice, stream_),
        "uploading the input"));
  }
  std::vector<int32_t> flat;
  if (has_overrides_ && t > 0) {
    flat.reserve(layers * t * kk);
    for (const std::vector<int32_t>& layer : overrides) {
      flat.insert(flat.end(), layer.begin(), layer.end());
    }
    MOECAP_RETURN_IF_ERROR(cuda::CudaCheck(
        cudaMemcpyAsync(overrides_.data(), flat.data(), flat.size() * sizeof(int32_t),
                        cudaMemcpyHostToDevice, stream_),
        "uploading the routing overrides"));
  }
  // `flat` and `input` are pageable host memory: the copies must be done before they may go.
  return cuda::CudaCheck(cudaStreamSynchronize(stream_), "preparing the GPU engine");
}

void CudaExpertParallelMoe::Mark(int64_t layer, int point, bool timed) {
  if (timed) cudaEventRecord(marks_[static_cast<size_t>(layer * kMarks + point)], stream_);
}

absl::Status CudaExpertParallelMoe::Step(PhaseTimes* times, StepTally* tally,
                                         RoutingRecord* record) {
  if (marks_.empty()) return absl::FailedPreconditionError("Step before Prepare");
  MOECAP_RETURN_IF_ERROR(backend_.MakeCurrent());
  if (tally != nullptr) *tally = StartTally(own_tokens_, layers_, shape_.experts);
  const bool timed = times != nullptr;
  const float* x = input_.as<float>();
  for (int64_t l = 0; l < layers_; ++l) {
    if (attention_ != nullptr) {
      cudaEvent_t* marks = attention_marks_.data() + l * 2;
      if (timed) cudaEventRecord(marks[0], stream_);
      MOECAP_RETURN_IF_ERROR(attention_->Forward(l, x, attended_.as<float>()));
      if (timed) cudaEventRecord(marks[1], stream_);
      x = attended_.as<float>();
    }
    MOECAP_RETURN_IF_ERROR(Layer(l, x, times, tally, record != nullptr));
    x = hidden_[l % 2].as<float>();
  }
  MOECAP_RETURN_IF_ERROR(cuda::CudaCheck(cudaStreamSynchronize(stream_), "the MoE step"));
  stepped_ = true;
  if (times != nullptr) {
    double* phase[kMarks - 1] = {&times->gate, &times->experts, &times->dispatch, &times->experts,
                                 &times->combine};
    for (int64_t l = 0; l < layers_; ++l) {
      for (int i = 0; i + 1 < kMarks; ++i) {
        float ms = 0;
        MOECAP_RETURN_IF_ERROR(cuda::CudaCheck(
            cudaEventElapsedTime(&ms, marks_[l * kMarks + i], marks_[l * kMarks + i + 1]),
            "cudaEventElapsedTime"));
        *phase[i] += ms * 1e-3;
      }
      if (attention_ != nullptr) {
        float ms = 0;
        MOECAP_RETURN_IF_ERROR(cuda::CudaCheck(
            cudaEventElapsedTime(&ms, attention_marks_[l * 2], attention_marks_[l * 2 + 1]),
            "cudaEventElapsedTime"));
        times->attention += ms * 1e-3;
      }
    }
  }
  if (record != nullptr) {
    const size_t pairs = static_cast<size_t>(own_tokens_ * shape_.top_k);
    record->chosen.assign(static_cast<size_t>(layers_), {});
    const int32_t* host = record_host_.as<int32_t>();
    for (int64_t l = 0; l < layers_; ++l) {
      record->chosen[l].assign(host + l * pairs, host + (l + 1) * pairs);
    }
  }
  return absl::OkStatus();
}

absl::Status CudaExpertParallelMoe::ReadOutput(float* output) {
  if (!stepped_) return absl::FailedPreconditionError("ReadOutput before a step");
  const size_t bytes = static_cast<size_t>(own_tokens_ * shape_.hidden) * sizeof(float);
  if (bytes == 0) return absl::OkStatus();
  MOECAP_RETURN_IF_ERROR(backend_.MakeCurrent());
  return cuda::CudaCheck(
      cudaMemcpy(output, hidden_[(layers_ - 1) % 2].data(), bytes, cudaMemcpyDeviceToHost),
      "downloading the output");
}

absl::Status CudaExpertParallelMoe::Expert(const void* gate_up, const void* down, int64_t ffn,
                                           int64_t rows, const char* x, char* y_rows,
                                           float* y_fp32) {
  const int64_t d = shape_.hidden;
  const size_t rb = row_bytes_;
  float* h = gate_up_out_.as<float>();
  for (int64_t first = 0; first < rows; first += chunk_rows_) {
    const int64_t count = std::min(chunk_rows_, rows - first);
    MOECAP_RETURN_IF_ERROR(backend_.MatMul(dtype_, count, 2 * ffn, d, x + first * rb, d, gate_up, d,
                                           h, 2 * ffn, false));
    MOECAP_RETURN_IF_ERROR(cuda::SwiGlu(h, count, ffn, dtype_, ffn_act_.data(), stream_));
    // The down GEMM writes the rows in their final type itself (bf16: cuBLAS rounds the fp32
    // accumulator once on store, as FromFloat would), so no conversion pass follows.
    const Dtype out_dtype = y_fp32 != nullptr ? Dtype::kFp32 : dtype_;
    void* y = y_fp32 != nullptr ? static_cast<void*>(y_fp32 + first * d)
                                : static_cast<void*>(y_rows + first * rb);
    MOECAP_RETURN_IF_ERROR(backend_.MatMulTo(dtype_, out_dtype, count, d, ffn, ffn_act_.data(), ffn,
                                             down, ffn, y, d, false));
  }
  return absl::OkStatus();
}

absl::Status CudaExpertParallelMoe::Layer(int64_t l, const float* x, PhaseTimes* times,
                                          StepTally* tally, bool record) {
  const bool timed = times != nullptr;
  const int64_t t_own = own_tokens_;
  const int64_t d = shape_.hidden;
  const int64_t k = shape_.top_k;
  const int64_t experts = shape_.experts;
  const int64_t local = local_experts_;
  const size_t rb = row_bytes_;
  float* out = hidden_[l % 2].as<float>();
  int64_t* counts_host = counts_host_.as<int64_t>() + l * experts;

  // Gate, ending with the per-expert counts on their way to the host.
  Mark(l, 0, timed);
  if (t_own > 0) {
    MOECAP_RETURN_IF_ERROR(cuda::RmsNorm(x, t_own, d, nullptr, dtype_, act_.data(), stream_));
    if (absl::Status s =
            backend_.MatMul(dtype_, t_own, experts, d, act_.data(), d, weights_.router(l), d,
                            logits_.as<float>(), experts, false);
        !s.ok()) {
      return s;
    }
    const int32_t* override_choices =
        has_overrides_ ? overrides_.as<int32_t>() + l * t_own * k : nullptr;
    MOECAP_RETURN_IF_ERROR(cuda::RouteTopK(
        logits_.as<float>(), t_own, experts, k, model_.router_scoring, model_.normalize_topk,
        override_choices, chosen_.as<int32_t>(), combine_w_.as<float>(), stream_));
    if (absl::Status s =
            cuda::CountAndSlot(chosen_.as<int32_t>(), t_own * k, experts, counts_.as<int64_t>(),
                               slot_.as<int64_t>(), count_scratch_.data(), stream_);
        !s.ok()) {
      return s;
    }
    if (absl::Status s =
            cuda::CudaCheck(cudaMemcpyAsync(counts_host, counts_.data(), experts * sizeof(int64_t),
                                            cudaMemcpyDeviceToHost, stream_),
                            "copying the expert counts to the host");
        !s.ok()) {
      return s;
    }
    if (record) {
      MOECAP_RETURN_IF_ERROR(cuda::CudaCheck(
          cudaMemcpyAsync(record_host_.as<int32_t>() + l * t_own * k, chosen_.data(),
                          t_own * k * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_),
          "copying the routing to the host"));
    }
    if (absl::Status s =
            cuda::CudaCheck(cudaEventRecord(counts_ready_, stream_), "cudaEventRecord");
        !s.ok()) {
      return s;
    }
  } else {
    std::fill(counts_host, counts_host + experts, 0);
  }
  Mark(l, 1, timed);

  // The shared experts need no counts: they keep the GPU busy while the host waits for them.
  if (shape_.shared_ffn > 0 && t_own > 0) {
    if (absl::Status s =
            Expert(weights_.shared_gate_up(l), weights_.shared_down(l), shape_.shared_ffn, t_own,
                   act_.as<char>(), nullptr, shared_out_.as<float>());
        !s.ok()) {
      return s;
    }
  }
  Mark(l, 2, timed);

  // Dispatch: the counts, then the rows, then (several ranks) the rows reordered expert-major.
  if (t_own > 0) {
    if (absl::Status s =
            cuda::CudaCheck(cudaEventSynchronize(counts_ready_), "waiting for the expert counts");
        !s.ok()) {
      return s;
    }
  }
  const absl::Span<const int64_t> send_counts(counts_host, static_cast<size_t>(experts));
  MOECAP_RETURN_IF_ERROR(
      comm_.AllToAll(counts_host, recv_counts_.data(), static_cast<size_t>(local)));
  const int64_t received_rows =
      PeerBytes(send_counts, recv_counts_, world_, rb, send_bytes_, recv_bytes_);
  if (tally != nullptr) TallyLayer(l, rank_, world_, t_own, k, send_counts, recv_counts_, *tally);
  if (t_own > 0) {
    MOECAP_RETURN_IF_ERROR(cuda::ScatterRows(act_.data(), t_own * k, k, slot_.as<int64_t>(),
                                             static_cast<int64_t>(rb), send_.data(), stream_));
  }
  const auto exchange = [&](const void* send, const std::vector<int64_t>& send_bytes, void* recv,
                            const std::vector<int64_t>& recv_bytes) -> absl::Status {
    if (!options_.comm_on_engine_stream) {
      if (absl::Status s =
              cuda::CudaCheck(cudaStreamSynchronize(stream_), "finishing rows before AllToAllV");
          !s.ok()) {
        return s;
      }
    }
    return comm_.AllToAllV(send, send_bytes, recv, recv_bytes);
  };
  MOECAP_RETURN_IF_ERROR(exchange(send_.data(), send_bytes_, received_.data(), recv_bytes_));
  const char* grouped_in = received_.as<char>();
  char* grouped_out = results_.as<char>();
  int64_t* index = nullptr;
  if (world_ > 1) {
    // The received rows lie by source rank; each expert's rows become one contiguous block.
    int64_t* index_host = index_host_.as<int64_t>() + l * 2 * rows_max_;
    ExpertMajorOrder(recv_counts_, world_, expert_begin_, index_host, index_host + received_rows);
    if (received_rows > 0) {
      index = index_.as<int64_t>() + l * 2 * rows_max_;
      MOECAP_RETURN_IF_ERROR(
          cuda::CudaCheck(cudaMemcpyAsync(index, index_host, 2 * received_rows * sizeof(int64_t),
                                          cudaMemcpyHostToDevice, stream_),
                          "uploading the expert-major row index"));
      MOECAP_RETURN_IF_ERROR(cuda::GatherRows(received_.data(), index, received_rows,
                                              static_cast<int64_t>(rb), grouped_in_.data(),
                                              stream_));
    }
    grouped_in = grouped_in_.as<char>();
    grouped_out = grouped_out_.as<char>();
  } else {
    ExpertMajorOrder(recv_counts_, world_, expert_begin_, nullptr, nullptr);
  }
  Mark(l, 3, timed);

  // Experts: each active local expert's rows, back to back on the stream.
  for (int64_t j = 0; j < local; ++j) {
    const int64_t begin = expert_begin_[j];
    const int64_t rows = expert_begin_[j + 1] - begin;
    if (rows == 0) continue;  // an expert without tokens reads no weights
    MOECAP_RETURN_IF_ERROR(Expert(weights_.gate_up(l, j), weights_.down(l, j), shape_.expert_ffn,
                                  rows, grouped_in + begin * rb, grouped_out + begin * rb,
                                  nullptr));
  }
  Mark(l, 4, timed);

  // Combine: back to source-major order, back to the tokens' ranks, then each token's weighted
  // sum plus the shared experts and the residual.
  if (world_ > 1 && received_rows > 0) {
    MOECAP_RETURN_IF_ERROR(cuda::GatherRows(grouped_out, index + received_rows, received_rows,
                                            static_cast<int64_t>(rb), results_.data(), stream_));
  }
  MOECAP_RETURN_IF_ERROR(exchange(results_.data(), recv_bytes_, combined_.data(), send_bytes_));
  if (t_own > 0) {
    const float* shared = shape_.shared_ffn > 0 ? shared_out_.as<float>() : nullptr;
    MOECAP_RETURN_IF_ERROR(cuda::Combine(x, shared, combined_.data(), dtype_, slot_.as<int64_t>(),
                                         combine_w_.as<float>(), t_own, k, d, out, stream_));
  }
  Mark(l, 5, timed);
  return absl::OkStatus();
}

}  // namespace moecap
