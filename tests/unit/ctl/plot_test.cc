// Plot inputs (every accepted shape) and the scripts built from them: which series, how many
// points, and which points form the Pareto front; for the accuracy kinds (cap, radar), which
// points find a score and where each lands.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "common/accuracy.h"
#include "ctl/plot_cap.h"
#include "ctl/plot_data.h"
#include "ctl/plot_script.h"

namespace moecap::ctl {
namespace {

// Two per-pass rows as `analyze --records --per-pass -o json` writes them.
constexpr char kPassRows[] =
    R"({"model": "toy-moe", "hardware": "toy-gpu", "gpus": 1, "line": 1, "phase": "prefill",)"
    R"( "start_s": 0, "latency_s": 0.5, "batch": 2, "tokens": 5, "s_mbu": 0.4928, "s_mfu": 0.2016,)"
    R"( "roofline_s_mbu": 1, "roofline_s_mfu": 0.409, "usd_per_million_tokens": 1000})"
    "\n"
    R"({"model": "toy-moe", "hardware": "toy-gpu", "gpus": 1, "line": 2, "phase": "decode",)"
    R"( "start_s": 0.5, "latency_s": 0.25, "batch": 1, "tokens": 1, "s_mbu": 0.8064,)"
    R"( "s_mfu": 0.08832, "roofline_s_mbu": 1, "roofline_s_mfu": 0.1095,)"
    R"( "usd_per_million_tokens": 2500})"
    "\n";

const std::string* FindFile(const GnuplotJob& job, const std::string& name) {
  for (const auto& [file, contents] : job.data_files) {
    if (file == name) return &contents;
  }
  return nullptr;
}

// The JSON `moecapctl run examples/plans/mixtral-8x7b-cpu-small.yaml --local 2 -o json` printed
// (GetResultsResponse): three points (batch 1, 8, 32), each with a prefill and a decode phase.
std::string RunLocalResults() {
  std::ifstream in(std::string(MOECAP_CTL_TESTDATA) + "/run_local_mixtral_cpu_small.json");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(PlotDataTest, JobResultsAsResultsAndRunLocalPrintThem) {
  absl::StatusOr<PlotData> d = ParsePlotData(RunLocalResults(), "results.json");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->kind, "job results");
  ASSERT_EQ(d->points.size(), 6u);
  EXPECT_EQ(d->models, std::vector<std::string>{"mixtral-8x7b"});
  EXPECT_EQ(d->hardware, std::vector<std::string>{"cpu"});
  EXPECT_EQ(d->gpus, std::vector<int64_t>{2});
  // Point 1 (batch_size "1"): its decode phase's mean step was 0.0018746786 s, so one request
  // sees 1 / 0.0018746786 tokens/s; its price is the cost's usd_per_million_output_tokens.
  const PlotPoint& prefill = d->points[0];
  const PlotPoint& decode = d->points[1];
  EXPECT_EQ(prefill.phase, "prefill");
  EXPECT_EQ(decode.phase, "decode");
  EXPECT_EQ(decode.batch, 1.0);
  EXPECT_NEAR(*decode.tokens_per_s_per_request, 1 / 0.0018746786, 1e-6);
  EXPECT_NEAR(*decode.usd_per_million_output_tokens, 0.13479697291666665, 1e-15);
  EXPECT_NEAR(*decode.s_mbu, 0.12554287376886294, 1e-15);
  EXPECT_FALSE(prefill.tokens_per_s_per_request.has_value());
  // At the roofline the binding resource is at 100 %: bytes / (roofline time · summed peak).
  ASSERT_TRUE(decode.roofline_s_mbu.has_value() && decode.roofline_s_mfu.has_value());
  EXPECT_NEAR(std::max(*decode.roofline_s_mbu, *decode.roofline_s_mfu), 1.0, 1e-9);
  EXPECT_EQ(d->points[4].batch, 32.0);
}

TEST(PlotScriptTest, ParetoOfJobResultsTakesDecodePointsWithAxesFromZero) {
  absl::StatusOr<PlotData> d = ParsePlotData(RunLocalResults(), "results.json");
  ASSERT_TRUE(d.ok()) << d.status();
  // A prefill point given a speed and a price must still stay out of the decode front.
  d->points[0].tokens_per_s_per_request = 1e6;
  d->points[0].usd_per_million_output_tokens = 1e-6;
  absl::StatusOr<GnuplotJob> job = BuildPlot(PlotKind::kPareto, *d, "T");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->data_points, 3u);
  EXPECT_TRUE(absl::StrContains(job->script, "set xrange [0:*]"));
  EXPECT_FALSE(absl::StrContains(*FindFile(*job, "pareto_points.tsv"), "1e+06"));
}

TEST(PlotDataTest, PerPassRows) {
  absl::StatusOr<PlotData> d = ParsePlotData(kPassRows, "rows.jsonl");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->kind, "per-pass rows");
  EXPECT_EQ(d->models, std::vector<std::string>{"toy-moe"});
  EXPECT_EQ(d->gpus, std::vector<int64_t>{1});
  ASSERT_EQ(d->points.size(), 2u);
  EXPECT_EQ(d->points[1].phase, "decode");
  // A decode pass gives each request one token per latency: 1 / 0.25 s = 4 tokens/s.
  EXPECT_DOUBLE_EQ(*d->points[1].tokens_per_s_per_request, 4);
  EXPECT_DOUBLE_EQ(*d->points[1].usd_per_million_output_tokens, 2500);
  // A prefill pass is no operating point of the price/speed trade-off.
  EXPECT_FALSE(d->points[0].tokens_per_s_per_request.has_value());
}

