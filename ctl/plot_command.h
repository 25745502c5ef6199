// `moecapctl plot INPUT --kind timeline|batch|pareto|cap|radar --out FILE.svg`: pictures of
// moecap's own JSON outputs (ctl/plot_data.h), drawn by gnuplot's SVG terminal (ctl/plot_script.h,
// gnuplot.h); cap and radar add the catalog directories' accuracy scores (ctl/plot_cap.h).
#ifndef MOECAP_CTL_PLOT_COMMAND_H_
#define MOECAP_CTL_PLOT_COMMAND_H_

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "ctl/command.h"

namespace moecap::ctl {

struct PlotOptions {
  std::string input;
  std::string kind;
  std::string out;
  std::string title;                        // overrides the title built from the input
  std::string gnuplot = "gnuplot";          // the program to run
  std::vector<std::string> accuracy_tasks;  // --accuracy-task (cap: one; radar: the spokes)
  std::string accuracy_metric;              // --accuracy-metric
  std::string precision;                    // --precision: for inputs that name none
};

CLI::App* RegisterPlotCommand(CLI::App& app, PlotOptions& options);
absl::Status RunPlotCommand(const PlotOptions& options, const GlobalOptions& global,
                            const CommandIo& io);

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_PLOT_COMMAND_H_
