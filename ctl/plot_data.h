// What `moecapctl plot` draws, loaded from moecap's own JSON outputs: a job's results (`results JOB
// -o json`, `run --local -o json`), the per-pass rows of
// `analyze --records --per-pass -o json`, `analyze` outputs (one, a JSON array, or JSON lines of
// several: a hand-made sweep), and sweep points ({"model", "hardware", "gpus", "points": [...]},
// the shape docs/analyze.md documents for `results` of a sweep).
#ifndef MOECAP_CTL_PLOT_DATA_H_
#define MOECAP_CTL_PLOT_DATA_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace moecap::ctl {

struct PlotPoint {
  std::string phase;  // "prefill", "decode", or "" for a sweep point of no phase
  // Whose figure it is, for the accuracy kinds (a score is of a model at a precision): the model
  // as the output names it, the experts' precision where the output gives one (analyze's
  // inputs.precisions.experts, records' precisions.experts; else the run's dtype), and the run's
  // dtype ("bf16"). "" where the output says nothing.
  std::string model;
  std::string precision;
  std::string dtype;
  std::optional<double> start_s;  // per-pass rows only
  std::optional<double> batch;
  std::optional<double> s_mbu;
  std::optional<double> s_mfu;
  std::optional<double> roofline_s_mbu;  // the utilisation at the roofline time: the limit
  std::optional<double> roofline_s_mfu;
  std::optional<double> tokens_per_s_per_request;  // the speed one user sees
  std::optional<double> usd_per_million_output_tokens;
  // The figure's validity as the output said it (METRICS.md v2): a point over the roofline or
  // built on an estimate is drawn marked, never as a plain point.
  bool valid = true;
  bool estimated = false;
};

struct PlotData {
  std::string kind;  // "job results", "per-pass rows", "sweep points", "analyze outputs"
  // Distinct values in order of appearance, for the title.
  std::vector<std::string> models;
  std::vector<std::string> hardware;
  std::vector<int64_t> gpus;
  std::vector<PlotPoint> points;
};

// Parses `text` (the file's contents); `origin` names it in errors.
absl::StatusOr<PlotData> ParsePlotData(absl::string_view text, absl::string_view origin);

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_PLOT_DATA_H_
