// Building gnuplot scripts for the plot kinds: timeline, batch and pareto here, cap and radar in
// ctl/plot_cap.cc.
#include "ctl/plot_script.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "ctl/plot_cap.h"
#include "ctl/plot_style.h"

namespace moecap::ctl {
namespace {

std::string Colour(absl::string_view phase) {
  if (phase == "prefill") return kPrefillColour;
  if (phase == "decode") return kDecodeColour;
  return kOtherColour;
}

int PointType(absl::string_view phase) { return phase == "prefill" ? 9 : 7; }

std::string PhaseLabel(absl::string_view phase) {
  return phase.empty() ? std::string("sweep points") : std::string(phase);
}

// Groups points by phase in a stable order: prefill, decode, then the rest.
std::vector<std::string> Phases(const std::vector<const PlotPoint*>& points) {
  std::vector<std::string> phases;
  for (const char* known : {"prefill", "decode"}) {
    if (std::any_of(points.begin(), points.end(),
                    [&](const PlotPoint* p) { return p->phase == known; })) {
      phases.push_back(known);
    }
  }
  for (const PlotPoint* p : points) {
    if (std::find(phases.begin(), phases.end(), p->phase) == phases.end()) {
      phases.push_back(p->phase);
    }
  }
  return phases;
}

std::string FileName(absl::string_view stem, absl::string_view phase) {
  return absl::StrCat(stem, "_", phase.empty() ? "points" : phase, ".tsv");
}

absl::StatusOr<GnuplotJob> Timeline(const PlotData& data, absl::string_view title) {
  std::vector<const PlotPoint*> points;
  for (const PlotPoint& p : data.points) {
    if (p.start_s && p.s_mbu && p.s_mfu) points.push_back(&p);
  }
  if (points.empty()) {
    return absl::InvalidArgumentError(
        "--kind timeline: the input has no per-pass rows (start_s, s_mbu, s_mfu); make them with "
        "`moecapctl analyze --records FILE --per-pass -o json`");
  }
  GnuplotJob job;
  const std::vector<std::string> phases = Phases(points);
  for (const std::string& phase : phases) {
    std::string tsv;
    for (const PlotPoint* p : points) {
      if (p->phase != phase) continue;
      absl::StrAppend(&tsv, Num(*p->start_s), "\t", Num(*p->s_mbu * 100), "\t",
                      Num(*p->s_mfu * 100), "\n");
    }
    job.data_files.emplace_back(FileName("timeline", phase), tsv);
  }
  const auto timeline_row = [](const PlotPoint& p) {
    return absl::StrCat(Num(*p.start_s), "\t", Num(*p.s_mbu * 100), "\t", Num(*p.s_mfu * 100),
                        "\n");
  };
  const std::vector<std::string> flagged_all =
      FlaggedSeries(points, "timeline", timeline_row, "1:2", job);
  std::vector<std::string> flagged[2] = {flagged_all, {}};
  for (const std::string& f : flagged_all) {
    flagged[1].push_back(absl::StrReplaceAll(f, {{" using 1:2 ", " using 1:3 "}}));
  }
  std::string s = Header(title, 760, kPanelKey);
  absl::StrAppend(&s, "set multiplot layout 2,1 title ",
                  Quoted(absl::StrCat(title, ": S-MBU and S-MFU of each pass")), "\n",
                  "set xlabel 'time since the first pass (s)'\nset yrange [0:*]\n");
  for (const auto& [column, label] : {std::pair{2, "S-MBU (% of peak memory bandwidth)"},
                                      std::pair{3, "S-MFU (% of peak FLOP/s)"}}) {
    std::vector<std::string> series;
    for (const std::string& phase : phases) {
      series.push_back(absl::StrCat(Quoted(FileName("timeline", phase)), " using 1:", column,
                                    " with points pt ", PointType(phase), " ps 0.7 lc rgb '",
                                    Colour(phase), "' title ", Quoted(PhaseLabel(phase))));
    }
    for (const std::string& f : flagged[column - 2]) series.push_back(f);
    absl::StrAppend(&s, "set ylabel ", Quoted(label), "\nplot ", absl::StrJoin(series, ", "), "\n");
  }
  absl::StrAppend(&s, "unset multiplot\n");
  job.script = s;
  job.data_points = 2 * points.size();
  job.legend_samples = 2 * (phases.size() + flagged_all.size());
  return job;
}

absl::StatusOr<GnuplotJob> Batch(const PlotData& data, absl::string_view title) {
  std::vector<const PlotPoint*> points;
  for (const PlotPoint& p : data.points) {
    if (p.batch && p.s_mbu && p.s_mfu) points.push_back(&p);
  }
  if (points.empty()) {
    return absl::InvalidArgumentError(
        "--kind batch: the input has no points with batch, s_mbu and s_mfu; use per-pass rows, "
        "`analyze -o json` outputs with measured times, or sweep points");
  }
  GnuplotJob job;
  const std::vector<std::string> phases = Phases(points);
  double min_batch = *points.front()->batch, max_batch = min_batch;
  std::vector<std::string> limit_phases;
  for (const std::string& phase : phases) {
    std::string tsv;
    // The roofline limit at each distinct batch: the mean over the points of that batch (passes
    // of one batch differ in context, hence a little in arithmetic intensity).
    std::map<double, std::pair<double, double>> limit_sum;
    std::map<double, int> limit_count;
    for (const PlotPoint* p : points) {
      if (p->phase != phase) continue;
      min_batch = std::min(min_batch, *p->batch);
      max_batch = std::max(max_batch, *p->batch);
      absl::StrAppend(&tsv, Num(*p->batch), "\t", Num(*p->s_mbu * 100), "\t", Num(*p->s_mfu * 100),
                      "\n");
      if (p->roofline_s_mbu && p->roofline_s_mfu) {
        limit_sum[*p->batch].first += *p->roofline_s_mbu;
        limit_sum[*p->batch].second += *p->roofline_s_mfu;
        ++limit_count[*p->batch];
      }
    }
    job.data_files.emplace_back(FileName("batch", phase), tsv);
    if (!limit_sum.empty()) {
      std::string limits;
      for (const auto& [batch, sums] : limit_sum) {
        const double n = limit_count[batch];
        absl::StrAppend(&limits, Num(batch), "\t", Num(sums.first / n * 100), "\t",
                        Num(sums.second / n * 100), "\n");
      }
      job.data_files.emplace_back(FileName("limit", phase), limits);
      limit_phases.push_back(phase);
    }
  }
  const auto batch_row = [](const PlotPoint& p) {
    return absl::StrCat(Num(*p.batch), "\t", Num(*p.s_mbu * 100), "\t", Num(*p.s_mfu * 100), "\n");
  };
  const std::vector<std::string> batch_flagged =
      FlaggedSeries(points, "batch", batch_row, "1:2", job);
  std::string s = Header(title, 760, kPanelKey);
  absl::StrAppend(&s, "set multiplot layout 2,1 title ",
                  Quoted(absl::StrCat(title, ": utilisation against batch size")), "\n",
                  "set xlabel 'batch size (sequences per pass)'\nset yrange [0:*]\n");
  if (min_batch > 0 && max_batch / min_batch >= 16) absl::StrAppend(&s, "set logscale x 2\n");
  absl::StrAppend(&s, "set offsets graph 0.03, graph 0.03, 0, 0\n");
  for (const auto& [column, label] : {std::pair{2, "S-MBU (% of peak memory bandwidth)"},
                                      std::pair{3, "S-MFU (% of peak FLOP/s)"}}) {
    std::vector<std::string> series;
    for (const std::string& phase : phases) {
      series.push_back(absl::StrCat(Quoted(FileName("batch", phase)), " using 1:", column,
                                    " with points pt ", PointType(phase), " ps 0.7 lc rgb '",
                                    Colour(phase), "' title ", Quoted(PhaseLabel(phase))));
    }
    for (const std::string& phase : limit_phases) {
      series.push_back(absl::StrCat(Quoted(FileName("limit", phase)), " using 1:", column,
                                    " with lines dt 2 lw 1.5 lc rgb '", Colour(phase), "' title ",
                                    Quoted(absl::StrCat("roofline limit, ", PhaseLabel(phase)))));
    }
    for (const std::string& f : batch_flagged) {
      series.push_back(column == 2 ? f : absl::StrReplaceAll(f, {{" using 1:2 ", " using 1:3 "}}));
    }
    absl::StrAppend(&s, "set ylabel ", Quoted(label), "\nplot ", absl::StrJoin(series, ", "), "\n");
  }
  absl::StrAppend(&s, "unset multiplot\n");
  job.script = s;
  job.data_points = 2 * points.size();
  job.legend_samples = 2 * (phases.size() + batch_flagged.size());
  return job;
}

absl::StatusOr<GnuplotJob> Pareto(const PlotData& data, absl::string_view title) {
  struct Point {
    double speed, usd, batch;
  };
  std::vector<Point> points;
  std::vector<const PlotPoint*> used;
  for (const PlotPoint& p : data.points) {
    // Speed per request is a decode figure: a prefill point's would be a different quantity.
    if (p.phase != "decode" && !p.phase.empty()) continue;
    if (p.tokens_per_s_per_request && p.usd_per_million_output_tokens &&
        *p.tokens_per_s_per_request > 0 && *p.usd_per_million_output_tokens > 0) {
      points.push_back(
          {*p.tokens_per_s_per_request, *p.usd_per_million_output_tokens, p.batch.value_or(0)});
      used.push_back(&p);
    }
  }
  if (points.empty()) {
    return absl::InvalidArgumentError(
        "--kind pareto: the input has no points with tokens/s per request and a price per "
        "million output tokens; use sweep points, `analyze -o json` outputs of hardware with a "
        "price, or per-pass rows with decode passes");
  }
  // The front: no other point is both faster per request and cheaper. Walk from the fastest,
  // keeping each point cheaper than every faster one.
  std::vector<Point> sorted = points;
  std::sort(sorted.begin(), sorted.end(), [](const Point& a, const Point& b) {
    return a.speed != b.speed ? a.speed > b.speed : a.usd < b.usd;
  });
  std::vector<Point> front;
  for (const Point& p : sorted) {
    if (front.empty() || p.usd < front.back().usd) front.push_back(p);
  }
  GnuplotJob job;
  std::string all, front_tsv;
  double min_usd = points.front().usd, max_usd = min_usd;
  for (const Point& p : points) {
    absl::StrAppend(&all, Num(p.speed), "\t", Num(p.usd), "\n");
    min_usd = std::min(min_usd, p.usd);
    max_usd = std::max(max_usd, p.usd);
  }
  std::vector<double> labelled;  // one label per batch size, at its fastest front point
  for (const Point& p : front) {
    std::string label;
    if (p.batch > 0 && std::find(labelled.begin(), labelled.end(), p.batch) == labelled.end()) {
      label = absl::StrCat("B=", Num(p.batch));
      labelled.push_back(p.batch);
    }
    absl::StrAppend(&front_tsv, Num(p.speed), "\t", Num(p.usd), "\t", label, "\n");
  }
  job.data_files.emplace_back("pareto_points.tsv", all);
  job.data_files.emplace_back("pareto_front.tsv", front_tsv);
  const std::vector<std::string> flagged = FlaggedSeries(
      used, "pareto",
      [](const PlotPoint& p) {
        return absl::StrCat(Num(*p.tokens_per_s_per_request), "\t",
                            Num(*p.usd_per_million_output_tokens), "\n");
      },
      "1:2", job);
  std::string s = Header(title, 560, "top left inside box opaque");
  absl::StrAppend(&s, "set title ",
                  Quoted(absl::StrCat(title, ": price against speed per request")), "\n",
                  "set xlabel 'output tokens per second per request (tokens/s)'\n",
                  "set ylabel 'price per million output tokens (USD)'\n",
                  "set offsets graph 0, graph 0.08, graph 0.05, graph 0\n",
                  // From 0, so that distances read as ratios; a log axis cannot start at 0.
                  "set xrange [0:*]\n");
  if (max_usd / min_usd >= 20) {
    absl::StrAppend(&s, "set logscale y 10\n");
  } else {
    absl::StrAppend(&s, "set yrange [0:*]\n");
  }
  absl::StrAppend(&s, "plot 'pareto_points.tsv' using 1:2 with points pt 7 ps 0.7 lc rgb '",
                  kOtherColour, "' title 'operating points', ",
                  "'pareto_front.tsv' using 1:2 with lines lw 2 lc rgb '", kDecodeColour,
                  "' title 'Pareto front (faster and cheaper is better)', ",
                  "'pareto_front.tsv' using 1:2:3 with labels offset char 0.8,0.8 left notitle",
                  flagged.empty() ? "" : ", ", absl::StrJoin(flagged, ", "), "\n");
  job.script = s;
  job.data_points = points.size();
  job.legend_samples = 1 + flagged.size();
  return job;
}

}  // namespace

absl::StatusOr<PlotKind> ParsePlotKind(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "timeline") return PlotKind::kTimeline;
  if (lower == "batch") return PlotKind::kBatch;
  if (lower == "pareto") return PlotKind::kPareto;
  if (lower == "cap") return PlotKind::kCap;
  if (lower == "radar") return PlotKind::kRadar;
  return absl::InvalidArgumentError(absl::StrCat(
      "--kind: unknown plot '", name, "': expected timeline, batch, pareto, cap or radar"));
}

