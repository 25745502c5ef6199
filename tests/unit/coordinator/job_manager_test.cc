// JobManager: the job lifecycle with a fake clock and fake agents (recording sinks): submission,
// gang placement, points in order, reports, aggregation, cancel in each state, agent loss and
// retries, deadlines, late and duplicate reports, and reload after a restart (SQLite).
#include "coordinator/job_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "coordinator/in_memory_job_store.h"
#include "coordinator/sqlite_job_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/test_agents.h"

namespace moecap::coordinator {
namespace {

using testing::CpuAgent;
using ::testing::HasSubstr;
using testing::Phase;

// Two CPU agents, one rank each; two points (batch 1 and 8).
constexpr char kPlan[] = R"(
name: small
model: mixtral-8x7b
hardware: {backend: cpu}
parallelism: {nodes: 2, devices_per_node: 1}
workload:
  phases: [prefill, decode]
  batch_sizes: [1, 8]
  prompt_len: 16
  output_len: 4
  scale: 16
  iterations: 3
  timeouts: {point_seconds: 60}
pricing: {usd_per_device_hour: 1.0}
labels: {team: perf}
)";

// kPlan with another node count and batch list, plus extra top-level lines.
std::string PlanWith(int nodes, const std::string& batches = "[1, 8]",
                     const std::string& extra = "") {
  std::string plan = kPlan;
  plan.replace(plan.find("nodes: 2"), 8, "nodes: " + std::to_string(nodes));
  plan.replace(plan.find("[1, 8]"), 6, batches);
  return plan + extra;
}

// An agent's stream as the JobManager sees it.
class RecordingSink final : public AgentStreamHub::Sink {
 public:
  void Deliver(const v1::StreamAssignmentsResponse& m) override { messages.push_back(m); }
  void Close(const absl::Status&) override { closed = true; }
  std::vector<v1::Assignment> Assignments() const {
    std::vector<v1::Assignment> out;
    for (const auto& m : messages) {
      if (m.has_assignment()) out.push_back(m.assignment());
    }
    return out;
  }
  std::vector<v1::Cancel> Cancels() const {
    std::vector<v1::Cancel> out;
    for (const auto& m : messages) {
      if (m.has_cancel()) out.push_back(m.cancel());
    }
    return out;
  }
  std::vector<v1::StreamAssignmentsResponse> messages;
  bool closed = false;
};

class RecordingWatcher final : public JobEventHub::Watcher {
 public:
  void OnEvent(const v1::WatchJobResponse& e) override { events.push_back(e); }
  void OnEnd(const absl::Status& s) override {
    ended = true;
    end_status = s;
  }
  std::vector<v1::WatchJobResponse> events;
  bool ended = false;
  absl::Status end_status;
};

class JobManagerTest : public ::testing::Test {
 protected:
  JobManagerTest() { Build(std::make_unique<InMemoryJobStore>()); }

  void Build(std::unique_ptr<JobStore> store) {
    jobs_.reset();
    store_ = std::move(store);
    registry_ = std::make_unique<AgentRegistry>(clock_, AgentRegistryOptions{absl::Seconds(10)});
    rendezvous_ = std::make_unique<RendezvousStore>(clock_, RendezvousLimits{});
    streams_ = std::make_unique<AgentStreamHub>();
    events_ = std::make_unique<JobEventHub>();
    JobManagerOptions options;
    options.scheduler.backfill_window = absl::Minutes(5);
    jobs_ = std::make_unique<JobManager>(clock_, *store_, *registry_, *rendezvous_, *streams_,
                                         *events_, catalog_, options, nullptr);
    registry_->AddLossListener([this](const AgentLoss& loss) { jobs_->OnAgentLoss(loss); });
    sinks_.clear();
    ids_.clear();
  }

  // Registers a CPU agent with an open assignment stream.
  std::string AddAgent(const std::string& name) {
    Registration reg = *registry_->Register(CpuAgent(name), "", "");
    jobs_->OnAgentRegistered(reg.agent_id);
    auto sink = std::make_shared<RecordingSink>();
    streams_->Attach(reg.agent_id, sink);
    sinks_[reg.agent_id] = sink;
    ids_[name] = reg.agent_id;
    return reg.agent_id;
  }

  std::string Submit(const std::string& yaml) {
    PlanSubmission s;
    s.plan_yaml = yaml;
    s.origin = "plan.yaml";
    absl::StatusOr<v1::Job> job = jobs_->Submit(s, false, "tester");
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? job->id() : "";
  }

  v1::Job Get(const std::string& id) { return *jobs_->GetJob(id, v1::JOB_VIEW_FULL); }

  // The agent's latest assignment.
  v1::Assignment Latest(const std::string& agent_id) {
    std::vector<v1::Assignment> a = sinks_[agent_id]->Assignments();
    EXPECT_FALSE(a.empty()) << agent_id << " got no assignment";
    return a.empty() ? v1::Assignment() : a.back();
  }

  // The node report an agent sends for its latest assignment: every rank, its one device, fixed
  // figures (prefill 10 ms, decode 2 ms per step).
  v1::NodeReport NodeReportFor(const std::string& agent_id) {
    const v1::Assignment a = Latest(agent_id);
    v1::NodeReport n;
    n.set_job_id(a.job_id());
    n.set_point_index(a.point_index());
    n.set_attempt(a.attempt());
    n.set_agent_id(agent_id);
    *n.add_devices() = CpuAgent("x").inventory().devices(0);
    for (const v1::RankAssignment& r : a.ranks()) {
      v1::RankReport* rr = n.add_ranks();
      rr->set_job_id(a.job_id());
      rr->set_point_index(a.point_index());
      rr->set_attempt(a.attempt());
      rr->set_rank(r.rank());
      rr->set_agent_id(agent_id);
      *rr->add_phases() = Phase(v1::PHASE_PREFILL, 1e6, 1e8, {0.010, 0.010, 0.010});
      *rr->add_phases() = Phase(v1::PHASE_DECODE, 5e5, 1e6, {0.002, 0.002, 0.002});
    }
    return n;
  }