TEST(PlotDataTest, SweepPointsDeriveSpeedPerRequest) {
  absl::StatusOr<PlotData> d = ParsePlotData(
      R"({"model": "mixtral-8x7b", "hardware": "h100-sxm", "gpus": 2, "points": [
           {"batch": 8, "s_mbu": 0.5, "s_mfu": 0.01, "tokens_per_s": 400,
            "usd_per_million_output_tokens": 4.0},
           {"batch": 16, "s_mbu": 0.6, "s_mfu": 0.02, "tokens_per_s_per_request": 30,
            "usd_per_million_output_tokens": 2.5, "gpus": 4}]})",
      "sweep.json");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->kind, "sweep points");
  ASSERT_EQ(d->points.size(), 2u);
  EXPECT_DOUBLE_EQ(*d->points[0].tokens_per_s_per_request, 50);  // 400 tokens/s over 8 requests
  EXPECT_DOUBLE_EQ(*d->points[1].tokens_per_s_per_request, 30);
  EXPECT_EQ(d->gpus, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(PlotTitle(d->models, d->hardware, d->gpus), "mixtral-8x7b on 2/4 x h100-sxm");
}

TEST(PlotDataTest, AnalyzeOutputsAsJsonLines) {
  // Two step analyses (the shape of `analyze -o json`, trimmed): one point per phase each.
  const std::string step =
      R"({"inputs": {"model": "m", "hardware": "h", "gpus": 1, "batch": BATCH, "output_len": 11},)"
      R"( "prefill": {"s_mbu": 0.1, "s_mfu": 0.5, "roofline": {"s_mbu": 0.2, "s_mfu": 1}},)"
      R"( "decode": {"s_mbu": 0.6, "s_mfu": 0.01, "roofline": {"s_mbu": 1, "s_mfu": 0.02}},)"
      R"( "cost": {"batch_seconds": 2.0, "usd_per_million_output_tokens": 3.0}})";
  std::string text;
  for (const char* batch : {"4", "8"}) {
    std::string line = step;
    line.replace(line.find("BATCH"), 5, batch);
    text += line + "\n";
  }
  absl::StatusOr<PlotData> d = ParsePlotData(text, "sweep.jsonl");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->kind, "analyze outputs");
  ASSERT_EQ(d->points.size(), 4u);
  EXPECT_DOUBLE_EQ(*d->points[3].batch, 8);
  EXPECT_DOUBLE_EQ(*d->points[3].roofline_s_mfu, 0.02);
  // O = 11 tokens in a batch of 2 s: 5.5 tokens/s per request.
  EXPECT_DOUBLE_EQ(*d->points[3].tokens_per_s_per_request, 5.5);
}

