// Serving-benchmark summaries (common/records/serving_result.h): each format on the real-layout
// fixtures (tests/fixtures/real/, FORMATS.md §8-10), JSON's Infinity/NaN, appended runs, console
// blocks inside a log and cut short, every bad-input case, and the estimate: Little's-law decode
// batches from the fixtures' own numbers, and the toy model and device of testdata/catalog with
// METRICS.md's worked example as the decode batch (B = 2, P = 3, O = 2), worked out by hand below.
#include "common/records/serving_result.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/catalog.h"

namespace moecap::records {
namespace {

const std::string kReal = MOECAP_REAL_FIXTURES;
const std::string kVllmJson = kReal + "/vllm_bench/vllm_bench_serve_result.json";
const std::string kVllmNoDetail = kReal + "/vllm_bench/vllm_bench_serve_result_no_detail.json";
const std::string kVllmConsole = kReal + "/vllm_bench/vllm_bench_serve_console.txt";
const std::string kSglang = kReal + "/sglang_bench/sglang_bench_serving.json";
const std::string kAiperf = kReal + "/aiperf/profile_export_aiperf.json";

// Two requests of 3 prompt and 2 output tokens at 5 req/s, no concurrency limit.
constexpr char kToyResult[] = R"({
  "backend": "vllm", "model_id": "toy/toy-moe", "date": "20250801-000000",
  "completed": 2, "total_input_tokens": 6, "total_output_tokens": 4,
  "max_concurrency": null, "duration": 10.0, "request_throughput": 5.0,
  "mean_ttft_ms": 1000.0, "median_ttft_ms": 900.0, "p99_ttft_ms": 2000.0,
  "mean_tpot_ms": 400.0, "median_tpot_ms": 400.0, "p99_tpot_ms": 800.0,
  "std_tpot_ms": 12.0, "mean_itl_ms": 400.0, "input_lens": [3, 3], "request_rate": "inf"
})";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.is_open()) << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at == std::string::npos) return text;
  return text.replace(at, from.size(), to);
}

ServingResult Parse(const std::string& text, const std::string& origin = "result.json") {
  absl::StatusOr<ServingResult> r = ParseServingResult(text, origin);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : ServingResult{};
}

std::string Error(const std::string& text, const std::string& origin = "result.json") {
  absl::StatusOr<ServingResult> r = ParseServingResult(text, origin);
  EXPECT_FALSE(r.ok()) << text;
  return r.ok() ? "" : std::string(r.status().message());
}

bool HasNote(const ServingResult& r, absl::string_view part) {
  for (const std::string& n : r.notes) {
    if (absl::StrContains(n, part)) return true;
  }
  return false;
}

// --- vLLM JSON ---------------------------------------------------------------------------------

TEST(ServingResultTest, ParsesTheFieldsAndPercentiles) {
  const ServingResult r = Parse(kToyResult);
  EXPECT_EQ(r.format, ServingFormat::kVllmJson);
  EXPECT_EQ(r.completed, 2);
  EXPECT_EQ(r.total_input_tokens, 6);
  EXPECT_EQ(r.total_output_tokens, 4);
  EXPECT_FALSE(r.max_concurrency.has_value());
  EXPECT_DOUBLE_EQ(r.duration_s, 10);
  EXPECT_DOUBLE_EQ(r.request_throughput, 5);
  EXPECT_DOUBLE_EQ(r.mean_tpot_ms, 400);
  EXPECT_FALSE(r.mean_e2e_ms.has_value());
  ASSERT_TRUE(r.request_rate.has_value());
  EXPECT_TRUE(std::isinf(*r.request_rate));  // the string "inf"
  // median_* becomes p50; std_*, mean_* and itl are not percentiles of TTFT/TPOT.
  EXPECT_EQ(r.ttft_percentiles_ms, (std::map<std::string, double>{{"p50", 900}, {"p99", 2000}}));
  EXPECT_EQ(r.tpot_percentiles_ms, (std::map<std::string, double>{{"p50", 400}, {"p99", 800}}));
  EXPECT_EQ(r.model_id, "toy/toy-moe");
  EXPECT_TRUE(r.notes.empty());
}

TEST(ServingResultTest, ThroughputIsDerivedWhenTheFileHasNone) {
  // 2 completed over 10 s: 0.2 req/s, said in a note.
  const ServingResult r = Parse(Replace(kToyResult, R"(, "request_throughput": 5.0)", ""));
  EXPECT_DOUBLE_EQ(r.request_throughput, 0.2);
  EXPECT_TRUE(HasNote(r, "request_throughput = completed / duration = 0.2 req/s"));
}