  // Every agent of the job's current attempt reports.
  void FinishPoint(const std::string& job_id) {
    const v1::Job job = Get(job_id);
    for (const v1::AssignedAgent& a : job.agents()) {
      if (a.ranks_size() == 0) continue;
      ASSERT_TRUE(jobs_->ReportNode(NodeReportFor(a.agent_id())).ok());
    }
  }

  std::vector<v1::JobState> History(const v1::Job& job) {
    std::vector<v1::JobState> states;
    for (const auto& t : job.history()) states.push_back(t.state());
    return states;
  }

  FakeClock clock_;
  Catalog catalog_ = *Catalog::Builtin();
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<AgentRegistry> registry_;
  std::unique_ptr<RendezvousStore> rendezvous_;
  std::unique_ptr<AgentStreamHub> streams_;
  std::unique_ptr<JobEventHub> events_;
  std::unique_ptr<JobManager> jobs_;
  std::map<std::string, std::shared_ptr<RecordingSink>> sinks_;
  std::map<std::string, std::string> ids_;
};

TEST_F(JobManagerTest, SubmitValidatesAndQueues) {
  PlanSubmission bad;
  bad.plan_yaml = std::string(kPlan) + "workload_typo: 1\n";
  bad.origin = "plan.yaml";
  absl::Status s = jobs_->Submit(bad, false, "").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("plan.yaml: field 'workload_typo'"), std::string::npos) << s;

  PlanSubmission unknown;
  unknown.plan_yaml = "model: no-such-model\n";
  EXPECT_EQ(jobs_->Submit(unknown, false, "").status().code(), absl::StatusCode::kNotFound);

  PlanSubmission too_many_ranks;  // 16 ranks for 8 experts without replication
  too_many_ranks.plan_yaml = PlanWith(16);
  s = jobs_->Submit(too_many_ranks, false, "").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("parallelism.expert_parallel"), std::string::npos) << s;

  PlanSubmission dry;
  dry.plan_yaml = kPlan;
  absl::StatusOr<v1::Job> preview = jobs_->Submit(dry, /*dry_run=*/true, "");
  ASSERT_TRUE(preview.ok());
  EXPECT_TRUE(preview->id().empty());
  EXPECT_EQ(preview->points_size(), 2);
  EXPECT_TRUE(jobs_->ListJobs({})->jobs().empty());

  const std::string id = Submit(kPlan);
  EXPECT_EQ(id, "job-000001");
  const v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(job.points_total(), 2);
  EXPECT_EQ(job.queue_position(), 1);
  EXPECT_EQ(job.model(), "mixtral-8x7b");
  EXPECT_EQ(job.submitted_by(), "tester");
  EXPECT_EQ(job.labels().at("team"), "perf");
  EXPECT_EQ(jobs_->GetJob("job-000404", v1::JOB_VIEW_BASIC).status().code(),
            absl::StatusCode::kNotFound);
  // BASIC leaves out plan and points.
  EXPECT_FALSE(jobs_->GetJob(id, v1::JOB_VIEW_BASIC)->has_plan());
}

