// The interface the measurement harness drives: one rank's side of the expert-parallel MoE layer
// stack on some device (ExpertParallelMoe on the host, CudaExpertParallelMoe on a GPU), what a
// step reports (phase times, tally, routing), and the tally and exchange-size arithmetic every
// engine shares, so that S-MBU and S-MFU count the same thing whatever computed the step.
#ifndef MOECAP_AGENT_WORKLOAD_MOE_ENGINE_H_
#define MOECAP_AGENT_WORKLOAD_MOE_ENGINE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace moecap {

// Seconds per phase, summed over the layers of a step.
struct PhaseTimes {
  double gate = 0;
  double dispatch = 0;
  double experts = 0;
  double combine = 0;
  double attention = 0;  // decoder layers only
  double lm_head = 0;    // decoder layers with the LM head
  double dense_ffn = 0;  // decoder stacks with dense layers: their FFNs
};

// What one rank did in one step, summed over layers. Routing is fixed within a point, so every
// step of a point has the same tally.
struct StepTally {
  int64_t own_tokens = 0;
  int64_t pairs_computed = 0;       // token-expert pairs its experts processed
  int64_t local_activated_sum = 0;  // Σ_l its experts that received at least one pair
  int64_t dispatch_rows_sent = 0;   // rows it sent in dispatch, to itself included
  int64_t dispatch_rows_to_self = 0;
  int64_t combine_rows_sent = 0;  // rows it sent back in combine (= rows it received)
  int64_t combine_rows_to_self = 0;
  int64_t count_exchange_bytes = 0;  // bytes it sent in the count all-to-alls
  // [layer][expert]: pairs of this rank's own tokens per expert; summed over ranks, the global
  // routing histogram.
  std::vector<std::vector<int64_t>> histogram;
};

// The experts each of this rank's tokens went to, per layer ([layer][token·k + j]), for the check.
struct RoutingRecord {
  std::vector<std::vector<int32_t>> chosen;
};

// One rank's MoE layer stack. Not thread-safe; one thread drives it (and its communicator).
class MoeEngine {
 public:
  virtual ~MoeEngine() = default;

  // Readies the engine for steps of `own_tokens` tokens on this rank out of `global_tokens`.
  // `overrides`: per layer, the override's choices for the rank's tokens (own_tokens·k ids), or
  // empty for the gate's own routing. `input` (host memory, own_tokens × d fp32) is the step's
  // input: the engine copies it (to the device, for a GPU engine), so every step computes the
  // same thing and the timed steps move no input.
  virtual absl::Status Prepare(int64_t own_tokens, int64_t global_tokens,
                               std::vector<std::vector<int32_t>> overrides, const float* input) = 0;

  // Runs every layer once over the prepared input and returns when the step is complete (a GPU
  // engine synchronises its stream), so a host clock around Step measures the whole step.
  // `times` accumulates each phase; `tally` and `record` (each may be null) receive the step's
  // counts and routing.
  virtual absl::Status Step(PhaseTimes* times, StepTally* tally, RoutingRecord* record) = 0;

  // Copies the last step's output (own_tokens × d fp32) into `output` (host memory).
  virtual absl::Status ReadOutput(float* output) = 0;
};

// An empty tally for a step of `own_tokens` tokens over `layers` layers of `experts` experts.
StepTally StartTally(int64_t own_tokens, int64_t layers, int64_t experts);

// Adds layer `layer` of a step to `tally`. `send_counts` (E entries): pairs of this rank's tokens
// per expert, which is also what it sends each rank (experts lie in contiguous blocks of E/world
// per rank); `recv_counts` (world × E/world): pairs each rank sends this rank's experts, in the
// count all-to-all's layout. Every engine calls it, so the counting is the same code everywhere.
void TallyLayer(int64_t layer, int rank, int world, int64_t own_tokens, int64_t top_k,
                absl::Span<const int64_t> send_counts, absl::Span<const int64_t> recv_counts,
                StepTally& tally);

// The all-to-all-v's byte counts per peer from the per-expert counts (as TallyLayer takes them):
// rows to and from each rank times `row_bytes`. Fills `send_bytes` and `recv_bytes` (resized to
// world) and returns the rows this rank receives.
int64_t PeerBytes(absl::Span<const int64_t> send_counts, absl::Span<const int64_t> recv_counts,
                  int world, size_t row_bytes, std::vector<int64_t>& send_bytes,
                  std::vector<int64_t>& recv_bytes);

// The layout rules both engines (and their memory estimates) follow.
//
// The most rows a rank's `local_experts` experts can receive in one step of `global_tokens`
// tokens: a token sends at most one row to each of them, and k at most in all.
int64_t MaxReceivedRows(int64_t top_k, int64_t local_experts, int64_t global_tokens);

// Prepare's overrides: empty (the gate routes), or one entry per layer of own_tokens·k choices.
// InvalidArgument saying which is off.
absl::Status CheckRoutingOverrides(const std::vector<std::vector<int32_t>>& overrides,
                                   int64_t layers, int64_t own_tokens, int64_t top_k);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_MOE_ENGINE_H_
