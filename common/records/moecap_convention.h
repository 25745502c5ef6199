// `moecapctl analyze --records FILE --convention moecap`: the S-MBU, S-MFU and cost MoE-CAP's
// published code (Auto-CAP/MoE-CAP at e9e0d88, moe_cap/utils/continuous_batching_utils.py and the
// basic/qwen/deepseek/hardware/cost utils it calls) computes from the same records, reproduced
// term for term, so that a user can put moecap's figure beside the one MoE-CAP prints and see
// where the two part. METRICS.md "Differences from the MoE-CAP reference code" lists them;
// tests/fixtures/real/FORMATS.md §7 transcribes the formulas with file and line.
//
// The gap between the two figures is attributed one difference at a time: MoE-CAP's figure is
// recomputed with that single difference done moecap's way (its peaks replaced by ours, its plain
// mean by the time-weighted one, its per-pass terms by ours for the same record, ...), and the
// change is that difference's share of the gap. What the single changes leave unexplained — the
// passes the two count (split steps merged, skipped passes, per-request prefill points) and the
// interactions between differences — is reported as the rest.
#ifndef MOECAP_COMMON_RECORDS_MOECAP_CONVENTION_H_
#define MOECAP_COMMON_RECORDS_MOECAP_CONVENTION_H_

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/dtype.h"
#include "common/hardware.h"
#include "common/model.h"
#include "common/precision.h"
#include "common/records/pass_counts.h"
#include "common/records/records_analysis.h"
#include "nlohmann/json.hpp"

namespace moecap::records {

// MoE-CAP's hardware tables (hardware_utils.py MEM_BW_DICT / PEAK_FLOPS_DICT, cost_utils.py), keyed
// by the names its get_gpu_details() builds.
struct MoecapGpu {
  absl::string_view key;
  double bandwidth_bytes_s;
  // float32, float16, bfloat16, int8, fp8, fp4, int4: the figures as its table has them (its
  // bf16/fp8 entries for H100 and H200 are 2:4-sparse datasheet figures; it halves them all).
  double peak_flops[7];
};
const MoecapGpu* FindMoecapGpu(absl::string_view key);
// 0 where its table has no entry (MoE-CAP then divides by zero and drops the figures).
double MoecapPeakFlops(const MoecapGpu& gpu, absl::string_view section);

// calculate_cost(): a system cost in USD, not a price per token; nullopt for a GPU its cost table
// lacks (its H100 SXM key, NVIDIA-H100-80GB-HBM3, is not the name its recorders write).
std::optional<double> MoecapSystemCostUsd(absl::string_view gpu_key, int64_t gpus, double seconds);

// The formulas MoE-CAP picks by a case-sensitive substring of the model id.
enum class MoecapFamily { kDefault, kQwen, kQwen3, kDeepSeek };
absl::string_view MoecapFamilyName(MoecapFamily family);

// The sizes its formulas use, in parameters (elements), per layer unless said otherwise.
struct MoecapModelSizes {
  MoecapFamily family = MoecapFamily::kDefault;
  std::string model_id;   // the id the family was picked from
  double layers = 0;      // n_layers
  double attention = 0;   // attention_size_per_token
  double expert = 0;      // expert_size: 3·d·d_ff
  double shared = 0;      // shared_experts_size_total (DeepSeek: always two experts' worth)
  double dense_ffn = 0;   // 3·d·intermediate_size
  double moe_layers = 0;  // layers whose experts are read (a·expert)
  double shared_layers = 0;
  double dense_layers = 0;
  double kv_per_token = 0;               // per_token_kv_size, all layers
  double score_per_token = 0;            // its attention_score per context token, all layers
  std::vector<std::string> assumptions;  // where moecap's model had to stand in for config.json
};
MoecapModelSizes MoecapSizesOf(const ModelSpec& model);

// The precision MoE-CAP resolves (an explicit non-bf16 --precision, else the checkpoint's
// quantization, else bfloat16): its peak-table section and its single bytes-per-parameter.
struct MoecapPrecision {
  std::string used_dtype;  // "bfloat16", "fp8", "mxfp4", ...
  std::string section;     // the peak table's: mxfp4 -> fp4
  double bytes = 2;
};
MoecapPrecision MoecapPrecisionOf(const ModelSpec& model, Dtype run_dtype);

struct MoecapOptions {
  std::string origin = "records";
  ModelSpec model;
  Dtype dtype = Dtype::kBf16;
  PrecisionOverrides precision;  // moecap's, for the per-term comparison
  CountOptions counting;         // moecap's, likewise
  // When the records carry no gpu_raw_type (detailed_results files): --hardware's MoE-CAP name.
  std::optional<HardwareSpec> hardware;
  std::optional<int64_t> devices;  // --gpus; MoE-CAP takes the first record's gpu_num, else 1
  bool skip_bad = false;
};

// One phase's figure as MoE-CAP computes it, and as it becomes with one difference undone.
struct MoecapVariant {
  std::string difference;   // "peaks and device count", ...
  std::string explanation;  // how the two count it
  double s_mbu = 0;
  double s_mfu = 0;
};
struct MoecapPhase {
  int64_t points = 0;  // its data points: records, or requests on its per-request prefill path
  double s_mbu = 0;
  double s_mfu = 0;
  double mean_latency_s = 0;  // its ttft / tpot: the plain mean over the points
  std::vector<MoecapVariant> variants;
};

struct MoecapFigures {
  std::string gpu_key;     // as looked up in its tables
  std::string gpu_source;  // "gpu_raw_type" or "--hardware (its alias ...)"
  int64_t gpus = 1;
  MoecapModelSizes sizes;
  MoecapPrecision precision;
  double peak_bandwidth_bytes_s = 0;
  double peak_flops = 0;  // its table's; S-MFU divides by half of it
  bool per_request_prefill = false;
  std::optional<MoecapPhase> prefill;
  std::optional<MoecapPhase> decode;
  int64_t records = 0;
  int64_t skipped_warmup = 0;         // prefill records with seq_lens_sum <= 10
  int64_t skipped_no_activation = 0;  // expert_activation missing or null
  double run_seconds = 0;  // Σ latency of the records: stands in for the client's makespan
  std::optional<double> cost_usd;
  std::vector<std::string> notes;  // why a figure is missing, what stood in for what
};

// Reads the records again, as MoE-CAP does. `ours` is moecap's run context for the same file
// (peaks, devices), used for the "peaks" variant. Errors as AnalyzeRecords's for bad lines.
absl::StatusOr<MoecapFigures> MoecapFromRecords(std::istream& in, const MoecapOptions& options,
                                                const RunContext& ours);

// The comparison: {"reference": "Auto-CAP/MoE-CAP e9e0d88", ..., "prefill": {"moecap": {...},
// "moe_cap": {...}, "gap": {...}, "shares": [{"difference", "s_mbu", "s_mfu"}...]}, ...}.
// Shares are fractions of the gap (moecap − MoE-CAP); "rest" is what the single changes leave.
nlohmann::json MoecapComparisonJson(const MoecapFigures& theirs, const RecordsSummary& ours);

}  // namespace moecap::records

#endif  // MOECAP_COMMON_RECORDS_MOECAP_CONVENTION_H_
