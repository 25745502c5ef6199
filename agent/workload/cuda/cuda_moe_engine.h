// One rank's side of the expert-parallel MoE layer stack on a GPU: the CUDA counterpart of
// ExpertParallelMoe, driven by the same harness (MoeEngine) and counted by the same code
// (TallyLayer). Per layer, everything runs on the backend's stream: RMS norm, router GEMM, top-k
// (or the override), grouping by expert (CountAndSlot); the per-expert counts come to the host
// (the one synchronisation of a layer: the all-to-all sizes and the expert GEMMs' row counts
// need them), the count all-to-all runs on the host, the rows are scattered into expert order
// and exchanged with the communicator's all-to-all-v on device memory, reordered expert-major,
// put through each active local expert's SwiGLU GEMMs back to back (chunked, never a host sync
// between experts), reordered back, returned, and combined with the shared experts' output and
// the residual.
#ifndef MOECAP_AGENT_WORKLOAD_CUDA_CUDA_MOE_ENGINE_H_
#define MOECAP_AGENT_WORKLOAD_CUDA_CUDA_MOE_ENGINE_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "agent/comm/communicator.h"
#include "agent/compute/compute_backend.h"
#include "agent/compute/cuda/cuda_backend.h"
#include "agent/workload/cuda/cuda_attention.h"
#include "agent/workload/cuda/cuda_moe_weights.h"
#include "agent/workload/moe_engine.h"
#include "common/model.h"

namespace moecap {

struct CudaEngineOptions {
  // Whether the communicator's AllToAllV enqueues its work on the engine's stream and returns
  // with the result ready in stream order (DeviceLocalCommunicator). When false (NCCL on its own
  // stream), the engine synchronises its stream before each AllToAllV so the rows are written,
  // and relies on the communicator returning only once the received rows are complete.
  bool comm_on_engine_stream = false;
  // Rows per expert GEMM chunk (bounds the fp32 gate_up scratch); 0 sizes chunks so that the
  // scratch stays near 256 MiB. Tests set it small to exercise the chunking.
  int64_t chunk_rows = 0;
};

class CudaExpertParallelMoe : public MoeEngine {
 public:
  // Everything runs on `backend`'s stream; `comm`'s AllToAllV takes device pointers, its other
  // calls host pointers. All must outlive this object.
  CudaExpertParallelMoe(const ModelSpec& scaled, const CudaMoeWeights& weights,
                        cuda::CudaBackend& backend, Communicator& comm, CudaEngineOptions options);
  ~CudaExpertParallelMoe() override;
  CudaExpertParallelMoe(const CudaExpertParallelMoe&) = delete;
  CudaExpertParallelMoe& operator=(const CudaExpertParallelMoe&) = delete;

  // Decoder layers: each layer's MoE block then takes `attention`'s output for its input (the
  // attention prepared by the caller for the same rows, before Prepare; its time, from CUDA
  // events, is PhaseTimes::attention). Null: the MoE blocks alone. Call before Prepare.
  void SetAttention(CudaAttentionStack* attention) { attention_ = attention; }

  // Allocates every buffer a step needs (Step allocates nothing) and uploads the input and the
  // overrides.
  absl::Status Prepare(int64_t own_tokens, int64_t global_tokens,
                       std::vector<std::vector<int32_t>> overrides, const float* input) override;
  // Phase times come from CUDA events on the stream (summed over layers); returns after the
  // stream has drained.
  absl::Status Step(PhaseTimes* times, StepTally* tally, RoutingRecord* record) override;
  absl::Status ReadOutput(float* output) override;

  // Device bytes Prepare allocates (for the memory estimate); `layers` for the overrides;
  // `attention` for the attention's output rows (the attention's own buffers not included).
  static int64_t WorkBytes(const ModelSpec& scaled, Dtype dtype, int64_t layers, int64_t own_tokens,
                           int64_t global_tokens, int world_size, int64_t chunk_rows = 0,
                           bool attention = false);
  // Rows per expert GEMM chunk for `max_ffn` (the widest expert) when options.chunk_rows is 0.
  static int64_t DefaultChunkRows(int64_t max_ffn);

