// Fuzzes the serving-summary reader (vLLM JSON and console, SGLang JSON lines and console, AIPerf)
// and the estimate built on it: no crash, no sanitizer finding, no exception escaping; a parsed
// result either estimates or fails with a message, and every figure it prints is a number.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/analysis.h"
#include "common/records/serving_result.h"
#include "tests/fuzz/fuzz_models.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moecap;  // NOLINT: a fuzz target, not a library
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<records::ServingResult> result = records::ParseServingResult(text, "fuzz");
  if (!result.ok()) {
    if (result.status().message().empty()) std::abort();
    return 0;
  }
  // What the reader accepted is a run: at least one request over a positive, finite time.
  if (result->completed < 1 || !(result->duration_s > 0) || !std::isfinite(result->duration_s) ||
      !(result->request_throughput > 0) || !(result->mean_ttft_ms > 0) ||
      !std::isfinite(result->mean_ttft_ms) || !(result->mean_tpot_ms >= 0)) {
    std::abort();
  }
  (void)records::ModelIdMatches(result->model_id, fuzz::ToyModel());
  AnalysisInput base;
  base.model = fuzz::ToyModel();
  base.hardware = fuzz::ToyDevice();
  absl::StatusOr<records::ServingEstimate> estimate = records::EstimateServing(*result, base);
  if (!estimate.ok()) {
    if (estimate.status().message().empty()) std::abort();
    return 0;
  }
  if (estimate->decode.batch < 1 || estimate->prefill.batch != 1) std::abort();
  absl::StatusOr<records::ServingAnalysis> analysis = records::AnalyzeServing(*result, *estimate);
  if (!analysis.ok()) return 0;
  if (!analysis->analysis.prefill.validity.estimated) std::abort();
  (void)records::ServingAnalysisJson(*result, *estimate, *analysis).dump();
  return 0;
}