TEST(PlotDataTest, RejectsWhatIsNotAMoecapOutput) {
  EXPECT_EQ(ParsePlotData(R"({"hello": 1})", "x.json").status().message(),
            "x.json: not a moecap output: expected `results JOB -o json` or `run --local -o "
            "json`, per-pass rows (`analyze --records --per-pass -o json`), an `analyze -o json` "
            "output or sweep points ({\"points\": [...]})");
  EXPECT_TRUE(
      absl::StartsWith(ParsePlotData("{\"phase\": \"decode\", \"start_s\": 0}\n{oops\n", "x.jsonl")
                           .status()
                           .message(),
                       "x.jsonl:2: invalid JSON: "));
  EXPECT_EQ(ParsePlotData(R"({"points": []})", "x.json").status().message(),
            "x.json: nothing to plot: no points");
  const std::string mixed = std::string(kPassRows) + R"({"points": [{"batch": 1}]})" + "\n";
  EXPECT_EQ(ParsePlotData(mixed, "x.jsonl").status().message(),
            "x.jsonl:3: mixes sweep points with per-pass rows: plot one kind of input");
}

TEST(PlotScriptTest, InvalidAndEstimatedPointsAreMarked) {
  // The decode row over the roofline (valid: false), the prefill row estimated.
  std::string rows = kPassRows;
  rows.replace(rows.find(R"("usd_per_million_tokens": 1000})"), 31,
               R"("usd_per_million_tokens": 1000, "valid": true, "estimated": true})");
  rows.replace(rows.find(R"("usd_per_million_tokens": 2500})"), 31,
               R"("usd_per_million_tokens": 2500, "valid": false, "estimated": false})");
  absl::StatusOr<PlotData> d = ParsePlotData(rows, "rows.jsonl");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->points[0].estimated);
  EXPECT_FALSE(d->points[1].valid);
  for (PlotKind kind : {PlotKind::kTimeline, PlotKind::kBatch, PlotKind::kPareto}) {
    absl::StatusOr<GnuplotJob> job = BuildPlot(kind, *d, "T");
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_TRUE(absl::StrContains(job->script, "valid: false (over the roofline)"));
  }
  absl::StatusOr<GnuplotJob> timeline = BuildPlot(PlotKind::kTimeline, *d, "T");
  ASSERT_NE(FindFile(*timeline, "timeline_invalid.tsv"), nullptr);
  EXPECT_EQ(*FindFile(*timeline, "timeline_invalid.tsv"), "0.5\t80.64\t8.832\n");
  ASSERT_NE(FindFile(*timeline, "timeline_estimated.tsv"), nullptr);
  EXPECT_TRUE(absl::StrContains(timeline->script, "'timeline_invalid.tsv' using 1:3 "));
  // Two panels, each with the two phases and the two marks.
  EXPECT_EQ(timeline->legend_samples, 8u);
}

TEST(PlotScriptTest, TimelineAndBatchCountPointsPerPanel) {
  absl::StatusOr<PlotData> d = ParsePlotData(kPassRows, "rows.jsonl");
  ASSERT_TRUE(d.ok());
  absl::StatusOr<GnuplotJob> timeline = BuildPlot(PlotKind::kTimeline, *d, "T");
  ASSERT_TRUE(timeline.ok()) << timeline.status();
  // Two panels (S-MBU, S-MFU) of 2 passes; a legend sample per phase per panel.
  EXPECT_EQ(timeline->data_points, 4u);
  EXPECT_EQ(timeline->legend_samples, 4u);
  ASSERT_NE(FindFile(*timeline, "timeline_decode.tsv"), nullptr);
  // Percent of peak: 0.8064 -> 80.64, 0.08832 -> 8.832.
  EXPECT_EQ(*FindFile(*timeline, "timeline_decode.tsv"), "0.5\t80.64\t8.832\n");
  EXPECT_TRUE(absl::StrContains(timeline->script, "set terminal svg"));
  EXPECT_TRUE(absl::StrContains(timeline->script, "time since the first pass (s)"));

  absl::StatusOr<GnuplotJob> batch = BuildPlot(PlotKind::kBatch, *d, "T");
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->data_points, 4u);
  // The roofline limit of the decode phase at batch 1: 100 % S-MBU, 10.95 % S-MFU.
  ASSERT_NE(FindFile(*batch, "limit_decode.tsv"), nullptr);
  EXPECT_EQ(*FindFile(*batch, "limit_decode.tsv"), "1\t100\t10.95\n");
  EXPECT_TRUE(absl::StrContains(batch->script, "roofline limit, decode"));
}

