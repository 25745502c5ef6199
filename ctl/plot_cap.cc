// Building the cap and radar scripts (plot_cap.h).
#include "ctl/plot_cap.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ctl/accuracy_commands.h"
#include "ctl/plot_style.h"

namespace moecap::ctl {
namespace {

constexpr double kPi = 3.14159265358979323846;

// A coordinate of the radar: cos(pi/2) is 6e-17, which reads as noise in the data files.
std::string Coordinate(double v) { return Num(std::fabs(v) < 1e-12 ? 0.0 : v); }

// A point's scores: those of its model at the first of its precisions that has an entry.
struct PointScores {
  std::string who;  // "qwen3-30b-a3b at fp8": the model and the precision looked up
  std::string precision;
  std::vector<AccuracyScore> scores;  // empty: `why_not` says why
  std::string why_not;
};

PointScores ScoresOf(const PlotPoint& p, const AccuracyPlotOptions& o) {
  PointScores out;
  std::vector<std::string> candidates;
  for (const std::string& c : {p.precision, p.dtype}) {
    if (!c.empty() && std::find(candidates.begin(), candidates.end(), c) == candidates.end()) {
      candidates.push_back(c);
    }
  }
  if (candidates.empty() && !o.precision.empty()) candidates.push_back(o.precision);
  out.precision = candidates.empty() ? "" : candidates.front();
  out.who = absl::StrCat(p.model.empty() ? "?" : p.model, " at ",
                         out.precision.empty() ? "?" : out.precision);
  if (p.model.empty()) {
    out.why_not = "the input names no model";
    return out;
  }
  if (candidates.empty()) {
    out.why_not = "the input names no precision (pass --precision)";
    return out;
  }
  ModelSpec bare;
  bare.name = p.model;
  const ModelSpec* model = &bare;
  if (o.catalog != nullptr) {
    if (absl::StatusOr<const ModelSpec*> found = o.catalog->FindModel(p.model); found.ok()) {
      model = *found;
    }
  }
  for (const std::string& name : candidates) {
    absl::StatusOr<Dtype> dtype = ParseDtype(name);
    if (!dtype.ok()) continue;
    const std::vector<const AccuracyEntry*> entries = FindAccuracy(*o.entries, *model, *dtype);
    if (entries.empty()) continue;
    out.precision = std::string(DtypeName(*dtype));
    out.who = absl::StrCat(p.model, " at ", out.precision);
    out.scores = MergedScores(entries);
    return out;
  }
  out.why_not = absl::StrCat("no accuracy entry at ", absl::StrJoin(candidates, " or "));
  return out;
}

// "left out 3 decode point(s) of m at fp32: no accuracy entry at fp32"; with no `unit`, "left out
// m at fp32: ...".
void NoteLeftOut(const std::map<std::string, int>& left_out, absl::string_view unit,
                 GnuplotJob& job) {
  for (const auto& [reason, count] : left_out) {
    job.notes.push_back(unit.empty()
                            ? absl::StrCat("left out ", reason)
                            : absl::StrCat("left out ", count, " ", unit, "(s) of ", reason));
  }
}

std::string LeftOutList(const std::map<std::string, int>& left_out) {
  std::vector<std::string> reasons;
  for (const auto& [reason, count] : left_out) reasons.push_back(reason);
  return absl::StrJoin(reasons, "; ");
}

bool MetricMatches(const AccuracyScore& s, absl::string_view metric) {
  return metric.empty() || s.metric == metric || MetricName(s) == metric;
}

absl::Status NeedEntries(const AccuracyPlotOptions& o, absl::string_view kind) {
  if (o.entries != nullptr) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--kind ", kind, ": needs the accuracy entries of the catalog directories"));
}

}  // namespace

absl::StatusOr<GnuplotJob> CapPlot(const PlotData& data, absl::string_view title,
                                   const AccuracyPlotOptions& o) {
  if (absl::Status s = NeedEntries(o, "cap"); !s.ok()) return s;
  if (o.tasks.size() != 1) {
    return absl::InvalidArgumentError(
        "--kind cap: give one --accuracy-task (gsm8k, mmlu_pro, ...; `moecapctl accuracy list` "
        "shows the tasks of each entry)");
  }
  const std::string& task = o.tasks.front();
  struct CapPoint {
    double usd, value, speed;
    const PlotPoint* point;
    std::string label, metric;
    bool higher_is_better;
    std::optional<double> std_error;
  };
  std::vector<CapPoint> points;
  std::map<std::string, int> left_out;
  size_t decode_points = 0;
  for (const PlotPoint& p : data.points) {
    // Speed per request and price per output token are decode figures (as for --kind pareto).
    if (p.phase != "decode" && !p.phase.empty()) continue;
    if (!p.tokens_per_s_per_request || !p.usd_per_million_output_tokens ||
        *p.tokens_per_s_per_request <= 0 || *p.usd_per_million_output_tokens <= 0) {
      continue;
    }
    ++decode_points;
    const PointScores s = ScoresOf(p, o);
    if (s.scores.empty()) {
      ++left_out[absl::StrCat(s.who, ": ", s.why_not)];
      continue;
    }
    const AccuracyScore* score = FindScore(s.scores, task, o.metric);
    if (score == nullptr) {
      ++left_out[absl::StrCat(s.who, ": no ", task, o.metric.empty() ? "" : " ", o.metric,
                              " score")];
      continue;
    }
    std::string label = absl::StrCat(p.model, " ", s.precision);
    if (p.batch.has_value()) absl::StrAppend(&label, " B=", Num(*p.batch));
    points.push_back({*p.usd_per_million_output_tokens, score->value, *p.tokens_per_s_per_request,
                      &p, label, MetricName(*score), score->higher_is_better.value_or(true),
                      score->std_error});
  }
  if (decode_points == 0) {
    return absl::InvalidArgumentError(
        "--kind cap: the input has no decode points with tokens/s per request and a price per "
        "million output tokens; use `analyze -o json` outputs of hardware with a price, sweep "
        "points or job results");
  }
  if (points.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--kind cap: no decode point has a score for ",
                                                   task, " (", LeftOutList(left_out), "); ",
                                                   kAccuracyImportHint));
  }
  std::set<std::string> metrics;
  for (const CapPoint& p : points) metrics.insert(p.metric);
  if (metrics.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat("--kind cap: the points' ", task,
                                                   " scores are of different metrics (",
                                                   absl::StrJoin(metrics, ", "),
                                                   "), which one axis cannot show: pick one with "
                                                   "--accuracy-metric"));
  }
  const bool higher_is_better = points.front().higher_is_better;
  const bool percent = std::all_of(points.begin(), points.end(),
                                   [](const CapPoint& p) { return p.value >= 0 && p.value <= 1; });
  const auto y = [&](double value) { return percent ? value * 100 : value; };

  // The Pareto set: walking from the cheapest, each point more accurate than every cheaper one.
  std::vector<const CapPoint*> sorted;
  for (const CapPoint& p : points) sorted.push_back(&p);
  const auto better = [&](double a, double b) { return higher_is_better ? a > b : a < b; };
  std::stable_sort(sorted.begin(), sorted.end(), [&](const CapPoint* a, const CapPoint* b) {
    return a->usd != b->usd ? a->usd < b->usd : better(a->value, b->value);
  });
  std::vector<const CapPoint*> front;
  for (const CapPoint* p : sorted) {
    if (front.empty() || better(p->value, front.back()->value)) front.push_back(p);
  }

  GnuplotJob job;
  std::string all, front_tsv;
  double min_usd = points.front().usd, max_usd = min_usd;
  std::map<const PlotPoint*, std::pair<double, double>> xy;
  std::vector<const PlotPoint*> used;
  bool with_stderr = false;
  for (const CapPoint& p : points) {
    absl::StrAppend(&all, Num(p.usd), "\t", Num(y(p.value)), "\t", Num(p.speed), "\t",
                    Num(p.std_error.has_value() ? y(*p.std_error) : 0), "\n");
    if (p.std_error.has_value()) with_stderr = true;
    min_usd = std::min(min_usd, p.usd);
    max_usd = std::max(max_usd, p.usd);
    xy[p.point] = {p.usd, y(p.value)};
    used.push_back(p.point);
  }
  for (const CapPoint* p : front) {
    absl::StrAppend(&front_tsv, Num(p->usd), "\t", Num(y(p->value)), "\t", p->label, "\n");
  }
  job.data_files.emplace_back("cap_points.tsv", all);
  job.data_files.emplace_back("cap_front.tsv", front_tsv);
  const std::vector<std::string> flagged = FlaggedSeries(
      used, "cap",
      [&](const PlotPoint& p) {
        const auto& [usd, accuracy] = xy.at(&p);
        return absl::StrCat(Num(usd), "\t", Num(accuracy), "\n");
      },
      "1:2", job);
  NoteLeftOut(left_out, "decode point", job);

  const std::string metric = *metrics.begin();
  std::string s = Header(title, 640, "below center horizontal");
  absl::StrAppend(
      &s, "set title ", Quoted(absl::StrCat(title, ": price against ", task, " accuracy")), "\n",
      "set xlabel 'price per million output tokens (USD)'\n", "set ylabel ",
      Quoted(absl::StrCat(task, " ", metric, percent ? " (%)" : "",
                          higher_is_better ? "" : ", lower is better")),
      "\n", "set cblabel 'output tokens per second per request (tokens/s)'\n",
      // viridis: ordered in lightness, so the colour reads as a quantity, also in grey.
      "set palette defined (0 '#440154', 1 '#3b528b', 2 '#21918c', 3 '#5ec962', 4 '#fde725')\n",
      "set colorbox\n",
      // Accuracy is zoomed to the scores (they differ by a few points); the price starts at 0.
      "set offsets graph 0, graph 0.15, graph 0.1, graph 0.1\n");
  if (max_usd / min_usd >= 20) {
    absl::StrAppend(&s, "set logscale x 10\n");
  } else {
    absl::StrAppend(&s, "set xrange [0:*]\n");
  }
  absl::StrAppend(
      &s, "plot ",
      // The score's standard error, so that a gap of a point or two reads against its noise.
      with_stderr ? "'cap_points.tsv' using 1:2:4 with yerrorbars ps 0 lc rgb '#9a9a9a' title "
                    "'accuracy ± its standard error', "
                  : "",
      "'cap_points.tsv' using 1:2:3 with points pt 7 ps 1.4 lc palette title 'decode points "
      "(colour: tokens/s per request)', ",
      "'cap_front.tsv' using 1:2 with lines lw 2 lc rgb '", kDecodeColour, "' title ",
      Quoted(higher_is_better ? "Pareto set (cheaper and more accurate)"
                              : "Pareto set (cheaper and lower)"),
      ", 'cap_front.tsv' using 1:2 with points pt 6 ps 2.2 lw 1.5 lc rgb '", kDecodeColour,
      "' notitle, 'cap_front.tsv' using 1:2:3 with labels offset char 1,0.9 left font ',9' "
      "notitle",
      flagged.empty() ? "" : ", ", absl::StrJoin(flagged, ", "), "\n");
  job.script = s;
  job.data_points = points.size() + front.size();
  job.legend_samples = 2 + (with_stderr ? 1 : 0) + flagged.size();
  return job;
}

