// `moecapctl analyze --vllm-result`: reads the JSON that vLLM's `bench serve --save-result`
// writes and estimates the run with the step formulas (common/analysis.h): B = max_concurrency,
// P and O the mean input and output lengths, TTFT and TPOT the means, uniform routing. Everything
// assumed is said in the output, which is marked "estimated".
#ifndef MOECAP_COMMON_RECORDS_VLLM_RESULT_H_
#define MOECAP_COMMON_RECORDS_VLLM_RESULT_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/analysis.h"
#include "nlohmann/json.hpp"

namespace moecap::records {

struct VllmResult {
  int64_t completed = 0;
  int64_t total_input_tokens = 0;
  int64_t total_output_tokens = 0;
  std::optional<int64_t> max_concurrency;  // null or missing: no limit was set
  double duration_s = 0;
  double mean_ttft_ms = 0;
  double mean_tpot_ms = 0;
  // Latency percentiles present in the file, by name: "p50" (vLLM's median_*), "p90", "p99", ...
  std::map<std::string, double> ttft_percentiles_ms;
  std::map<std::string, double> tpot_percentiles_ms;
  std::string model_id;  // echoed when the file has it
  std::string backend;
  std::string date;
};

// Parses the result file's text. Errors name the file and the field ("result.json: field
// 'completed': expected an integer") or the place of a syntax error ("result.json:3: invalid JSON
// at column 7: expected ':'"). Unknown fields are ignored.
absl::StatusOr<VllmResult> ParseVllmResult(absl::string_view text, absl::string_view origin);

struct VllmEstimate {
  AnalysisInput input;
  std::vector<std::string> assumptions;  // in words, for the JSON list and the table
};

// Fills the batch shape and times of `base` (which carries model, hardware, devices, dtype, peaks
// and price) from `result`. InvalidArgument when the result cannot describe a batch.
absl::StatusOr<VllmEstimate> EstimateFromVllm(const VllmResult& result, AnalysisInput base);

// AnalysisJson plus "mode": "vllm-result", "estimated": true, "assumptions", the echoed "vllm"
// fields, the utilisations at each latency percentile, and "run_cost" (the price of the run's
// measured duration per token) when the hardware has a price.
nlohmann::json VllmAnalysisJson(const VllmResult& result, const VllmEstimate& estimate,
                                const AnalysisResult& analysis);

}  // namespace moecap::records

#endif  // MOECAP_COMMON_RECORDS_VLLM_RESULT_H_