TEST(PlotScriptTest, ParetoFrontKeepsPointsNoOtherBeats) {
  // (tokens/s per request, USD per million): A (50, 4), B (30, 2.5), C (20, 3) is beaten by B
  // (faster and cheaper), D (10, 1). The front, fastest first: A, B, D.
  absl::StatusOr<PlotData> d = ParsePlotData(
      R"({"model": "m", "hardware": "h", "gpus": 1, "points": [
           {"batch": 1, "tokens_per_s_per_request": 50, "usd_per_million_output_tokens": 4},
           {"batch": 2, "tokens_per_s_per_request": 30, "usd_per_million_output_tokens": 2.5},
           {"batch": 3, "tokens_per_s_per_request": 20, "usd_per_million_output_tokens": 3},
           {"batch": 4, "tokens_per_s_per_request": 10, "usd_per_million_output_tokens": 1}]})",
      "sweep.json");
  ASSERT_TRUE(d.ok()) << d.status();
  absl::StatusOr<GnuplotJob> job = BuildPlot(PlotKind::kPareto, *d, "T");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->data_points, 4u);
  EXPECT_EQ(job->legend_samples, 1u);
  ASSERT_NE(FindFile(*job, "pareto_front.tsv"), nullptr);
  EXPECT_EQ(*FindFile(*job, "pareto_front.tsv"), "50\t4\tB=1\n30\t2.5\tB=2\n10\t1\tB=4\n");
  EXPECT_TRUE(absl::StrContains(job->script, "price per million output tokens (USD)"));
}

TEST(PlotScriptTest, MissingFieldsSayHowToMakeThem) {
  absl::StatusOr<PlotData> d =
      ParsePlotData(R"({"points": [{"batch": 1, "s_mbu": 0.5, "s_mfu": 0.1}]})", "sweep.json");
  ASSERT_TRUE(d.ok());
  absl::StatusOr<GnuplotJob> timeline = BuildPlot(PlotKind::kTimeline, *d, "T");
  EXPECT_TRUE(absl::StrContains(timeline.status().message(),
                                "moecapctl analyze --records FILE --per-pass -o json"));
  EXPECT_FALSE(BuildPlot(PlotKind::kPareto, *d, "T").ok());
  EXPECT_TRUE(BuildPlot(PlotKind::kBatch, *d, "T").ok());
  EXPECT_EQ(PlotTitle({}, {}, {}), "unknown model on ? x unknown hardware");
  EXPECT_EQ(ParsePlotKind("roofline").status().message(),
            "--kind: unknown plot 'roofline': expected timeline, batch, pareto, cap or radar");
}

TEST(PlotScriptTest, QuotesInTitlesCannotEndTheString) {
  absl::StatusOr<PlotData> d = ParsePlotData(kPassRows, "rows.jsonl");
  ASSERT_TRUE(d.ok());
  absl::StatusOr<GnuplotJob> job = BuildPlot(PlotKind::kTimeline, *d, "it's\n'; system 'x");
  ASSERT_TRUE(job.ok());
  // A quote is doubled inside gnuplot's single-quoted string; the newline is dropped.
  EXPECT_TRUE(absl::StrContains(job->script, "'it''s''; system ''x"));
}

// --- the accuracy kinds ---------------------------------------------------------------------

