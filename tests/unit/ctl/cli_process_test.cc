// moecapctl as a user runs it: a child process with arguments, its exit code, stdout and stderr.
// Covers `analyze --records` and `--serving-result` in every output format, every kind of bad
// input, the step mode's flags and keys, and `plot` (the SVGs are parsed by python3's XML parser
// and their points counted).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace {

constexpr char kCtl[] = MOECAPCTL_PATH;
const std::string kTestdata = MOECAP_RECORDS_TESTDATA;
const std::string kExamples = MOECAP_EXAMPLES_RECORDS;
const std::string kToyCatalog = kTestdata + "/catalog";
const std::string kToyPasses = kTestdata + "/toy_passes.jsonl";
const std::string kExamplePasses = kExamples + "/mixtral-8x7b-h100x2.jsonl";
const std::string kExampleVllm = kExamples + "/vllm-qwen3-30b-a3b-h100.json";
const std::string kReal = MOECAP_REAL_FIXTURES;

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string TempPath(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / name).string();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Runs `program args...` with stdout and stderr in files; the wait is bounded (60 s).
Result RunProcess(const std::string& program, const std::vector<std::string>& args) {
  static int counter = 0;
  const std::string base =
      TempPath("run" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  const std::string out_path = base + ".out", err_path = base + ".err";
  std::vector<std::string> argv_strings = {program};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int in = ::open("/dev/null", O_RDONLY);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  Result r;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ADD_FAILURE() << program << " did not finish within 60 s";
      return r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(out_path);
  r.err = Slurp(err_path);
  return r;
}

Result Ctl(std::vector<std::string> args) { return RunProcess(kCtl, args); }

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  return lines;
}

// --- analyze --records ---------------------------------------------------------------------

