// The plan one expert-parallel run executes (model shape, scale, layers, dtype, batches, phases,
// routing, iterations, check), as a plain struct moecap-bench's flags and the API's PointWorkload
// (agent/daemon/workload_convert.h; agent/workload/report.h the other way) map onto; plus the
// pure helpers that split a run's tokens and experts over ranks.
#ifndef MOECAP_AGENT_WORKLOAD_CONFIG_H_
#define MOECAP_AGENT_WORKLOAD_CONFIG_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/dtype.h"
#include "common/model.h"

namespace moecap {

// Which serving pass a step imitates: prefill runs batch × prompt_len tokens per step, decode
// runs batch tokens (one per sequence).
enum class ServingPhase { kPrefill, kDecode };
absl::string_view ServingPhaseName(ServingPhase phase);  // "prefill", "decode"
absl::StatusOr<ServingPhase> ParseServingPhase(absl::string_view name);

// How tokens pick their experts.
enum class RoutingMode {
  kGate,       // the router's own top-k (real routing)
  kUniform,    // k distinct experts uniformly at random per token
  kZipf,       // k distinct experts, expert of popularity rank i weighted 1/(i+1)^exponent
  kHistogram,  // k distinct experts, expert e of layer l weighted histogram[l][e]
};
absl::string_view RoutingModeName(RoutingMode mode);  // "gate", "uniform", "zipf", "histogram"
absl::StatusOr<RoutingMode> ParseRoutingMode(absl::string_view name);

// What each stacked layer runs: the MoE block alone, or a decoder layer (attention over the KV
// cache, data-parallel over the ranks, then the MoE block).
enum class LayerKind { kMoe, kDecoder };
absl::string_view LayerKindName(LayerKind kind);  // "moe", "decoder"
absl::StatusOr<LayerKind> ParseLayerKind(absl::string_view name);

struct RoutingSpec {
  RoutingMode mode = RoutingMode::kGate;
  double zipf_exponent = 1.0;
  // kHistogram: relative token shares, one row of `experts` entries per layer, or a single row
  // for every layer. An expert with share 0 never receives a token.
  std::vector<std::vector<double>> histogram;
};

struct WorkloadConfig {
  ModelSpec model;     // as the catalog gives it (full size); ScaledModel() is what runs
  int64_t scale = 1;   // hidden, expert and shared-expert sizes are divided by this
  int64_t layers = 1;  // MoE layers stacked, each with its own weights
  Dtype dtype = Dtype::kFp32;
  std::vector<int64_t> batches = {1};
  std::vector<ServingPhase> phases = {ServingPhase::kDecode};
  LayerKind layer = LayerKind::kMoe;
  bool lm_head = false;  // decoder layers: the LM head over each sequence's last position
  // Decoder layers: the model's dense-FFN layers stacked with the `layers` MoE layers, where the
  // model has them (StackDenseLayers: DeepSeek's first ones, Llama-4's interleaved ones); at most
  // the model's dense_layers.
  int64_t dense_layers = 0;
  int64_t prompt_len = 128;  // tokens per sequence in a prefill step
  // O: a decode step is timed at the mean context P + O/2 (integer division) of its sequences.
  int64_t output_len = 256;
  int iterations = 20;  // measured steps per point
  int warmup = 5;       // unmeasured steps before them
  uint64_t seed = 1;    // weights, inputs and routing overrides
  RoutingSpec routing;
  bool check = false;    // compare with the single-rank reference before timing
  double tolerance = 0;  // check bound on max|out − ref| / max|ref|; 0: DefaultTolerance(dtype)
  int threads_per_rank = 0;    // BLAS threads; 0: host cores / ranks on the host, at least 1
  double comm_timeout_s = 60;  // rendezvous and every collective
};

// The default check tolerance: fp32 1e-4, bf16 3e-2 (relative to the output's largest magnitude).
double DefaultTolerance(Dtype dtype);

// Checks the plan against a world of `world_size` ranks. Errors name the flag/field and why.
absl::Status ValidateWorkload(const WorkloadConfig& config, int world_size);

// Tokens one step processes over all ranks: batch (decode) or batch × prompt_len (prefill).
int64_t TokensPerStep(const WorkloadConfig& config, ServingPhase phase, int64_t batch);

// The context a decode step is timed at, each sequence's KV entries the new token included:
// P + O/2.
int64_t DecodeContext(const WorkloadConfig& config);

struct Range {
  int64_t begin = 0;
  int64_t count = 0;
};

// Some sequences of a step: global ids [first, first + count), each with `new_tokens` new tokens
// after `cached` entries already in its KV cache. Their rows in a step's activations are
// sequence-major.
struct SequenceBlock {
  int64_t first = 0;
  int64_t count = 0;
  int64_t new_tokens = 1;
  int64_t cached = 0;
  int64_t rows() const { return count * new_tokens; }
  // A decode step: one new token after cached ones (what MLA's absorbed form serves); anything
  // else is a prefill (fresh, or a chunk after cached entries).
  bool decode_step() const { return new_tokens == 1 && cached > 0; }
};

// The sequences of rank `rank` in a decoder layer's step: a contiguous block of the batch, the
// first batch % world ranks one larger (a rank may have none when batch < world); decode: one new
// token after DecodeContext − 1 entries; prefill: prompt_len fresh tokens.
SequenceBlock RankSequences(const WorkloadConfig& config, ServingPhase phase, int64_t batch,
                            int rank, int world);
// The tokens of rank `rank`: a contiguous block, the first tokens % world ranks one larger.
Range RankTokens(int64_t tokens, int rank, int world);
// The rows (tokens) of rank `rank` in a step: decoder layers, its sequences' tokens (attention
// needs whole sequences); MoE blocks alone, RankTokens of the step's tokens.
Range RankRows(const WorkloadConfig& config, ServingPhase phase, int64_t batch, int rank,
               int world);
// The routed experts rank `rank` hosts: a contiguous block of experts / world (precondition:
// world divides experts, which ValidateWorkload checks).
Range RankExperts(int64_t experts, int rank, int world);

nlohmann::json ModelToJson(const ModelSpec& model);
absl::StatusOr<ModelSpec> ModelFromJson(const nlohmann::json& json);
// The plan as moecap-bench's JSON output names it ("plan"); every field, the tolerance resolved.
nlohmann::json WorkloadToJson(const WorkloadConfig& config);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_CONFIG_H_