TEST(ServingResultTest, BadInputNamesTheFieldOrThePlace) {
  EXPECT_EQ(Error(Replace(kToyResult, R"("completed": 2)", R"("completed": "2")")),
            "result.json: field 'completed': expected an integer");
  EXPECT_EQ(Error(Replace(kToyResult, R"("completed": 2, )", "")),
            "result.json: field 'completed': missing");
  EXPECT_EQ(Error(Replace(kToyResult, R"("completed": 2)", R"("completed": 0)")),
            "result.json: field 'completed': must be at least 1, got 0");
  EXPECT_EQ(Error(Replace(kToyResult, R"("duration": 10.0)", R"("duration": 0)")),
            "result.json: field 'duration': must be positive, got 0");
  EXPECT_EQ(Error(Replace(kToyResult, R"("mean_ttft_ms": 1000.0)", R"("mean_ttft_ms": null)")),
            "result.json: field 'mean_ttft_ms': expected a number");
  EXPECT_EQ(Error(Replace(kToyResult, R"("max_concurrency": null)", R"("max_concurrency": 1.5)")),
            "result.json: field 'max_concurrency': expected an integer");
  EXPECT_EQ(Error(Replace(kToyResult, R"("p99_tpot_ms": 800.0)", R"("p99_tpot_ms": "slow")")),
            "result.json: field 'p99_tpot_ms': expected a number");
  EXPECT_EQ(Error(Replace(kToyResult, R"("request_rate": "inf")", R"("request_rate": "fast")")),
            "result.json: field 'request_rate': expected a positive number or \"inf\"");
  // Line 3 of kToyResult loses its ':' after "completed": column 15 of that line.
  EXPECT_EQ(Error(Replace(kToyResult, R"("completed": 2)", R"("completed" 2)")),
            "result.json:3: invalid JSON at column 15: expected ':'");
  EXPECT_EQ(Error("[1]"),
            "result.json: expected JSON objects (a serving benchmark's summary), found an array");
  EXPECT_EQ(Error(std::string(kToyResult) + "\nx"),
            "result.json:9: invalid JSON at column 1: expected a value");
  // A second object is a second run, and the last is read: an empty one is not a summary.
  EXPECT_TRUE(absl::StartsWith(Error(std::string(kToyResult) + "{}"),
                               "result.json: the last of its 2 objects is not a serving "
                               "benchmark's summary"));
}

TEST(ServingResultTest, UnknownFormatsSayWhichAreRead) {
  for (const std::string& text : {std::string("hello\nworld\n"), std::string("   ")}) {
    const std::string message = Error(text, "x.txt");
    EXPECT_TRUE(absl::StartsWith(message, "x.txt: ")) << message;
    for (const char* format :
         {"vllm-json", "vllm-console", "sglang-console", "sglang-json", "(aiperf)"}) {
      EXPECT_TRUE(absl::StrContains(message, format)) << message;
    }
  }
  EXPECT_TRUE(absl::StrContains(Error(R"({"foo": 1})"), "its object is not a serving"));
}

TEST(ServingResultTest, RealVllmSaveResult) {
  for (const std::string& path : {kVllmJson, kVllmNoDetail}) {
    const ServingResult r = Parse(Slurp(path), path);
    EXPECT_EQ(r.format, ServingFormat::kVllmJson);
    EXPECT_EQ(r.completed, 5);
    EXPECT_EQ(r.total_input_tokens, 5120);
    EXPECT_EQ(r.total_output_tokens, 80);
    EXPECT_EQ(r.max_concurrency, 5);
    EXPECT_EQ(r.max_concurrent_requests, 5.0);
    ASSERT_TRUE(r.request_rate.has_value());
    EXPECT_TRUE(std::isinf(*r.request_rate));
    EXPECT_DOUBLE_EQ(r.request_throughput, 21.42765329404278);
    EXPECT_DOUBLE_EQ(r.mean_ttft_ms, 96.98530179739464);
    EXPECT_FALSE(r.mean_e2e_ms.has_value());  // e2el needs --percentile-metrics
    EXPECT_DOUBLE_EQ(r.ttft_percentiles_ms.at("p50"), 96.8935175187653);
    EXPECT_DOUBLE_EQ(r.tpot_percentiles_ms.at("p99"), 8.944706139348758);
    EXPECT_EQ(r.model_id, "Qwen/Qwen3-30B-A3B");
    EXPECT_EQ(r.date, "20260807-101530");
    EXPECT_TRUE(r.non_finite_fields.empty());
  }
}

TEST(ServingResultTest, AppendedVllmResultsReadTheLast) {
  // --append-result writes "\n" before each later object and no trailing newline.
  const std::string first = Slurp(kVllmNoDetail);
  const std::string second = Replace(first, R"("max_concurrency": 5)", R"("max_concurrency": 4)");
  const std::string third = Replace(first, R"("max_concurrency": 5)", R"("max_concurrency": 3)");
  const ServingResult r = Parse(first + "\n" + second + "\n" + third);
  EXPECT_EQ(r.max_concurrency, 3);
  EXPECT_TRUE(HasNote(r, "the file holds 3 runs (appended results): the last is read"));
}

