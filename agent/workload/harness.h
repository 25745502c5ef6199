// The measurement harness, written once (nccl-tests style): for every point (phase × batch) it
// prepares inputs and routing, runs one untimed step (routing histogram, check against the
// reference), warm-up steps, then measured steps each after a barrier, and returns the rank's
// samples and counts. It drives a MoeEngine, so the host and GPU engines share it (and the
// counting). RunRank is the entry point of one host rank, whoever starts it (moecap-bench's
// launcher, the agent daemon); RunCudaRank (workload/cuda) is the GPU one.
#ifndef MOECAP_AGENT_WORKLOAD_HARNESS_H_
#define MOECAP_AGENT_WORKLOAD_HARNESS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/comm/communicator.h"
#include "agent/compute/compute_backend.h"
#include "agent/compute/energy_meter.h"
#include "agent/workload/attention.h"
#include "agent/workload/config.h"
#include "agent/workload/counting.h"
#include "agent/workload/moe_engine.h"
#include "agent/workload/reference.h"
#include "agent/workload/weights.h"
#include "moecap/v1/job.pb.h"

namespace moecap {

// Where and how a rank runs, beyond the plan (its rank and world size come from the Communicator).
struct RankContext {
  int ranks_on_host = 1;  // ranks sharing this host's cores: BLAS threads default to cores / this
  // Called as the rank passes each milestone (before each point's check or measurement, after
  // it, and when every point is done) with where it is, ranks_reporting 1; may be empty.
  std::function<void(const v1::Progress&)> progress;
  // Called with short lines for the rank's log, for people ("decode batch 8: check passed ...");
  // may be empty.
  std::function<void(const std::string&)> log;
  // The devices' energy counter over each measured loop (null: none readable, and why). A counter
  // shared by the ranks of a host (a CPU package's RAPL) is divided among them: each rank reports
  // its 1/energy_shared_by of it, so that the ranks' sum is the host's.
  EnergyMeter* energy = nullptr;
  int energy_shared_by = 1;
  std::string energy_unavailable;
};

// Seconds of each measured iteration, in order. Phases are summed over the layers of the step;
// `step` is the whole step on this rank (after its barrier).
struct PhaseSamples {
  std::vector<double> step;
  std::vector<double> gate;
  std::vector<double> dispatch;
  std::vector<double> experts;
  std::vector<double> combine;
  std::vector<double> attention;  // decoder layers
  std::vector<double> lm_head;    // decoder layers with the LM head
  std::vector<double> dense_ffn;  // decoder stacks with dense layers
};

struct RankPointResult {
  ServingPhase phase = ServingPhase::kDecode;
  int64_t batch = 0;
  int64_t tokens = 0;  // tokens per step over all ranks
  StepTally tally;     // this rank's own tokens, pairs, rows and per-expert histogram
  // [layer][expert] over all ranks (the sum of the ranks' histograms; the same on every rank).
  std::vector<std::vector<int64_t>> global_histogram;
  RankCounts counts;
  std::optional<AttentionShare> attention;  // decoder layers: the rank's sequences
  PhaseSamples samples;
  double loop_seconds = 0;  // the whole measured loop, barriers included
  // This rank's share of the energy of the measured loop, joules, when a counter was read; else
  // why not.
  std::optional<double> energy_joules;
  std::string energy_source;
  std::string energy_unavailable;
  CheckResult check;
};

struct RankResult {
  int rank = 0;
  int world_size = 1;
  std::string host;
  int threads = 1;
  std::string backend;       // ComputeBackend::name()
  std::string library;       // ComputeBackend::LibraryConfig()
  std::string communicator;  // Communicator::name()
  double setup_seconds = 0;  // weight generation
  std::vector<RankPointResult> points;
};

// Runs the plan as rank comm.rank() of comm.size(). Any failure (invalid plan, memory, a
// collective's timeout or a lost peer) aborts the communicator, so the peers fail fast too, and
// comes back as an error naming the rank and the point. A failed check is not an error here: it
// is in the result (the caller decides the exit status).
absl::StatusOr<RankResult> RunRank(const WorkloadConfig& config, const RankContext& context,
                                   Communicator& comm, ComputeBackend& backend);

// A rank's result before its points: who ran it, where, with which libraries (both engines).
RankResult StartRankResult(const Communicator& comm, const ComputeBackend& backend,
                           const std::string& host);

// What the check recomputes the stack with: a host backend and this rank's weights in host memory
// (the reference regenerates the other ranks' experts from the seed). Both null without a check.
struct ReferenceModel {
  ComputeBackend* backend = nullptr;
  const MoeWeights* weights = nullptr;
  // Decoder stacks with dense layers: the engine's dense layers, and where they sit.
  DenseFfnLayers* dense = nullptr;
  const std::vector<bool>* dense_at = nullptr;
};

// Runs every point (phases × batches) of `config` on `engine`, appending to `result.points`, then
// the final barrier. The caller validated the plan and filled the rest of `result`. `attention`
// (decoder layers; null: the MoE blocks alone) is the engine's attention: each point prepares it
// for the rank's sequences. A failure aborts the communicator and comes back as FailRank's error
// naming the point.
absl::Status RunPoints(const WorkloadConfig& config, const RankContext& context, Communicator& comm,
                       MoeEngine& engine, DecoderAttention* attention,
                       const ReferenceModel& reference, RankResult& result);

// Aborts `comm` (so the peers fail fast) and returns `status` prefixed with "rank r of n" and
// `where`.
absl::Status FailRank(Communicator& comm, const absl::Status& status, absl::string_view where);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_HARNESS_H_