TEST_F(JobManagerTest, RunsAPlanPointByPointToItsResults) {
  const std::string a = AddAgent("a");
  const std::string b = AddAgent("b");
  const std::string id = Submit(kPlan);
  auto watcher = std::make_shared<RecordingWatcher>();
  ASSERT_TRUE(jobs_->Watch(id, /*include_progress=*/true, watcher).ok());
  ASSERT_EQ(watcher->events.size(), 1u);
  EXPECT_TRUE(watcher->events[0].has_snapshot());

  jobs_->Tick();
  v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SCHEDULED);
  ASSERT_EQ(job.agents_size(), 2);
  EXPECT_EQ(registry_->Find(a)->state, v1::AGENT_STATE_BUSY);
  // Each agent got one rank of point 0, attempt 1, in the scope job/p0/a1.
  const v1::Assignment a0 = Latest(a);
  const v1::Assignment b0 = Latest(b);
  EXPECT_EQ(a0.point_index(), 0);
  EXPECT_EQ(a0.attempt(), 1);
  EXPECT_EQ(a0.world_size(), 2);
  EXPECT_EQ(a0.nodes(), 2);
  EXPECT_EQ(a0.rendezvous_prefix(), "job-000001/p0/a1");
  ASSERT_EQ(a0.ranks_size(), 1);
  EXPECT_EQ(a0.ranks(0).rank(), 0);
  EXPECT_EQ(b0.ranks(0).rank(), 1);
  EXPECT_EQ(b0.node_rank(), 1);
  EXPECT_EQ(a0.workload().backend(), v1::BACKEND_CPU);
  EXPECT_EQ(a0.deadline().seconds(), absl::ToUnixSeconds(clock_.Now()) + 60);
  EXPECT_TRUE(rendezvous_->Set(a, "job-000001/p0/a1", "k", "v").ok());

  // Progress moves the point (and the job) to RENDEZVOUS, then RUNNING.
  v1::ReportProgressRequest progress;
  progress.set_agent_id(a);
  progress.set_job_id(id);
  progress.set_point_index(0);
  progress.set_attempt(1);
  progress.set_rank(-1);
  progress.mutable_progress()->set_stage(v1::Progress::STAGE_SETUP);
  EXPECT_EQ(*jobs_->ReportProgress(progress), false);
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_RENDEZVOUS);
  progress.mutable_progress()->set_stage(v1::Progress::STAGE_MEASURE);
  progress.mutable_progress()->set_iterations_done(2);
  progress.mutable_progress()->set_iterations_total(3);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(*jobs_->ReportProgress(progress), false);
  job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(job.points(0).progress().iterations_done(), 2);

  FinishPoint(id);
  job = Get(id);
  EXPECT_EQ(job.points(0).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(job.points_done(), 1);
  EXPECT_EQ(rendezvous_->Set(a, "job-000001/p0/a1", "k", "v").code(),
            absl::StatusCode::kNotFound);  // scope deleted with the attempt
  // S-MBU of point 0's decode: 2 ranks × 5e5 bytes over 2 ms and 2 × 100 GB/s = 0.0025.
  EXPECT_NEAR(job.points(0).result().phases(1).s_mbu(), 1e6 / (0.002 * 200e9), 1e-12);
  EXPECT_TRUE(job.points(0).result().has_cost());
  // Point 1 went out on the same agents.
  EXPECT_EQ(Latest(a).point_index(), 1);
  EXPECT_EQ(Latest(a).rendezvous_prefix(), "job-000001/p1/a1");
  EXPECT_EQ(job.state(), v1::JOB_STATE_RUNNING);

  FinishPoint(id);
  job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(History(job),
            (std::vector<v1::JobState>{v1::JOB_STATE_QUEUED, v1::JOB_STATE_SCHEDULED,
                                       v1::JOB_STATE_RENDEZVOUS, v1::JOB_STATE_RUNNING,
                                       v1::JOB_STATE_AGGREGATING, v1::JOB_STATE_SUCCEEDED}));
  EXPECT_TRUE(job.has_finish_time());
  EXPECT_EQ(registry_->Find(a)->state, v1::AGENT_STATE_IDLE);
  EXPECT_EQ(registry_->Find(b)->state, v1::AGENT_STATE_IDLE);
  absl::StatusOr<v1::GetResultsResponse> results = jobs_->GetResults(id);
  ASSERT_TRUE(results.ok());
  ASSERT_EQ(results->results_size(), 2);
  EXPECT_EQ(results->results(1).parameters(0).value(), "8");
  EXPECT_EQ(rendezvous_->scopes(), 0);

  // The watcher saw every change, two results, and was ended after SUCCEEDED.
  EXPECT_TRUE(watcher->ended);
  EXPECT_TRUE(watcher->end_status.ok());
  int result_events = 0, progress_events = 0;
  for (const auto& e : watcher->events) {
    result_events += e.has_result() ? 1 : 0;
    progress_events += e.has_progress() ? 1 : 0;
  }
  EXPECT_EQ(result_events, 2);
  EXPECT_EQ(progress_events, 2);
  EXPECT_TRUE(watcher->events.back().has_job_state());
  EXPECT_EQ(watcher->events.back().job_state().transition().state(), v1::JOB_STATE_SUCCEEDED);
}

// An in-memory store that counts the reads of single jobs and can be made to fail them.
class PagingStore final : public JobStore {
 public:
  absl::Status ApplyAll(absl::Span<const JobWrite> writes) override {
    return inner_.ApplyAll(writes);
  }
  absl::StatusOr<std::vector<StoredJob>> LoadJobs() override { return inner_.LoadJobs(); }
  absl::StatusOr<std::optional<StoredJob>> LoadJob(absl::string_view id) override {
    ++loads;
    if (fail_loads) return absl::UnavailableError("database unreadable");
    return inner_.LoadJob(id);
  }
  absl::StatusOr<std::optional<v1::Job>> LoadJobHeader(absl::string_view id) override {
    ++header_loads;
    if (fail_loads) return absl::UnavailableError("database unreadable");
    return inner_.LoadJobHeader(id);
  }
  absl::StatusOr<std::vector<StoredReport>> LoadReports(absl::string_view id) override {
    return inner_.LoadReports(id);
  }
  int loads = 0;
  int header_loads = 0;
  bool fail_loads = false;

 private:
  InMemoryJobStore inner_;
};

