// moecap-bench as users run it: the real binary, started as a process, launching its rank
// processes on loopback. Checks the JSON report (check passed, counts equal the metric core for
// the reported activated experts, totals independent of the rank count), and that bad plans and
// failing ranks end promptly with a clear error and no process left behind.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/workload/config.h"
#include "common/catalog.h"
#include "common/metrics.h"
#include "common/plan/convert.h"
#include "common/precision.h"
#include "google/protobuf/util/json_util.h"
#include "moecap/v1/report.pb.h"
#include "tests/unit/agent/test_util.h"

namespace moecap {
namespace {

using ::moecap::testing::TempDir;

struct RunResult {
  int exit_code = -1;  // -1: killed at the deadline
  std::string out;
  std::string err;
  double seconds = 0;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Processes whose command line mentions `needle` (the run's private TMPDIR): leftovers.
std::vector<int> ProcessesMentioning(const std::string& needle) {
  std::vector<int> found;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return found;
  while (dirent* entry = readdir(proc)) {
    const int pid = atoi(entry->d_name);
    if (pid <= 0 || pid == getpid()) continue;
    std::string cmdline = Slurp(absl::StrCat("/proc/", pid, "/cmdline"));
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    if (cmdline.find(needle) != std::string::npos) found.push_back(pid);
  }
  closedir(proc);
  return found;
}

// Runs moecap-bench with `args` (and extra environment), bounded by `limit`; the job directory
// lands in a private TMPDIR so leftovers can be found afterwards.
class BenchRun {
 public:
  RunResult Run(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                double limit_s = 60) {
    std::vector<std::string> argv_s = {MOECAP_BENCH_BINARY};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<std::string> env_s = {absl::StrCat("TMPDIR=", tmp_.path())};
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string(*e).rfind("TMPDIR=", 0) != 0) env_s.emplace_back(*e);
    }
    env_s.insert(env_s.end(), env.begin(), env.end());
    std::vector<char*> argv, envp;
    for (std::string& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (std::string& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);
    const std::string out_path = absl::StrCat(tmp_.path(), "/stdout");
    const std::string err_path = absl::StrCat(tmp_.path(), "/stderr");
    const auto start = std::chrono::steady_clock::now();
    const pid_t pid = fork();
    if (pid == 0) {
      const int out = open(out_path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
      const int err = open(err_path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
      dup2(out, STDOUT_FILENO);
      dup2(err, STDERR_FILENO);
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    RunResult result;
    while (true) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (elapsed > limit_s) {
        kill(pid, SIGKILL);  // its ranks die with it (PR_SET_PDEATHSIG)
        waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.out = Slurp(out_path);
    result.err = Slurp(err_path);
    return result;
  }

  // Rank processes of this fixture's runs still alive, given a moment to be reaped.
  std::vector<int> Leftovers() {
    std::vector<int> left;
    for (int i = 0; i < 100; ++i) {
      left = ProcessesMentioning(tmp_.path());
      if (left.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return left;
  }

 private:
  TempDir tmp_;
};

// Fast shapes; --hardware skips the host probes.
std::vector<std::string> Fast(std::vector<std::string> args,
                              const std::string& comm_timeout_s = "20") {
  // The MoE blocks alone (cpu's default is decoder layers): these tests hold the counts against
  // CountMoeBlocks; the decoder layer's are the workload and cluster tests'.
  for (const char* a : {"--layer", "moe", "--scale", "64", "--layers", "2", "--iters", "3",
                        "--warmup", "1", "--hardware", "h100-sxm", "--timeout-s", "50"}) {
    args.emplace_back(a);
  }
  args.insert(args.end(), {"--comm-timeout-s", comm_timeout_s});
  return args;
}

nlohmann::json ParseReport(const RunResult& r) {
  const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "stdout is not JSON: " << r.out << "\nstderr: " << r.err;
  return j;
}

// The report's results (the same objects `moecapctl results -o json` prints) read back as the
// API's messages.
std::vector<v1::PointResult> Results(const nlohmann::json& report) {
  std::vector<v1::PointResult> out;
  EXPECT_TRUE(report.contains("results")) << report.dump();
  for (const nlohmann::json& j : report["results"]) {
    v1::PointResult point;
    const auto status = google::protobuf::util::JsonStringToMessage(j.dump(), &point);
    EXPECT_TRUE(status.ok()) << status.ToString();
    out.push_back(std::move(point));
  }
  return out;
}

// Every (point, phase) of a report, in the order of the results.
std::vector<v1::PhaseResult> Phases(const nlohmann::json& report) {
  std::vector<v1::PhaseResult> out;
  for (const v1::PointResult& point : Results(report)) {
    for (const v1::PhaseResult& p : point.phases()) out.push_back(p);
  }
  return out;
}

// The report's counted bytes and FLOPs, term by term, equal CountMoeBlocks for the model that ran
// and the activated experts the report gives (as computed here and as the report's own
// metric-core check says); and the ranks' rows add up to the totals.
void ExpectCountsMatchMetricCore(const nlohmann::json& report) {
  absl::StatusOr<ModelSpec> model = ModelFromJson(report["plan"]["model_run"]);
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<Dtype> dtype = ParseDtype(report["plan"]["dtype"].get<std::string>());
  ASSERT_TRUE(dtype.ok());
  const double layers = report["plan"]["layers"].get<double>();
  for (const v1::PhaseResult& p : Phases(report)) {
    SCOPED_TRACE(v1::Phase_Name(p.phase()));
    EXPECT_EQ(p.activated_experts_size(), static_cast<int>(layers));
    double activated = 0;
    for (double a : p.activated_experts()) activated += a;
    const Counts core = CountMoeBlocks(*model, MakePrecision(*dtype), layers,
                                       static_cast<double>(p.tokens_per_step()), activated);
    const Counts counted = TermCountsFromProto(p.breakdown());
    for (Term t : kAllTerms) {
      EXPECT_EQ(counted[t].bytes, core[t].bytes) << TermName(t);
      EXPECT_EQ(counted[t].flops, core[t].flops) << TermName(t);
    }
    EXPECT_TRUE(p.metric_core().checked());
    EXPECT_TRUE(p.metric_core().matches());
    double rank_bytes = 0, rank_flops = 0;
    for (const v1::RankPhaseSummary& r : p.ranks()) {
      rank_bytes += r.counts().total_bytes();
      rank_flops += r.counts().total_flops();
    }
    EXPECT_EQ(rank_bytes, core.bytes());
    EXPECT_EQ(rank_flops, core.flops());
    EXPECT_EQ(p.bytes(), core.bytes());
  }
}

TEST(BenchTest, TwoRanksDecodeCheckPassesAndCountsMatchTheMetricCore) {
  BenchRun bench;
  const RunResult r = bench.Run(Fast({"--model", "mixtral-8x7b", "--ranks", "2", "--batch", "1,8",
                                      "--phase", "decode", "--check", "-o", "json"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json report = ParseReport(r);
  ASSERT_EQ(Results(report).size(), 2u);  // batch 1 and 8
  ASSERT_EQ(Phases(report).size(), 2u);
  for (const v1::PhaseResult& p : Phases(report)) {
    EXPECT_EQ(p.phase(), v1::PHASE_DECODE);
    EXPECT_TRUE(p.check().passed()) << p.check().detail();
    EXPECT_LE(p.check().max_rel_error(), 1e-4);
    EXPECT_EQ(p.ranks_size(), 2);
    EXPECT_GT(p.step_time().p50(), 0);
    EXPECT_GE(p.step_time().p99(), p.step_time().p50());
    EXPECT_GE(p.harness_overhead(), 0);
    EXPECT_LT(p.harness_overhead(), 1);
  }
  ExpectCountsMatchMetricCore(report);
  EXPECT_TRUE(report["checks_passed"].get<bool>());
  EXPECT_EQ(report["metadata"]["moecap_version"], "0.1.0");
  EXPECT_NE(report["metadata"]["blas"].get<std::string>().find("OpenBLAS"), std::string::npos);
  EXPECT_EQ(report["plan"]["ranks"], 2);
  EXPECT_TRUE(bench.Leftovers().empty());
}

TEST(BenchTest, FourRanksDeepSeekV3PrefillAndDecodeCheckPasses) {
  BenchRun bench;
  const RunResult r =
      bench.Run(Fast({"--model", "deepseek-v3", "--ranks", "4", "--batch", "2", "--phase", "both",
                      "--prompt-len", "4", "--check", "-o", "json"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json report = ParseReport(r);
  const std::vector<v1::PhaseResult> phases = Phases(report);
  ASSERT_EQ(phases.size(), 2u);  // prefill (8 tokens) and decode (2 tokens)
  EXPECT_EQ(phases[0].tokens_per_step(), 8);
  EXPECT_EQ(phases[1].tokens_per_step(), 2);
  for (const v1::PhaseResult& p : phases) EXPECT_TRUE(p.check().passed());
  ExpectCountsMatchMetricCore(report);
}

TEST(BenchTest, UniformRoutingTotalsDoNotDependOnTheRankCount) {
  BenchRun bench;
  std::vector<nlohmann::json> reports;
  for (const char* ranks : {"2", "4"}) {
    const RunResult r =
        bench.Run(Fast({"--ranks", ranks, "--batch", "16", "--routing", "uniform", "-o", "json"}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    reports.push_back(ParseReport(r));
  }
  const v1::PhaseResult a = Phases(reports[0]).at(0);
  const v1::PhaseResult b = Phases(reports[1]).at(0);
  EXPECT_EQ(std::vector<double>(a.activated_experts().begin(), a.activated_experts().end()),
            std::vector<double>(b.activated_experts().begin(), b.activated_experts().end()));
  EXPECT_EQ(a.imbalance(), b.imbalance());
  EXPECT_EQ(a.bytes(), b.bytes());
  EXPECT_EQ(a.flops(), b.flops());
  EXPECT_EQ(a.dispatch_bandwidth().logical_bytes(), b.dispatch_bandwidth().logical_bytes());
  // With 4 ranks more rows leave their rank than with 2.
  EXPECT_LT(a.dispatch_bandwidth().remote_bytes(), b.dispatch_bandwidth().remote_bytes());
}

TEST(BenchTest, ZipfRoutingIsMoreImbalancedThanUniform) {
  BenchRun bench;
  const RunResult uniform = bench.Run(
      Fast({"--model", "qwen3-30b-a3b", "--batch", "64", "--routing", "uniform", "-o", "json"}));
  const RunResult zipf = bench.Run(Fast({"--model", "qwen3-30b-a3b", "--batch", "64", "--routing",
                                         "zipf", "--zipf-exponent", "1.5", "-o", "json"}));
  ASSERT_EQ(uniform.exit_code, 0) << uniform.err;
  ASSERT_EQ(zipf.exit_code, 0) << zipf.err;
  const double u = Phases(ParseReport(uniform)).at(0).imbalance();
  const double z = Phases(ParseReport(zipf)).at(0).imbalance();
  EXPECT_GT(z, u);
  EXPECT_GT(z, 2.0);
}

TEST(BenchTest, TableHasOneRowPerBatchSize) {
  BenchRun bench;
  const RunResult r = bench.Run(Fast({"--batch", "1,4,16", "--check"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("p50_ms"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("S-MBU"), std::string::npos);
  int rows = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) rows += line.rfind("decode", 0) == 0 ? 1 : 0;
  EXPECT_EQ(rows, 3);
  EXPECT_NE(r.out.find("ok abs="), std::string::npos);
}

struct BadPlan {
  std::vector<std::string> args;
  std::string message;
};

TEST(BenchTest, BadPlansFailFastWithAClearMessage) {
  const std::vector<BadPlan> plans = {
      {{"--model", "mixtral-8x7b", "--ranks", "16"}, "exceeds the routed experts"},
      {{"--ranks", "3"}, "does not divide"},
      {{"--batch", "0"}, "batch 0"},
      {{"--model", "no-such-model"}, "no-such-model"},
      {{"--model", "deepseek-v3", "--scale", "1", "--layers", "61", "--ranks", "8"},
       "does not fit in memory"},
      {{"--routing", "histogram"}, "--histogram FILE"},
  };
  BenchRun bench;
  for (const BadPlan& plan : plans) {
    std::vector<std::string> args = plan.args;
    args.insert(args.end(), {"--hardware", "h100-sxm"});
    const RunResult r = bench.Run(args, {}, 30);
    EXPECT_EQ(r.exit_code, 1) << plan.message << ": " << r.err;
    EXPECT_NE(r.err.find(plan.message), std::string::npos) << r.err;
    EXPECT_LT(r.seconds, 10) << plan.message;
  }
  EXPECT_TRUE(bench.Leftovers().empty());
}

TEST(BenchTest, ARankThatDiesFailsTheJobPromptlyAndKillsTheOthers) {
  BenchRun bench;
  const RunResult r =
      bench.Run(Fast({"--ranks", "4", "--batch", "4"}), {"MOECAP_FAULT_EXIT_RANK=2"}, 40);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("rank 2 exited with status 42"), std::string::npos) << r.err;
  EXPECT_LT(r.seconds, 20);
  EXPECT_TRUE(bench.Leftovers().empty());
}

TEST(BenchTest, AHungRankMakesItsPeersTimeOutNotHang) {
  BenchRun bench;
  const RunResult r =
      bench.Run(Fast({"--ranks", "2", "--batch", "4"}, "2"), {"MOECAP_FAULT_HANG_RANK=1"}, 40);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("rank 0 of 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("timeout"), std::string::npos) << r.err;
  EXPECT_LT(r.seconds, 20);
  EXPECT_TRUE(bench.Leftovers().empty());  // the hung rank was killed
}

}  // namespace
}  // namespace moecap
