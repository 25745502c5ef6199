// Fuzzes the vLLM-result reader and the estimate built on it: no crash, no sanitizer finding,
// no exception escaping, and a parsed result either estimates or fails with a message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/analysis.h"
#include "common/records/vllm_result.h"
#include "tests/fuzz/fuzz_models.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moecap;  // NOLINT: a fuzz target, not a library
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<records::VllmResult> result = records::ParseVllmResult(text, "fuzz.json");
  if (!result.ok()) {
    if (result.status().message().empty()) std::abort();
    return 0;
  }
  AnalysisInput base;
  base.model = fuzz::ToyModel();
  base.hardware = fuzz::ToyDevice();
  absl::StatusOr<records::VllmEstimate> estimate = records::EstimateFromVllm(*result, base);
  if (!estimate.ok()) return 0;
  absl::StatusOr<AnalysisResult> analysis = Analyze(estimate->input);
  if (!analysis.ok()) return 0;
  (void)records::VllmAnalysisJson(*result, *estimate, *analysis).dump();
  return 0;
}
