// `moecapctl plot`: load, build the script, render.
#include "ctl/plot_command.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "ctl/gnuplot.h"
#include "ctl/plot_data.h"
#include "ctl/plot_script.h"

namespace moecap::ctl {

CLI::App* RegisterPlotCommand(CLI::App& app, PlotOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "plot", "draw an SVG from moecap's JSON output (analyze, analyze --per-pass, sweep points)");
  cmd->add_option("INPUT", o.input,
                  "JSON from `analyze -o json`, JSON lines from `analyze --records --per-pass -o "
                  "json`, or sweep points")
      ->required();
  cmd->add_option("--kind", o.kind,
                  "timeline (per-pass S-MBU/S-MFU over time), batch (against batch size, with "
                  "the roofline limit) or pareto (price against speed per request)")
      ->required();
  cmd->add_option("--out", o.out, "the SVG file to write")->required();
  cmd->add_option("--title", o.title, "title (default: model on devices x hardware)");
  cmd->add_option("--gnuplot", o.gnuplot, "the gnuplot program to run")->capture_default_str();
  return cmd;
}

absl::Status RunPlotCommand(const PlotOptions& o, const GlobalOptions& global,
                            const CommandIo& io) {
  absl::StatusOr<PlotKind> kind = ParsePlotKind(o.kind);
  if (!kind.ok()) return UsageError(kind.status().message());
  std::ifstream file(o.input, std::ios::binary);
  if (!file.is_open()) {
    return absl::NotFoundError(absl::StrCat(o.input, ": cannot open: ", std::strerror(errno)));
  }
  std::stringstream text;
  text << file.rdbuf();
  absl::StatusOr<PlotData> data = ParsePlotData(text.str(), o.input);
  if (!data.ok()) return data.status();

  std::string title = o.title;
  if (title.empty()) {
    // Display names read better than catalog ids; unknown names are shown as they are.
    std::vector<std::string> models = data->models, hardware = data->hardware;
    if (absl::StatusOr<Catalog> catalog = LoadCatalog(global); catalog.ok()) {
      for (std::string& m : models) {
        if (auto spec = catalog->FindModel(m); spec.ok() && !(*spec)->display_name.empty()) {
          m = (*spec)->display_name;
        }
      }
      for (std::string& h : hardware) {
        if (auto spec = catalog->FindHardware(h); spec.ok() && !(*spec)->display_name.empty()) {
          h = (*spec)->display_name;
        }
      }
    }
    title = PlotTitle(models, hardware, data->gpus);
  }
  absl::StatusOr<GnuplotJob> job = BuildPlot(*kind, *data, title);
  if (!job.ok()) return job.status();
  GnuplotOptions gnuplot;
  gnuplot.program = o.gnuplot;
  MOECAP_RETURN_IF_ERROR(RenderSvg(*job, o.out, gnuplot));
  io.out << "wrote " << o.out << ": " << o.kind << " plot of " << job->data_points
         << " points from " << data->kind << "\n";
  return absl::OkStatus();
}

}  // namespace moecap::ctl
