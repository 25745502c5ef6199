// LocalLauncher's process handling, with /bin/sh scripts standing in for the rank processes: the
// job timeout, a cancel and the grace after a failure on a fake clock (the ranks would sleep 30 s;
// no test waits for them), and which failure is reported when ranks die or leave errors. The ranks'
// real work is tested in workload_test and the integration tests.
#include "agent/workload/launcher.h"

#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/unit/agent/test_util.h"

namespace moecap {
namespace {

using ::moecap::testing::CatalogModel;
using ::moecap::testing::TempDir;
using ::testing::HasSubstr;

WorkloadConfig TinyPlan() {
  WorkloadConfig c;
  c.model = CatalogModel("mixtral-8x7b");
  c.scale = 64;
  c.layers = 1;
  c.batches = {1};
  c.phases = {ServingPhase::kPrefill};
  c.prompt_len = 3;
  c.iterations = 1;
  c.warmup = 0;
  c.threads_per_rank = 1;
  return c;
}

// Two ranks that run `script` under /bin/sh. The launcher appends its worker flags, so in the
// script $1 is the rank and $5 the job directory.
LaunchOptions ShellRanks(const std::string& work_dir, const std::string& script) {
  LaunchOptions options;
  options.executable = "/bin/sh";
  options.worker_args = {"-c", script};
  options.ranks = 2;
  options.work_dir = work_dir;
  options.timeout = absl::Seconds(60);
  return options;
}

TEST(LocalLauncherTest, TheJobTimeoutKillsTheRanksAndNamesThem) {
  TempDir dir;
  FakeClock clock;
  LaunchOptions options = ShellRanks(dir.path() + "/job", "exec sleep 30");
  options.timeout = absl::Seconds(10);
  const absl::Time start = clock.Now();
  const absl::StatusOr<std::vector<RankResult>> results =
      LocalLauncher(options, clock).Run(TinyPlan());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kDeadlineExceeded) << results.status();
  EXPECT_THAT(results.status().message(), HasSubstr("did not finish within 10s"));
  EXPECT_THAT(results.status().message(), HasSubstr("ranks [0, 1] were still running"));
  EXPECT_GE(clock.Now() - start, absl::Seconds(10));  // the timeout ran on the injected clock
}

TEST(LocalLauncherTest, ACancelKillsTheRanks) {
  TempDir dir;
  FakeClock clock;
  const std::atomic<bool> cancel{true};
  LaunchOptions options = ShellRanks(dir.path() + "/job", "exec sleep 30");
  options.cancel = &cancel;
  const absl::StatusOr<std::vector<RankResult>> results =
      LocalLauncher(options, clock).Run(TinyPlan());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kCancelled) << results.status();
}

TEST(LocalLauncherTest, ARankThatDiesWithoutAResultIsNamedWithItsLog) {
  TempDir dir;
  const LaunchOptions options = ShellRanks(
      dir.path() + "/job", R"(if [ "$1" = 1 ]; then echo "out of cheese" >&2; exit 5; fi)");
  const absl::StatusOr<std::vector<RankResult>> results = LocalLauncher(options).Run(TinyPlan());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kInternal) << results.status();
  EXPECT_THAT(results.status().message(),
              HasSubstr("rank 1 exited with status 5 without a result"));
  EXPECT_THAT(results.status().message(), HasSubstr("out of cheese"));  // its log, redirected
}

TEST(LocalLauncherTest, ARanksOwnErrorWinsOverAPeersKnockOnError) {
  TempDir dir;
  const LaunchOptions options = ShellRanks(dir.path() + "/job", R"(
    if [ "$1" = 0 ]; then
      printf '{"error":{"code":14,"message":"connection closed"}}' > "$5/rank-0.json"
    else
      printf '{"error":{"code":5,"message":"boom"}}' > "$5/rank-1.json"
    fi
    exit 3)");
  const absl::StatusOr<std::vector<RankResult>> results = LocalLauncher(options).Run(TinyPlan());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kNotFound) << results.status();
  EXPECT_EQ(results.status().message(), "boom");
}

// Rank 0 gives up on a hung rank 1 (a knock-on error) and exits; rank 1 is killed once the grace
// after the first failure has passed. The error is rank 0's: the rank the launcher killed did not
// fail by itself. On the fake clock, whose first pause waits (on real time, bounded) until rank 0
// has exited, so the grace starts from rank 0's exit whatever the scheduler does.
TEST(LocalLauncherTest, TheRankTheLauncherKilledIsNotBlamed) {
  TempDir dir;
  const std::string job = dir.path() + "/job";
  FakeClock clock;
  clock.set_on_wait([&](size_t waits) {
    if (waits != 1) return;
    const std::string pid_file = job + "/pid-0";
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (!std::filesystem::exists(pid_file) && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    std::ifstream in(pid_file);
    pid_t pid = 0;
    in >> pid;
    siginfo_t info;
    // WNOWAIT: waits until rank 0 has exited, and leaves reaping it to the launcher.
    if (pid > 0) waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT);
  });
  LaunchOptions options = ShellRanks(job, R"(
    if [ "$1" = 1 ]; then exec sleep 30; fi
    echo $$ > "$5/pid-0.tmp" && mv "$5/pid-0.tmp" "$5/pid-0"
    printf '{"error":{"code":4,"message":"rank 1 did not answer"}}' > "$5/rank-0.json"
    exit 3)");
  options.timeout = absl::Hours(1);
  const absl::Time start = clock.Now();
  const absl::StatusOr<std::vector<RankResult>> results =
      LocalLauncher(options, clock).Run(TinyPlan());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kDeadlineExceeded) << results.status();
  EXPECT_EQ(results.status().message(), "rank 1 did not answer");
  const absl::Duration waited = clock.Now() - start;
  EXPECT_GE(waited, absl::Seconds(2));  // the grace for the others to end by themselves
  EXPECT_LT(waited, absl::Minutes(1));  // not the job's timeout
}

TEST(LocalLauncherTest, RanksThatExitCleanlyMustLeaveAResult) {
  TempDir dir;
  const LaunchOptions options = ShellRanks(dir.path() + "/job", "exit 0");
  const absl::StatusOr<std::vector<RankResult>> results = LocalLauncher(options).Run(TinyPlan());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kInternal) << results.status();
  EXPECT_THAT(results.status().message(), HasSubstr("rank 0 exited cleanly but left no result"));
}

}  // namespace
}  // namespace moecap
