// Fuzzes the per-pass record parser and the streamed analysis. Besides crashes and sanitizer
// findings it checks: the JSON scanner accepts every line nlohmann::json accepts (nesting within
// its limit); an accepted record satisfies the parser's promises; counted passes give finite,
// non-negative bytes and FLOPs; the analysis of the whole input succeeds or fails with a message;
// MoE-CAP's figures (--convention moecap) of an input the analysis took are never NaN.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/records/json_scanner.h"
#include "common/records/moecap_convention.h"
#include "common/records/pass_counts.h"
#include "common/records/pass_record.h"
#include "common/records/records_analysis.h"
#include "nlohmann/json.hpp"
#include "tests/fuzz/fuzz_models.h"

namespace {

using namespace moecap;           // NOLINT: a fuzz target, not a library
using namespace moecap::records;  // NOLINT

void Check(bool condition) {
  if (!condition) std::abort();
}

int Depth(const nlohmann::json& j) {
  int deepest = 0;
  if (j.is_structured()) {
    for (const auto& element : j) deepest = std::max(deepest, Depth(element));
    return deepest + 1;
  }
  return 0;
}

// What nlohmann accepts, the scanner accepts (within its depth limit). nlohmann reads a NUL
// byte as the end of its input and skips a leading UTF-8 byte order mark, where the scanner
// rightly sees stray bytes: such lines are left out of the comparison.
void CheckScannerAcceptsWhatNlohmannAccepts(absl::string_view line) {
  if (line.find('\0') != absl::string_view::npos || absl::StartsWith(line, "\xEF\xBB\xBF")) {
    return;
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line.begin(), line.end());
  } catch (const nlohmann::json::exception&) {
    return;
  }
  if (Depth(j) > JsonScanner::kMaxDepth) return;
  JsonScanner scanner(line);
  Check(scanner.SkipValue() && scanner.AtEnd());
}

void CheckLine(absl::string_view line, const ModelSpec& model) {
  CheckScannerAcceptsWhatNlohmannAccepts(line);
  PassRecord record;
  RecordError error;
  if (!ParsePassRecord(line, &record, &error)) {
    Check(!error.message.empty() && !error.reason.empty());
    Check(absl::StartsWith(error.message, "invalid JSON") ||
          absl::StartsWith(error.message, "field '") ||
          absl::StartsWith(error.message, "not a JSON object"));
    return;
  }
  Check(record.batch_size >= 1);
  Check(record.latency_s > 0);
  if (record.forward_mode == ForwardMode::kDecode) {
    Check(record.seq_lens_sum.has_value() && *record.seq_lens_sum >= record.batch_size);
  }
  for (const RequestInfo& r : record.requests) {
    Check(r.extend_len >= 0);
    Check(!r.total_len.has_value() || *r.total_len >= r.extend_len);
  }
  CountedPass pass;
  if (CountPassRecord(model, Precision{}, record, &pass, &error) == PassOutcome::kCounted) {
    const double bytes = pass.counts.bytes(), flops = pass.counts.flops();
    Check(!std::isnan(bytes) && !std::isnan(flops));
    Check(bytes >= 0 && flops >= 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ModelSpec* const model = new ModelSpec(fuzz::ToyModel());
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (absl::string_view line : absl::StrSplit(text, '\n')) CheckLine(line, *model);

  for (bool skip_bad : {false, true}) {
    RecordsOptions options;
    options.origin = "fuzz";
    options.model = *model;
    options.hardware = fuzz::ToyDevice();
    options.devices = 1;
    options.skip_bad = skip_bad;
    std::istringstream in(text);
    int64_t passes = 0;
    absl::StatusOr<RecordsSummary> summary =
        AnalyzeRecords(in, options, [&](const PassResult&, const RecordsSummary&) { ++passes; });
    if (!summary.ok()) {
      Check(!summary.status().message().empty());
      continue;
    }
    const int64_t mixed = summary->mixed ? summary->mixed->passes : 0;
    const int64_t counted = (summary->prefill ? summary->prefill->passes : 0) +
                            (summary->decode ? summary->decode->passes : 0) + mixed;
    Check(counted == passes && counted > 0);
    // A mixed pass is two records merged (a split step); every other record counts or is skipped.
    Check(counted + mixed + summary->skipped == summary->records);
    Check(mixed <= summary->merged_steps);
    (void)RecordsJson(*summary).dump();

    // MoE-CAP's figures from the same input: never NaN or negative (an activation beyond the
    // model's, which moecap refuses and --skip-bad skips, makes MoE-CAP's infinite, as its own).
    MoecapOptions moecap_options;
    moecap_options.model = *model;
    moecap_options.hardware = options.hardware;
    moecap_options.skip_bad = skip_bad;
    std::istringstream again(text);
    absl::StatusOr<MoecapFigures> theirs = MoecapFromRecords(again, moecap_options, summary->run);
    Check(theirs.ok());  // what AnalyzeRecords read, it reads
    for (const std::optional<MoecapPhase>* p : {&theirs->prefill, &theirs->decode}) {
      if (!p->has_value()) continue;
      Check(!std::isnan((*p)->s_mbu) && (*p)->s_mbu >= 0);
      Check(!std::isnan((*p)->s_mfu) && (*p)->s_mfu >= 0);
    }
    (void)MoecapComparisonJson(*theirs, *summary).dump();
  }
  return 0;
}