TEST(PlotDataTest, PointsCarryTheirModelAndPrecision) {
  // analyze -o json: the experts' precision (here the model's native mxfp4) and the run's dtype.
  absl::StatusOr<PlotData> d = ParsePlotData(
      R"({"inputs": {"model": "gpt-oss-20b", "hardware": "h", "gpus": 1, "batch": 4,)"
      R"( "output_len": 8, "dtype": "bf16", "precisions": {"experts": "mxfp4"}},)"
      R"( "prefill": {"s_mbu": 0.1, "s_mfu": 0.5}, "decode": {"s_mbu": 0.6, "s_mfu": 0.01}})",
      "a.json");
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->points.size(), 2u);
  for (const PlotPoint& p : d->points) {
    EXPECT_EQ(p.model, "gpt-oss-20b");
    EXPECT_EQ(p.precision, "mxfp4");
    EXPECT_EQ(p.dtype, "bf16");
  }
  // analyze --records -o json: "precisions" and "dtype" at the top.
  d = ParsePlotData(
      R"({"mode": "records", "model": "m", "dtype": "fp8", "precisions": {"experts": "fp8"},)"
      R"( "decode": {"mean_batch": 3, "s_mbu": 0.5, "s_mfu": 0.1}})",
      "r.json");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->points.front().precision, "fp8");
  // Sweep points: a dtype for the sweep, a precision for one point.
  d = ParsePlotData(R"({"model": "m", "dtype": "bf16", "points": [{"batch": 1},)"
                    R"( {"batch": 2, "precision": "int4_g128"}]})",
                    "s.json");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->points[0].precision, "bf16");
  EXPECT_EQ(d->points[1].precision, "int4_g128");
  EXPECT_EQ(d->points[1].dtype, "bf16");
  // Job results: the plan's workload dtype (DTYPE_FP32).
  d = ParsePlotData(RunLocalResults(), "results.json");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->points[1].model, "mixtral-8x7b");
  EXPECT_EQ(d->points[1].dtype, "fp32");
  EXPECT_EQ(d->points[1].precision, "fp32");
  // Per-pass rows name none.
  d = ParsePlotData(kPassRows, "rows.jsonl");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->points[1].model, "toy-moe");
  EXPECT_EQ(d->points[1].precision, "");
}

AccuracyEntry Entry(const std::string& model, Dtype precision,
                    const std::vector<std::tuple<std::string, std::string, double>>& scores) {
  AccuracyEntry e;
  e.model = model;
  e.precision = precision;
  for (const auto& [task, metric, value] : scores) {
    AccuracyScore s;
    s.task = task;
    s.metric = metric;
    s.value = value;
    s.std_error = 0.01;
    e.scores.push_back(s);
  }
  return e;
}

// Four decode points of model m, two at bf16 and two at fp8; and one of m at int8, which has no
// entry. (USD per million, tokens/s per request): bf16 B=1 (4, 50), bf16 B=8 (1, 30), fp8 B=1
// (2.5, 60), fp8 B=8 (0.5, 35), int8 B=8 (0.3, 40).
constexpr char kPrecisionSweep[] = R"({"model": "m", "hardware": "h", "gpus": 1, "points": [
    {"batch": 1, "dtype": "bf16", "tokens_per_s_per_request": 50, "usd_per_million_output_tokens": 4},
    {"batch": 8, "dtype": "bf16", "tokens_per_s_per_request": 30, "usd_per_million_output_tokens": 1},
    {"batch": 1, "dtype": "fp8", "tokens_per_s_per_request": 60, "usd_per_million_output_tokens": 2.5},
    {"batch": 8, "dtype": "fp8", "tokens_per_s_per_request": 35, "usd_per_million_output_tokens": 0.5},
    {"batch": 8, "dtype": "int8", "tokens_per_s_per_request": 40, "usd_per_million_output_tokens": 0.3}]})";