// --- vLLM and SGLang console blocks -----------------------------------------------------------

TEST(ServingResultTest, VllmConsoleBlockInsideItsLog) {
  const std::string log =
      "INFO 08-07 10:15:29 [__init__.py:241] Automatically detected platform cuda.\n"
      "Starting initial single prompt test run...\n"
      "Initial test run completed. Starting main benchmark run...\n"
      "Traffic request rate: inf\n"
      "Burstiness factor: 1.0 (Poisson process)\n"
      "Maximum request concurrency: 5\n"
      "  0%|          | 0/5 [00:00<?, ?it/s]\r100%|##########| 5/5 [00:00<00:00, 21.43it/s]\n"
      "tip: install termplotlib and gnuplot to plot the metrics\n" +
      Slurp(kVllmConsole) + "Serving benchmark done.\n";
  const ServingResult r = Parse(log, "bench.log");
  EXPECT_EQ(r.format, ServingFormat::kVllmConsole);
  EXPECT_EQ(r.completed, 5);
  EXPECT_EQ(r.total_input_tokens, 5120);
  EXPECT_EQ(r.total_output_tokens, 80);
  EXPECT_DOUBLE_EQ(r.duration_s, 0.23);
  EXPECT_DOUBLE_EQ(r.request_throughput, 21.43);
  EXPECT_DOUBLE_EQ(r.mean_ttft_ms, 96.99);
  EXPECT_DOUBLE_EQ(r.mean_tpot_ms, 8.91);
  EXPECT_EQ(r.max_concurrency, 5);
  EXPECT_EQ(r.max_concurrent_requests, 5.0);  // "Peak concurrent requests: 5.00"
  ASSERT_TRUE(r.request_rate.has_value());    // no "Request rate configured" row: inf
  EXPECT_TRUE(std::isinf(*r.request_rate));
  EXPECT_EQ(r.ttft_percentiles_ms, (std::map<std::string, double>{{"p50", 96.89}, {"p99", 97.67}}));
  EXPECT_EQ(r.tpot_percentiles_ms, (std::map<std::string, double>{{"p50", 8.91}, {"p99", 8.94}}));
  EXPECT_TRUE(r.model_id.empty());
  EXPECT_TRUE(HasNote(r, "two decimals"));

  // Two blocks in one log (two runs): the last is read. The block is 25 lines, so the second
  // header is line 27, after one log line.
  const std::string block = Slurp(kVllmConsole);
  const std::string first = Replace(block, "Successful requests:                     5 ",
                                    "Successful requests:                     4 ");
  const ServingResult last = Parse(first + "Starting the next run...\n" + block, "bench.log");
  EXPECT_EQ(last.completed, 5);
  EXPECT_TRUE(HasNote(last, "the text holds 2 result blocks: the last, at line 27, is read"));
}

TEST(ServingResultTest, TruncatedOrBadConsoleRowsAreRefusedByName) {
  const std::string block = Slurp(kVllmConsole);
  const std::vector<std::string> lines = absl::StrSplit(block, '\n');
  // Cut after line 16 ("P99 TTFT (ms):"): the TPOT section never came.
  const std::string cut =
      absl::StrJoin(std::vector<std::string>(lines.begin(), lines.begin() + 16), "\n") + "\n";
  EXPECT_EQ(Error(cut, "console.txt"),
            "console.txt:1: the 'Serving Benchmark Result' block (lines 1-16) has no row "
            "'Mean TPOT (ms):' and no closing line of '=': was it cut short?; pass the whole "
            "block as the benchmark printed it, or its saved JSON result");
  // Line 7 is "Total generated tokens:", printed only with a tokenizer.
  std::vector<std::string> without = lines;
  without.erase(without.begin() + 6);
  EXPECT_EQ(Error(absl::StrJoin(without, "\n"), "console.txt"),
            "console.txt:1: the 'Serving Benchmark Result' block (lines 1-24) has no row "
            "'Total generated tokens:'; pass the whole block as the benchmark printed it, or its "
            "saved JSON result");
  EXPECT_EQ(Error(Replace(block, "5120      ", "lots      "), "console.txt"),
            "console.txt:6: row 'Total input tokens:': expected an integer, found 'lots'");
}

