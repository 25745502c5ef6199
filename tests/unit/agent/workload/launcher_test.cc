// LocalLauncher's process handling, with /bin/sh scripts standing in for the rank processes: the
// job timeout, a cancel and the grace after a failure on a fake clock (the ranks would sleep 30 s;
// no test waits for them), which failure is reported when ranks die or leave errors, and the typed
// files between them (each rank's RankLaunch; the outputs and progress records the scripts copy
// into place, made here with rank_files). The ranks' real work is tested in workload_test and the
// integration tests.
#include "agent/workload/launcher.h"

#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "agent/workload/rank_files.h"
#include "common/failure_cause.h"
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

// Two ranks that run `script` under /bin/sh. The launcher appends `--worker-launch PATH` ($0 and
// $1 of the script); the script sees its rank as $r and the job directory as $d.
LaunchOptions ShellRanks(const std::string& work_dir, const std::string& script) {
  LaunchOptions options;
  options.executable = "/bin/sh";
  options.worker_args = {
      "-c", "d=$(dirname \"$1\"); r=$(basename \"$1\" .launch); r=${r#rank-}\n" + script};
  options.ranks = 2;
  options.work_dir = work_dir;
  options.timeout = absl::Seconds(60);
  return options;
}

// A rank's output file made here, for a script to copy into place.
std::string Staged(const std::string& dir, const std::string& name,
                   const google::protobuf::MessageLite& message) {
  const std::string path = dir + "/" + name;
  EXPECT_TRUE(WriteMessageFile(path, message).ok());
  return path;
}

v1::RankOutput ErrorOutput(int rank, const absl::Status& status) {
  v1::RankOutput output;
  output.set_rank(rank);
  *output.mutable_error() = RankErrorOf(status);
  return output;
}

TEST(LocalLauncherTest, EachRankIsLaunchedWithItsOwnTypedOrders) {
  TempDir dir;
  const std::string job = dir.path() + "/job";
  LaunchOptions options = ShellRanks(job, "cp \"$1\" \"$d/copy-$r\"; exit 7");
  options.rank_ids = {4, 6};
  options.world_size = 8;
  options.devices = {1, 0};
  options.key_prefix = "nccl";
  options.keep_work_dir = true;
  options.job_id = "j-1";
  options.point_index = 2;
  options.attempt = 3;
  v1::GrpcStoreEndpoint store;
  store.set_target("coordinator:7000");
  store.set_scope("j-1/p2/a3");
  options.grpc_store = store;
  WorkloadConfig plan = TinyPlan();
  plan.batches = {1, 4};
  plan.tolerance = 0.5;
  ASSERT_FALSE(LocalLauncher(options).Run(plan).ok());  // the scripts leave no output
  for (const auto& [rank, device] : {std::pair{4, 1}, std::pair{6, 0}}) {
    v1::RankLaunch launch;
    ASSERT_TRUE(ReadMessageFile(job + "/copy-" + std::to_string(rank), launch).ok()) << rank;
    EXPECT_EQ(launch.rank(), rank);
    EXPECT_EQ(launch.world_size(), 8);
    EXPECT_EQ(launch.ranks_on_host(), 2);
    EXPECT_EQ(launch.device(), device);
    EXPECT_EQ(launch.key_prefix(), "nccl");
    EXPECT_EQ(launch.grpc_store().scope(), "j-1/p2/a3");
    EXPECT_EQ(launch.job_id(), "j-1");
    EXPECT_EQ(launch.point_index(), 2);
    EXPECT_EQ(launch.attempt(), 3);
    EXPECT_THAT(launch.batch_sizes(), ::testing::ElementsAre(1, 4));
    EXPECT_EQ(launch.workload().model_spec().name(), "mixtral-8x7b");
    EXPECT_DOUBLE_EQ(launch.check_tolerance(), 0.5);
  }
}

TEST(LocalLauncherTest, OutputsAndProgressComeBackTyped) {
  TempDir dir;
  const std::string job = dir.path() + "/job";
  v1::RankOutput ok;
  ok.add_reports()->set_job_id("j");
  ok.mutable_environment()->set_host("h");
  const std::string out = Staged(dir.path(), "out", ok);
  {
    ProgressWriter writer(dir.path() + "/progress");
    v1::Progress p;
    p.set_stage(v1::Progress::STAGE_MEASURE);
    writer.Append(p);
    p.set_stage(v1::Progress::STAGE_REPORT);
    p.set_iterations_done(1);
    writer.Append(p);
  }
  LaunchOptions options =
      ShellRanks(job, "cp " + dir.path() + "/progress \"$d/rank-$r.progress\"; cp " + out +
                          " \"$d/rank-$r.out\"");
  std::map<int, v1::Progress> seen;
  options.on_progress = [&](int rank, const v1::Progress& p) { seen[rank] = p; };
  absl::StatusOr<std::vector<v1::RankOutput>> outputs = LocalLauncher(options).Run(TinyPlan());
  ASSERT_TRUE(outputs.ok()) << outputs.status();
  ASSERT_EQ(outputs->size(), 2u);
  EXPECT_EQ(outputs->front().environment().host(), "h");
  ASSERT_EQ(seen.size(), 2u);  // every rank's newest record, read at the end at the latest
  EXPECT_EQ(seen[0].stage(), v1::Progress::STAGE_REPORT);
  EXPECT_EQ(seen[1].iterations_done(), 1);
}