TEST(PlotCapTest, PriceAgainstAccuracyWithTheParetoSetAndTheSpeedAsColour) {
  absl::StatusOr<PlotData> d = ParsePlotData(kPrecisionSweep, "sweep.json");
  ASSERT_TRUE(d.ok()) << d.status();
  const std::vector<AccuracyEntry> entries = {Entry("m", Dtype::kBf16, {{"gsm8k", "acc", 0.90}}),
                                              Entry("m", Dtype::kFp8, {{"gsm8k", "acc", 0.85}})};
  AccuracyPlotOptions o;
  o.entries = &entries;
  o.tasks = {"gsm8k"};
  absl::StatusOr<GnuplotJob> job = BuildPlot(PlotKind::kCap, *d, "T", &o);
  ASSERT_TRUE(job.ok()) << job.status();
  // USD, accuracy in % (every score is a fraction), tokens/s per request (the colour), stderr.
  EXPECT_EQ(*FindFile(*job, "cap_points.tsv"),
            "4\t90\t50\t1\n1\t90\t30\t1\n2.5\t85\t60\t1\n0.5\t85\t35\t1\n");
  // Cheapest first, each more accurate than every cheaper one: fp8 B=8, then bf16 B=8; bf16 B=1
  // costs more for the same 90 %, fp8 B=1 more for the same 85 %.
  EXPECT_EQ(*FindFile(*job, "cap_front.tsv"), "0.5\t85\tm fp8 B=8\n1\t90\tm bf16 B=8\n");
  EXPECT_EQ(job->data_points, 6u);  // four points and two Pareto rings
  EXPECT_TRUE(absl::StrContains(job->script, "using 1:2:3 with points pt 7 ps 1.4 lc palette"));
  EXPECT_TRUE(absl::StrContains(job->script, "set colorbox"));
  EXPECT_TRUE(absl::StrContains(job->script, "set ylabel 'gsm8k acc (%)'"));
  EXPECT_TRUE(absl::StrContains(job->script, "using 1:2:4 with yerrorbars"));
  // The int8 point has no entry: left out, and said so.
  ASSERT_EQ(job->notes.size(), 1u);
  EXPECT_EQ(job->notes.front(),
            "left out 1 decode point(s) of m at int8: no accuracy entry at int8");
}

TEST(PlotCapTest, LowerIsBetterFlipsTheParetoSet) {
  absl::StatusOr<PlotData> d = ParsePlotData(kPrecisionSweep, "sweep.json");
  ASSERT_TRUE(d.ok());
  std::vector<AccuracyEntry> entries = {Entry("m", Dtype::kBf16, {{"wikitext", "ppl", 7.5}}),
                                        Entry("m", Dtype::kFp8, {{"wikitext", "ppl", 7.9}})};
  for (AccuracyEntry& e : entries) e.scores.front().higher_is_better = false;
  AccuracyPlotOptions o;
  o.entries = &entries;
  o.tasks = {"wikitext"};
  absl::StatusOr<GnuplotJob> job = BuildPlot(PlotKind::kCap, *d, "T", &o);
  ASSERT_TRUE(job.ok()) << job.status();
  // Not fractions: drawn as they are. The cheapest (fp8 B=8, 7.9), then bf16 B=8 (7.5, lower).
  EXPECT_EQ(*FindFile(*job, "cap_front.tsv"), "0.5\t7.9\tm fp8 B=8\n1\t7.5\tm bf16 B=8\n");
  EXPECT_TRUE(absl::StrContains(job->script, "set ylabel 'wikitext ppl, lower is better'"));
}

TEST(PlotCapTest, RefusalsSayWhatIsMissing) {
  absl::StatusOr<PlotData> d = ParsePlotData(kPrecisionSweep, "sweep.json");
  ASSERT_TRUE(d.ok());
  std::vector<AccuracyEntry> entries = {Entry("m", Dtype::kBf16, {{"gsm8k", "acc", 0.9}}),
                                        Entry("m", Dtype::kFp8, {{"gsm8k", "exact_match", 0.85}})};
  AccuracyPlotOptions o;
  o.entries = &entries;
  EXPECT_THAT(std::string(BuildPlot(PlotKind::kCap, *d, "T", &o).status().message()),
              ::testing::HasSubstr("give one --accuracy-task"));
  o.tasks = {"gsm8k"};
  // One axis cannot show two metrics.
  EXPECT_THAT(std::string(BuildPlot(PlotKind::kCap, *d, "T", &o).status().message()),
              ::testing::HasSubstr("different metrics (acc, exact_match)"));
  o.metric = "acc";
  absl::StatusOr<GnuplotJob> job = BuildPlot(PlotKind::kCap, *d, "T", &o);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(*FindFile(*job, "cap_front.tsv"), "1\t90\tm bf16 B=8\n");
  EXPECT_EQ(job->notes.size(), 2u);  // fp8 has no acc score; int8 no entry
  o.tasks = {"arc_challenge"};
  EXPECT_THAT(std::string(BuildPlot(PlotKind::kCap, *d, "T", &o).status().message()),
              ::testing::HasSubstr("no decode point has a score for arc_challenge"));
  EXPECT_THAT(std::string(BuildPlot(PlotKind::kCap, *d, "T").status().message()),
              ::testing::HasSubstr("needs the accuracy entries"));
}

