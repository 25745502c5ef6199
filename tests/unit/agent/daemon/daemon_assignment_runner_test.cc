// AssignmentRunner with an injected launcher (no processes): what it reports and in which order
// for a success, a failed check, a malformed assignment, a busy agent and a cancel, and that it
// hands the launcher the assignment's global ranks, world, scope and deadline.
#include <gtest/gtest.h>

#include <atomic>

#include "absl/synchronization/notification.h"
#include "agent/daemon/assignment_runner.h"
#include "tests/fakes/fake_coordinator_client.h"

namespace moecap::agentd {
namespace {

v1::AgentInfo OneCpuDevice() {
  v1::AgentInfo info;
  info.set_hostname("host-a");
  v1::Device* d = info.mutable_inventory()->add_devices();
  d->set_index(0);
  d->set_kind(v1::DEVICE_KIND_CPU);
  d->set_hardware("cpu");
  d->set_cores(2);
  d->set_peak_bandwidth_bytes_per_s(20e9);
  return info;
}

v1::Assignment TwoRankPoint(const std::string& job, int rank) {
  v1::Assignment a;
  a.set_job_id(job);
  a.set_point_index(1);
  a.set_attempt(2);
  a.set_world_size(2);
  a.set_rendezvous_prefix(job + "/1/2");
  v1::RankAssignment* r = a.add_ranks();
  r->set_rank(rank);
  r->set_device_index(0);
  v1::PointWorkload* w = a.mutable_workload();
  w->set_model("mixtral-8x7b");
  w->add_phases(v1::PHASE_DECODE);
  w->set_batch_size(2);
  w->set_prompt_len(4);
  w->set_layers(1);
  w->set_scale(64);
  w->set_warmup(0);
  w->set_iterations(2);
  w->set_expert_parallel(2);
  return a;
}

// What a rank of TwoRankPoint would leave: its environment and its one report, which the rank
// makes with the identity its launch gives it (values are not checked by the runner).
v1::RankOutput FakeOutput(int rank, bool check_passed) {
  v1::RankOutput out;
  out.set_rank(rank);
  out.mutable_environment()->set_backend("cpu-openblas");
  out.mutable_environment()->set_communicator("gloo-tcp");
  v1::RankReport* report = out.add_reports();
  report->set_job_id("job-a");
  report->set_point_index(1);
  report->set_attempt(2);
  report->set_rank(rank);
  v1::RankPhase* phase = report->add_phases();
  phase->set_phase(v1::PHASE_DECODE);
  phase->set_iterations(2);
  phase->add_step_seconds(0.01);
  phase->add_step_seconds(0.02);
  report->mutable_check()->set_checked(true);
  report->mutable_check()->set_passed(check_passed);
  if (!check_passed) report->mutable_check()->set_detail("max rel error 0.5");
  return out;
}

using Outputs = absl::StatusOr<std::vector<v1::RankOutput>>;

class AssignmentRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Catalog> catalog = Catalog::Builtin();
    ASSERT_TRUE(catalog.ok());
    catalog_ = *std::move(catalog);
    options_.coordinator = "coord:7070";
    options_.work_dir = ::testing::TempDir() + "/runner-test";
    options_.executable = "/nonexistent/moecap-agent";
    options_.progress_interval = absl::Milliseconds(20);
    options_.report_retry = absl::Seconds(1);
  }

  std::unique_ptr<AssignmentRunner> MakeRunner(LaunchFn launch) {
    RunnerDeps deps;
    deps.client = &client_;
    deps.clock = &clock_;
    deps.catalog = &catalog_;
    deps.agent_id = [] { return std::string("agent-5"); };
    deps.launch = std::move(launch);
    return std::make_unique<AssignmentRunner>(options_, OneCpuDevice(), std::move(deps));
  }

  RealClock clock_;
  ScriptedClient client_;
  Catalog catalog_;
  AgentOptions options_;
};