TEST(ServingResultTest, SglangConsoleBlock) {
  // The block as bench_serving prints it (a blank line first, Backend and Traffic request rate
  // rows, an End-to-End Latency section and no TPOT section), with the SGLang fixture's numbers.
  const std::string block =
      "\n"
      "============ Serving Benchmark Result ============\n"
      "Backend:                                 sglang    \n"
      "Traffic request rate:                    inf       \n"
      "Max request concurrency:                 not set   \n"
      "Successful requests:                     5         \n"
      "Benchmark duration (s):                  0.23      \n"
      "Total input tokens:                      5120      \n"
      "Total generated tokens:                  80        \n"
      "Total generated tokens (retokenized):    80        \n"
      "Request throughput (req/s):              21.76     \n"
      "Input token throughput (tok/s):          22286.50  \n"
      "Output token throughput (tok/s):         348.23    \n"
      "Total token throughput (tok/s):          22634.73  \n"
      "Concurrency:                             4.96      \n"
      "----------------End-to-End Latency----------------\n"
      "Mean E2E Latency (ms):                   227.99    \n"
      "Median E2E Latency (ms):                 227.91    \n"
      "---------------Time to First Token----------------\n"
      "Mean TTFT (ms):                          93.95     \n"
      "Median TTFT (ms):                        93.77     \n"
      "P99 TTFT (ms):                           94.56     \n"
      "---------------Inter-Token Latency----------------\n"
      "Mean ITL (ms):                           8.92      \n"
      "Median ITL (ms):                         8.84      \n"
      "P95 ITL (ms):                            9.78      \n"
      "P99 ITL (ms):                            10.12     \n"
      "Max ITL (ms):                            10.15     \n"
      "==================================================\n";
  const ServingResult r = Parse(block, "sglang.log");
  EXPECT_EQ(r.format, ServingFormat::kSglangConsole);
  EXPECT_EQ(r.backend, "sglang");
  EXPECT_FALSE(r.max_concurrency.has_value());  // "not set"
  ASSERT_TRUE(r.request_rate.has_value());
  EXPECT_TRUE(std::isinf(*r.request_rate));
  EXPECT_EQ(r.mean_e2e_ms, 227.99);
  EXPECT_EQ(r.e2e_percentiles_ms, (std::map<std::string, double>{{"p50", 227.91}}));
  // No TPOT rows: (227.99 − 93.95) / (16 − 1) = 134.04 / 15 = 8.936 ms.
  EXPECT_NEAR(r.mean_tpot_ms, 8.936, 1e-9);
  EXPECT_TRUE(HasNote(r, "the block prints no TPOT"));
}

// --- SGLang JSON lines ------------------------------------------------------------------------

TEST(ServingResultTest, RealSglangLineWithInfinity) {
  const std::string line = Slurp(kSglang);
  const ServingResult r = Parse(line, kSglang);
  EXPECT_EQ(r.format, ServingFormat::kSglangJson);
  EXPECT_EQ(r.completed, 5);
  EXPECT_EQ(r.total_input_tokens, 5120);
  EXPECT_EQ(r.total_output_tokens, 80);
  EXPECT_FALSE(r.max_concurrency.has_value());
  EXPECT_EQ(r.max_concurrent_requests, 5.0);
  ASSERT_TRUE(r.request_rate.has_value());
  EXPECT_TRUE(std::isinf(*r.request_rate));  // the bare token Infinity
  EXPECT_EQ(r.non_finite_fields, std::vector<std::string>{"request_rate: Infinity"});
  EXPECT_EQ(r.mean_e2e_ms, 227.98610592726618);
  EXPECT_DOUBLE_EQ(r.e2e_percentiles_ms.at("p99"), 228.44353853259236);
  EXPECT_DOUBLE_EQ(r.ttft_percentiles_ms.at("p50"), 93.76826861989684);
  EXPECT_EQ(r.model_id, "Qwen/Qwen3-30B-A3B");  // server_info.model_path
  EXPECT_EQ(r.backend, "sglang");

  // A second run appended (`"a"` mode, one line each): the last is read and said.
  const std::string second =
      Replace(Replace(line, R"("max_concurrency": null)", R"("max_concurrency": 4)"),
              R"("request_rate": Infinity)", R"("request_rate": 2.5)");
  const ServingResult two = Parse(line + second, kSglang);
  EXPECT_EQ(two.max_concurrency, 4);
  EXPECT_EQ(two.request_rate, 2.5);
  EXPECT_TRUE(two.non_finite_fields.empty());
  EXPECT_TRUE(HasNote(two, "the file holds 2 runs (appended results): the last is read"));
}