TEST(AnalyzeRecordsCliTest, JsonOfTheToyFile) {
  const Result r = Ctl({"--catalog", kToyCatalog, "analyze", "--records", kToyPasses, "--model",
                        "toy-moe", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  // Hand-checked in tests/unit/common/records/records_analysis_test.cc: decode 2016 + 2816 bytes.
  EXPECT_DOUBLE_EQ(j["decode"]["bytes"].get<double>(), 4832);
  EXPECT_DOUBLE_EQ(j["prefill"]["s_mbu"].get<double>(), 0.576);
  EXPECT_EQ(j["hardware"], "toy-gpu");
  EXPECT_EQ(j["skipped"]["count"], 2);
  // The skips are reported on stderr, stdout stays JSON.
  EXPECT_TRUE(absl::StrContains(r.err, "warning: skipped 2 of 6 records")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, kToyPasses + ":3: expert_activation missing or null"));
}

TEST(AnalyzeRecordsCliTest, TableHasOneRowPerPhaseAndExplainTheTerms) {
  const Result r = Ctl({"--catalog", kToyCatalog, "analyze", "--records", kToyPasses, "--model",
                        "toy-moe", "--explain"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out,
                                "Toy-MoE on 1 x Toy GPU, bf16: 6 records, 4 passes "
                                "counted, 2 skipped"))
      << r.out;
  int phase_rows = 0;
  for (const std::string& line : Lines(r.out)) {
    if (absl::StartsWith(line, "prefill  2") || absl::StartsWith(line, "decode   2")) ++phase_rows;
  }
  EXPECT_EQ(phase_rows, 2) << r.out;
  // Prefill S-MBU 57.6 % (5184 B / 0.9 s / 1e4 B/s), decode 74.3 %.
  EXPECT_TRUE(absl::StrContains(r.out, "57.6 %"));
  EXPECT_TRUE(absl::StrContains(r.out, "74.3 %"));
  EXPECT_TRUE(absl::StrContains(r.out, "breakdown (METRICS.md terms"));
  // Decode KV cache: 608 B of 4832 = 12.6 %.
  bool kv_row = false;
  for (const std::string& line : Lines(r.out)) {
    if (absl::StartsWith(line, "kv_cache") && absl::StrContains(line, "608 B") &&
        absl::StrContains(line, "12.6 %")) {
      kv_row = true;
    }
  }
  EXPECT_TRUE(kv_row) << r.out;
}

TEST(AnalyzeRecordsCliTest, CsvIsAHeaderAndOneRowPerPhase) {
  const Result r = Ctl({"--catalog", kToyCatalog, "analyze", "--records", kToyPasses, "--model",
                        "toy-moe", "-o", "csv"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_TRUE(absl::StartsWith(lines[0], "source,model,hardware,gpus,phase,passes,tokens,bytes,"));
  EXPECT_TRUE(absl::StrContains(lines[1], ",toy-moe,toy-gpu,1,prefill,2,9,5184,16800,0.9,0.576,"))
      << lines[1];
  EXPECT_TRUE(absl::StrContains(lines[2], ",decode,2,3,4832,6688,0.65,")) << lines[2];
}

TEST(AnalyzeRecordsCliTest, CsvWithExplainAddsTheTermsAndStdinWorks) {
  Result r = Ctl({"--catalog", kToyCatalog, "analyze", "--records", kToyPasses, "--model",
                  "toy-moe", "-o", "csv", "--explain"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_TRUE(absl::EndsWith(lines[0], ",attention_scores.bytes,attention_scores.flops"));
  // Decode: kv_cache 608 bytes (192 + 416), attention_scores 1216 FLOPs (384 + 832).
  EXPECT_TRUE(absl::EndsWith(lines[2], ",608,0,0,1216")) << lines[2];

  r = RunProcess("/bin/sh",
                 {"-c", std::string(kCtl) + " --catalog " + kToyCatalog +
                            " analyze --records - --model toy-moe -o json < " + kToyPasses});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["source"], "stdin");
  EXPECT_DOUBLE_EQ(j["decode"]["bytes"].get<double>(), 4832);
}

TEST(AnalyzeRecordsCliTest, PerPassStreamsJsonLinesOrCsv) {
  Result r = Ctl({"--catalog", kToyCatalog, "analyze", "--records", kToyPasses, "--model",
                  "toy-moe", "--per-pass", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 4u);  // the 4 counted passes
  const nlohmann::json second = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(second["line"], 2);
  EXPECT_EQ(second["phase"], "decode");
  EXPECT_DOUBLE_EQ(second["bytes"].get<double>(), 2016);
  EXPECT_DOUBLE_EQ(second["start_s"].get<double>(), 0.5);

  r = Ctl({"--catalog", kToyCatalog, "analyze", "--records", kToyPasses, "--model", "toy-moe",
           "--per-pass", "-o", "csv"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0],
            "model,hardware,gpus,line,forward_pass_id,phase,start_s,latency_s,batch,tokens,"
            "activated_experts,bytes,flops,s_mbu,s_mfu,roofline_s_mbu,roofline_s_mfu,"
            "tokens_per_s,usd_per_million_tokens,valid,estimated");
  EXPECT_TRUE(absl::StartsWith(lines[2], "toy-moe,toy-gpu,1,2,2,decode,0.5,0.25,1,1,2,2016,2208,"))
      << lines[2];

  r = Ctl({"--catalog", kToyCatalog, "analyze", "--records", kToyPasses, "--model", "toy-moe",
           "--per-pass"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "moecapctl analyze: error: --per-pass: writes CSV or JSON lines: add -o csv or -o "
            "json\n");
}

TEST(AnalyzeRecordsCliTest, BadInputExitsOneWithFileLineAndField) {
  const std::string bad = TempPath("bad_passes.jsonl");
  WriteFile(bad, Slurp(kToyPasses) +
                     R"({"forward_mode": "decode", "batch_size": "32", "latency": 0.1})" + "\n");
  Result r = Ctl({"--catalog", kToyCatalog, "analyze", "--records", bad, "--model", "toy-moe"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "moecapctl analyze: error: " + bad + ":7: field 'batch_size': expected an integer\n");
  EXPECT_EQ(r.out, "");

  r = Ctl({"--catalog", kToyCatalog, "analyze", "--records", bad, "--model", "toy-moe",
           "--skip-bad", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["skipped"]["count"], 3);
  EXPECT_EQ(j["skipped"]["reasons"]["field 'batch_size': expected an integer"], 1);
  EXPECT_TRUE(absl::StrContains(r.err, bad + ":7: field 'batch_size': expected an integer"));
}

TEST(AnalyzeRecordsCliTest, EmptyOrMissingFilesAndNoUsablePassExitOne) {
  const std::string empty = TempPath("empty.jsonl");
  WriteFile(empty, "");
  Result r = Ctl({"--catalog", kToyCatalog, "analyze", "--records", empty, "--model", "toy-moe"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "moecapctl analyze: error: " + empty + ": no records: the file is empty\n");

  const std::string skipped_only = TempPath("skipped_only.jsonl");
  WriteFile(skipped_only,
            R"({"forward_mode": "decode", "batch_size": 1, "latency": 0.1, "seq_lens_sum": 2})"
            "\n");
  r = Ctl({"--catalog", kToyCatalog, "analyze", "--records", skipped_only, "--model", "toy-moe"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "no usable pass: all 1 records were skipped")) << r.err;

  const std::string missing = TempPath("does_not_exist.jsonl");
  r = Ctl({"--catalog", kToyCatalog, "analyze", "--records", missing, "--model", "toy-moe"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "moecapctl analyze: error: " + missing + ": cannot open: No such file or directory\n");
}

TEST(AnalyzeRecordsCliTest, DeviceFromTheRecordsOrTheFlags) {
  const std::string bare = TempPath("bare.jsonl");
  WriteFile(bare,
            R"({"forward_mode": "decode", "batch_size": 1, "latency": 0.25, "seq_lens_sum": 6,)"
            R"( "expert_activation": 2})"
            "\n");
  Result r = Ctl({"--catalog", kToyCatalog, "analyze", "--records", bare, "--model", "toy-moe"});
  EXPECT_EQ(r.exit_code, 2);  // a flag must give what the records lack
  EXPECT_TRUE(absl::StrContains(r.err, bare + ":1: the record has no gpu_raw_type: pass "
                                              "--hardware NAME"))
      << r.err;
  r = Ctl({"--catalog", kToyCatalog, "analyze", "--records", bare, "--model", "toy-moe",
           "--hardware", "toy-gpu", "--gpus", "2", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // 2016 B in 0.25 s on 2 devices of 1e4 B/s: 0.4032.
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(r.out)["decode"]["s_mbu"].get<double>(), 0.4032);

  const std::string unknown = TempPath("unknown_device.jsonl");
  WriteFile(unknown,
            R"({"forward_mode": "decode", "batch_size": 1, "latency": 0.25, "seq_lens_sum": 6,)"
            R"( "expert_activation": 2, "gpu_num": 1, "gpu_raw_type": "ACME-X1-96GB"})"
            "\n");
  r = Ctl({"--catalog", kToyCatalog, "analyze", "--records", unknown, "--model", "toy-moe"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err,
                                "field 'gpu_raw_type': unknown device 'ACME-X1-96GB': "
                                "pass --hardware NAME"))
      << r.err;
}

TEST(AnalyzeRecordsCliTest, StepFlagsAreUsageErrorsWithRecords) {
  Result r = Ctl({"--catalog", kToyCatalog, "analyze", "--records", kToyPasses, "--model",
                  "toy-moe", "--batch", "8"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "moecapctl analyze: error: --batch: not used with --records (each record gives its "
            "pass's shape)\n");
  r = Ctl({"--catalog", kToyCatalog, "analyze", "--records", kToyPasses, "--vllm-result",
           kExampleVllm, "--model", "toy-moe"});
  EXPECT_EQ(r.exit_code, 2);
  r = Ctl({"--catalog", kToyCatalog, "analyze", "--records", kToyPasses});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "--model: required")) << r.err;
}

TEST(AnalyzeRecordsCliTest, TheDocsExampleResolvesTheRawDeviceName) {
  const Result r =
      Ctl({"analyze", "--records", kExamplePasses, "--model", "mixtral-8x7b", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["hardware"], "h100-sxm");
  EXPECT_EQ(j["hardware_from"], "gpu_raw_type 'NVIDIA-H100-80GB-HBM3'");
  EXPECT_EQ(j["gpus"], 2);
  EXPECT_EQ(j["decode"]["passes"], 19);
  EXPECT_EQ(j["prefill"]["passes"], 4);
}

TEST(AnalyzeRecordsCliTest, ConventionMoecapPrintsBothFiguresAndTheGapShares) {
  const std::string detailed = kReal + "/moecap_records/detailed_results_example.jsonl";
  const Result json =
      Ctl({"analyze", "--records", detailed, "--model", "qwen3-30b-a3b", "--hardware", "h100-sxm",
           "--gpus", "1", "--convention", "moecap", "-o", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const nlohmann::json c = nlohmann::json::parse(json.out)["moecap_convention"];
  EXPECT_EQ(c["gpu"], "NVIDIA-H100-HBM3-80GB");  // --hardware's MoE-CAP name
  EXPECT_EQ(c["formulas"], "qwen3");
  ASSERT_TRUE(c["decode"].contains("shares_of_gap"));
  // The shares and the rest add up to the whole gap.
  double sum = 0;
  for (const auto& share : c["decode"]["shares_of_gap"]) sum += share["s_mbu"].get<double>();
  EXPECT_NEAR(sum, 1.0, 1e-9);
  EXPECT_TRUE(c["cost"]["usd"].is_null());  // its cost table lacks the name its recorder writes

  const Result table = Ctl({"analyze", "--records", detailed, "--model", "qwen3-30b-a3b",
                            "--hardware", "h100-sxm", "--gpus", "1", "--convention", "moecap"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(absl::StrContains(table.out, "MoE-CAP's own figures from the same records"));
  EXPECT_TRUE(absl::StrContains(table.out, "decode: one difference counted moecap's way"));
  // Only records have passes to recount; CSV has no place for the comparison.
  EXPECT_EQ(Ctl({"analyze", "--model", "qwen3-30b-a3b", "--hardware", "h100-sxm", "--batch", "1",
                 "--prompt-len", "8", "--convention", "moecap"})
                .exit_code,
            2);
  EXPECT_EQ(Ctl({"analyze", "--records", detailed, "--model", "qwen3-30b-a3b", "--hardware",
                 "h100-sxm", "--gpus", "1", "--convention", "moecap", "-o", "csv"})
                .exit_code,
            2);
}

TEST(AnalyzeRecordsCliTest, ALayoutAddsPhysicalTrafficAndAWrongOneIsRefused) {
  const Result r = Ctl({"analyze", "--records", kExamplePasses, "--model", "mixtral-8x7b", "--tp",
                        "1", "--dp-attention", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["layout"]["attention_replicas"], 2.0);
  // Two attention replicas: attention, LM head and router are read a second time.
  const nlohmann::json& d = j["decode"];
  const double again = d["breakdown"]["attention"]["bytes"].get<double>() +
                       d["breakdown"]["lm_head"]["bytes"].get<double>() +
                       d["breakdown"]["router"]["bytes"].get<double>();
  EXPECT_DOUBLE_EQ(d["hbm"]["replication_bytes"].get<double>(), again);
  EXPECT_DOUBLE_EQ(d["breakdown"]["replication"]["bytes"].get<double>(), again);
  // --tp 3 cannot divide the file's 2 devices; --dp-attention needs --tp.
  const Result bad =
      Ctl({"analyze", "--records", kExamplePasses, "--model", "mixtral-8x7b", "--tp", "3"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(bad.err, "--tp: 3 does not divide the device count 2")) << bad.err;
  EXPECT_EQ(
      Ctl({"analyze", "--records", kExamplePasses, "--model", "mixtral-8x7b", "--dp-attention"})
          .exit_code,
      2);
}

// --- analyze --serving-result (alias --vllm-result) -----------------------------------------

TEST(AnalyzeServingCliTest, EstimatedInEveryFormat) {
  Result r = Ctl({"analyze", "--serving-result", kExampleVllm, "--model", "qwen3-30b-a3b",
                  "--hardware", "h100-sxm", "--gpus", "1", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["mode"], "serving-result");
  EXPECT_EQ(j["format"], "vllm-json");
  EXPECT_TRUE(j["estimated"].get<bool>());
  // max_concurrency 32; E2E = 412.5 + 255 × 36.2 = 9643.5 ms, so 3.263 req/s × 9.6435 s = 31.47
  // in flight, within 10% of 32: the limit was saturated.
  EXPECT_EQ(j["inputs"]["batch"], 32);
  EXPECT_EQ(j["decode"]["batch"]["value"], 32);
  EXPECT_EQ(j["decode"]["batch"]["basis"], "max_concurrency");
  EXPECT_EQ(j["inputs"]["prompt_len"], 1024);  // 204800 / 200
  EXPECT_EQ(j["inputs"]["output_len"], 256);   // 51200 / 200
  EXPECT_DOUBLE_EQ(j["inputs"]["tpot_s"].get<double>(), 0.0362);
  EXPECT_EQ(j["prefill"]["batch"], 1);
  EXPECT_EQ(j["prefill"]["bound"], "lower");
  EXPECT_EQ(j["prefill"]["tokens"], 1024);  // one prompt
  EXPECT_FALSE(j["assumptions"].empty());
  EXPECT_TRUE(j["decode"]["breakdown"].contains("routed_experts"));
  // The machine formats keep stdout JSON: the assumptions also go to stderr.
  EXPECT_TRUE(absl::StrContains(r.err, "estimated: decode batch B = 32")) << r.err;

  r = Ctl({"analyze", "--serving-result", kExampleVllm, "--model", "qwen3-30b-a3b", "--hardware",
           "h100-sxm", "--gpus", "1", "--explain"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.out, "ESTIMATED from the serving-benchmark summary")) << r.out;
  EXPECT_TRUE(absl::StrContains(
      r.out, "estimated: decode batch B = 32: the run's max_concurrency 32 was saturated"));
  EXPECT_TRUE(absl::StrContains(r.out, "breakdown (METRICS.md terms"));
  EXPECT_TRUE(absl::StrContains(r.out, "decode at p99 TPOT"));
  EXPECT_TRUE(absl::StrContains(r.out, "prefill at p50 TTFT"));
  // The warnings and assumptions come before the table.
  EXPECT_LT(r.out.find("estimated: "), r.out.find("S-MBU at roofline"));

  r = Ctl({"analyze", "--serving-result", kExampleVllm, "--model", "qwen3-30b-a3b", "--hardware",
           "h100-sxm", "--gpus", "1", "-o", "csv"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(absl::EndsWith(lines[0], ",format,decode.batch_basis,prefill.bound,estimated"));
  EXPECT_TRUE(absl::EndsWith(lines[1], ",vllm-json,max_concurrency,lower,true"));
}

TEST(AnalyzeServingCliTest, TheVllmResultAliasStillWorks) {
  const Result r = Ctl({"analyze", "--vllm-result", kExampleVllm, "--model", "qwen3-30b-a3b",
                        "--hardware", "h100-sxm", "--gpus", "1", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["mode"], "serving-result");
  EXPECT_EQ(j["source"]["completed"], 200);
}

TEST(AnalyzeServingCliTest, EachRealFormat) {
  // Little's law on the SGLang run (no limit): 21.76416 req/s × (227.98611 − 93.95494) ms =
  // 2.917, so B = 3; AIPerf's concurrency 5 was saturated (21.5545 × 0.2311 = 4.98 in flight).
  for (const auto& [path, format, batch] :
       {std::tuple{kReal + "/sglang_bench/sglang_bench_serving.json", "sglang-json", 3},
        std::tuple{kReal + "/aiperf/profile_export_aiperf.json", "aiperf", 5},
        std::tuple{kReal + "/vllm_bench/vllm_bench_serve_console.txt", "vllm-console", 5}}) {
    const Result r = Ctl({"analyze", "--serving-result", path, "--model", "qwen3-30b-a3b",
                          "--hardware", "h100-sxm", "--gpus", "1", "-o", "json"});
    ASSERT_EQ(r.exit_code, 0) << path << ": " << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["format"], format);
    EXPECT_EQ(j["decode"]["batch"]["value"], batch) << path;
    // The summaries that name the model name this one: no warning.
    EXPECT_FALSE(absl::StrContains(r.err, "warning:")) << r.err;
  }
}

TEST(AnalyzeServingCliTest, GpusAndHardwareAreRequired) {
  Result r = Ctl({"analyze", "--serving-result", kExampleVllm, "--model", "qwen3-30b-a3b",
                  "--hardware", "h100-sxm"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "moecapctl analyze: error: --gpus: required with --serving-result (the summary does "
            "not say how many devices served it: give the tensor × pipeline × data-parallel "
            "size)\n");
  EXPECT_TRUE(r.out.empty());
  r = Ctl({"analyze", "--serving-result", kExampleVllm, "--model", "qwen3-30b-a3b", "--gpus", "1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "--hardware: required with --serving-result")) << r.err;
}

TEST(AnalyzeServingCliTest, ModelIdMismatchWarnsAndStrictRefuses) {
  const std::string sglang = kReal + "/sglang_bench/sglang_bench_serving.json";
  Result r = Ctl({"analyze", "--serving-result", sglang, "--model", "mixtral-8x7b", "--hardware",
                  "h100-sxm", "--gpus", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "moecapctl analyze: warning: " + sglang +
                                           ": model_id 'Qwen/Qwen3-30B-A3B' is not --model "
                                           "mixtral-8x7b"))
      << r.err;
  EXPECT_FALSE(absl::StrContains(r.out, "model_id")) << "the warning belongs on stderr";
  EXPECT_TRUE(absl::StartsWith(r.out, "ESTIMATED")) << r.out;

  r = Ctl({"analyze", "--serving-result", sglang, "--model", "mixtral-8x7b", "--hardware",
           "h100-sxm", "--gpus", "2", "--strict", "-o", "json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_TRUE(absl::StartsWith(r.err, "moecapctl analyze: error: --strict: " + sglang +
                                          ": model_id 'Qwen/Qwen3-30B-A3B' is not --model "
                                          "mixtral-8x7b"))
      << r.err;

  // The organisation prefix and case do not matter: Qwen/Qwen3-30B-A3B is qwen3-30b-a3b.
  r = Ctl({"analyze", "--serving-result", sglang, "--model", "qwen3-30b-a3b", "--hardware",
           "h100-sxm", "--gpus", "1", "--strict", "-o", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(absl::StrContains(r.err, "model_id")) << r.err;
}

TEST(AnalyzeServingCliTest, ErrorsNameTheFieldAndExitOne) {
  const std::string bad = TempPath("bad_result.json");
  WriteFile(bad, R"({"completed": "200", "total_input_tokens": 1})");
  Result r = Ctl({"analyze", "--serving-result", bad, "--model", "qwen3-30b-a3b", "--hardware",
                  "h100-sxm", "--gpus", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "moecapctl analyze: error: " + bad + ": field 'completed': expected an integer\n");
  const std::string text = TempPath("not_a_result.txt");
  WriteFile(text, "hello\n");
  r = Ctl({"analyze", "--serving-result", text, "--model", "qwen3-30b-a3b", "--hardware",
           "h100-sxm", "--gpus", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "AIPerf's profile_export_aiperf.json (aiperf)")) << r.err;
  r = Ctl({"analyze", "--serving-result", kExampleVllm, "--model", "qwen3-30b-a3b", "--hardware",
           "h100-sxm", "--gpus", "1", "--per-pass", "-o", "json"});
  EXPECT_EQ(r.exit_code, 2);
  r = Ctl({"analyze", "--serving-result", kExampleVllm, "--model", "qwen3-30b-a3b", "--hardware",
           "h100-sxm", "--gpus", "1", "--batch", "4"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "--batch: not used with --serving-result")) << r.err;
}

// --- the step mode keeps its flags and keys ------------------------------------------------

TEST(AnalyzeStepCliTest, StillWorksAsBefore) {
  Result r = Ctl({"analyze", "--model", "mixtral-8x7b", "--hardware", "h100-sxm", "--gpus", "2",
                  "--batch", "32", "--prompt-len", "512", "--output-len", "256", "--ttft-s", "0.41",
                  "--tpot-s", "0.023", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  for (const char* key : {"inputs", "peaks", "prefill", "decode", "cost"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["estimated"], false);  // measured times, no estimate
  EXPECT_EQ(j["valid"], true);
  EXPECT_FALSE(j.contains("mode"));
  r = Ctl({"analyze", "--model", "mixtral-8x7b", "--hardware", "h100-sxm", "--prompt-len", "8",
           "--explain"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "term              prefill bytes  share"));
  r = Ctl({"analyze", "--model", "mixtral-8x7b", "--hardware", "h100-sxm", "--prompt-len", "8",
           "--per-pass"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "moecapctl analyze: error: --per-pass: only with --records FILE\n");
  r = Ctl({"analyze", "--model", "mixtral-8x7b", "--hardware", "h100-sxm"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "--prompt-len: required")) << r.err;
}

// --- plot ----------------------------------------------------------------------------------

bool HaveProgram(const std::string& name) {
  return RunProcess("/bin/sh", {"-c", "command -v " + name + " >/dev/null"}).exit_code == 0;
}

// Parses the SVG with python3's XML parser; returns the number of point marks (gnuplot draws
// each as a <use> translated into place, inside its plot's group), or -1 when it does not parse.
int CountSvgPoints(const std::string& svg) {
  const Result r = RunProcess("/usr/bin/env", {"python3", "-c", R"PY(
import sys, xml.etree.ElementTree as ET
ns = '{http://www.w3.org/2000/svg}'
root = ET.parse(sys.argv[1]).getroot()
count = 0
for g in root.iter(ns + 'g'):
    if (g.get('id') or '').startswith('gnuplot_plot'):
        count += sum(1 for u in g.iter(ns + 'use') if 'translate' in (u.get('transform') or ''))
print(count)
)PY",
                                               svg});
  if (r.exit_code != 0) {
    ADD_FAILURE() << "SVG does not parse: " << r.err;
    return -1;
  }
  return std::stoi(r.out);
}

class PlotCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveProgram("gnuplot")) GTEST_SKIP() << "gnuplot is not installed";
    if (!HaveProgram("python3")) GTEST_SKIP() << "python3 is not installed";
    rows_ = TempPath("example_rows.jsonl");
    const Result r = Ctl({"analyze", "--records", kExamplePasses, "--model", "mixtral-8x7b",
                          "--per-pass", "-o", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    WriteFile(rows_, r.out);
  }
  std::string rows_;
};

TEST_F(PlotCliTest, EachKindRendersTheExpectedPoints) {
  // The docs example: 23 counted passes (4 prefill, 19 decode). timeline and batch draw each
  // pass in two panels (S-MBU, S-MFU) plus a legend sample per phase and panel: 2·23 + 4 = 50.
  // pareto draws the 19 decode passes plus one legend sample.
  const std::pair<const char*, int> kinds[] = {{"timeline", 50}, {"batch", 50}, {"pareto", 20}};
  for (const auto& [kind, points] : kinds) {
    const std::string svg = TempPath(std::string("example_") + kind + ".svg");
    std::filesystem::remove(svg);
    const Result r = Ctl({"plot", rows_, "--kind", kind, "--out", svg});
    ASSERT_EQ(r.exit_code, 0) << kind << ": " << r.err;
    EXPECT_TRUE(absl::StartsWith(r.out, "wrote " + svg)) << r.out;
    EXPECT_EQ(CountSvgPoints(svg), points) << kind;
    const std::string text = Slurp(svg);
    // Titles name model, hardware and device count; axes carry units.
    EXPECT_TRUE(absl::StrContains(text, "Mixtral-8x7B on 2 x NVIDIA H100 SXM5 80GB")) << kind;
    EXPECT_TRUE(absl::StrContains(text, kind == std::string("pareto") ? "(USD)" : "(%")) << kind;
  }
}

TEST_F(PlotCliTest, BatchFromAnalyzeOutputsOfASweep) {
  // Three step analyses as JSON lines: one point per phase each, 6 per panel, 2 panels, plus a
  // legend sample per phase and panel: 12 + 4 = 16.
  std::string sweep;
  for (const char* batch : {"1", "8", "64"}) {
    const Result r = Ctl({"analyze", "--model", "mixtral-8x7b", "--hardware", "h100-sxm", "--gpus",
                          "2", "--batch", batch, "--prompt-len", "512", "--output-len", "128",
                          "--ttft-s", "0.5", "--tpot-s", "0.03", "-o", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    sweep += nlohmann::json::parse(r.out).dump() + "\n";
  }
  const std::string input = TempPath("sweep.jsonl");
  WriteFile(input, sweep);
  const std::string svg = TempPath("sweep_batch.svg");
  Result r = Ctl({"plot", input, "--kind", "batch", "--out", svg});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(CountSvgPoints(svg), 16);
  // 3 sweep points (decode phase) + 1 legend sample.
  r = Ctl({"plot", input, "--kind", "pareto", "--out", TempPath("sweep_pareto.svg")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(CountSvgPoints(TempPath("sweep_pareto.svg")), 4);
}

TEST_F(PlotCliTest, ErrorsSayWhatToInstallOrToProduce) {
  Result r = Ctl({"plot", rows_, "--kind", "timeline", "--out", TempPath("x.svg"), "--gnuplot",
                  "/nonexistent/gnuplot"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "install gnuplot-nox (apt-get install gnuplot-nox)"))
      << r.err;
  r = Ctl({"plot", rows_, "--kind", "histogram", "--out", TempPath("x.svg")});
  EXPECT_EQ(r.exit_code, 2);
  const std::string summary = TempPath("summary.json");
  WriteFile(
      summary,
      Ctl({"analyze", "--records", kExamplePasses, "--model", "mixtral-8x7b", "-o", "json"}).out);
  r = Ctl({"plot", summary, "--kind", "timeline", "--out", TempPath("x.svg")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "--per-pass -o json")) << r.err;
  r = Ctl({"plot", rows_, "--kind", "timeline"});
  EXPECT_EQ(r.exit_code, 2);  // --out is required
}

}  // namespace

// The README's custom-model plan needs four nodes: `run --local 2` refuses it at once, before a
// coordinator or an agent starts, naming the nodes and the flag.
TEST(RunLocalCliTest, APlanNeedingMoreAgentsIsRefusedBeforeAnythingStarts) {
  const Result r =
      Ctl({"run", std::string(MOECAP_EXAMPLES_PLANS) + "/custom-model-cpu.yaml", "--local", "2"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("needs 4 nodes (parallelism.nodes)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("pass --local 4"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("local coordinator on"), std::string::npos) << r.err;
}

// --check-args parses a command line and stops before the command runs: a coordinator that
// is not there is never dialled, and a flag the command does not know is still refused.
TEST(CheckArgsCliTest, AcceptsAValidCommandLineWithoutRunningIt) {
  const Result ok = RunProcess(kCtl, {"--check-args", "agents", "--coordinator", "127.0.0.1:1"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "moecapctl agents: arguments accepted\n");
  const Result bad = RunProcess(kCtl, {"agents", "--check-args", "--no-such-flag"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(bad.err, "--no-such-flag")) << bad.err;
  EXPECT_TRUE(bad.out.empty()) << bad.out;
}
