// `moecapctl analyze --records`: streams a MoE-CAP per-pass records file, counts every pass
// (pass_counts.h), and sums each phase (phase_stats.h). Hardware and device count come from the
// records' gpu_raw_type / gpu_num unless the caller fixes them. JSON rendering lives here too, so
// that every tool prints these figures with the same keys.
#ifndef MOECAP_COMMON_RECORDS_RECORDS_ANALYSIS_H_
#define MOECAP_COMMON_RECORDS_RECORDS_ANALYSIS_H_

#include <cstdint>
#include <functional>
#include <istream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/catalog.h"
#include "common/cost.h"
#include "common/dtype.h"
#include "common/hardware.h"
#include "common/hbm_traffic.h"
#include "common/model.h"
#include "common/precision.h"
#include "common/records/pass_counts.h"
#include "common/records/phase_stats.h"
#include "nlohmann/json.hpp"

namespace moecap::records {

struct RecordsOptions {
  std::string origin = "records";  // the file's name, first in every message ("passes.jsonl:7: ")
  ModelSpec model;
  Dtype dtype = Dtype::kBf16;  // the run's dtype (precision.h)
  PrecisionOverrides precision;
  // Fixed hardware (--hardware). Without it each record's gpu_raw_type is looked up in `catalog`.
  std::optional<HardwareSpec> hardware;
  const Catalog* catalog = nullptr;
  std::optional<int64_t> devices;  // fixed device count (--gpus); otherwise gpu_num
  std::optional<double> peak_bandwidth_bytes_s;
  std::optional<double> peak_flops;
  PriceOptions price;
  // Count lines that fail to parse or check in `skipped` instead of failing.
  bool skip_bad = false;
  // Decode contexts to rebuild from, unrecorded activations (pass_counts.h).
  CountOptions counting;
  // --tp/--dp-attention: each phase's physical HBM traffic beside its bytes (hbm_traffic.h).
  std::optional<ParallelLayout> layout;
};

// What the file resolved to: the device, how many, and their peaks.
struct RunContext {
  HardwareSpec hardware;
  std::string hardware_source;  // "--hardware" or "gpu_raw_type 'NVIDIA-H100-80GB-HBM3'"
  int64_t devices = 1;
  std::string devices_source;  // "--gpus" or "gpu_num"
  double peak_bandwidth_bytes_s = 0;
  double peak_flops = 0;
  std::optional<HourlyPrice> price;  // absent when the hardware has none and none was given
};

// One counted pass, as --per-pass prints it.
struct PassResult {
  int64_t line = 0;  // the first line of the pass (a merged split step spans two)
  std::optional<int64_t> forward_pass_id;
  CountedPass pass;
  double start_s = 0;  // Σ latency of the well-formed records before it
  double latency_s = 0;
  double s_mbu = 0;
  double s_mfu = 0;
  // The utilisations at the roofline time max(bytes/(G·BW), flops/(G·FLOPS)): the limit.
  double roofline_s_mbu = 0;
  double roofline_s_mfu = 0;
  double tokens_per_s = 0;
  std::optional<double> usd_per_million_tokens;  // price of the pass's device time per token
  Validity validity;                             // the pass's estimate and whether it is possible
};

struct SkippedLine {
  int64_t line = 0;
  std::string message;
};

struct RecordsSummary {
  std::string origin;
  ModelSpec model;
  Dtype dtype = Dtype::kBf16;
  PartDtypes dtypes;  // resolved per part; dtypes.compute picked the peak
  RunContext run;
  std::optional<ParallelLayout> layout;  // as given (--tp, --dp-attention)
  int64_t records = 0;                   // non-blank lines
  std::optional<PhaseSummary> prefill;
  std::optional<PhaseSummary> decode;
  std::optional<PhaseSummary> mixed;  // split steps merged back (chunked prefill + decode)
  int64_t merged_steps = 0;           // split prefill + decode records merged into one pass
  int64_t rebuilt_contexts = 0;       // decode parts whose context was rebuilt (estimated)
  Validity validity;                  // the phases' together
  // Lines the reader says about the file, not the figures ("6 split steps merged ...").
  std::vector<std::string> notes;
  int64_t skipped = 0;
  std::map<std::string, int64_t> skipped_reasons;
  std::vector<SkippedLine> first_skipped;  // the first kMaxListedSkips, for warnings
  static constexpr size_t kMaxListedSkips = 5;
};

using PassCallback = std::function<void(const PassResult&, const RecordsSummary&)>;

// Streams `in`. Errors: InvalidArgument for a bad line ("passes.jsonl:7: field 'batch_size':
// expected an integer") unless skip_bad, for an empty file, and when no pass is usable;
// FailedPrecondition when the records lack what a flag must give (gpu_raw_type, gpu_num, a peak);
// NotFound for a gpu_raw_type the catalog does not know. `on_pass`, when set, sees every counted
// pass in file order with the summary so far (its `run` is resolved by then).
absl::StatusOr<RecordsSummary> AnalyzeRecords(std::istream& in, const RecordsOptions& options,
                                              const PassCallback& on_pass = {});

// {"mode": "records", ..., "prefill": {...} | null, "decode": {...} | null, "skipped": {...}}.
nlohmann::json RecordsJson(const RecordsSummary& summary);
// One flat object per pass (the --per-pass JSON lines and what `moecapctl plot` reads).
nlohmann::json PassJson(const PassResult& pass, const RecordsSummary& summary);
// The keys of PassJson in order, for the CSV header.
const std::vector<std::string>& PassJsonKeys();

}  // namespace moecap::records

#endif  // MOECAP_COMMON_RECORDS_RECORDS_ANALYSIS_H_