absl::StatusOr<GnuplotJob> RadarPlot(const PlotData& data, absl::string_view title,
                                     const AccuracyPlotOptions& o) {
  if (absl::Status s = NeedEntries(o, "radar"); !s.ok()) return s;
  // One polygon per model and precision of the input, in order of appearance.
  struct Polygon {
    std::string label;
    std::vector<AccuracyScore> spokes;
  };
  std::vector<Polygon> polygons;
  std::set<std::string> seen;
  std::map<std::string, int> left_out;
  for (const PlotPoint& p : data.points) {
    const PointScores s = ScoresOf(p, o);
    if (!seen.insert(s.who).second) continue;
    if (s.scores.empty()) {
      ++left_out[absl::StrCat(s.who, ": ", s.why_not)];
      continue;
    }
    Polygon polygon{absl::StrCat(p.model, " ", s.precision), {}};
    for (const AccuracyScore& score : s.scores) {
      // Top-level tasks only: a group's subtasks (mmlu_pro's subjects) are inside its score.
      if (!score.group.empty() || !MetricMatches(score, o.metric)) continue;
      if (!o.tasks.empty() &&
          std::none_of(o.tasks.begin(), o.tasks.end(), [&](const std::string& t) {
            return NormalizeName(t) == NormalizeName(score.task);
          })) {
        continue;
      }
      polygon.spokes.push_back(score);
    }
    if (polygon.spokes.empty()) {
      ++left_out[absl::StrCat(s.who, ": none of its scores is of the tasks asked for")];
      continue;
    }
    polygons.push_back(std::move(polygon));
  }
  if (polygons.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--kind radar: no model and precision of the input has scores (",
                     LeftOutList(left_out), "); ", kAccuracyImportHint));
  }
  // The spokes: every task, metric and filter any polygon has, in order of appearance.
  const auto spoke_key = [](const AccuracyScore& s) {
    return absl::StrCat(NormalizeName(s.task), " ", MetricName(s));
  };
  std::vector<std::string> spokes;
  std::map<std::string, std::string> spoke_label;
  std::map<std::string, double> spoke_max;
  std::map<std::string, bool> spoke_fraction;  // every value in [0, 1]: drawn as it is
  for (const Polygon& polygon : polygons) {
    for (const AccuracyScore& s : polygon.spokes) {
      const std::string key = spoke_key(s);
      if (!spoke_label.contains(key)) {
        spokes.push_back(key);
        spoke_label[key] = absl::StrCat(s.task, " ", MetricName(s));
        spoke_max[key] = s.value;
        spoke_fraction[key] = true;
      }
      spoke_max[key] = std::max(spoke_max[key], s.value);
      if (s.value < 0 || s.value > 1) spoke_fraction[key] = false;
    }
  }
  if (spokes.size() < 3) {
    std::vector<std::string> labels;
    for (const std::string& key : spokes) labels.push_back(spoke_label[key]);
    return absl::InvalidArgumentError(absl::StrCat(
        "--kind radar: the scores span ", spokes.size(), " spoke(s) (", absl::StrJoin(labels, "; "),
        "), a radar needs 3: use --kind cap --accuracy-task TASK, or import more tasks"));
  }
  const size_t n = spokes.size();
  const auto angle = [n](size_t i) { return kPi / 2 - 2 * kPi * static_cast<double>(i) / n; };
  GnuplotJob job;
  std::string grid;
  for (double ring : {0.25, 0.5, 0.75, 1.0}) {
    for (size_t i = 0; i <= n; ++i) {
      absl::StrAppend(&grid, Coordinate(ring * std::cos(angle(i % n))), "\t",
                      Coordinate(ring * std::sin(angle(i % n))), "\n");
    }
    grid += "\n";
  }
  for (size_t i = 0; i < n; ++i) {
    absl::StrAppend(&grid, "0\t0\n", Coordinate(std::cos(angle(i))), "\t",
                    Coordinate(std::sin(angle(i))), "\n\n");
  }
  job.data_files.emplace_back("radar_grid.tsv", grid);
  std::string ring_labels;
  for (double ring : {0.25, 0.5, 0.75, 1.0}) {
    absl::StrAppend(&ring_labels, "0.02\t", Num(ring), "\t", Num(ring * 100), "%\n");
  }
  job.data_files.emplace_back("radar_rings.tsv", ring_labels);
  // Spoke labels outside the outer ring, aligned away from the centre so they clear the figure.
  std::map<std::string, std::string> label_files;  // alignment -> rows
  for (size_t i = 0; i < n; ++i) {
    const double x = std::cos(angle(i)), y = std::sin(angle(i));
    const char* align = x > 0.2 ? "left" : x < -0.2 ? "right" : "center";
    std::string label = spoke_label[spokes[i]];
    if (!spoke_fraction[spokes[i]])
      absl::StrAppend(&label, " (of the best, ", Num(spoke_max[spokes[i]]), ")");
    absl::StrAppend(&label_files[align], Coordinate(1.08 * x), "\t", Coordinate(1.08 * y), "\t",
                    label, "\n");
  }
  std::vector<std::string> series = {
      "'radar_grid.tsv' using 1:2 with lines lc rgb '#d0d0d0' notitle",
      "'radar_rings.tsv' using 1:2:3 with labels left font ',9' tc rgb "
      "'#888888' notitle"};
  for (const auto& [align, rows] : label_files) {
    const std::string file = absl::StrCat("radar_labels_", align, ".tsv");
    job.data_files.emplace_back(file, rows);
    series.push_back(absl::StrCat(Quoted(file), " using 1:2:3 with labels ", align, " notitle"));
  }
  size_t vertices = 0;
  for (size_t k = 0; k < polygons.size(); ++k) {
    // One vertex per spoke the polygon has; the outline breaks (a blank line) at a spoke it lacks
    // rather than cutting across it, and closes when its first and last spokes are there.
    std::vector<std::optional<std::string>> rows_at(n);
    for (size_t i = 0; i < n; ++i) {
      auto it = std::find_if(polygons[k].spokes.begin(), polygons[k].spokes.end(),
                             [&](const AccuracyScore& s) { return spoke_key(s) == spokes[i]; });
      if (it == polygons[k].spokes.end()) continue;
      const double r = spoke_fraction[spokes[i]] ? it->value : it->value / spoke_max[spokes[i]];
      rows_at[i] = absl::StrCat(Coordinate(r * std::cos(angle(i))), "\t",
                                Coordinate(r * std::sin(angle(i))), "\n");
    }
    std::string tsv;
    size_t rows = 0;
    for (size_t i = 0; i < n; ++i) {
      if (rows_at[i].has_value()) {
        tsv += *rows_at[i];
        ++rows;
      } else if (!tsv.empty() && tsv.back() == '\n' && !absl::EndsWith(tsv, "\n\n")) {
        tsv += "\n";
      }
    }
    if (rows_at.front().has_value() && rows_at.back().has_value()) {
      tsv += *rows_at.front();
      ++rows;
    }
    vertices += rows;
    const std::string file = absl::StrCat("radar_", k, ".tsv");
    job.data_files.emplace_back(file, tsv);
    series.push_back(absl::StrCat(
        Quoted(file), " using 1:2 with linespoints lw 2 pt 7 ps 0.9 lc rgb '",
        kSeriesColours[k % std::size(kSeriesColours)], "' title ", Quoted(polygons[k].label)));
  }
  NoteLeftOut(left_out, "", job);

  std::string s = Header(title, 760, "below center horizontal", 1120);
  absl::StrAppend(&s, "set title ",
                  Quoted(absl::StrCat(title, ": accuracy of each model and precision")), "\n",
                  "unset border\nunset xtics\nunset ytics\nunset grid\nset size ratio -1\n",
                  // Room for the spoke labels beside the unit circle.
                  "set xrange [-2.1:2.1]\nset yrange [-1.25:1.25]\n", "plot ",
                  absl::StrJoin(series, ", "), "\n");
  job.script = s;
  job.data_points = vertices;
  job.legend_samples = polygons.size();
  return job;
}

}  // namespace moecap::ctl