std::string PlotTitle(const std::vector<std::string>& models,
                      const std::vector<std::string>& hardware, const std::vector<int64_t>& gpus) {
  const std::string model = models.empty() ? "unknown model" : absl::StrJoin(models, ", ");
  const std::string device = hardware.empty() ? "unknown hardware" : absl::StrJoin(hardware, ", ");
  std::string count = "? x ";
  if (gpus.size() == 1) count = absl::StrCat(gpus.front(), " x ");
  if (gpus.size() > 1) count = absl::StrCat(absl::StrJoin(gpus, "/"), " x ");
  return absl::StrCat(model, " on ", count, device);
}

absl::StatusOr<GnuplotJob> BuildPlot(PlotKind kind, const PlotData& data, absl::string_view title,
                                     const AccuracyPlotOptions* accuracy) {
  const AccuracyPlotOptions none;
  switch (kind) {
    case PlotKind::kTimeline:
      return Timeline(data, title);
    case PlotKind::kBatch:
      return Batch(data, title);
    case PlotKind::kPareto:
      return Pareto(data, title);
    case PlotKind::kCap:
      return CapPlot(data, title, accuracy != nullptr ? *accuracy : none);
    case PlotKind::kRadar:
      return RadarPlot(data, title, accuracy != nullptr ? *accuracy : none);
  }
  return absl::InvalidArgumentError("unknown plot kind");
}

}  // namespace moecap::ctl