TEST(ServingResultTest, SglangNanAndTraceAndTokensInsideStrings) {
  const std::string line = Slurp(kSglang);
  // No request succeeded end to end: numpy's mean of nothing is written NaN; read as absent.
  const ServingResult nan = Parse(Replace(line, R"("mean_e2e_latency_ms": 227.98610592726618)",
                                          R"("mean_e2e_latency_ms": NaN)"));
  EXPECT_FALSE(nan.mean_e2e_ms.has_value());
  EXPECT_TRUE(HasNote(nan, "mean_e2e_latency_ms is NaN"));
  EXPECT_EQ(nan.non_finite_fields,
            (std::vector<std::string>{"mean_e2e_latency_ms: NaN", "request_rate: Infinity"}));
  EXPECT_EQ(Error(Replace(line, R"("mean_ttft_ms": 93.95493736083154)", R"("mean_ttft_ms": NaN)")),
            "result.json: field 'mean_ttft_ms': expected a finite number, found NaN");
  // --use-trace-timestamps: no rate.
  const ServingResult trace =
      Parse(Replace(line, R"("request_rate": Infinity)", R"("request_rate": "trace")"));
  EXPECT_FALSE(trace.request_rate.has_value());
  EXPECT_TRUE(HasNote(trace, "request_rate \"trace\""));
  // The words inside strings are text, not tokens.
  const ServingResult tag = Parse(Replace(line, R"("tag": null)", R"("tag": "NaN -Infinity")"));
  EXPECT_EQ(tag.non_finite_fields, std::vector<std::string>{"request_rate: Infinity"});
  // Columns of a syntax error are the original text's, not the rewritten one's: the '1' is at
  // column 32 ({ 1, "request_rate" 2-15, : 16, Infinity 18-25, "x" 28-30).
  EXPECT_EQ(Error(R"({"request_rate": Infinity, "x" 1})"),
            "result.json:1: invalid JSON at column 32: expected ':'");
}

// --- AIPerf -----------------------------------------------------------------------------------

TEST(ServingResultTest, RealAiperfProfileExport) {
  const std::string text = Slurp(kAiperf);
  const ServingResult r = Parse(text, kAiperf);
  EXPECT_EQ(r.format, ServingFormat::kAiperf);
  EXPECT_EQ(r.completed, 5);                    // request_count.avg
  EXPECT_EQ(r.total_input_tokens, 5120);        // total_isl.avg
  EXPECT_EQ(r.total_output_tokens, 80);         // total_osl.avg
  EXPECT_DOUBLE_EQ(r.duration_s, 0.231970099);  // benchmark_duration in "sec"
  EXPECT_DOUBLE_EQ(r.request_throughput, 21.554502160211605);
  EXPECT_DOUBLE_EQ(r.mean_ttft_ms, 96.9861);
  EXPECT_DOUBLE_EQ(r.mean_tpot_ms, 8.941107493333334);  // inter_token_latency.avg
  EXPECT_EQ(r.mean_e2e_ms, 231.1027124);                // request_latency.avg
  EXPECT_DOUBLE_EQ(r.ttft_percentiles_ms.at("p50"), 96.89351699999999);
  EXPECT_DOUBLE_EQ(r.tpot_percentiles_ms.at("p99"), 8.962854674666668);
  EXPECT_EQ(r.ttft_percentiles_ms.size(), 9u);  // p1 ... p99
  EXPECT_EQ(r.max_concurrency, 5);              // input_config.loadgen.concurrency
  EXPECT_FALSE(r.request_rate.has_value());
  EXPECT_FALSE(r.max_concurrent_requests.has_value());
  EXPECT_EQ(r.model_id, "Qwen/Qwen3-30B-A3B");  // input_config.endpoint.model_names[0]
  EXPECT_EQ(r.backend, "chat");
  EXPECT_EQ(r.date, "2026-08-07T10:15:30.120000");

  // A unit other than ms is converted: 96986100 ns is 96.9861 ms.
  const std::string in_ns = Replace(text, "\"unit\": \"ms\",\n    \"avg\": 96.9861",
                                    "\"unit\": \"ns\",\n    \"avg\": 96986100.0");
  EXPECT_NEAR(Parse(in_ns).mean_ttft_ms, 96.9861, 1e-9);
  EXPECT_EQ(Error(Replace(text, "\"unit\": \"sec\"", "\"unit\": \"tokens\"")),
            "result.json: field 'benchmark_duration.unit': expected a time unit (ns, us, ms, "
            "sec), got 'tokens'");
  // Without --streaming AIPerf has no TTFT or ITL: the message says what to do.
  const size_t from = text.find("  \"time_to_first_token\"");
  const size_t to = text.find("  \"time_to_second_token\"");
  ASSERT_NE(from, std::string::npos);
  const std::string no_ttft = std::string(text).erase(from, to - from);
  EXPECT_EQ(Error(no_ttft),
            "result.json: field 'time_to_first_token.avg': missing (AIPerf measures it only for "
            "streaming runs: profile with --streaming)");
}

// --- the estimate -----------------------------------------------------------------------------

class ServingEstimateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Catalog> c = Catalog::Load({std::string(MOECAP_RECORDS_TESTDATA) + "/catalog"});
    ASSERT_TRUE(c.ok()) << c.status();
    base_.model = **c->FindModel("toy-moe");
    base_.hardware = **c->FindHardware("toy-gpu");
    base_.devices = 1;
  }
  ServingEstimate Estimate(const ServingResult& r) {
    absl::StatusOr<ServingEstimate> e = EstimateServing(r, base_);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? *e : ServingEstimate{};
  }
  AnalysisInput base_;
};

TEST_F(ServingEstimateTest, TheWorkedExampleFromAResult) {
  const ServingResult r = Parse(kToyResult);
  const ServingEstimate e = Estimate(r);
  // P = 6/2 = 3, O = 4/2 = 2. No mean E2E: TTFT + (O − 1)·TPOT = 1000 + 400 = 1400 ms, so
  // B̄_dec = 5 req/s × (1400 − 1000) ms = 2.0 (no max_concurrency).
  EXPECT_EQ(e.decode.batch, 2);
  EXPECT_EQ(e.batch.basis, "littles_law");
  EXPECT_DOUBLE_EQ(e.batch.littles_law, 2.0);
  EXPECT_DOUBLE_EQ(e.batch.concurrency, 7.0);  // 5 × 1.4 s
  EXPECT_TRUE(e.batch.e2e_derived);
  EXPECT_EQ(e.prefill.batch, 1);
  EXPECT_EQ(e.decode.prompt_len, 3);
  EXPECT_EQ(e.decode.output_len, 2);
  EXPECT_DOUBLE_EQ(*e.decode.ttft_s, 1.0);
  EXPECT_DOUBLE_EQ(*e.decode.tpot_s, 0.4);

  absl::StatusOr<ServingAnalysis> s = AnalyzeServing(r, e);
  ASSERT_TRUE(s.ok()) << s.status();
  const nlohmann::json j = ServingAnalysisJson(r, e, *s);
  EXPECT_TRUE(j["estimated"].get<bool>());
  EXPECT_TRUE(j["valid"].get<bool>());
  EXPECT_EQ(j["mode"], "serving-result");
  EXPECT_EQ(j["format"], "vllm-json");
  EXPECT_EQ(j["decode"]["batch"]["value"], 2);
  EXPECT_EQ(j["decode"]["batch"]["basis"], "littles_law");
  EXPECT_TRUE(j["decode"]["estimated"].get<bool>());
  // The assumptions in the JSON are the estimate's, each once.
  EXPECT_EQ(j["assumptions"].size(), e.assumptions.size());
  // METRICS.md: the mean decode step moves 2464 bytes (A(2) = 3). At TPOT 0.4 s on 1e4 B/s:
  // 2464 / 4000 = 0.616; at p99 TPOT 0.8 s: 0.308. FLOPs 4160: S-MFU 4160 / 40000 = 0.104.
  EXPECT_NEAR(j["decode"]["s_mbu"].get<double>(), 0.616, 1e-12);
  EXPECT_NEAR(j["decode"]["s_mfu"].get<double>(), 0.104, 1e-12);
  EXPECT_NEAR(j["decode"]["at_latency_percentiles"]["p99"]["s_mbu"].get<double>(), 0.308, 1e-12);
  // Prefill of one prompt, T = 3: A(3) = 4·(1 − 0.5³) = 3.5, so Σ_l A_l = 7; bytes 2·(384 + 2·(32
  // + 3.5·96) + 80) = 2400 plus KV 2·3·2·8 = 96: 2496. At the mean TTFT 1 s: 0.2496; at p50 0.9 s:
  // 0.27733. FLOPs 3·1664 + 160 + 2·32·6 = 5536 over 1e5 FLOP/s: 0.05536.
  EXPECT_EQ(j["prefill"]["batch"], 1);
  EXPECT_EQ(j["prefill"]["bound"], "lower");
  EXPECT_NEAR(j["prefill"]["s_mbu"].get<double>(), 0.2496, 1e-12);
  EXPECT_NEAR(j["prefill"]["s_mfu"].get<double>(), 0.05536, 1e-12);
  EXPECT_NEAR(j["prefill"]["at_latency_percentiles"]["p50"]["s_mbu"].get<double>(), 2496 / 9000.0,
              1e-12);
  EXPECT_EQ(j["prefill"]["at_latency_percentiles"]["p50"]["bound"], "lower");
  // A batch of 2 over 1 + 1·0.4 = 1.4 s at $36/h is $0.014 for 4 output tokens: $3,500 per
  // million. The whole run: 10 s is $0.10 for 4 output tokens: $25,000 per million; 0.4 tok/s.
  EXPECT_NEAR(j["cost"]["usd_per_million_output_tokens"].get<double>(), 3500, 1e-6);
  EXPECT_NEAR(j["run_cost"]["usd_per_million_output_tokens"].get<double>(), 25000, 1e-6);
  EXPECT_NEAR(j["run_cost"]["output_tokens_per_s"].get<double>(), 0.4, 1e-12);
  EXPECT_EQ(j["source"]["completed"], 2);
  EXPECT_EQ(j["source"]["request_rate"], "inf");
}