TEST_F(AssignmentRunnerTest, ASuccessReportsProgressThenTheRankThenTheNode) {
  LaunchOptions seen;
  auto runner = MakeRunner([&](const LaunchOptions& launch, const WorkloadConfig& config) {
    seen = launch;
    EXPECT_EQ(config.batches, std::vector<int64_t>{2});
    EXPECT_EQ(config.threads_per_rank, 2);  // the device's cores
    return Outputs(std::vector<v1::RankOutput>{FakeOutput(1, true)});
  });
  runner->OnAssignment(TwoRankPoint("job-a", 1));
  ASSERT_TRUE(runner->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(seen.rank_ids, std::vector<int>{1});
  EXPECT_EQ(seen.world_size, 2);
  EXPECT_EQ(seen.executable, "/nonexistent/moecap-agent");
  ASSERT_TRUE(seen.grpc_store.has_value());
  EXPECT_EQ(seen.grpc_store->scope(), "job-a/1/2");
  EXPECT_EQ(seen.grpc_store->agent_id(), "agent-5");
  EXPECT_EQ(seen.grpc_store->target(), "coord:7070");
  EXPECT_EQ(seen.grpc_store->has_tls(), !options_.security.insecure);  // paths, never the key
  EXPECT_EQ(seen.key_prefix, "gloo");
  EXPECT_EQ(seen.backend, v1::BACKEND_CPU);
  EXPECT_EQ(seen.job_id, "job-a");  // the identity the ranks' reports carry
  EXPECT_EQ(seen.point_index, 1);
  EXPECT_EQ(seen.attempt, 2);
  EXPECT_EQ(seen.timeout, options_.default_point_timeout);  // no deadline in the assignment
  client_.Locked([](ScriptedClient& c) {
    ASSERT_GE(c.log.size(), 4u);
    EXPECT_EQ(c.log.front(), "progress");
    EXPECT_EQ(c.progress.front().progress().stage(), v1::Progress::STAGE_SETUP);
    EXPECT_EQ(c.log[c.log.size() - 3], "progress");
    EXPECT_EQ(c.progress.back().progress().stage(), v1::Progress::STAGE_REPORT);
    EXPECT_EQ(c.log[c.log.size() - 2], "rank");
    EXPECT_EQ(c.log.back(), "node");
    EXPECT_TRUE(c.failures.empty());
    const v1::RankReport& rank = c.ranks.front().report();
    EXPECT_EQ(rank.rank(), 1);
    EXPECT_EQ(rank.agent_id(), "agent-5");
    EXPECT_EQ(rank.attempt(), 2);
    const v1::NodeReport& node = c.nodes.front().report();
    EXPECT_EQ(node.hostname(), "host-a");
    EXPECT_EQ(node.ranks_size(), 0);  // delivered by ReportRank: not sent (or stored) twice
    ASSERT_EQ(node.devices_size(), 1);
    EXPECT_DOUBLE_EQ(node.devices(0).peak_bandwidth_bytes_per_s(), 20e9);
    EXPECT_EQ(node.environment().at("communicator"), "gloo-tcp");
  });
  EXPECT_EQ(runner->State().state(), v1::AGENT_STATE_IDLE);
}

// The ranks' records, as the launcher hands them over, reach the coordinator as the slowest
// rank's position.
TEST_F(AssignmentRunnerTest, TheRanksProgressIsSentAsItComes) {
  auto runner = MakeRunner([&](const LaunchOptions& launch, const WorkloadConfig&) {
    v1::Progress measuring;
    measuring.set_stage(v1::Progress::STAGE_MEASURE);
    measuring.set_phase(v1::PHASE_DECODE);
    measuring.set_iterations_done(1);
    launch.on_progress(1, measuring);
    // Like a rank that keeps running until its progress is out (bounded here).
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    bool sent = false;
    while (!sent && absl::Now() < deadline) {
      client_.Locked([&](ScriptedClient& c) {
        for (const v1::ReportProgressRequest& r : c.progress) {
          sent = sent || r.progress().stage() == v1::Progress::STAGE_MEASURE;
        }
      });
      absl::SleepFor(absl::Milliseconds(1));
    }
    return Outputs(std::vector<v1::RankOutput>{FakeOutput(1, true)});
  });
  runner->OnAssignment(TwoRankPoint("job-a", 1));
  ASSERT_TRUE(runner->WaitIdle(absl::Seconds(20)));
  client_.Locked([](ScriptedClient& c) {
    const v1::ReportProgressRequest* measure = nullptr;
    for (const v1::ReportProgressRequest& r : c.progress) {
      if (r.progress().stage() == v1::Progress::STAGE_MEASURE) measure = &r;
    }
    ASSERT_NE(measure, nullptr);
    EXPECT_EQ(measure->progress().iterations_done(), 1);
    EXPECT_EQ(measure->progress().iterations_total(), 2);  // the point's: 2 iterations, 1 phase
    EXPECT_EQ(measure->progress().ranks_reporting(), 1);
    EXPECT_EQ(measure->job_id(), "job-a");
  });
}

TEST_F(AssignmentRunnerTest, ARankReportNotDeliveredTravelsInTheNodeReport) {
  client_.Locked([](ScriptedClient& c) {
    c.rank_answer = absl::FailedPreconditionError("refused");  // not retried
  });
  auto runner = MakeRunner([](const LaunchOptions&, const WorkloadConfig&) {
    return Outputs(std::vector<v1::RankOutput>{FakeOutput(1, true)});
  });
  runner->OnAssignment(TwoRankPoint("job-a", 1));
  ASSERT_TRUE(runner->WaitIdle(absl::Seconds(10)));
  client_.Locked([](ScriptedClient& c) {
    ASSERT_EQ(c.nodes.size(), 1u);
    const v1::NodeReport& node = c.nodes.front().report();
    ASSERT_EQ(node.ranks_size(), 1);
    EXPECT_EQ(node.ranks(0).rank(), 1);
    EXPECT_EQ(node.ranks(0).agent_id(), "agent-5");
  });
}

TEST_F(AssignmentRunnerTest, AFailedCheckIsACheckFailureWithoutResults) {
  auto runner = MakeRunner([](const LaunchOptions&, const WorkloadConfig&) {
    return Outputs(std::vector<v1::RankOutput>{FakeOutput(0, false)});
  });
  runner->OnAssignment(TwoRankPoint("job-b", 0));
  ASSERT_TRUE(runner->WaitIdle(absl::Seconds(10)));
  client_.Locked([](ScriptedClient& c) {
    ASSERT_EQ(c.failures.size(), 1u);
    EXPECT_EQ(c.failures[0].kind(), v1::FAILURE_KIND_CHECK);
    EXPECT_FALSE(c.failures[0].retryable());
    EXPECT_TRUE(c.ranks.empty());
    EXPECT_TRUE(c.nodes.empty());
  });
}

TEST_F(AssignmentRunnerTest, AMalformedAssignmentIsASetupFailureAndNothingStarts) {
  bool launched = false;
  auto runner = MakeRunner([&](const LaunchOptions&, const WorkloadConfig&) {
    launched = true;
    return Outputs(std::vector<v1::RankOutput>{});
  });
  v1::Assignment bad = TwoRankPoint("job-c", 0);
  bad.mutable_ranks(0)->set_device_index(3);  // the agent has one device
  runner->OnAssignment(bad);
  ASSERT_TRUE(runner->WaitIdle(absl::Seconds(10)));
  v1::Assignment odd = TwoRankPoint("job-d", 0);
  odd.set_world_size(3);  // 8 experts cannot be split over 3 ranks
  odd.mutable_workload()->set_expert_parallel(3);
  runner->OnAssignment(odd);
  ASSERT_TRUE(runner->WaitIdle(absl::Seconds(10)));
  v1::Assignment gpu = TwoRankPoint("job-e", 0);
  gpu.mutable_workload()->set_backend(v1::BACKEND_CUDA);  // this agent runs the CPU backend
  runner->OnAssignment(gpu);
  ASSERT_TRUE(runner->WaitIdle(absl::Seconds(10)));
  EXPECT_FALSE(launched);
  client_.Locked([](ScriptedClient& c) {
    ASSERT_EQ(c.failures.size(), 3u);
    EXPECT_EQ(c.failures[0].kind(), v1::FAILURE_KIND_SETUP);
    EXPECT_NE(c.failures[0].reason().find("device 3"), std::string::npos) << c.failures[0].reason();
    EXPECT_EQ(c.failures[1].kind(), v1::FAILURE_KIND_SETUP);
    EXPECT_FALSE(c.failures[1].retryable());
    EXPECT_EQ(c.failures[2].kind(), v1::FAILURE_KIND_SETUP);
    EXPECT_NE(c.failures[2].reason().find("workload.backend: cuda"), std::string::npos)
        << c.failures[2].reason();
  });
}

TEST_F(AssignmentRunnerTest, BusyRefusesAnotherAndACancelStopsTheRun) {
  options_.busy_grace = absl::Milliseconds(50);  // refuse job-f without waiting long
  absl::Notification started;
  auto runner = MakeRunner([&](const LaunchOptions& launch, const WorkloadConfig&) {
    started.Notify();
    // Like LocalLauncher: runs until cancelled (bounded here).
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!launch.cancel->load() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
    return Outputs(absl::CancelledError("killed"));
  });
  runner->OnAssignment(TwoRankPoint("job-e", 0));
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(runner->State().state(), v1::AGENT_STATE_BUSY);
  EXPECT_EQ(runner->State().current_job_id(), "job-e");
  runner->OnAssignment(TwoRankPoint("job-e", 0));  // the same one again: ignored
  runner->OnAssignment(TwoRankPoint("job-f", 0));  // another one: refused
  v1::Cancel other;
  other.set_job_id("job-f");
  runner->OnCancel(other);  // not the running job: nothing happens
  EXPECT_FALSE(runner->WaitIdle(absl::Milliseconds(50)));
  v1::Cancel cancel;
  cancel.set_job_id("job-e");
  cancel.set_point_index(-1);
  runner->OnCancel(cancel);
  ASSERT_TRUE(runner->WaitIdle(absl::Seconds(10)));
  client_.Locked([](ScriptedClient& c) {
    ASSERT_EQ(c.failures.size(), 2u);
    EXPECT_EQ(c.failures[0].job_id(), "job-f");
    EXPECT_EQ(c.failures[0].kind(), v1::FAILURE_KIND_SETUP);
    EXPECT_TRUE(c.failures[0].retryable());
    EXPECT_NE(c.failures[0].reason().find("busy with job job-e"), std::string::npos);
    EXPECT_EQ(c.failures[1].job_id(), "job-e");
    EXPECT_EQ(c.failures[1].kind(), v1::FAILURE_KIND_CANCELLED);
  });
  EXPECT_EQ(runner->State().state(), v1::AGENT_STATE_IDLE);
  runner->OnDrain();
  EXPECT_EQ(runner->State().state(), v1::AGENT_STATE_DRAINING);
}

TEST_F(AssignmentRunnerTest, TheNextPointWaitsForTheLastRunToClear) {
  // The coordinator sends the next point as soon as the last one is reported, while the last
  // run may still hold the runner (here: 200 ms): the next point waits, it is not refused.
  std::atomic<int> runs{0};
  auto runner = MakeRunner([&](const LaunchOptions&, const WorkloadConfig&) {
    if (runs.fetch_add(1) == 0) absl::SleepFor(absl::Milliseconds(200));
    return Outputs(std::vector<v1::RankOutput>{FakeOutput(1, true)});
  });
  runner->OnAssignment(TwoRankPoint("job-g", 0));
  v1::Assignment next = TwoRankPoint("job-g", 0);
  next.set_point_index(2);
  runner->OnAssignment(next);
  ASSERT_TRUE(runner->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(runs.load(), 2);
  client_.Locked([](ScriptedClient& c) { EXPECT_TRUE(c.failures.empty()); });
}

}  // namespace
}  // namespace moecap::agentd
