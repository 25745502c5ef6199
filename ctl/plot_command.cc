// `moecapctl plot`: load, build the script, render.
#include "ctl/plot_command.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "ctl/accuracy_commands.h"
#include "ctl/gnuplot.h"
#include "ctl/plot_cap.h"
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
                  "the roofline limit), pareto (price against speed per request), cap (price "
                  "against a task's accuracy, speed as colour) or radar (accuracy over the tasks "
                  "of each model and precision)")
      ->required();
  cmd->add_option("--out", o.out, "the SVG file to write")->required();
  cmd->add_option("--title", o.title, "title (default: model on devices x hardware)");
  cmd->add_option("--gnuplot", o.gnuplot, "the gnuplot program to run")->capture_default_str();
  cmd->add_option("--accuracy-task", o.accuracy_tasks,
                  "cap: the task whose score is the y axis (gsm8k, mmlu_pro, ...); radar: the "
                  "tasks to draw (repeatable; default all); scores from the catalog directories' "
                  "accuracy/ (`moecapctl accuracy list`)");
  cmd->add_option("--accuracy-metric", o.accuracy_metric,
                  "cap and radar: the metric of the task's scores, as exact_match or "
                  "exact_match,flexible-extract (default: each task's first)");
  cmd->add_option("--precision", o.precision,
                  "cap and radar: the precision of points whose input names none (per-pass rows)");
  return cmd;
}

absl::Status RunPlotCommand(const PlotOptions& o, const GlobalOptions& global,
                            const CommandIo& io) {
  absl::StatusOr<PlotKind> kind = ParsePlotKind(o.kind);
  if (!kind.ok()) return UsageError(kind.status().message());
  const bool accuracy_kind = *kind == PlotKind::kCap || *kind == PlotKind::kRadar;
  if (!accuracy_kind &&
      (!o.accuracy_tasks.empty() || !o.accuracy_metric.empty() || !o.precision.empty())) {
    return UsageError(
        "--accuracy-task, --accuracy-metric, --precision: only with --kind cap or radar");
  }
  if (*kind == PlotKind::kCap && o.accuracy_tasks.size() != 1) {
    return UsageError(
        "--accuracy-task: --kind cap takes one (gsm8k, mmlu_pro, ...; `moecapctl accuracy list` "
        "shows the tasks)");
  }
  if (!o.precision.empty()) {
    if (absl::StatusOr<Dtype> d = ParseDtype(o.precision); !d.ok()) {
      return AsUsageError("--precision", d.status());
    }
  }
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
  // The accuracy kinds' scores, and the catalog that resolves the points' model aliases.
  std::vector<AccuracyEntry> entries;
  std::optional<Catalog> catalog;
  AccuracyPlotOptions accuracy;
  if (accuracy_kind) {
    MOECAP_ASSIGN_OR_RETURN(entries, LoadAccuracyEntries(global));
    MOECAP_ASSIGN_OR_RETURN(catalog, LoadCatalog(global));
    accuracy.entries = &entries;
    accuracy.catalog = &*catalog;
    accuracy.tasks = o.accuracy_tasks;
    accuracy.metric = o.accuracy_metric;
    accuracy.precision = o.precision;
  }
  absl::StatusOr<GnuplotJob> job = BuildPlot(*kind, *data, title, &accuracy);
  if (!job.ok()) return job.status();
  for (const std::string& note : job->notes) io.err << "moecapctl plot: note: " << note << "\n";
  GnuplotOptions gnuplot;
  gnuplot.program = o.gnuplot;
  MOECAP_RETURN_IF_ERROR(RenderSvg(*job, o.out, gnuplot));
  io.out << "wrote " << o.out << ": " << o.kind << " plot of " << job->data_points
         << " points from " << data->kind << "\n";
  return absl::OkStatus();
}

}  // namespace moecap::ctl