TEST(PlotCapTest, RadarHasOneSpokePerTopLevelScoreAndBreaksWhereAPolygonHasNone) {
  absl::StatusOr<PlotData> d = ParsePlotData(kPrecisionSweep, "sweep.json");
  ASSERT_TRUE(d.ok());
  std::vector<AccuracyEntry> entries = {
      Entry("m", Dtype::kBf16,
            {{"gsm8k", "acc", 0.9}, {"mmlu_pro", "acc", 0.7}, {"arc", "acc", 0.5}}),
      Entry("m", Dtype::kFp8, {{"gsm8k", "acc", 0.8}, {"mmlu_pro", "acc", 0.6}})};
  // A subtask is inside its group's score: no spoke of its own.
  AccuracyScore subject;
  subject.task = "mmlu_pro_law";
  subject.metric = "acc";
  subject.value = 0.3;
  subject.group = "mmlu_pro";
  entries[0].scores.push_back(subject);
  AccuracyPlotOptions o;
  o.entries = &entries;
  absl::StatusOr<GnuplotJob> job = BuildPlot(PlotKind::kRadar, *d, "T", &o);
  ASSERT_TRUE(job.ok()) << job.status();
  // Spokes at 90° (top), -30° and 210°: gsm8k at (0, r), mmlu_pro at (r cos -30°, r sin -30°).
  const double c = std::cos(-3.14159265358979323846 / 6);
  const std::string bf16 = *FindFile(*job, "radar_0.tsv");
  EXPECT_TRUE(absl::StartsWith(bf16, "0\t0.9\n" + absl::StrFormat("%.9g\t-0.35\n", 0.7 * c)))
      << bf16;
  // Closed: the first vertex again after the third.
  EXPECT_TRUE(absl::EndsWith(bf16, absl::StrFormat("%.9g\t-0.25\n0\t0.9\n", -0.5 * c))) << bf16;
  // fp8 has no arc score: the outline stops (a blank line) instead of cutting across it.
  EXPECT_EQ(*FindFile(*job, "radar_1.tsv"), absl::StrFormat("0\t0.8\n%.9g\t-0.3\n\n", 0.6 * c));
  EXPECT_EQ(job->data_points, 4u + 2u);
  EXPECT_EQ(job->legend_samples, 2u);
  EXPECT_TRUE(absl::StrContains(job->script, "title 'm bf16'"));
  EXPECT_TRUE(absl::StrContains(job->script, "set size ratio -1"));
  const std::string* center = FindFile(*job, "radar_labels_center.tsv");
  ASSERT_NE(center, nullptr);
  EXPECT_EQ(*center, "0\t1.08\tgsm8k acc\n");
  // The int8 point's model and precision has no entry.
  ASSERT_EQ(job->notes.size(), 1u);
  EXPECT_EQ(job->notes.front(), "left out m at int8: no accuracy entry at int8");
  // Two spokes are no radar.
  o.tasks = {"gsm8k", "mmlu_pro"};
  EXPECT_THAT(std::string(BuildPlot(PlotKind::kRadar, *d, "T", &o).status().message()),
              ::testing::HasSubstr("span 2 spoke(s) (gsm8k acc; mmlu_pro acc), a radar needs 3"));
}

}  // namespace
}  // namespace moecap::ctl
