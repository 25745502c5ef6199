// `moecapctl analyze --serving-result`: reads the summary a serving benchmark writes (vLLM
// `bench serve --save-result` JSON or its console block, SGLang `bench_serving` JSONL or its
// console block, AIPerf's profile_export_aiperf.json) and estimates the run with the step formulas
// (common/analysis.h), as METRICS.md "Serving-benchmark summaries" says: the decode batch by
// Little's law (or the run's fixed concurrency when it saturated it), the decode step at the mean
// TPOT and context P + O/2, and prefill as one prompt over the mean TTFT, a lower bound. Every
// assumption is said in the output, which is marked estimated.
#ifndef MOECAP_COMMON_RECORDS_SERVING_RESULT_H_
#define MOECAP_COMMON_RECORDS_SERVING_RESULT_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/analysis.h"
#include "common/model.h"
#include "nlohmann/json.hpp"

namespace moecap::records {

enum class ServingFormat {
  kVllmJson,       // vllm bench serve --save-result (FORMATS.md §8)
  kVllmConsole,    // the "Serving Benchmark Result" block vllm bench serve prints
  kSglangJson,     // python -m sglang.bench_serving --output-file, one JSON line per run (§9)
  kSglangConsole,  // the block sglang.bench_serving prints
  kAiperf,         // AIPerf's profile_export_aiperf.json
};

// "vllm-json", "vllm-console", "sglang-json", "sglang-console", "aiperf".
absl::string_view ServingFormatName(ServingFormat format);

// What a summary says about one run, in one set of units whatever the format.
struct ServingResult {
  ServingFormat format = ServingFormat::kVllmJson;
  int64_t completed = 0;
  int64_t total_input_tokens = 0;
  int64_t total_output_tokens = 0;
  double duration_s = 0;
  double request_throughput = 0;  // completed requests per second of the run
  double mean_ttft_ms = 0;
  double mean_tpot_ms = 0;
  std::optional<double> mean_e2e_ms;  // absent when the file has none (or NaN)
  // Latency percentiles present in the file, by name: "p50" (a median), "p90", "p99", ...
  std::map<std::string, double> ttft_percentiles_ms;
  std::map<std::string, double> tpot_percentiles_ms;
  std::map<std::string, double> e2e_percentiles_ms;
  std::optional<int64_t> max_concurrency;  // the client's concurrency limit, when one was set
  // Requests per second the client sent at; +infinity: all at once. Absent: not recorded, or
  // SGLang's "trace" (timestamps replayed from a trace).
  std::optional<double> request_rate;
  std::optional<double> max_concurrent_requests;  // the peak the client saw in flight
  std::string model_id;  // vLLM model_id, SGLang server_info.model_path, AIPerf model_names[0]
  std::string backend;
  std::string date;
  // "request_rate: Infinity": the fields the file wrote as JSON's non-standard tokens.
  std::vector<std::string> non_finite_fields;
  // What the reader did that the user should know (the last of several runs was read, ...).
  std::vector<std::string> notes;
};

// Parses a summary's text; the format is told by content, not by the file name. Several runs in
// one file (vLLM --append-result, SGLang's appended lines, several console blocks of one log):
// the last is read and a note says so. Errors name `origin`, the line for text formats, the field
// or row, and what to pass instead ("result.json: field 'completed': expected an integer");
// an unknown format lists the formats read. Unknown fields are ignored.
absl::StatusOr<ServingResult> ParseServingResult(absl::string_view text, absl::string_view origin);

// How the decode batch was obtained.
struct DecodeBatch {
  int64_t value = 1;       // the batch every decode step is taken to serve
  std::string basis;       // "max_concurrency" (a saturated fixed limit) or "littles_law"
  double littles_law = 0;  // request_throughput · (mean E2E − mean TTFT): B̄_dec
  double concurrency = 0;  // request_throughput · mean E2E: requests in flight by Little's law
  double mean_e2e_ms = 0;
  bool e2e_derived = false;  // mean E2E = mean TTFT + (Ō − 1)·mean TPOT, the file had none
  std::string why;           // in words
};

struct ServingEstimate {
  AnalysisInput prefill;  // batch 1: one prompt of P̄ tokens over the mean TTFT
  AnalysisInput decode;   // batch DecodeBatch::value, the mean TPOT at context P̄ + Ō/2
  DecodeBatch batch;
  std::vector<std::string> assumptions;          // of both phases, in words
  std::vector<std::string> prefill_assumptions;  // of the prefill figures only
  std::vector<std::string> decode_assumptions;   // of the decode figures only
};

// Fills the batch shapes and times of `base` (which carries model, hardware, devices, dtype,
// peaks and price) from `result`. InvalidArgument naming the field when the result cannot
// describe a batch.
absl::StatusOr<ServingEstimate> EstimateServing(const ServingResult& result, AnalysisInput base);

// One latency percentile's figures.
struct LatencyPoint {
  double time_s = 0;
  double s_mbu = 0;
  double s_mfu = 0;
};

struct ServingAnalysis {
  // The prefill phase from the batch-1 analysis, the decode phase and cost from the decode
  // batch's; each phase's validity is marked estimated with its assumptions.
  AnalysisResult analysis;
  std::map<std::string, LatencyPoint> prefill_at_percentiles;  // at the TTFT percentiles
  std::map<std::string, LatencyPoint> decode_at_percentiles;   // at the TPOT percentiles
};

// Runs Analyze on both inputs of `estimate` and adds the percentile figures; a figure over 100 %
// (at the mean or at a percentile) marks its phase invalid (common/validity.h).
absl::StatusOr<ServingAnalysis> AnalyzeServing(const ServingResult& result,
                                               const ServingEstimate& estimate);

// AnalysisJson plus "mode": "serving-result", "format", "assumptions", "notes", the echoed
// "source" fields, "decode"."batch" (how it was obtained), "prefill"."bound": "lower", the
// utilisations at each latency percentile, and "run_cost" (the price of the run's measured
// duration per token) when the hardware has a price.
nlohmann::json ServingAnalysisJson(const ServingResult& result, const ServingEstimate& estimate,
                                   const ServingAnalysis& analysis);

// Whether a summary's model id names `model`: compared lower case without an organisation or
// directory prefix ("mistralai/Mixtral-8x7B-v0.1" -> "mixtral-8x7b-v0.1") against the catalog
// name, display name and aliases.
bool ModelIdMatches(absl::string_view model_id, const ModelSpec& model);

}  // namespace moecap::records

#endif  // MOECAP_COMMON_RECORDS_SERVING_RESULT_H_
