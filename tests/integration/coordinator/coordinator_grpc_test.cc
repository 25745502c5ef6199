// The coordinator over real gRPC: a CoordinatorServer on 127.0.0.1:0 in this process, real
// channels, and test code acting as two agents (StreamAssignments, rendezvous, ReportRank,
// ReportNode) driving a plan from SubmitPlan to GetResults; plus the status codes of malformed
// requests, health, and the moecap-coordinator binary's start, SIGTERM and restart. Every wait is
// bounded by a deadline.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/coordinator_server.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "moecap/v1/agent_service.grpc.pb.h"
#include "moecap/v1/job_service.grpc.pb.h"
#include "moecap/v1/rendezvous_service.grpc.pb.h"
#include "tests/fakes/test_agents.h"

namespace moecap::coordinator {
namespace {

constexpr char kPlan[] = R"(
name: grpc-test
model: mixtral-8x7b
hardware: {backend: cpu}
parallelism: {nodes: 2, devices_per_node: 1}
workload:
  phases: [prefill, decode]
  batch_sizes: [2, 4]
  prompt_len: 8
  output_len: 4
  scale: 16
  iterations: 3
pricing: {usd_per_device_hour: 2.0}
)";

std::chrono::system_clock::time_point In(double seconds) {
  return std::chrono::system_clock::now() +
         std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
}

// Test code playing one agent: registers, keeps its assignment stream open, and for every
// assignment meets its peer through the rendezvous store and reports its ranks.
class FakeAgent {
 public:
  FakeAgent(std::shared_ptr<grpc::Channel> channel, const std::string& name)
      : agents_(v1::AgentService::NewStub(channel)),
        rendezvous_(v1::RendezvousService::NewStub(channel)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::RegisterRequest req;
    *req.mutable_agent() = testing::CpuAgent(name);
    v1::RegisterResponse resp;
    const grpc::Status s = agents_->Register(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    id_ = resp.agent_id();
    EXPECT_GT(resp.lease_seconds(), 0);
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeAgent() {
    stream_ctx_.TryCancel();
    thread_.join();
  }
  const std::string& id() const { return id_; }
  int points_reported() const { return points_reported_.load(); }
  std::string error() {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

 private:
  void Fail(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.empty()) error_ = what;
  }

  void Run() {
    v1::StreamAssignmentsRequest req;
    req.set_agent_id(id_);
    stream_ctx_.set_deadline(In(60));
    std::unique_ptr<grpc::ClientReader<v1::StreamAssignmentsResponse>> reader =
        agents_->StreamAssignments(&stream_ctx_, req);
    v1::StreamAssignmentsResponse m;
    while (reader->Read(&m)) {
      if (m.has_assignment()) RunAssignment(m.assignment());
    }
    reader->Finish();
  }

  void RunAssignment(const v1::Assignment& a) {
    const std::string scope = a.rendezvous_prefix();
    const int rank = a.ranks(0).rank();
    {  // Publish this rank's address, read the peer's (waiting for it).
      grpc::ClientContext ctx;
      ctx.set_deadline(In(5));
      v1::RendezvousSetRequest set;
      set.set_agent_id(id_);
      set.set_scope(scope);
      set.set_key(absl::StrCat("rank", rank));
      set.set_value(absl::StrCat("127.0.0.1:", 20000 + rank));
      v1::RendezvousSetResponse out;
      if (grpc::Status s = rendezvous_->Set(&ctx, set, &out); !s.ok()) {
        return Fail("Set: " + s.error_message());
      }
    }
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(In(10));
      v1::RendezvousGetRequest get;
      get.set_agent_id(id_);
      get.set_scope(scope);
      get.set_key(absl::StrCat("rank", 1 - rank));
      get.set_wait_seconds(5);
      v1::RendezvousGetResponse out;
      if (grpc::Status s = rendezvous_->Get(&ctx, get, &out); !s.ok() || !out.found()) {
        return Fail("Get: " + s.error_message());
      }
      if (out.value() != absl::StrCat("127.0.0.1:", 20000 + 1 - rank)) return Fail("bad value");
    }
    v1::RankReport rr;
    rr.set_job_id(a.job_id());
    rr.set_point_index(a.point_index());
    rr.set_attempt(a.attempt());
    rr.set_rank(rank);
    rr.set_agent_id(id_);
    *rr.add_phases() = testing::Phase(v1::PHASE_PREFILL, 2e6, 4e8, {0.010, 0.012, 0.011});
    *rr.add_phases() = testing::Phase(v1::PHASE_DECODE, 1e6, 2e6, {0.002, 0.003, 0.002});
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(In(5));
      v1::ReportRankRequest req;
      *req.mutable_report() = rr;
      v1::ReportRankResponse out;
      if (grpc::Status s = agents_->ReportRank(&ctx, req, &out); !s.ok()) {
        return Fail("ReportRank: " + s.error_message());
      }
    }
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(In(5));
      v1::ReportNodeRequest req;
      v1::NodeReport* n = req.mutable_report();
      n->set_job_id(a.job_id());
      n->set_point_index(a.point_index());
      n->set_attempt(a.attempt());
      n->set_agent_id(id_);
      n->set_hostname("fake");
      *n->add_devices() = testing::CpuAgent("x").inventory().devices(0);
      v1::ReportNodeResponse out;
      if (grpc::Status s = agents_->ReportNode(&ctx, req, &out); !s.ok()) {
        return Fail("ReportNode: " + s.error_message());
      }
    }
    ++points_reported_;
  }