TEST_F(JobManagerTest, AFinishedJobLeavesMemoryAndIsReadBackFromTheStore) {
  auto owned = std::make_unique<PagingStore>();
  PagingStore& store = *owned;
  Build(std::move(owned));
  AddAgent("a");
  AddAgent("b");
  const std::string id = Submit(kPlan);
  std::string infra = PlanWith(2, "[1]");
  infra.replace(infra.find("team: perf"), 10, "team: infra");
  const std::string other = Submit(infra);
  jobs_->Tick();
  FinishPoint(id);
  // Running: every view comes from memory.
  EXPECT_EQ(Get(id).points(0).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(jobs_->GetJob(id, v1::JOB_VIEW_BASIC)->state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(store.loads + store.header_loads, 0);
  FinishPoint(id);

  // Finished: its views come from the store, the BASIC one from the job's own row ...
  absl::StatusOr<v1::Job> basic = jobs_->GetJob(id, v1::JOB_VIEW_BASIC);
  ASSERT_TRUE(basic.ok()) << basic.status();
  EXPECT_EQ(basic->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(basic->labels().at("team"), "perf");
  EXPECT_FALSE(basic->has_plan());
  EXPECT_EQ(store.header_loads, 1);
  EXPECT_EQ(store.loads, 0);
  // ... the FULL one and the results whole.
  const v1::Job full = Get(id);
  EXPECT_EQ(store.loads, 1);
  ASSERT_EQ(full.points_size(), 2);
  EXPECT_TRUE(full.points(1).has_result());
  EXPECT_EQ(History(full), (std::vector<v1::JobState>{
                               v1::JOB_STATE_QUEUED, v1::JOB_STATE_SCHEDULED, v1::JOB_STATE_RUNNING,
                               v1::JOB_STATE_AGGREGATING, v1::JOB_STATE_SUCCEEDED}));
  EXPECT_EQ(full.plan().name(), "small");
  EXPECT_EQ(jobs_->GetResults(id)->results_size(), 2);
  auto watcher = std::make_shared<RecordingWatcher>();
  ASSERT_TRUE(jobs_->Watch(id, false, watcher).ok());
  ASSERT_EQ(watcher->events.size(), 1u);
  EXPECT_EQ(watcher->events[0].snapshot().points_size(), 2);
  EXPECT_TRUE(watcher->ended);

  // Listings mix the finished job (from the store) and the running one (from memory), newest
  // first; a state filter skips the finished job without reading it, a label filter reads it.
  jobs_->Tick();
  v1::ListJobsRequest list;
  absl::StatusOr<v1::ListJobsResponse> all = jobs_->ListJobs(list);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->jobs_size(), 2);
  EXPECT_EQ(all->jobs(0).id(), other);
  EXPECT_EQ(all->jobs(1).id(), id);
  EXPECT_EQ(all->jobs(1).state(), v1::JOB_STATE_SUCCEEDED);
  const int header_loads = store.header_loads;
  list.add_states(v1::JOB_STATE_SCHEDULED);
  ASSERT_EQ(jobs_->ListJobs(list)->jobs_size(), 1);
  EXPECT_EQ(store.header_loads, header_loads);
  list.clear_states();
  list.mutable_labels()->insert({"team", "perf"});
  ASSERT_EQ(jobs_->ListJobs(list)->jobs_size(), 1);
  EXPECT_EQ(jobs_->ListJobs(list)->jobs(0).id(), id);
  EXPECT_EQ(jobs_->Stats().by_state.at(v1::JOB_STATE_SUCCEEDED), 1);

  // Late reports for it are refused as not current (not as an unknown job), and cancelling
  // it says it finished.
  v1::NodeReport late;
  late.set_agent_id(ids_["a"]);
  late.set_job_id(id);
  late.set_point_index(1);
  late.set_attempt(1);
  const absl::Status refused = jobs_->ReportNode(late);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_THAT(std::string(refused.message()), HasSubstr("the job is succeeded"));
  EXPECT_EQ(jobs_->Cancel(id, "").status().code(), absl::StatusCode::kFailedPrecondition);

  // A store that cannot be read fails those reads with its reason, not with an empty job.
  store.fail_loads = true;
  EXPECT_EQ(jobs_->GetJob(id, v1::JOB_VIEW_FULL).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(jobs_->GetJob(id, v1::JOB_VIEW_BASIC).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(jobs_->GetResults(id).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(jobs_->ListJobs(list).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(jobs_->GetJob(other, v1::JOB_VIEW_FULL).ok());  // a running job needs no read
}

TEST_F(JobManagerTest, AThreeAgentJobWaitsWhileATwoAgentJobRuns) {
  const std::string a = AddAgent("a");
  AddAgent("b");
  AddAgent("c");
  const std::string two = Submit(PlanWith(2));
  // Three ranks need an expert count divisible by 3: Qwen1.5-MoE's 60.
  std::string three_plan = PlanWith(3, "[1]");
  three_plan.replace(three_plan.find("mixtral-8x7b"), 12, "qwen1.5-moe-a2.7b");
  const std::string three = Submit(three_plan);
  jobs_->Tick();
  EXPECT_EQ(Get(two).state(), v1::JOB_STATE_SCHEDULED);
  v1::Job waiting = Get(three);
  EXPECT_EQ(waiting.state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(waiting.queue_position(), 1);
  EXPECT_NE(waiting.wait_reason().find("needs 3 cpu agents"), std::string::npos)
      << waiting.wait_reason();
  EXPECT_NE(waiting.wait_reason().find("1 of them free"), std::string::npos)
      << waiting.wait_reason();
  // The 2-agent job finishes both points; then the 3-agent job starts.
  FinishPoint(two);
  FinishPoint(two);
  EXPECT_EQ(Get(two).state(), v1::JOB_STATE_SUCCEEDED);
  jobs_->Tick();
  EXPECT_EQ(Get(three).state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(Latest(a).world_size(), 3);
  FinishPoint(three);
  EXPECT_EQ(Get(three).state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(JobManagerTest, HigherPriorityRunsFirst) {
  AddAgent("a");
  AddAgent("b");
  const std::string low = Submit(kPlan);
  const std::string high = Submit(std::string(kPlan) + "priority: 10\n");
  EXPECT_EQ(Get(high).queue_position(), 1);
  EXPECT_EQ(Get(low).queue_position(), 2);
  jobs_->Tick();
  EXPECT_EQ(Get(high).state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(Get(low).state(), v1::JOB_STATE_QUEUED);
}

TEST_F(JobManagerTest, CancelInEachState) {
  const std::string a = AddAgent("a");
  const std::string b = AddAgent("b");
  // Queued.
  const std::string blocker = Submit(std::string(kPlan) + "priority: 5\n");
  const std::string queued = Submit(kPlan);
  jobs_->Tick();
  absl::StatusOr<v1::Job> c = jobs_->Cancel(queued, "not needed");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(Get(queued).points(0).state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(Get(queued).history().rbegin()->reason(), "cancelled: not needed");
  // Running (scheduled, then rendezvous): the agents are told and stay busy until they stop.
  ASSERT_EQ(Get(blocker).state(), v1::JOB_STATE_SCHEDULED);
  ASSERT_TRUE(jobs_->Cancel(blocker, "").ok());
  v1::Job cancelled = Get(blocker);
  EXPECT_EQ(cancelled.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(cancelled.points(0).state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(cancelled.points(1).state(), v1::JOB_STATE_CANCELLED);
  ASSERT_EQ(sinks_[a]->Cancels().size(), 1u);
  EXPECT_EQ(sinks_[a]->Cancels()[0].job_id(), blocker);
  EXPECT_EQ(sinks_[a]->Cancels()[0].attempt(), 1);
  EXPECT_EQ(registry_->Find(a)->state, v1::AGENT_STATE_BUSY);
  // Agent a acknowledges with a failure report of kind CANCELLED; b with an idle heartbeat.
  v1::ReportFailureRequest ack;
  ack.set_agent_id(a);
  ack.set_job_id(blocker);
  ack.set_point_index(0);
  ack.set_attempt(1);
  ack.set_rank(-1);
  ack.set_kind(v1::FAILURE_KIND_CANCELLED);
  EXPECT_TRUE(jobs_->ReportFailure(ack).ok());
  EXPECT_EQ(registry_->Find(a)->state, v1::AGENT_STATE_IDLE);
  v1::HeartbeatRequest hb;
  hb.set_agent_id(b);
  hb.set_state(v1::AGENT_STATE_BUSY);
  hb.set_current_job_id(blocker);
  std::vector<v1::AgentCommand> commands = jobs_->OnHeartbeat(hb);
  ASSERT_EQ(commands.size(), 1u);  // still running it: told again
  EXPECT_EQ(commands[0].cancel().job_id(), blocker);
  hb.set_state(v1::AGENT_STATE_IDLE);
  hb.clear_current_job_id();
  EXPECT_TRUE(jobs_->OnHeartbeat(hb).empty());
  EXPECT_EQ(registry_->Find(b)->state, v1::AGENT_STATE_IDLE);
  // Finished jobs cannot be cancelled; unknown ones are not found.
  EXPECT_EQ(jobs_->Cancel(blocker, "").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(jobs_->Cancel("job-999999", "").status().code(), absl::StatusCode::kNotFound);
  // A late report for the cancelled job is refused.
  EXPECT_EQ(jobs_->ReportNode(NodeReportFor(a)).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(JobManagerTest, CancelWhileRunningAndAggregatingKeepsEarlierResults) {
  const std::string a = AddAgent("a");
  AddAgent("b");
  const std::string id = Submit(kPlan);
  jobs_->Tick();
  FinishPoint(id);  // point 0 done
  // Point 1 half reported: agent a's report is in.
  ASSERT_TRUE(jobs_->ReportNode(NodeReportFor(a)).ok());
  ASSERT_TRUE(jobs_->Cancel(id, "enough").ok());
  const v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(job.points(0).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(jobs_->GetResults(id)->results_size(), 1);
  // Agent a had finished its part: no cancel for it, and it is idle at once.
  EXPECT_TRUE(sinks_[a]->Cancels().empty());
  EXPECT_EQ(registry_->Find(a)->state, v1::AGENT_STATE_IDLE);
}

TEST_F(JobManagerTest, ALostAgentFailsTheJobWithTheReason) {
  const std::string a = AddAgent("a");
  const std::string b = AddAgent("b");
  const std::string id = Submit(kPlan);
  jobs_->Tick();
  // a keeps heartbeating, b goes silent: 10 s lease.
  clock_.Advance(absl::Seconds(6));
  ASSERT_TRUE(registry_->Heartbeat(a, v1::AGENT_STATE_BUSY, {}).ok());
  clock_.Advance(absl::Seconds(5));
  registry_->ExpireLeases(clock_.Now());
  const v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(job.failure_reason().find("agent 'b'"), std::string::npos) << job.failure_reason();
  EXPECT_NE(job.failure_reason().find("lost"), std::string::npos);
  EXPECT_EQ(job.points(0).state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(job.points(1).state(), v1::JOB_STATE_CANCELLED);
  ASSERT_EQ(sinks_[a]->Cancels().size(), 1u);  // the survivor stops its collectives
  EXPECT_TRUE(sinks_[b]->Cancels().empty());
  // A late report from the lost agent: it must register again first.
  EXPECT_EQ(jobs_->ReportNode(NodeReportFor(b)).code(), absl::StatusCode::kNotFound);
}

TEST_F(JobManagerTest, ARetryRunsANewAttemptAndTheReturningAgentRejoinsCleanly) {
  const std::string a = AddAgent("a");
  const std::string b = AddAgent("b");
  const std::string id = Submit(std::string(kPlan) + "retry: {max_retries: 1}\n");
  jobs_->Tick();
  clock_.Advance(absl::Seconds(6));
  ASSERT_TRUE(registry_->Heartbeat(a, v1::AGENT_STATE_BUSY, {}).ok());
  clock_.Advance(absl::Seconds(5));
  registry_->ExpireLeases(clock_.Now());
  v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(job.points(0).state(), v1::JOB_STATE_QUEUED);
  EXPECT_NE(job.points(0).failure_reason().find("lost"), std::string::npos);
  // Agent a acknowledges the cancel; b comes back (same id, new incarnation).
  v1::HeartbeatRequest hb;
  hb.set_agent_id(a);
  hb.set_state(v1::AGENT_STATE_IDLE);
  jobs_->OnHeartbeat(hb);
  Registration back = *registry_->Register(CpuAgent("b"), b, "");
  EXPECT_EQ(back.agent_id, b);
  jobs_->OnAgentRegistered(b);
  auto sink = std::make_shared<RecordingSink>();
  streams_->Attach(b, sink);
  sinks_[b] = sink;
  jobs_->Tick();
  job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(job.attempts(), 2);
  const v1::Assignment retry = Latest(b);
  EXPECT_EQ(retry.attempt(), 2);
  EXPECT_EQ(retry.rendezvous_prefix(), "job-000001/p0/a2");
  // A late report of attempt 1 is refused; attempt 2 completes normally.
  v1::NodeReport stale = NodeReportFor(a);
  stale.set_attempt(1);
  for (auto& r : *stale.mutable_ranks()) r.set_attempt(1);
  EXPECT_EQ(jobs_->ReportNode(stale).code(), absl::StatusCode::kFailedPrecondition);
  FinishPoint(id);
  FinishPoint(id);
  job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(job.points(0).attempts(), 2);
  EXPECT_EQ(job.points(0).result().attempt(), 2);
}

TEST_F(JobManagerTest, ReportsAreCheckedAndDuplicatesIgnored) {
  const std::string a = AddAgent("a");
  const std::string b = AddAgent("b");
  const std::string id = Submit(kPlan);
  jobs_->Tick();
  // Unknown agent, unknown job.
  v1::NodeReport r = NodeReportFor(a);
  r.set_agent_id("agent-unknown");
  EXPECT_EQ(jobs_->ReportNode(r).code(), absl::StatusCode::kNotFound);
  r = NodeReportFor(a);
  r.set_job_id("job-424242");
  EXPECT_EQ(jobs_->ReportNode(r).code(), absl::StatusCode::kNotFound);
  // A rank the agent does not hold.
  v1::RankReport rank = NodeReportFor(a).ranks(0);
  rank.set_rank(1);
  EXPECT_EQ(jobs_->ReportRank(rank).code(), absl::StatusCode::kInvalidArgument);
  // A node report without its ranks, none sent before: refused, naming the missing rank.
  r = NodeReportFor(a);
  r.clear_ranks();
  absl::Status s = jobs_->ReportNode(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("rank 0"), std::string::npos) << s;
  // ReportRank first, then a node report without ranks: accepted. Twice: ignored.
  ASSERT_TRUE(jobs_->ReportRank(NodeReportFor(a).ranks(0)).ok());
  ASSERT_TRUE(jobs_->ReportRank(NodeReportFor(a).ranks(0)).ok());
  ASSERT_TRUE(jobs_->ReportNode(r).ok());
  ASSERT_TRUE(jobs_->ReportNode(r).ok());
  EXPECT_EQ(Get(id).points(0).state(), v1::JOB_STATE_RUNNING);
  ASSERT_TRUE(jobs_->ReportNode(NodeReportFor(b)).ok());
  const v1::Job job = Get(id);
  EXPECT_EQ(job.points(0).state(), v1::JOB_STATE_SUCCEEDED);
  // Counted once: 2 ranks × 1e6 prefill bytes.
  EXPECT_DOUBLE_EQ(job.points(0).result().phases(0).bytes(), 2e6);
  // The same report after the point finished: late, refused.
  EXPECT_EQ(jobs_->ReportNode(r).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(JobManagerTest, FailureReportsFailTheJobAndChecksAreNeverRetried) {
  const std::string a = AddAgent("a");
  AddAgent("b");
  const std::string id = Submit(std::string(kPlan) + "retry: {max_retries: 3}\n");
  jobs_->Tick();
  v1::ReportFailureRequest f;
  f.set_agent_id(a);
  f.set_job_id(id);
  f.set_point_index(0);
  f.set_attempt(1);
  f.set_rank(0);
  f.set_kind(v1::FAILURE_KIND_CHECK);
  f.set_reason("max error 0.3 > 1e-4");
  f.set_retryable(true);
  ASSERT_TRUE(jobs_->ReportFailure(f).ok());
  const v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(job.failure_reason().find("agent 'a' rank 0 reported check: max error 0.3"),
            std::string::npos)
      << job.failure_reason();
}

// A peer's collective failure, as an agent sends it when its Gloo or NCCL peer went away.
v1::ReportFailureRequest CollectiveFailure(const std::string& agent_id, const std::string& job_id) {
  v1::ReportFailureRequest f;
  f.set_agent_id(agent_id);
  f.set_job_id(job_id);
  f.set_point_index(0);
  f.set_attempt(1);
  f.set_rank(-1);  // the whole agent stopped
  f.set_kind(v1::FAILURE_KIND_COLLECTIVE);
  f.set_reason("Connection reset by peer");
  f.set_retryable(true);
  return f;
}

TEST_F(JobManagerTest, APeersCollectiveFailureWaitsForTheLostAgentAndNamesItFirst) {
  const std::string a = AddAgent("a");
  const std::string b = AddAgent("b");
  const std::string id = Submit(kPlan);
  jobs_->Tick();
  // b dies; a's collective fails and a reports before b's lease (10 s) runs out.
  clock_.Advance(absl::Seconds(6));
  ASSERT_TRUE(registry_->Heartbeat(a, v1::AGENT_STATE_BUSY, {}).ok());
  ASSERT_TRUE(jobs_->ReportFailure(CollectiveFailure(a, id)).ok());
  jobs_->Tick();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_SCHEDULED) << "held while its cause may show";
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(registry_->Heartbeat(a, v1::AGENT_STATE_IDLE, {}).ok());
  registry_->ExpireLeases(clock_.Now());
  const v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  const std::string& reason = job.failure_reason();
  const size_t cause = reason.find("agent 'b'");
  const size_t consequence = reason.find("then agent 'a' reported collective: Connection reset");
  ASSERT_NE(cause, std::string::npos) << reason;
  ASSERT_NE(consequence, std::string::npos) << reason;
  EXPECT_LT(cause, consequence) << reason;
  EXPECT_NE(reason.find("lost"), std::string::npos) << reason;
  // a stopped by itself (rank -1): no cancel; it is free again at once.
  EXPECT_TRUE(sinks_[a]->Cancels().empty());
  EXPECT_TRUE(registry_->Find(a)->held_job_id.empty());
}

TEST_F(JobManagerTest, AnAgentWhoseStreamClosedIsTheCauseAtOnceInEitherOrder) {
  for (const bool report_first : {false, true}) {
    Build(std::make_unique<InMemoryJobStore>());
    const std::string a = AddAgent("a");
    const std::string b = AddAgent("b");
    const std::string c = AddAgent("c");
    const std::string id = Submit(std::string(kPlan) + "retry: {max_retries: 1}\n");
    jobs_->Tick();
    ASSERT_EQ(Get(id).agents(0).agent_id(), a);
    ASSERT_EQ(Get(id).agents(1).agent_id(), b);
    const auto close_b = [&] {
      ASSERT_TRUE(streams_->Detach(b, sinks_[b].get()));
      jobs_->OnStreamClosed(b);
    };
    if (report_first) {
      ASSERT_TRUE(jobs_->ReportFailure(CollectiveFailure(a, id)).ok());
      EXPECT_EQ(Get(id).state(), v1::JOB_STATE_SCHEDULED) << "held";
      close_b();
    } else {
      close_b();
      EXPECT_EQ(Get(id).state(), v1::JOB_STATE_SCHEDULED) << "a closed stream alone fails nothing";
      ASSERT_TRUE(jobs_->ReportFailure(CollectiveFailure(a, id)).ok());
    }
    // No time passed: the cause was found at once.
    v1::Job job = Get(id);
    EXPECT_EQ(job.state(), v1::JOB_STATE_QUEUED) << report_first;
    const std::string& reason = job.points(0).failure_reason();
    EXPECT_EQ(reason.find("agent 'b' lost: its assignment stream closed at "), 0u) << reason;
    EXPECT_NE(reason.find("; then agent 'a' reported collective"), std::string::npos) << reason;
    // The retry goes to a and c: b is suspect (told to stop, not yet acknowledged).
    jobs_->Tick();
    job = Get(id);
    ASSERT_EQ(job.state(), v1::JOB_STATE_SCHEDULED) << job.DebugString();
    std::set<std::string> placed;
    for (const v1::AssignedAgent& aa : job.agents()) placed.insert(aa.agent_id());
    EXPECT_EQ(placed, (std::set<std::string>{a, c}));
  }
}

TEST_F(JobManagerTest, ACollectiveFailureWithNoLostPeerFailsAfterTheWaitWithItsOwnReason) {
  const std::string a = AddAgent("a");
  const std::string b = AddAgent("b");
  const std::string id = Submit(kPlan);
  jobs_->Tick();
  // b's stream closes and opens again (a reconnect): no longer suspect.
  ASSERT_TRUE(streams_->Detach(b, sinks_[b].get()));
  jobs_->OnStreamClosed(b);
  streams_->Attach(b, sinks_[b]);
  jobs_->OnStreamOpened(b);
  ASSERT_TRUE(jobs_->ReportFailure(CollectiveFailure(a, id)).ok());
  // JobManagerOptions::root_cause_wait is 10 s; both agents keep their leases.
  clock_.Advance(absl::Seconds(9));
  ASSERT_TRUE(registry_->Heartbeat(a, v1::AGENT_STATE_IDLE, {}).ok());
  ASSERT_TRUE(registry_->Heartbeat(b, v1::AGENT_STATE_BUSY, {}).ok());
  jobs_->Tick();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_SCHEDULED);
  clock_.Advance(absl::Seconds(1));
  jobs_->Tick();
  const v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(job.failure_reason().find("agent 'a' reported collective: Connection reset"),
            std::string::npos)
      << job.failure_reason();
  EXPECT_EQ(job.failure_reason().find("then"), std::string::npos) << job.failure_reason();
  // b still ran its ranks: it is told to stop; a stopped by itself.
  EXPECT_EQ(sinks_[b]->Cancels().size(), 1u);
  EXPECT_TRUE(sinks_[a]->Cancels().empty());
}

TEST_F(JobManagerTest, APointThatMissesItsDeadlineTimesOut) {
  AddAgent("a");
  AddAgent("b");
  const std::string id = Submit(kPlan);
  jobs_->Tick();
  // point_seconds 60 + 10 s grace.
  clock_.Advance(absl::Seconds(69));
  jobs_->Tick();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_SCHEDULED);
  clock_.Advance(absl::Seconds(2));
  jobs_->Tick();
  const v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(job.failure_reason().find("deadline"), std::string::npos) << job.failure_reason();
}

TEST_F(JobManagerTest, AQueuedJobsVerdictIsInItsViewAndWatchersGetItOncePerChange) {
  AddAgent("a");
  const std::string id = Submit(kPlan);  // needs two agents
  auto watcher = std::make_shared<RecordingWatcher>();
  ASSERT_TRUE(jobs_->Watch(id, /*include_progress=*/false, watcher).ok());
  jobs_->Tick();
  clock_.Advance(absl::Seconds(2));
  jobs_->Tick();  // the same verdict again: no second event
  v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_QUEUED);
  ASSERT_TRUE(job.has_placement());
  EXPECT_TRUE(job.placement().needs_more_agents());
  EXPECT_EQ(job.placement().agents_needed(), 2);
  EXPECT_EQ(job.placement().agents_matching(), 1);
  EXPECT_EQ(job.wait_reason(), job.placement().reason());
  int verdicts = 0;
  for (const v1::WatchJobResponse& e : watcher->events) verdicts += e.has_placement() ? 1 : 0;
  EXPECT_EQ(verdicts, 1);
  // The gauge's counts (moecap_jobs_waiting).
  const JobStats stats = jobs_->Stats();
  EXPECT_EQ(stats.waiting_by_why.at("needs_agents"), 1);
  EXPECT_EQ(stats.waiting_by_why.at("agents_busy"), 0);
  // A second agent registers: the job starts and its verdict is gone.
  AddAgent("b");
  jobs_->Tick();
  job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_FALSE(job.has_placement());
  EXPECT_TRUE(job.wait_reason().empty());
}

TEST_F(JobManagerTest, AQueueTimeoutFailsAJobThatNeverStarts) {
  AddAgent("a");
  // Both need two agents; only the second has a queue timeout (30 s).
  const std::string id = Submit(kPlan);
  std::string with_timeout = kPlan;
  with_timeout.replace(with_timeout.find("{point_seconds: 60}"), 19,
                       "{point_seconds: 60, queue_seconds: 30}");
  const std::string timed = Submit(with_timeout);
  jobs_->Tick();
  clock_.Advance(absl::Seconds(31));
  jobs_->Tick();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_QUEUED);
  const v1::Job job = Get(timed);
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(job.failure_reason().find("queue_seconds"), std::string::npos);
  EXPECT_NE(job.failure_reason().find("waiting for more agents"), std::string::npos)
      << job.failure_reason();
}

TEST_F(JobManagerTest, StaleWorkIsCancelledThroughHeartbeats) {
  const std::string a = AddAgent("a");
  v1::HeartbeatRequest hb;
  hb.set_agent_id(a);
  hb.set_state(v1::AGENT_STATE_BUSY);
  hb.set_current_job_id("job-000777");
  hb.set_current_point_index(2);
  hb.set_current_attempt(1);
  std::vector<v1::AgentCommand> commands = jobs_->OnHeartbeat(hb);
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0].cancel().job_id(), "job-000777");
  EXPECT_EQ(commands[0].cancel().point_index(), 2);
}

TEST_F(JobManagerTest, ListJobsNewestFirstWithFiltersAndPages) {
  for (int i = 0; i < 5; ++i) Submit(kPlan);
  ASSERT_TRUE(jobs_->Cancel("job-000002", "").ok());
  v1::ListJobsRequest req;
  req.set_page_size(2);
  absl::StatusOr<v1::ListJobsResponse> page = jobs_->ListJobs(req);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->jobs_size(), 2);
  EXPECT_EQ(page->jobs(0).id(), "job-000005");
  EXPECT_EQ(page->jobs(1).id(), "job-000004");
  req.set_page_token(page->next_page_token());
  page = jobs_->ListJobs(req);
  EXPECT_EQ(page->jobs(0).id(), "job-000003");
  req.Clear();
  req.add_states(v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(jobs_->ListJobs(req)->jobs_size(), 1);
  req.Clear();
  (*req.mutable_labels())["team"] = "other";
  EXPECT_EQ(jobs_->ListJobs(req)->jobs_size(), 0);
  req.Clear();
  req.set_page_token("garbage");
  EXPECT_EQ(jobs_->ListJobs(req).status().code(), absl::StatusCode::kInvalidArgument);
}

// A coordinator restarted on the same database keeps every job and result; the job that was
// running is interrupted and requeued once, and fails if interrupted again.
TEST_F(JobManagerTest, RestartFromSqliteKeepsEverythingAndRequeuesInterruptedJobsOnce) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("moecap_jm_restart_" + std::to_string(getpid()) + ".db"))
                               .string();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  Build(*SqliteJobStore::Open({path}));
  AddAgent("a");
  AddAgent("b");
  const std::string done = Submit(std::string(kPlan) + "priority: 9\n");
  const std::string running = Submit(std::string(kPlan) + "priority: 5\n");
  const std::string queued = Submit(kPlan);
  jobs_->Tick();
  FinishPoint(done);
  FinishPoint(done);
  ASSERT_EQ(Get(done).state(), v1::JOB_STATE_SUCCEEDED);
  jobs_->Tick();
  FinishPoint(running);  // point 0 of the running job has a result
  ASSERT_EQ(Get(running).state(), v1::JOB_STATE_RUNNING);
  const v1::PointResult kept = Get(done).points(1).result();

  // Restart.
  Build(*SqliteJobStore::Open({path}));
  ASSERT_TRUE(jobs_->Recover().ok());
  v1::Job d = Get(done);
  EXPECT_EQ(d.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(d.points(1).result().SerializeAsString(), kept.SerializeAsString());
  EXPECT_EQ(jobs_->GetResults(done)->results_size(), 2);
  v1::Job r = Get(running);
  EXPECT_EQ(r.state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(r.points(0).state(), v1::JOB_STATE_SUCCEEDED);  // its finished point is kept
  EXPECT_EQ(r.points(1).state(), v1::JOB_STATE_QUEUED);
  const std::vector<v1::JobState> h = History(r);
  ASSERT_GE(h.size(), 2u);
  EXPECT_EQ(h[h.size() - 2], v1::JOB_STATE_INTERRUPTED);
  EXPECT_EQ(Get(queued).state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(Get(queued).queue_position(), 2);
  // New submissions do not reuse ids.
  EXPECT_EQ(Submit(kPlan), "job-000004");

  // The agents come back; the requeued job runs its remaining point; restart again mid-run.
  AddAgent("a");
  AddAgent("b");
  jobs_->Tick();
  ASSERT_EQ(Get(running).state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(Latest(ids_["a"]).point_index(), 1);  // resumes at the first unfinished point
  Build(*SqliteJobStore::Open({path}));
  ASSERT_TRUE(jobs_->Recover().ok());
  r = Get(running);
  EXPECT_EQ(r.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(r.failure_reason().find("again"), std::string::npos) << r.failure_reason();
  EXPECT_EQ(jobs_->GetResults(running)->results_size(), 1);
  jobs_.reset();
  store_.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

}  // namespace
}  // namespace moecap::coordinator
