// The accuracy kinds of `moecapctl plot`, the C and A of MoE-CAP beside its P:
//   - `cap`: each decode point's price per million output tokens (x) against the accuracy on one
//     task of its model at its precision (y), its tokens/s per request as the colour (palette and
//     colour bar), and the Pareto set (no other point is both cheaper and more accurate) joined;
//   - `radar`: one polygon per model and precision of the input over the scores it has (one spoke
//     per top-level task, metric and filter), as MoE-CAP's CAP radar charts draw them.
// The scores come from the catalog directories' accuracy/ entries (common/accuracy.h).
#ifndef MOECAP_CTL_PLOT_CAP_H_
#define MOECAP_CTL_PLOT_CAP_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/accuracy.h"
#include "common/catalog.h"
#include "ctl/plot_data.h"
#include "ctl/plot_script.h"

namespace moecap::ctl {

struct AccuracyPlotOptions {
  const std::vector<AccuracyEntry>* entries = nullptr;  // every entry of the catalog directories
  const Catalog* catalog = nullptr;  // resolves the points' model names (aliases); may be null
  std::vector<std::string> tasks;    // --accuracy-task: cap takes one; radar: the spokes (all)
  std::string metric;     // --accuracy-metric: "exact_match" or "exact_match,strict-match"
  std::string precision;  // --precision: for points whose input names none (per-pass rows)
};

// Errors name what is missing and how to get it (`moecapctl accuracy import`, --accuracy-task).
absl::StatusOr<GnuplotJob> CapPlot(const PlotData& data, absl::string_view title,
                                   const AccuracyPlotOptions& accuracy);
absl::StatusOr<GnuplotJob> RadarPlot(const PlotData& data, absl::string_view title,
                                     const AccuracyPlotOptions& accuracy);

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_PLOT_CAP_H_