TEST_F(ServingEstimateTest, APercentileOverTheRooflineIsInvalid) {
  // p1 TTFT 100 ms: 2496 B / 0.1 s / 1e4 B/s = 2.496, which the hardware rules out.
  const ServingResult r = Parse(Replace(kToyResult, R"("median_ttft_ms": 900.0)",
                                        R"("median_ttft_ms": 900.0, "p1_ttft_ms": 100.0)"));
  const ServingEstimate e = Estimate(r);
  absl::StatusOr<ServingAnalysis> s = AnalyzeServing(r, e);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_NEAR(s->prefill_at_percentiles.at("p1").s_mbu, 2.496, 1e-12);
  const Validity v = AnalysisValidity(s->analysis);
  EXPECT_FALSE(v.valid);
  ASSERT_FALSE(v.reasons.empty());
  EXPECT_TRUE(absl::StartsWith(v.reasons[0], "prefill S-MBU at p1 249.6% is over 100%"))
      << v.reasons[0];
}

TEST_F(ServingEstimateTest, RealFixturesDecodeBatches) {
  {
    // vLLM: max_concurrency 5 and max_concurrent_requests 5: saturated, B = 5. Little's law for
    // the record: E2E = 96.98530 + 15 × 8.91477 = 230.70680 ms; 21.42765 req/s × (230.70680 −
    // 96.98530) ms = 2.86534 in decode, 21.42765 × 0.23071 = 4.94351 in flight.
    const ServingEstimate e = Estimate(Parse(Slurp(kVllmJson)));
    EXPECT_EQ(e.decode.batch, 5);
    EXPECT_EQ(e.batch.basis, "max_concurrency");
    EXPECT_TRUE(e.batch.e2e_derived);
    EXPECT_NEAR(e.batch.mean_e2e_ms, 230.70680, 1e-5);
    EXPECT_NEAR(e.batch.littles_law, 2.86534, 1e-5);
    EXPECT_NEAR(e.batch.concurrency, 4.94351, 1e-5);
    EXPECT_EQ(e.decode.prompt_len, 1024);  // 5120 / 5
    EXPECT_EQ(e.decode.output_len, 16);    // 80 / 5
    EXPECT_TRUE(absl::StrContains(e.batch.why, "peak concurrent requests 5 ≥ 5"));
  }
  {
    // SGLang: no max_concurrency, so Little's law: 21.76416 req/s × (227.98611 − 93.95494) ms =
    // 2.91708, rounded to 3. (21.76416 × 0.22799 = 4.96193, the file's own "concurrency".)
    const ServingEstimate e = Estimate(Parse(Slurp(kSglang)));
    EXPECT_EQ(e.decode.batch, 3);
    EXPECT_EQ(e.batch.basis, "littles_law");
    EXPECT_FALSE(e.batch.e2e_derived);
    EXPECT_NEAR(e.batch.littles_law, 2.91708, 1e-5);
    EXPECT_NEAR(e.batch.concurrency, 4.96193, 1e-5);
  }
  {
    // AIPerf: concurrency 5 and no peak; Little's law in flight 21.55450 × 0.23110 = 4.98130 ≥
    // 0.9 × 5: saturated, B = 5. In decode: 21.55450 × (231.10271 − 96.98610) ms = 2.89082.
    const ServingEstimate e = Estimate(Parse(Slurp(kAiperf)));
    EXPECT_EQ(e.decode.batch, 5);
    EXPECT_EQ(e.batch.basis, "max_concurrency");
    EXPECT_NEAR(e.batch.concurrency, 4.98130, 1e-5);
    EXPECT_NEAR(e.batch.littles_law, 2.89082, 1e-5);
    EXPECT_TRUE(absl::StrContains(e.batch.why, "Little's-law concurrency 4.9813"));
  }
  {
    // The console's rounded figures: 21.43 × (96.99 + 15 × 8.91) ms = 21.43 × 0.23064 = 4.94262:
    // saturated again.
    const ServingEstimate e = Estimate(Parse(Slurp(kVllmConsole)));
    EXPECT_EQ(e.decode.batch, 5);
    EXPECT_NEAR(e.batch.concurrency, 4.94262, 1e-5);
  }
}