 private:
  // One MoE block over `x` (own × d fp32, device), into hidden_[layer % 2].
  absl::Status Layer(int64_t layer, const float* x, PhaseTimes* times, StepTally* tally,
                     bool record);
  // One SwiGLU expert over `rows` rows of `x` (dtype, d wide), chunk by chunk: output rows go to
  // `y_rows` (dtype, d wide) or, when `y_fp32` is set, fp32 into `y_fp32` (d wide).
  absl::Status Expert(const void* gate_up, const void* down, int64_t ffn, int64_t rows,
                      const char* x, char* y_rows, float* y_fp32);
  void Mark(int64_t layer, int point, bool timed);

  const ModelSpec& model_;
  const CudaMoeWeights& weights_;
  cuda::CudaBackend& backend_;
  cudaStream_t stream_;
  Communicator& comm_;
  CudaEngineOptions options_;
  CudaAttentionStack* attention_ = nullptr;
  LayerShape shape_;
  Dtype dtype_;
  int world_;
  int rank_;
  int64_t layers_;
  int64_t local_experts_;
  size_t row_bytes_;  // one token row in the compute dtype

  int64_t own_tokens_ = 0;
  int64_t rows_max_ = 0;
  int64_t chunk_rows_ = 0;
  bool has_overrides_ = false;
  bool stepped_ = false;

  // Device memory.
  Buffer input_;      // own × d fp32
  Buffer attended_;   // own × d fp32: the layer's attention output (decoder layers)
  Buffer hidden_[2];  // own × d fp32: layer outputs, ping-pong; the last layer's is the output
  Buffer act_;        // own × d dtype: normed rows, the router's and experts' input
  Buffer logits_;     // own × E fp32
  Buffer chosen_;     // own × k int32
  Buffer combine_w_;  // own × k fp32
  Buffer slot_;       // own × k int64: row of each pair in send_/combined_
  Buffer counts_;     // E int64
  Buffer count_scratch_;
  Buffer overrides_;   // layers × own × k int32 (with overrides)
  Buffer send_;        // own·k rows: dispatch out, sorted by expert
  Buffer combined_;    // own·k rows: combine in, same layout
  Buffer received_;    // rows_max rows: dispatch in, by source rank then local expert
  Buffer results_;     // rows_max rows: combine out, same layout
  Buffer grouped_in_;  // rows_max rows, expert-major (world > 1; else received_ is)
  Buffer grouped_out_;
  Buffer index_;        // per layer 2 × rows_max int64: to expert-major, back to source-major
  Buffer shared_out_;   // own × d fp32
  Buffer gate_up_out_;  // chunk × 2·max_ffn fp32
  Buffer ffn_act_;      // chunk × max_ffn dtype

  // Pinned host memory, one region per layer so a layer never overwrites what an earlier
  // layer's copy may still be reading.
  Buffer counts_host_;  // layers × E int64
  Buffer index_host_;   // layers × 2 × rows_max int64
  Buffer record_host_;  // layers × own × k int32

  std::vector<int64_t> recv_counts_;  // world × local
  std::vector<int64_t> send_bytes_;
  std::vector<int64_t> recv_bytes_;
  std::vector<int64_t> expert_begin_;  // local + 1

  static constexpr int kMarks = 6;  // per layer: start, gate, shared, dispatch, experts, combine
  std::vector<cudaEvent_t> marks_;  // layers × kMarks
  std::vector<cudaEvent_t> attention_marks_;  // decoder layers: layers × 2 (start, end)
  cudaEvent_t counts_ready_ = nullptr;
};

// The receive side's reordering. `recv_counts` (world × local) are the rows each rank sent each
// local expert; the received rows lie source-major (rank q's rows for experts 0..local-1, then
// rank q+1's). Fills `expert_begin` (local + 1 entries: the first expert-major row of each local
// expert, then the total) and, when not null, `to_expert_major[r]` (the received row that is row
// r in expert-major order) and `to_source_major[s]` (the expert-major row of received row s), each
// of total entries.
void ExpertMajorOrder(absl::Span<const int64_t> recv_counts, int world,
                      std::vector<int64_t>& expert_begin, int64_t* to_expert_major,
                      int64_t* to_source_major);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_CUDA_CUDA_MOE_ENGINE_H_
