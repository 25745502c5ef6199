// moecap-agent end to end: two real agent processes on loopback against an in-process fake
// coordinator. One point across both (2 ranks, one per agent) must come back as both agents'
// rank reports with the check passed and counts that add up to the metric core's; an agent
// killed mid-run must make the other fail fast and return to idle; a coordinator restart must
// make an agent register again under its previous id; a cancel must stop a run.
#include <dirent.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/workload/config.h"
#include "common/catalog.h"
#include "common/metrics.h"
#include "common/plan/convert.h"
#include "httplib.h"
#include "tests/integration/agent/agent_process.h"
#include "tests/integration/agent/fake_coordinator.h"

namespace moecap::testing {
namespace {

constexpr char kAgentBinary[] = MOECAP_AGENT_BINARY;

// Processes whose command line contains `needle` (the rank processes of a job directory).
int CountProcessesWithArgument(const std::string& needle) {
  int count = 0;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return 0;
  while (dirent* entry = readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    std::ifstream in(absl::StrCat("/proc/", entry->d_name, "/cmdline"), std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (absl::StrContains(cmdline, needle) && absl::StrContains(cmdline, "--worker")) ++count;
  }
  closedir(proc);
  return count;
}

v1::Assignment MakeAssignment(const std::string& job, int rank, int world, int iterations,
                              bool check) {
  v1::Assignment a;
  a.set_job_id(job);
  a.set_point_index(0);
  a.set_attempt(1);
  v1::RankAssignment* r = a.add_ranks();
  r->set_rank(rank);
  r->set_device_index(0);
  r->set_local_rank(0);
  a.set_world_size(world);
  a.set_node_rank(rank);
  a.set_nodes(world);
  a.set_rendezvous_prefix(absl::StrCat(job, "/0/1"));
  a.set_job_name(job);
  v1::PointWorkload* w = a.mutable_workload();
  w->set_model("mixtral-8x7b");  // resolved from the agent's catalog
  w->set_backend(v1::BACKEND_CPU);
  w->add_phases(v1::PHASE_PREFILL);
  w->add_phases(v1::PHASE_DECODE);
  w->set_batch_size(4);
  w->set_prompt_len(8);
  w->set_output_len(16);
  w->set_layers(2);
  w->set_scale(32);  // d = 4096/32 = 128, f_e = 14336/32 = 448, E = 8, k = 2
  w->set_dtype(v1::DTYPE_FP32);
  w->mutable_routing()->mutable_gate();
  w->set_seed(7);
  w->set_warmup(1);
  w->set_iterations(iterations);
  w->set_check(check);
  w->mutable_timeouts()->set_collective_seconds(20);
  w->set_expert_parallel(world);
  return a;
}

v1::StreamAssignmentsResponse AssignmentEvent(v1::Assignment a) {
  v1::StreamAssignmentsResponse event;
  *event.mutable_assignment() = std::move(a);
  return event;
}

class AgentIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = absl::StrCat(::testing::TempDir(), "/moecap-agent-it-XXXXXX");
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    StartCoordinator(0);
  }

