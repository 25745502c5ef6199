// The gnuplot scripts behind `moecapctl plot`: `timeline` (per-pass S-MBU and S-MFU over time,
// prefill and decode marked), `batch` (S-MBU and S-MFU against batch size with the roofline limit),
// `pareto` (price per million output tokens against tokens/s per request, the front joined), and
// the accuracy kinds of ctl/plot_cap.h: `cap` (price against a task's accuracy) and `radar` (each
// model and precision's scores over its tasks). gnuplot's SVG terminal renders them
// (ctl/gnuplot.h); nothing here writes SVG.
#ifndef MOECAP_CTL_PLOT_SCRIPT_H_
#define MOECAP_CTL_PLOT_SCRIPT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ctl/plot_data.h"

namespace moecap::ctl {

enum class PlotKind { kTimeline, kBatch, kPareto, kCap, kRadar };
absl::StatusOr<PlotKind> ParsePlotKind(absl::string_view name);

// A script and its data files, all named relative to the directory gnuplot runs in; the script
// writes kPlotOutputName there.
struct GnuplotJob {
  static constexpr const char* kPlotOutputName = "plot.svg";
  std::string script;
  std::vector<std::pair<std::string, std::string>> data_files;  // name, contents (TSV)
  // Marks the SVG will hold: data points, plus one legend sample per titled point series.
  size_t data_points = 0;
  size_t legend_samples = 0;
  // What the picture leaves out and why ("2 decode points of m at fp32: no gsm8k score"), for
  // the command to print on stderr.
  std::vector<std::string> notes;
};

struct AccuracyPlotOptions;  // ctl/plot_cap.h

// Errors name the kind and the fields its input lacks, and how to produce them. `accuracy` gives
// the cap and radar kinds their scores (without it they have none); the others ignore it.
absl::StatusOr<GnuplotJob> BuildPlot(PlotKind kind, const PlotData& data, absl::string_view title,
                                     const AccuracyPlotOptions* accuracy = nullptr);

// "Mixtral-8x7B on 2 x NVIDIA H100 SXM5 80GB"; `models` and `hardware` as they should appear.
std::string PlotTitle(const std::vector<std::string>& models,
                      const std::vector<std::string>& hardware, const std::vector<int64_t>& gpus);

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_PLOT_SCRIPT_H_