  std::unique_ptr<v1::AgentService::Stub> agents_;
  std::unique_ptr<v1::RendezvousService::Stub> rendezvous_;
  std::string id_;
  grpc::ClientContext stream_ctx_;
  std::thread thread_;
  std::atomic<int> points_reported_{0};
  std::mutex mu_;
  std::string error_;
};

class CoordinatorGrpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CoordinatorOptions options;
    options.listen = "127.0.0.1:0";
    options.db_path = "";  // in memory
    options.shutdown_grace = absl::Seconds(1);
    options.credentials.insecure = true;  // loopback
    absl::StatusOr<std::unique_ptr<CoordinatorServer>> server = CoordinatorServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    jobs_ = v1::JobService::NewStub(channel_);
    agents_ = v1::AgentService::NewStub(channel_);
    rendezvous_ = v1::RendezvousService::NewStub(channel_);
  }

  grpc::Status Submit(const std::string& yaml, v1::SubmitPlanResponse* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::SubmitPlanRequest req;
    req.set_plan_yaml(yaml);
    req.set_origin("plan.yaml");
    return jobs_->SubmitPlan(&ctx, req, out);
  }

  std::unique_ptr<CoordinatorServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::AgentService::Stub> agents_;
  std::unique_ptr<v1::RendezvousService::Stub> rendezvous_;
};