  void TearDown() override {
    if (HasFailure()) {
      for (size_t i = 0; i < agents_.size(); ++i) {
        std::cerr << "---- log of agent " << names_[i] << " ----\n" << agents_[i]->Log();
      }
      if (fake_ != nullptr) {
        for (const std::string& line : fake_->Snapshot().log) std::cerr << line << "\n";
      }
    }
    agents_.clear();
    fake_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  void StartCoordinator(int port) {
    FakeCoordinatorOptions options;
    options.port = port;
    // A restarted coordinator may find the port still held for a moment.
    for (int tries = 0; tries < 50; ++tries) {
      absl::StatusOr<std::unique_ptr<FakeCoordinator>> fake = FakeCoordinator::Start(options);
      if (fake.ok()) {
        fake_ = *std::move(fake);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "cannot start the fake coordinator on port " << port;
  }

  std::string WorkDir(const std::string& name) const { return absl::StrCat(dir_, "/", name); }

  // Starts an agent and waits (bounded) until it is registered and holds its stream.
  std::string StartAgent(const std::string& name, std::vector<std::string> extra_args = {}) {
    std::vector<std::string> args = {"--coordinator",
                                     fake_->address(),
                                     "--name",
                                     name,
                                     "--devices",
                                     "1",
                                     "--threads-per-rank",
                                     "1",
                                     "--peak-bandwidth-gb-s",
                                     "20",
                                     "--peak-gflops",
                                     "50",
                                     "--work-dir",
                                     WorkDir(name),
                                     "--reconnect-max-s",
                                     "1",
                                     "--log-level",
                                     "debug"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    agents_.push_back(
        std::make_unique<AgentProcess>(kAgentBinary, args, absl::StrCat(dir_, "/", name, ".log")));
    names_.push_back(name);
    std::string id;
    const bool up = fake_->WaitFor(
        [&](const Recorded& r) {
          auto it = r.agent_by_name.find(name);
          if (it == r.agent_by_name.end() || r.streaming.count(it->second) == 0) return false;
          id = it->second;
          return true;
        },
        absl::Seconds(20));
    EXPECT_TRUE(up) << "agent " << name << " did not register";
    return id;
  }

  static bool IdleAfter(const Recorded& r, const std::string& id) {
    auto it = r.last_heartbeat.find(id);
    return it != r.last_heartbeat.end() && it->second.state() == v1::AGENT_STATE_IDLE;
  }

  std::string dir_;
  std::unique_ptr<FakeCoordinator> fake_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
  std::vector<std::string> names_;
};

TEST_F(AgentIntegrationTest, TwoAgentsRunOnePointAndReportCountsThatAddUp) {
  const std::string a0 = StartAgent("a0", {"--metrics-listen", "127.0.0.1:0"});
  const std::string a1 = StartAgent("a1");
  ASSERT_FALSE(a0.empty());
  ASSERT_FALSE(a1.empty());
  const Recorded registered = fake_->Snapshot();
  ASSERT_EQ(registered.registrations.size(), 2u);
  const v1::AgentInfo& info = registered.registrations[0].agent();
  EXPECT_EQ(info.backend(), v1::BACKEND_CPU);
  ASSERT_EQ(info.inventory().devices_size(), 1);
  EXPECT_EQ(info.inventory().devices(0).hardware(), "cpu");
  EXPECT_DOUBLE_EQ(info.inventory().devices(0).peak_bandwidth_bytes_per_s(), 20e9);
  EXPECT_EQ(info.inventory().devices(0).bandwidth_source(), v1::PEAK_SOURCE_GIVEN);
  EXPECT_EQ(info.data_plane_host(), "127.0.0.1");

  fake_->Send(a0, AssignmentEvent(MakeAssignment("job-1", 0, 2, 3, /*check=*/true)));
  fake_->Send(a1, AssignmentEvent(MakeAssignment("job-1", 1, 2, 3, /*check=*/true)));
  ASSERT_TRUE(
      fake_->WaitFor([](const Recorded& r) { return r.nodes.size() == 2 || !r.failures.empty(); },
                     absl::Seconds(40)));
  // Back to idle once reported.
  ASSERT_TRUE(fake_->WaitFor(
      [&](const Recorded& r) { return IdleAfter(r, a0) && IdleAfter(r, a1); }, absl::Seconds(5)));
  const Recorded r = fake_->Snapshot();
  ASSERT_TRUE(r.failures.empty()) << r.failures.front().reason();
  ASSERT_EQ(r.ranks.size(), 2u);
  ASSERT_EQ(r.nodes.size(), 2u);

  // Each agent: progress first (SETUP), its rank report, then its node report, last.
  for (const std::string& id : {a0, a1}) {
    std::vector<std::string> mine;
    for (const std::string& line : r.log) {
      if (absl::StartsWith(line, id + " ")) mine.push_back(line.substr(id.size() + 1));
    }
    ASSERT_GE(mine.size(), 3u);
    EXPECT_EQ(mine.front(), "progress STAGE_SETUP");
    EXPECT_EQ(mine.back(), "node");
    EXPECT_EQ(mine[mine.size() - 2], absl::StrCat("rank ", id == a0 ? 0 : 1));
    EXPECT_EQ(mine[mine.size() - 3], "progress STAGE_REPORT");
  }
  for (const v1::NodeReport& node : r.nodes) {
    EXPECT_EQ(node.job_id(), "job-1");
    EXPECT_EQ(node.ranks_size(), 0);  // each came with ReportRank: not sent twice
    ASSERT_EQ(node.devices_size(), 1);
    EXPECT_DOUBLE_EQ(node.devices(0).peak_flops(0).flops_per_s(), 50e9);
    EXPECT_EQ(node.environment().at("communicator"), "gloo-tcp");
  }

  // Counts: per phase, the ranks' counted shares add up exactly to CountMoeBlocks for the tokens
  // and the activated experts they report (METRICS.md, one source of truth).
  absl::StatusOr<Catalog> catalog = Catalog::Builtin();
  ASSERT_TRUE(catalog.ok());
  const ModelSpec scaled = ScaledModel(**catalog->FindModel("mixtral-8x7b"), 32);
  const Precision fp32 = MakePrecision(Dtype::kFp32);
  for (int p = 0; p < 2; ++p) {
    Counts counted;
    Counts dense;
    double tokens = 0;
    double activated = 0;
    for (const v1::RankReport& rank : r.ranks) {
      ASSERT_EQ(rank.phases_size(), 2);
      const v1::RankPhase& phase = rank.phases(p);
      EXPECT_EQ(phase.phase(), p == 0 ? v1::PHASE_PREFILL : v1::PHASE_DECODE);
      EXPECT_EQ(phase.iterations(), 3);
      EXPECT_EQ(phase.step_time().count(), 3);
      ASSERT_EQ(phase.activated_experts_size(), 2);  // one per stacked layer
      counted += TermCountsFromProto(phase.counts());
      dense += TermCountsFromProto(phase.dense_counts());
      tokens += static_cast<double>(phase.tokens_per_step());
      for (double a : phase.activated_experts()) activated += a;
      EXPECT_TRUE(rank.check().checked());
      EXPECT_TRUE(rank.check().passed()) << rank.check().detail();
      EXPECT_EQ(rank.local_experts(), 4);
    }
    EXPECT_EQ(tokens, p == 0 ? 4 * 8 : 4);  // B·P for prefill, B for decode
    EXPECT_GT(activated, 0);
    EXPECT_LE(activated, 2 * 8);
    const Counts expected = CountMoeBlocks(scaled, fp32, 2, tokens, activated);
    const Counts expected_dense =
        CountMoeBlocks(scaled, fp32, 2, tokens, activated, Counting::kDense);
    for (Term t : kAllTerms) {
      EXPECT_EQ(counted[t].bytes, expected[t].bytes) << TermName(t);
      EXPECT_EQ(counted[t].flops, expected[t].flops) << TermName(t);
      EXPECT_EQ(dense[t].bytes, expected_dense[t].bytes) << TermName(t);
      EXPECT_EQ(dense[t].flops, expected_dense[t].flops) << TermName(t);
    }
  }

  // a0's /metrics: connected, idle (no current job), and the measured steps' counted bytes of
  // its rank (per-step count × 3 iterations).
  std::smatch match;
  const std::string log = agents_[0]->Log();
  ASSERT_TRUE(std::regex_search(log, match, std::regex("metrics on http://127.0.0.1:([0-9]+)/")));
  httplib::Client http("127.0.0.1", std::stoi(match[1]));
  http.set_read_timeout(5, 0);
  httplib::Result scrape = http.Get("/metrics");
  ASSERT_TRUE(scrape) << "no answer from the agent's /metrics";
  EXPECT_EQ(scrape->status, 200);
  const std::string& metrics = scrape->body;
  EXPECT_NE(metrics.find("moecap_agent_coordinator_connected{agent=\"a0\"} 1"), std::string::npos)
      << metrics;
  EXPECT_EQ(metrics.find("moecap_agent_current_job_info{"), std::string::npos) << metrics;
  const std::string series =
      "moecap_agent_counted_bytes_total{agent=\"a0\",job_id=\"job-1\",phase=\"decode\"} ";
  const size_t at = metrics.find(series);
  ASSERT_NE(at, std::string::npos) << metrics;
  const double scraped = std::stod(metrics.substr(at + series.size()));
  for (const v1::RankReport& rank : r.ranks) {
    if (rank.agent_id() != a0) continue;
    EXPECT_NEAR(scraped, 3 * rank.phases(1).counts().total_bytes(), 1e-9 * scraped);
  }
  httplib::Result health = http.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  // SIGTERM: deregister and exit 0.
  for (auto& agent : agents_) agent->Signal(SIGTERM);
  for (auto& agent : agents_) {
    std::optional<int> status = agent->Wait(absl::Seconds(15));
    ASSERT_TRUE(status.has_value()) << "the agent did not exit after SIGTERM";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  }
  EXPECT_EQ(fake_->Snapshot().deregistrations.size(), 2u);
}

TEST_F(AgentIntegrationTest, AnAgentKilledMidRunMakesTheOtherFailFastAndReturnToIdle) {
  const std::string a0 = StartAgent("k0");
  const std::string a1 = StartAgent("k1");
  ASSERT_FALSE(a0.empty());
  ASSERT_FALSE(a1.empty());
  // Enough iterations to run for minutes: only the kill ends it.
  fake_->Send(a0, AssignmentEvent(MakeAssignment("job-kill", 0, 2, 1000000, false)));
  fake_->Send(a1, AssignmentEvent(MakeAssignment("job-kill", 1, 2, 1000000, false)));
  // Both ranks have their weights (so they have met through the rendezvous and are running).
  ASSERT_TRUE(fake_->WaitFor(
      [&](const Recorded& r) {
        int running = 0;
        for (const v1::ReportProgressRequest& p : r.progress) {
          if (p.progress().stage() == v1::Progress::STAGE_MEASURE) {
            running |= p.agent_id() == a0 ? 1 : 2;
          }
        }
        return running == 3;
      },
      absl::Seconds(30)));
  ASSERT_EQ(CountProcessesWithArgument(WorkDir("k0")), 1);

  const absl::Time killed = absl::Now();
  agents_[0]->Signal(SIGKILL);
  ASSERT_TRUE(agents_[0]->Wait(absl::Seconds(5)).has_value());
  ASSERT_TRUE(fake_->WaitFor(
      [&](const Recorded& r) {
        return std::any_of(r.failures.begin(), r.failures.end(),
                           [&](const v1::ReportFailureRequest& f) { return f.agent_id() == a1; });
      },
      absl::Seconds(20)));
  const absl::Duration to_failure = absl::Now() - killed;
  ASSERT_TRUE(
      fake_->WaitFor([&](const Recorded& r) { return IdleAfter(r, a1); }, absl::Seconds(5)));
  const Recorded r = fake_->Snapshot();
  const v1::ReportFailureRequest& failure = r.failures.front();
  EXPECT_EQ(failure.job_id(), "job-kill");
  EXPECT_EQ(failure.kind(), v1::FAILURE_KIND_COLLECTIVE) << failure.reason();
  EXPECT_TRUE(failure.retryable());
  EXPECT_TRUE(r.ranks.empty());
  EXPECT_LT(to_failure, absl::Seconds(15)) << "the survivor took " << to_failure;
  std::cerr << "survivor reported the failure " << to_failure << " after the kill\n";
  // The killed agent's rank process died with it (PR_SET_PDEATHSIG).
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (CountProcessesWithArgument(WorkDir("k0")) > 0 && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(CountProcessesWithArgument(WorkDir("k0")), 0);
  EXPECT_EQ(CountProcessesWithArgument(WorkDir("k1")), 0);
}

TEST_F(AgentIntegrationTest, ACancelStopsTheRunAndTheAgentReturnsToIdle) {
  const std::string a0 = StartAgent("c0");
  ASSERT_FALSE(a0.empty());
  fake_->Send(a0, AssignmentEvent(MakeAssignment("job-cancel", 0, 1, 1000000, false)));
  ASSERT_TRUE(fake_->WaitFor(
      [&](const Recorded& r) {
        return std::any_of(r.progress.begin(), r.progress.end(), [](const auto& p) {
          return p.progress().stage() == v1::Progress::STAGE_MEASURE;
        });
      },
      absl::Seconds(20)));
  v1::StreamAssignmentsResponse cancel;
  cancel.mutable_cancel()->set_job_id("job-cancel");
  cancel.mutable_cancel()->set_point_index(-1);
  cancel.mutable_cancel()->set_reason("test");
  fake_->Send(a0, cancel);
  ASSERT_TRUE(
      fake_->WaitFor([](const Recorded& r) { return !r.failures.empty(); }, absl::Seconds(10)));
  EXPECT_EQ(fake_->Snapshot().failures.front().kind(), v1::FAILURE_KIND_CANCELLED);
  ASSERT_TRUE(
      fake_->WaitFor([&](const Recorded& r) { return IdleAfter(r, a0); }, absl::Seconds(5)));
  EXPECT_EQ(CountProcessesWithArgument(WorkDir("c0")), 0);
}

TEST_F(AgentIntegrationTest, AgentRegistersAgainWithItsIdAfterTheCoordinatorRestarts) {
  const std::string a0 = StartAgent("r0");
  ASSERT_FALSE(a0.empty());
  const int port = fake_->port();
  fake_.reset();  // the coordinator goes away
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  StartCoordinator(port);
  ASSERT_NE(fake_, nullptr);
  ASSERT_TRUE(fake_->WaitFor(
      [&](const Recorded& r) { return !r.registrations.empty() && r.streaming.count(a0) > 0; },
      absl::Seconds(15)));
  EXPECT_EQ(fake_->Snapshot().registrations.front().previous_agent_id(), a0);
  EXPECT_FALSE(agents_[0]->Wait(absl::ZeroDuration()).has_value()) << "the agent exited";
}

}  // namespace
}  // namespace moecap::testing
