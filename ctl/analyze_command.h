// `moecapctl analyze`: the MoE-CAP calculator. From a model, hardware and a batch shape (and
// measured TTFT/TPOT when given) it prints bytes, FLOPs, S-MBU, S-MFU, the roofline and cost.
// With --records or --serving-result it reads a serving run instead (ctl/analyze_records.h,
// ctl/analyze_serving.h).
#ifndef MOECAP_CTL_ANALYZE_COMMAND_H_
#define MOECAP_CTL_ANALYZE_COMMAND_H_

#include <CLI/CLI.hpp>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/analysis.h"
#include "common/catalog.h"
#include "common/metrics.h"
#include "ctl/command.h"
#include "nlohmann/json.hpp"

namespace moecap::ctl {

struct AnalyzeOptions {
  std::string model;
  std::string hardware;
  int64_t gpus = 1;
  int64_t batch = 1;
  int64_t prompt_len = 0;
  int64_t output_len = 1;
  std::string dtype = "bf16";
  std::string kv_dtype;
  std::string expert_dtype;         // --expert-dtype: routed and shared experts (default: native)
  std::string attention_dtype;      // --attention-dtype: attention, router, dense FFN
  std::string lm_head_dtype;        // --lm-head-dtype
  std::string compute_dtype;        // --compute-dtype: the peak FLOP/s's dtype
  bool strict = false;              // --strict: an invalid figure is an error (exit 1)
  bool uniform_activation = false;  // --uniform-activation: with --records
  double ttft_s = 0;
  double tpot_s = 0;
  double prefill_activated = 0;
  double decode_activated = 0;
  double peak_bandwidth_gb_s = 0;
  double peak_tflops = 0;
  double usd_per_hour = 0;
  double amortize_hours = 0;
  double usd_per_kwh = 0.15;
  std::string output = "table";
  bool explain = false;
  std::string records;         // --records FILE: MoE-CAP per-pass records (JSON lines)
  std::string serving_result;  // --serving-result FILE: a serving benchmark's summary
  int64_t tp = 0;              // --tp: attention tensor-parallel degree (physical HBM traffic)
  bool dp_attention = false;   // --dp-attention: router, shared and dense FFN with the replicas
  std::string convention;      // --convention moecap: with --records, MoE-CAP's figures beside ours
  bool per_pass = false;       // with --records: one row per pass instead of the phase summary
  bool skip_bad = false;       // with --records: count bad lines in `skipped` instead of failing

  // Which optional flags were given (CLI11 fills these through the registered options).
  const CLI::Option* ttft_flag = nullptr;
  const CLI::Option* tpot_flag = nullptr;
  const CLI::Option* prefill_activated_flag = nullptr;
  const CLI::Option* decode_activated_flag = nullptr;
  const CLI::Option* peak_bandwidth_flag = nullptr;
  const CLI::Option* peak_tflops_flag = nullptr;
  const CLI::Option* usd_per_hour_flag = nullptr;
  const CLI::Option* amortize_hours_flag = nullptr;
  const CLI::Option* prompt_len_flag = nullptr;
  const CLI::Option* gpus_flag = nullptr;
  const CLI::Option* tp_flag = nullptr;
  const CLI::Option* batch_flag = nullptr;
  const CLI::Option* output_len_flag = nullptr;
};

// Adds the `analyze` subcommand's flags to `app`, bound to `options`.
CLI::App* RegisterAnalyzeCommand(CLI::App& app, AnalyzeOptions& options);

absl::Status RunAnalyzeCommand(const AnalyzeOptions& options, const GlobalOptions& global,
                               const CommandIo& io);

// Pieces the record and vLLM modes share with the step mode.

// --model: a catalog name or alias, or a file: a Hugging Face config.json (any name not ending in
// .yaml/.yml), or a catalog YAML entry. Usage errors name --model.
absl::StatusOr<ModelSpec> ResolveModel(const std::string& arg, const Catalog& catalog);

// An AnalysisInput holding what every mode takes from flags: model, hardware (when
// `need_hardware` or given), --gpus, dtypes, peak and price overrides. The batch shape is left at
// its defaults. Errors are usage errors naming the flag.
absl::StatusOr<AnalysisInput> BuildCommonInput(const AnalyzeOptions& options,
                                               const Catalog& catalog, bool need_hardware);
// The warning lines printed above a table: one per invalid figure's reason and per estimate's
// assumption ("warning: decode S-MBU 142.0% is over 100%: ..."). Empty when there are none.
std::string ValidityWarnings(const Validity& validity);
// With --strict, an invalid figure fails the command after its output was printed.
absl::Status StrictCheck(const AnalyzeOptions& options, const Validity& validity);
// The line under a table that explains the physical HBM traffic of a layout.
std::string LayoutLine(const ModelSpec& model, const ParallelLayout& layout, int64_t devices);
// The step mode's table (and breakdown with --explain).
void PrintAnalysisTable(const AnalysisInput& input, const AnalysisResult& result, bool explain,
                        std::ostream& out);
// The step mode's CSV (one header row and one value row) from AnalysisJson, with `extra`
// columns appended.
void PrintAnalysisCsv(const nlohmann::json& analysis,
                      const std::vector<std::pair<std::string, std::string>>& extra,
                      std::ostream& out);
// The --explain table: one row per METRICS.md term; per phase its bytes, FLOPs and their shares
// of the phase total.
std::string BreakdownTable(const std::vector<std::pair<std::string, const Counts*>>& phases);

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_ANALYZE_COMMAND_H_