TEST_F(CoordinatorGrpcTest, TwoAgentsRunAPlanFromSubmitToResults) {
  FakeAgent a(channel_, "agent-a");
  FakeAgent b(channel_, "agent-b");
  v1::SubmitPlanResponse submitted;
  grpc::Status s = Submit(kPlan, &submitted);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_FALSE(submitted.job_id().empty());
  EXPECT_EQ(submitted.job().points_size(), 2);

  // Watch until the job ends (bounded by the call's deadline).
  grpc::ClientContext watch_ctx;
  watch_ctx.set_deadline(In(30));
  v1::WatchJobRequest watch;
  watch.set_job_id(submitted.job_id());
  auto reader = jobs_->WatchJob(&watch_ctx, watch);
  v1::WatchJobResponse event;
  int results = 0;
  v1::JobState last = v1::JOB_STATE_UNSPECIFIED;
  bool first = true;
  while (reader->Read(&event)) {
    if (first) {
      EXPECT_TRUE(event.has_snapshot());
    }
    first = false;
    if (event.has_result()) ++results;
    if (event.has_job_state()) last = event.job_state().transition().state();
  }
  s = reader->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(last, v1::JOB_STATE_SUCCEEDED) << a.error() << b.error();
  EXPECT_EQ(results, 2);
  // The last ReportNode ends the job before its caller sees the answer: wait (bounded) for it.
  for (int i = 0; i < 250 && a.points_reported() + b.points_reported() < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(a.points_reported(), 2);
  EXPECT_EQ(b.points_reported(), 2);

  grpc::ClientContext ctx;
  ctx.set_deadline(In(5));
  v1::GetResultsRequest req;
  req.set_job_id(submitted.job_id());
  v1::GetResultsResponse res;
  ASSERT_TRUE(jobs_->GetResults(&ctx, req, &res).ok());
  ASSERT_EQ(res.results_size(), 2);
  EXPECT_EQ(res.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(res.model(), "mixtral-8x7b");
  // Decode: 2 ranks × 1e6 bytes over the slowest steps [0.002, 0.003, 0.002] (mean 7/3 ms) and
  // 2 × 100 GB/s.
  const v1::PhaseResult& decode = res.results(0).phases(1);
  EXPECT_NEAR(decode.s_mbu(), 2e6 / (0.007 / 3 * 200e9), 1e-12);
  EXPECT_TRUE(res.results(0).has_cost());
  EXPECT_EQ(res.results(0).nodes_size(), 2);

  grpc::ClientContext list_ctx;
  list_ctx.set_deadline(In(5));
  v1::ListAgentsResponse agents;
  ASSERT_TRUE(jobs_->ListAgents(&list_ctx, {}, &agents).ok());
  EXPECT_EQ(agents.agents_size(), 2);
  EXPECT_NE(server_->metrics_registry().Render().find("moecap_result_sparse_mbu{"),
            std::string::npos);
  EXPECT_NE(server_->metrics_registry().Render().find(
                "grpc_method=\"ReportNode\",grpc_type=\"unary\",grpc_code=\"OK\""),
            std::string::npos);
}

TEST_F(CoordinatorGrpcTest, MalformedRequestsGetProperStatusCodes) {
  v1::SubmitPlanResponse out;
  grpc::Status s = Submit(std::string(kPlan) + "workload_typo: 3\n", &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("plan.yaml: field 'workload_typo'"), std::string::npos)
      << s.error_message();
  s = Submit("model: nonexistent-model\n", &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  s = Submit("model: [unclosed\n", &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  {
    grpc::ClientContext ctx;
    v1::SubmitPlanRequest empty;
    EXPECT_EQ(jobs_->SubmitPlan(&ctx, empty, &out).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  {  // Larger than the 16 MiB receive limit.
    grpc::ClientContext ctx;
    ctx.set_deadline(In(10));
    v1::SubmitPlanRequest huge;
    huge.set_plan_yaml(std::string(17 << 20, '#'));
    EXPECT_EQ(jobs_->SubmitPlan(&ctx, huge, &out).error_code(),
              grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  {
    grpc::ClientContext ctx;
    v1::GetJobRequest req;
    req.set_job_id("job-999999");
    v1::GetJobResponse job;
    EXPECT_EQ(jobs_->GetJob(&ctx, req, &job).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::GetJobResponse job;
    EXPECT_EQ(jobs_->GetJob(&ctx, {}, &job).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    grpc::ClientContext ctx;
    v1::HeartbeatRequest req;
    req.set_agent_id("agent-ghost");
    v1::HeartbeatResponse resp;
    EXPECT_EQ(agents_->Heartbeat(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::ReportNodeRequest req;
    req.mutable_report()->set_agent_id("agent-ghost");
    req.mutable_report()->set_job_id("job-000001");
    v1::ReportNodeResponse resp;
    EXPECT_EQ(agents_->ReportNode(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::RegisterRequest req;  // no name, no devices
    v1::RegisterResponse resp;
    EXPECT_EQ(agents_->Register(&ctx, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {  // A stream for an unknown agent ends with NOT_FOUND.
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::StreamAssignmentsRequest req;
    req.set_agent_id("agent-ghost");
    auto reader = agents_->StreamAssignments(&ctx, req);
    v1::StreamAssignmentsResponse m;
    EXPECT_FALSE(reader->Read(&m));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  // The server is still up.
  grpc::ClientContext ctx;
  v1::ListJobsResponse list;
  EXPECT_TRUE(jobs_->ListJobs(&ctx, {}, &list).ok());
}

TEST_F(CoordinatorGrpcTest, RendezvousCallsNeedALiveAgentAndTimeOut) {
  FakeAgent a(channel_, "lonely");
  // No scope for this agent yet: NOT_FOUND.
  grpc::ClientContext ctx;
  v1::RendezvousGetRequest get;
  get.set_agent_id(a.id());
  get.set_scope("job-000001/p0/a1");
  get.set_key("k");
  v1::RendezvousGetResponse out;
  EXPECT_EQ(rendezvous_->Get(&ctx, get, &out).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext ghost_ctx;
  get.set_agent_id("agent-ghost");
  EXPECT_EQ(rendezvous_->Get(&ghost_ctx, get, &out).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext bad_ctx;
  get.set_agent_id(a.id());
  get.set_wait_seconds(-1);
  EXPECT_EQ(rendezvous_->Get(&bad_ctx, get, &out).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // A one-node job gives the agent a scope; a wait for a key nobody sets times out (0.3 s).
  v1::SubmitPlanResponse submitted;
  std::string one_node = kPlan;
  one_node.replace(one_node.find("nodes: 2"), 8, "nodes: 1");
  ASSERT_TRUE(Submit(one_node + "retry: {max_retries: 0}\n", &submitted).ok());
  // The fake agent blocks on its peer (there is none) for 5 s, so query the scope meanwhile.
  std::string scope;
  for (int i = 0; i < 100 && scope.empty(); ++i) {
    grpc::ClientContext jctx;
    v1::GetJobRequest jreq;
    jreq.set_job_id(submitted.job_id());
    v1::GetJobResponse job;
    ASSERT_TRUE(jobs_->GetJob(&jctx, jreq, &job).ok());
    if (job.job().state() != v1::JOB_STATE_QUEUED) scope = submitted.job_id() + "/p0/a1";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_FALSE(scope.empty());
  grpc::ClientContext wait_ctx;
  wait_ctx.set_deadline(In(5));
  v1::RendezvousWaitRequest wait;
  wait.set_agent_id(a.id());
  wait.set_scope(scope);
  wait.add_keys("never-set");
  wait.set_timeout_seconds(0.3);
  v1::RendezvousWaitResponse waited;
  const auto start = std::chrono::steady_clock::now();
  grpc::Status s = rendezvous_->Wait(&wait_ctx, wait, &waited);
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_NE(s.error_message().find("never-set"), std::string::npos) << s.error_message();
  EXPECT_GE(took, 0.25);
  EXPECT_LT(took, 3.0);
  grpc::ClientContext cancel_ctx;
  v1::CancelJobRequest cancel;
  cancel.set_job_id(submitted.job_id());
  v1::CancelJobResponse cancelled;
  EXPECT_TRUE(jobs_->CancelJob(&cancel_ctx, cancel, &cancelled).ok());
}

TEST_F(CoordinatorGrpcTest, HealthServiceSaysServing) {
  // grpc.health.v1.Health/Check with an empty request; SERVING is status 1 (bytes 08 01).
  grpc::GenericStub stub(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(In(5));
  grpc::ByteBuffer request;
  grpc::Slice empty("");
  request = grpc::ByteBuffer(&empty, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(s); });
  std::future<grpc::Status> f = done.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  ASSERT_TRUE(f.get().ok());
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

// grpc.reflection.v1alpha ServerReflectionInfo with list_services (field 7, "" -> bytes 3a 00):
// the answer names moecap's services, so grpc_cli and grpcurl can explore the API.
class ReflectionCall final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ReflectionCall(grpc::GenericStub& stub, grpc::ClientContext* ctx) {
    stub.PrepareBidiStreamingCall(ctx,
                                  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                  grpc::StubOptions(), this);
    grpc::Slice list_services(std::string("\x3a\x00", 2));
    request_ = grpc::ByteBuffer(&list_services, 1);
    StartWrite(&request_);
    StartRead(&response_);
    StartCall();
  }
  void OnWriteDone(bool /*ok*/) override { StartWritesDone(); }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    std::vector<grpc::Slice> slices;
    if (!response_.Dump(&slices).ok()) return;
    for (const auto& sl : slices) {
      text_.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
    }
  }
  void OnDone(const grpc::Status& s) override { done_.set_value(s); }
  std::future<grpc::Status> Done() { return done_.get_future(); }
  const std::string& text() const { return text_; }

 private:
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  std::string text_;
  std::promise<grpc::Status> done_;
};

TEST_F(CoordinatorGrpcTest, ReflectionListsTheServices) {
  grpc::GenericStub stub(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(In(5));
  ReflectionCall call(stub, &ctx);
  std::future<grpc::Status> done = call.Done();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(6)), std::future_status::ready);
  EXPECT_TRUE(done.get().ok());
  EXPECT_NE(call.text().find("moecap.v1.JobService"), std::string::npos);
  EXPECT_NE(call.text().find("moecap.v1.AgentService"), std::string::npos);
  EXPECT_NE(call.text().find("moecap.v1.RendezvousService"), std::string::npos);
}

// ---- The binary ----

struct Process {
  pid_t pid = -1;
  FILE* out = nullptr;
};

Process StartCoordinator(const std::string& db) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl(MOECAP_COORDINATOR_BINARY, MOECAP_COORDINATOR_BINARY, "--listen", "127.0.0.1:0", "--db",
          db.c_str(), "--metrics-listen", "127.0.0.1:0", "--log-level", "warn", "--insecure",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  return {pid, fdopen(fds[0], "r")};
}

// The address from the "listening on HOST:PORT" line (empty if the process ended first).
std::string ListeningAddress(Process& p) {
  char line[256];
  while (std::fgets(line, sizeof(line), p.out) != nullptr) {
    std::string l(line);
    const std::string prefix = "listening on ";
    if (l.rfind(prefix, 0) == 0) return l.substr(prefix.size(), l.find('\n') - prefix.size());
  }
  return "";
}

// SIGTERM, then the exit status within `seconds` (-1 if it had to be killed).
int Stop(Process& p, double seconds) {
  kill(p.pid, SIGTERM);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(p.pid, &status, WNOHANG) == p.pid) {
      std::fclose(p.out);
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(p.pid, SIGKILL);
  waitpid(p.pid, &status, 0);
  std::fclose(p.out);
  return -1;
}

TEST(CoordinatorBinaryTest, StartsStopsOnSigtermAndKeepsJobsAcrossRestarts) {
  const std::string db = (std::filesystem::temp_directory_path() /
                          ("moecap_coordinator_bin_" + std::to_string(getpid()) + ".db"))
                             .string();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
  Process first = StartCoordinator(db);
  const std::string address = ListeningAddress(first);
  ASSERT_FALSE(address.empty());
  std::string job_id;
  {
    auto stub =
        v1::JobService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(In(10));
    v1::SubmitPlanRequest req;
    req.set_plan_yaml(kPlan);
    v1::SubmitPlanResponse resp;
    grpc::Status s = stub->SubmitPlan(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    job_id = resp.job_id();
  }
  EXPECT_EQ(Stop(first, 10), 0);

  Process second = StartCoordinator(db);
  const std::string again = ListeningAddress(second);
  ASSERT_FALSE(again.empty());
  {
    auto stub =
        v1::JobService::NewStub(grpc::CreateChannel(again, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(In(10));
    v1::GetJobRequest req;
    req.set_job_id(job_id);
    v1::GetJobResponse resp;
    grpc::Status s = stub->GetJob(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.job().state(), v1::JOB_STATE_QUEUED);
  }
  EXPECT_EQ(Stop(second, 10), 0);
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
}

}  // namespace
}  // namespace moecap::coordinator