TEST_F(ServingEstimateTest, AnUnsaturatedLimitFallsBackToLittlesLaw) {
  ServingResult r;
  r.completed = 100;
  r.total_input_tokens = 100 * 500;
  r.total_output_tokens = 100 * 201;
  r.duration_s = 10;
  r.request_throughput = 10;
  r.mean_ttft_ms = 500;
  r.mean_tpot_ms = 10;
  r.mean_e2e_ms = 2500;
  r.max_concurrency = 32;
  // In flight 10 × 2.5 s = 25 < 0.9 × 32 = 28.8: not saturated; in decode 10 × 2.0 s = 20.
  ServingEstimate e = Estimate(r);
  EXPECT_EQ(e.decode.batch, 20);
  EXPECT_EQ(e.batch.basis, "littles_law");
  EXPECT_TRUE(absl::StrContains(e.batch.why, "max_concurrency 32 was not saturated"))
      << e.batch.why;
  // The client saw 32 in flight at its peak: the limit was reached, B = 32.
  r.max_concurrent_requests = 32;
  e = Estimate(r);
  EXPECT_EQ(e.decode.batch, 32);
  EXPECT_EQ(e.batch.basis, "max_concurrency");
  // A limit above the requests there were is capped at them: 5 requests, limit 8, 5 in flight.
  r.completed = 5;
  r.total_input_tokens = 5 * 500;
  r.total_output_tokens = 5 * 201;
  r.max_concurrency = 8;
  r.max_concurrent_requests = 5;
  e = Estimate(r);
  EXPECT_EQ(e.decode.batch, 5);
  EXPECT_TRUE(absl::StrContains(e.batch.why, "(capped at the completed requests)"));
}

TEST_F(ServingEstimateTest, OneTokenHasNoDecodeAndBadMeansAreRefused) {
  ServingResult r;
  r.completed = 3;
  r.total_input_tokens = 30;
  r.total_output_tokens = 3;
  r.duration_s = 1;
  r.request_throughput = 3;
  r.mean_ttft_ms = 100;
  r.mean_tpot_ms = 0;
  ServingEstimate e = Estimate(r);
  // E2E = 100 ms + 0: nothing in decode, B̄_dec = 0, at least one.
  EXPECT_EQ(e.decode.batch, 1);
  EXPECT_TRUE(absl::StrContains(e.batch.why, "= 0, at least one"));
  EXPECT_EQ(e.decode.output_len, 1);
  EXPECT_FALSE(e.decode.tpot_s.has_value());
  EXPECT_EQ(e.assumptions.back(), "no decode figures: the mean output is one token");
  absl::StatusOr<ServingAnalysis> s = AnalyzeServing(r, e);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->analysis.decode.has_value());
  EXPECT_TRUE(s->analysis.prefill.validity.estimated);

  r.total_output_tokens = 1;  // 1/3 token per request rounds to 0
  absl::StatusOr<ServingEstimate> bad = EstimateServing(r, base_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "field 'total_output_tokens': a mean output of 0.333333 tokens per request is below "
            "one token");
  r.total_output_tokens = 30;
  r.mean_tpot_ms = 10;
  r.mean_e2e_ms = 50;  // below the TTFT
  bad = EstimateServing(r, base_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "mean E2E latency 50 ms is below the mean TTFT 100 ms: the summary is inconsistent");
}

TEST_F(ServingEstimateTest, TheExampleFileParses) {
  // 200 requests at 3.263 req/s, max_concurrency 32: E2E = 412.5 + 255 × 36.2 = 9643.5 ms,
  // in flight 3.263 × 9.6435 = 31.467 ≥ 28.8: B = 32.
  const ServingResult r =
      Parse(Slurp(std::string(MOECAP_EXAMPLES_RECORDS) + "/vllm-qwen3-30b-a3b-h100.json"));
  EXPECT_EQ(r.max_concurrency, 32);
  EXPECT_EQ(r.completed, 200);
  EXPECT_EQ(Estimate(r).decode.batch, 32);
}

TEST(ModelIdTest, ComparesWithoutOrganisationCaseOrPath) {
  ModelSpec m;
  m.name = "mixtral-8x7b";
  m.display_name = "Mixtral-8x7B";
  m.aliases = {"mistralai/Mixtral-8x7B-v0.1", "mixtral-8x7b-instruct"};
  EXPECT_TRUE(ModelIdMatches("mistralai/Mixtral-8x7B-v0.1", m));
  EXPECT_TRUE(ModelIdMatches("someone/MIXTRAL-8x7B", m));   // the catalog name, another org
  EXPECT_TRUE(ModelIdMatches("/models/mixtral_8x7b/", m));  // a local path; '_' reads as '-'
  EXPECT_TRUE(ModelIdMatches("Mixtral-8x7B-Instruct", m));
  EXPECT_FALSE(ModelIdMatches("Qwen/Qwen3-30B-A3B", m));
  EXPECT_FALSE(ModelIdMatches("mixtral", m));
  EXPECT_FALSE(ModelIdMatches("", m));
}

}  // namespace
}  // namespace moecap::records