TEST(LocalLauncherTest, TheJobTimeoutKillsTheRanksAndNamesThem) {
  TempDir dir;
  FakeClock clock;
  LaunchOptions options = ShellRanks(dir.path() + "/job", "exec sleep 30");
  options.timeout = absl::Seconds(10);
  const absl::Time start = clock.Now();
  const absl::StatusOr<std::vector<v1::RankOutput>> results =
      LocalLauncher(options, clock).Run(TinyPlan());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kDeadlineExceeded) << results.status();
  EXPECT_THAT(results.status().message(), HasSubstr("did not finish within 10s"));
  EXPECT_THAT(results.status().message(), HasSubstr("ranks [0, 1] were still running"));
  EXPECT_GE(clock.Now() - start, absl::Seconds(10));  // the timeout ran on the injected clock
  EXPECT_EQ(FailureCauseOf(results.status()), FailureCause::kTimeout);
}

TEST(LocalLauncherTest, ACancelKillsTheRanks) {
  TempDir dir;
  FakeClock clock;
  const std::atomic<bool> cancel{true};
  LaunchOptions options = ShellRanks(dir.path() + "/job", "exec sleep 30");
  options.cancel = &cancel;
  const absl::StatusOr<std::vector<v1::RankOutput>> results =
      LocalLauncher(options, clock).Run(TinyPlan());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kCancelled) << results.status();
}

TEST(LocalLauncherTest, ARankThatDiesWithoutAResultIsNamedWithItsLog) {
  TempDir dir;
  const LaunchOptions options = ShellRanks(
      dir.path() + "/job", R"(if [ "$r" = 1 ]; then echo "out of cheese" >&2; exit 5; fi)");
  const absl::StatusOr<std::vector<v1::RankOutput>> results =
      LocalLauncher(options).Run(TinyPlan());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kInternal) << results.status();
  EXPECT_THAT(results.status().message(),
              HasSubstr("rank 1 exited with status 5 without a result"));
  EXPECT_THAT(results.status().message(), HasSubstr("out of cheese"));  // its log, redirected
  EXPECT_EQ(FailureCauseOf(results.status()), FailureCause::kCrash);
}

TEST(LocalLauncherTest, ARanksOwnErrorWinsOverAPeersKnockOnError) {
  TempDir dir;
  const std::string knock_on =
      Staged(dir.path(), "0.out",
             ErrorOutput(0, WithFailureCause(absl::UnavailableError("connection closed"),
                                             FailureCause::kCollective)));
  const std::string own = Staged(
      dir.path(), "1.out",
      ErrorOutput(1, WithFailureCause(absl::NotFoundError("boom"), FailureCause::kRendezvous)));
  const LaunchOptions options =
      ShellRanks(dir.path() + "/job", "if [ \"$r\" = 0 ]; then cp " + knock_on +
                                          " \"$d/rank-0.out\"; else cp " + own +
                                          " \"$d/rank-1.out\"; fi; exit 3");
  const absl::StatusOr<std::vector<v1::RankOutput>> results =
      LocalLauncher(options).Run(TinyPlan());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kNotFound) << results.status();
  EXPECT_EQ(results.status().message(), "boom");
  EXPECT_EQ(FailureCauseOf(results.status()), FailureCause::kRendezvous);  // as the rank made it
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
  const std::string error = Staged(
      dir.path(), "0.out", ErrorOutput(0, absl::DeadlineExceededError("rank 1 did not answer")));
  LaunchOptions options = ShellRanks(job, R"(
    if [ "$r" = 1 ]; then exec sleep 30; fi
    echo $$ > "$d/pid-0.tmp" && mv "$d/pid-0.tmp" "$d/pid-0"
    cp )" + error + R"( "$d/rank-0.out"
    exit 3)");
  options.timeout = absl::Hours(1);
  const absl::Time start = clock.Now();
  const absl::StatusOr<std::vector<v1::RankOutput>> results =
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
  const absl::StatusOr<std::vector<v1::RankOutput>> results =
      LocalLauncher(options).Run(TinyPlan());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kInternal) << results.status();
  EXPECT_THAT(results.status().message(),
              HasSubstr("rank 0 exited cleanly but left no readable output"));
}

}  // namespace
}  // namespace moecap
