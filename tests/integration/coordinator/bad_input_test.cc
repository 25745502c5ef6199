// Bad input over real gRPC (issue 7, "Bad input"): a CoordinatorServer on 127.0.0.1:0 in this
// process, a small receive limit, and test code as the agent. Checks: an oversized request is
// RESOURCE_EXHAUSTED and the next call is answered; malformed and out-of-range plans are
// INVALID_ARGUMENT naming the field path; reports for unknown jobs, from unknown agents, for the
// wrong attempt or rank are refused with the proper code; a late report for a finished job is
// FAILED_PRECONDITION and is not counted twice; calls after a cancel are refused or told to stop.
// Every wait is bounded by a deadline.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/coordinator_server.h"
#include "grpcpp/grpcpp.h"
#include "moecap/v1/agent_service.grpc.pb.h"
#include "moecap/v1/job_service.grpc.pb.h"
#include "tests/fakes/test_agents.h"

namespace moecap::coordinator {
namespace {

// One node, one rank, one point: an agent that reports by hand can finish it.
constexpr char kOnePointPlan[] = R"(
name: bad-input
model: mixtral-8x7b
hardware: {backend: cpu}
parallelism: {nodes: 1, devices_per_node: 1}
workload:
  phases: [decode]
  batch_sizes: [2]
  prompt_len: 8
  output_len: 4
  scale: 16
  iterations: 3
retry: {max_retries: 0}
)";

constexpr int kReceiveLimit = 1 << 20;  // 1 MiB, so that an oversized request is cheap to build

std::chrono::system_clock::time_point In(double seconds) {
  return std::chrono::system_clock::now() +
         std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
}

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CoordinatorOptions options;
    options.listen = "127.0.0.1:0";
    options.db_path = "";  // in memory
    options.shutdown_grace = absl::Seconds(1);
    options.max_receive_message_bytes = kReceiveLimit;
    options.credentials.insecure = true;
    absl::StatusOr<std::unique_ptr<CoordinatorServer>> server = CoordinatorServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    jobs_ = v1::JobService::NewStub(channel_);
    agents_ = v1::AgentService::NewStub(channel_);
  }
  void TearDown() override {
    if (stream_ctx_ != nullptr) stream_ctx_->TryCancel();
    if (stream_thread_.joinable()) stream_thread_.join();
  }

  grpc::Status Submit(const std::string& yaml, v1::SubmitPlanResponse* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::SubmitPlanRequest req;
    req.set_plan_yaml(yaml);
    req.set_origin("plan.yaml");
    return jobs_->SubmitPlan(&ctx, req, out);
  }

  // Submits `yaml` and expects a refusal with `code` whose message contains `text`.
  void ExpectRefused(const std::string& yaml, grpc::StatusCode code, const std::string& text) {
    v1::SubmitPlanResponse out;
    const grpc::Status s = Submit(yaml, &out);
    EXPECT_EQ(s.error_code(), code) << yaml << "\n" << s.error_message();
    EXPECT_NE(s.error_message().find(text), std::string::npos)
        << "expected '" << text << "' in: " << s.error_message();
  }

  std::string Register(const std::string& name) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::RegisterRequest req;
    *req.mutable_agent() = testing::CpuAgent(name);
    v1::RegisterResponse resp;
    const grpc::Status s = agents_->Register(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.agent_id();
  }

  // Registers an agent, opens its assignment stream and returns the first assignment (the test
  // then reports by hand). Fails the test if none comes within 10 s.
  v1::Assignment RegisterAndWaitForAssignment(const std::string& name, std::string* agent_id) {
    *agent_id = Register(name);
    stream_ctx_ = std::make_unique<grpc::ClientContext>();
    stream_ctx_->set_deadline(In(30));
    auto promise = std::make_shared<std::promise<v1::Assignment>>();
    std::future<v1::Assignment> assigned = promise->get_future();
    stream_thread_ = std::thread([this, id = *agent_id, promise] {
      v1::StreamAssignmentsRequest req;
      req.set_agent_id(id);
      auto reader = agents_->StreamAssignments(stream_ctx_.get(), req);
      v1::StreamAssignmentsResponse m;
      bool first = true;
      while (reader->Read(&m)) {
        if (m.has_assignment() && first) {
          first = false;
          promise->set_value(m.assignment());
        }
      }
      reader->Finish();
      if (first) promise->set_value(v1::Assignment());
    });
    EXPECT_EQ(assigned.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    return assigned.get();
  }

  grpc::Status ReportRank(const v1::RankReport& report) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::ReportRankRequest req;
    *req.mutable_report() = report;
    v1::ReportRankResponse out;
    return agents_->ReportRank(&ctx, req, &out);
  }

  grpc::Status ReportNode(const v1::NodeReport& report) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::ReportNodeRequest req;
    *req.mutable_report() = report;
    v1::ReportNodeResponse out;
    return agents_->ReportNode(&ctx, req, &out);
  }

  static v1::RankReport RankReportFor(const v1::Assignment& a, const std::string& agent_id) {
    v1::RankReport rr;
    rr.set_job_id(a.job_id());
    rr.set_point_index(a.point_index());
    rr.set_attempt(a.attempt());
    rr.set_rank(a.ranks(0).rank());
    rr.set_agent_id(agent_id);
    *rr.add_phases() = testing::Phase(v1::PHASE_DECODE, 1e6, 2e6, {0.002, 0.003, 0.002});
    return rr;
  }

  static v1::NodeReport NodeReportFor(const v1::Assignment& a, const std::string& agent_id) {
    v1::NodeReport n;
    n.set_job_id(a.job_id());
    n.set_point_index(a.point_index());
    n.set_attempt(a.attempt());
    n.set_agent_id(agent_id);
    n.set_hostname("fake");
    *n.add_devices() = testing::CpuAgent("x").inventory().devices(0);
    return n;
  }

  v1::GetJobResponse GetJob(const std::string& job_id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::GetJobRequest req;
    req.set_job_id(job_id);
    v1::GetJobResponse job;
    EXPECT_TRUE(jobs_->GetJob(&ctx, req, &job).ok());
    return job;
  }

  v1::GetResultsResponse GetResults(const std::string& job_id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::GetResultsRequest req;
    req.set_job_id(job_id);
    v1::GetResultsResponse res;
    const grpc::Status s = jobs_->GetResults(&ctx, req, &res);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return res;
  }

  // Polls (bounded) until the job is in `state`.
  bool WaitForState(const std::string& job_id, v1::JobState state, double seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      if (GetJob(job_id).job().state() == state) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  bool ServerAnswers() {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::ListJobsResponse list;
    return jobs_->ListJobs(&ctx, {}, &list).ok();
  }

  std::unique_ptr<CoordinatorServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::AgentService::Stub> agents_;
  std::unique_ptr<grpc::ClientContext> stream_ctx_;
  std::thread stream_thread_;
};

TEST_F(BadInputTest, OversizedRequestsAreResourceExhaustedAndTheServerStaysUp) {
  v1::SubmitPlanResponse out;
  // 1 MiB + 1 byte of YAML comment: over the limit by the field's own size alone.
  grpc::Status s = Submit(std::string(kReceiveLimit + 1, '#'), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  // The same connection answers the next call, and a plan just under the limit is parsed (and
  // refused for what it says, not for its size).
  EXPECT_TRUE(ServerAnswers());
  s = Submit(std::string(kReceiveLimit - 4096, '#'), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_TRUE(Submit(kOnePointPlan, &out).ok());

  // The agent side has the same limit: an oversized report, then a heartbeat that is answered.
  const std::string id = Register("big-reporter");
  v1::NodeReport huge;
  huge.set_agent_id(id);
  huge.set_job_id(out.job_id());
  huge.set_hostname(std::string(kReceiveLimit + 1, 'h'));
  EXPECT_EQ(ReportNode(huge).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  grpc::ClientContext ctx;
  ctx.set_deadline(In(5));
  v1::HeartbeatRequest hb;
  hb.set_agent_id(id);
  hb.set_state(v1::AGENT_STATE_IDLE);
  v1::HeartbeatResponse hb_out;
  s = agents_->Heartbeat(&ctx, hb, &hb_out);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(ServerAnswers());
}

TEST_F(BadInputTest, MalformedPlansAreInvalidArgumentNamingTheField) {
  const grpc::StatusCode kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
  ExpectRefused("", kInvalid, "no plan given");
  ExpectRefused("   \n# only a comment\n", kInvalid, "plan.yaml: empty document");
  constexpr char kControlBytes[] = "\x01\x02\x7f garbage: [\n";
  ExpectRefused(kControlBytes, kInvalid, "plan.yaml");
  {
    // Bytes that are not UTF-8 cannot even be read as the request (plan_yaml is a protobuf
    // string): gRPC refuses the call before the service sees it (UNIMPLEMENTED in gRPC 1.51),
    // and the server stays up.
    v1::SubmitPlanResponse out;
    const grpc::Status s = Submit(std::string("model: \xff\xfe\n", 10), &out);
    EXPECT_FALSE(s.ok());
    std::printf("non-UTF-8 plan_yaml: gRPC code %d: %s\n", s.error_code(),
                s.error_message().c_str());
    EXPECT_TRUE(ServerAnswers());
  }
  ExpectRefused("{{{{", kInvalid, "YAML syntax error");
  ExpectRefused("- a\n- b\n", kInvalid, "expected a mapping at the top level");
  ExpectRefused("model: [mixtral-8x7b]\n", kInvalid, "field 'model': expected a string");
  ExpectRefused("model: mixtral-8x7b\nworkload: {batch_sizes: [1, x]}\n", kInvalid,
                "field 'workload.batch_sizes[1]': expected an integer, got 'x'");
  ExpectRefused("model: mixtral-8x7b\nworkload: {dtype: int3}\n", kInvalid,
                "field 'workload.dtype': expected one of");
  ExpectRefused("model: mixtral-8x7b\nmodel: dbrx\n", kInvalid, "field 'model': given twice");
  ExpectRefused("model: mixtral-8x7b\nworkload: {iterations: 99999999999}\n", kInvalid,
                "field 'workload.iterations': out of range for a 32-bit integer");
}

TEST_F(BadInputTest, OutOfRangeValuesAreInvalidArgumentNamingTheField) {
  const grpc::StatusCode kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
  const std::string base = "model: mixtral-8x7b\nhardware: {backend: cpu}\n";
  ExpectRefused(base + "workload: {batch_sizes: [4, 0]}\n", kInvalid,
                "field 'workload.batch_sizes[1]': must be >= 1, got 0");
  ExpectRefused(base + "workload: {iterations: -5}\n", kInvalid,
                "field 'workload.iterations': must be >= 1, got -5");
  ExpectRefused(base + "workload: {warmup: -1}\n", kInvalid,
                "field 'workload.warmup': must be >= 0, got -1");
  ExpectRefused(base + "workload: {prompt_len: 0}\n", kInvalid, "field 'workload.prompt_len'");
  ExpectRefused(base + "workload: {routing: {zipf: {exponent: -1}}}\n", kInvalid,
                "field 'workload.routing.zipf.exponent': must be > 0");
  ExpectRefused(base + "workload: {timeouts: {point_seconds: -3}}\n", kInvalid,
                "field 'workload.timeouts.point_seconds': must be > 0 seconds");
  ExpectRefused(base + "retry: {max_retries: 1000}\n", kInvalid,
                "field 'retry.max_retries': must be between 0 and 100");
  ExpectRefused(base + "parallelism: {nodes: 0}\n", kInvalid,
                "field 'parallelism.nodes': must be >= 1, got 0");
  // Huge ranks: 2^31-1 nodes of 2^31-1 devices (their product does not fit in 32 bits).
  ExpectRefused(base + "parallelism: {nodes: 2147483647, devices_per_node: 2147483647}\n", kInvalid,
                "field 'parallelism.");
  ExpectRefused(base + "parallelism: {nodes: 2, expert_parallel: 3}\n", kInvalid,
                "field 'parallelism.expert_parallel': must be between 1 and");
  ExpectRefused(base + "sweeps: [{batch_sizes: [1, -2]}]\n", kInvalid,
                "field 'sweeps[0].batch_sizes[1]': must be >= 1, got -2");
  ExpectRefused(base + "workload: {dtype: fp8}\n", kInvalid,
                "field 'workload.dtype': fp8 is not supported by the cpu backend");

  // The plan as a message (not YAML) goes through the same validation.
  grpc::ClientContext ctx;
  ctx.set_deadline(In(5));
  v1::SubmitPlanRequest req;
  req.mutable_plan()->set_model("mixtral-8x7b");
  req.mutable_plan()->mutable_workload()->add_batch_sizes(0);
  v1::SubmitPlanResponse out;
  grpc::Status s = jobs_->SubmitPlan(&ctx, req, &out);
  EXPECT_EQ(s.error_code(), kInvalid);
  EXPECT_NE(s.error_message().find("field 'workload.batch_sizes[0]'"), std::string::npos)
      << s.error_message();
  grpc::ClientContext enum_ctx;
  enum_ctx.set_deadline(In(5));
  req.mutable_plan()->mutable_workload()->clear_batch_sizes();
  req.mutable_plan()->mutable_workload()->set_dtype(static_cast<v1::Dtype>(99));
  s = jobs_->SubmitPlan(&enum_ctx, req, &out);
  EXPECT_EQ(s.error_code(), kInvalid);
  EXPECT_NE(s.error_message().find("field 'workload.dtype'"), std::string::npos)
      << s.error_message();
  EXPECT_TRUE(ServerAnswers());
}

TEST_F(BadInputTest, ReportsForUnknownJobsOrFromUnknownAgentsAreRefused) {
  const std::string id = Register("known");
  v1::RankReport rank;
  rank.set_job_id("job-999999");
  rank.set_agent_id(id);
  EXPECT_EQ(ReportRank(rank).error_code(), grpc::StatusCode::NOT_FOUND);
  rank.set_agent_id("agent-ghost");
  EXPECT_EQ(ReportRank(rank).error_code(), grpc::StatusCode::NOT_FOUND);
  rank.set_agent_id("");
  EXPECT_EQ(ReportRank(rank).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::NodeReport node;
  node.set_job_id("job-999999");
  node.set_agent_id(id);
  EXPECT_EQ(ReportNode(node).error_code(), grpc::StatusCode::NOT_FOUND);

  {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::ReportProgressRequest req;
    req.set_agent_id(id);
    req.set_job_id("job-999999");
    v1::ReportProgressResponse out;
    EXPECT_EQ(agents_->ReportProgress(&ctx, req, &out).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::ReportFailureRequest req;
    req.set_agent_id(id);
    req.set_job_id("job-999999");
    v1::ReportFailureResponse out;
    EXPECT_EQ(agents_->ReportFailure(&ctx, req, &out).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {  // A heartbeat from an agent that never registered, and one with no id at all.
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::HeartbeatRequest req;
    req.set_agent_id("agent-never-registered");
    v1::HeartbeatResponse out;
    EXPECT_EQ(agents_->Heartbeat(&ctx, req, &out).error_code(), grpc::StatusCode::NOT_FOUND);
    grpc::ClientContext empty_ctx;
    empty_ctx.set_deadline(In(5));
    req.clear_agent_id();
    EXPECT_EQ(agents_->Heartbeat(&empty_ctx, req, &out).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  {  // Deregistering an unknown agent.
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::DeregisterRequest req;
    req.set_agent_id("agent-ghost");
    v1::DeregisterResponse out;
    EXPECT_EQ(agents_->Deregister(&ctx, req, &out).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  EXPECT_TRUE(ServerAnswers());
}

TEST_F(BadInputTest, ReportsForTheWrongAttemptRankOrAgentAreRefused) {
  v1::SubmitPlanResponse submitted;
  ASSERT_TRUE(Submit(kOnePointPlan, &submitted).ok());
  std::string id;
  const v1::Assignment a = RegisterAndWaitForAssignment("worker", &id);
  ASSERT_EQ(a.job_id(), submitted.job_id());
  const std::string bystander = Register("bystander");

  v1::RankReport wrong_attempt = RankReportFor(a, id);
  wrong_attempt.set_attempt(a.attempt() + 7);
  EXPECT_EQ(ReportRank(wrong_attempt).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  v1::RankReport wrong_point = RankReportFor(a, id);
  wrong_point.set_point_index(5);
  EXPECT_EQ(ReportRank(wrong_point).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  v1::RankReport wrong_rank = RankReportFor(a, id);
  wrong_rank.set_rank(1000000);
  grpc::Status s = ReportRank(wrong_rank);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("field 'report.rank'"), std::string::npos) << s.error_message();
  // An agent that holds no rank of the job.
  EXPECT_EQ(ReportRank(RankReportFor(a, bystander)).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  // A node report without its rank reports or devices.
  v1::NodeReport no_ranks = NodeReportFor(a, id);
  s = ReportNode(no_ranks);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("field 'report.ranks'"), std::string::npos) << s.error_message();
  // None of the refused reports moved the job on: the real ones still finish it.
  ASSERT_TRUE(ReportRank(RankReportFor(a, id)).ok());
  v1::NodeReport no_devices = NodeReportFor(a, id);
  no_devices.clear_devices();
  EXPECT_EQ(ReportNode(no_devices).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(ReportNode(NodeReportFor(a, id)).ok());
  EXPECT_TRUE(WaitForState(submitted.job_id(), v1::JOB_STATE_SUCCEEDED, 10));
}

TEST_F(BadInputTest, ALateReportForAFinishedJobIsRefusedAndNotCountedTwice) {
  v1::SubmitPlanResponse submitted;
  ASSERT_TRUE(Submit(kOnePointPlan, &submitted).ok());
  std::string id;
  const v1::Assignment a = RegisterAndWaitForAssignment("worker", &id);
  ASSERT_EQ(a.job_id(), submitted.job_id());
  ASSERT_TRUE(ReportRank(RankReportFor(a, id)).ok());
  ASSERT_TRUE(ReportNode(NodeReportFor(a, id)).ok());
  ASSERT_TRUE(WaitForState(submitted.job_id(), v1::JOB_STATE_SUCCEEDED, 10));
  const v1::GetResultsResponse before = GetResults(submitted.job_id());
  ASSERT_EQ(before.results_size(), 1);

  // The same reports again, and a report with different figures: all refused.
  grpc::Status s = ReportRank(RankReportFor(a, id));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  s = ReportNode(NodeReportFor(a, id));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  v1::NodeReport different = NodeReportFor(a, id);
  *different.add_ranks() = RankReportFor(a, id);
  *different.mutable_ranks(0)->mutable_phases(0) =
      testing::Phase(v1::PHASE_DECODE, 9e9, 9e9, {1, 1, 1});
  EXPECT_EQ(ReportNode(different).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::ReportFailureRequest req;
    req.set_agent_id(id);
    req.set_job_id(a.job_id());
    req.set_point_index(a.point_index());
    req.set_attempt(a.attempt());
    req.set_rank(-1);
    req.set_reason("late failure");
    v1::ReportFailureResponse out;
    EXPECT_EQ(agents_->ReportFailure(&ctx, req, &out).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }

  const v1::GetResultsResponse after = GetResults(submitted.job_id());
  EXPECT_EQ(after.state(), v1::JOB_STATE_SUCCEEDED);
  ASSERT_EQ(after.results_size(), 1);
  EXPECT_EQ(after.results(0).SerializeAsString(), before.results(0).SerializeAsString());
}

TEST_F(BadInputTest, CallsAfterACancelAreRefusedOrToldToStop) {
  v1::SubmitPlanResponse submitted;
  ASSERT_TRUE(Submit(kOnePointPlan, &submitted).ok());
  std::string id;
  const v1::Assignment a = RegisterAndWaitForAssignment("worker", &id);
  ASSERT_EQ(a.job_id(), submitted.job_id());
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::CancelJobRequest req;
    req.set_job_id(a.job_id());
    v1::CancelJobResponse out;
    ASSERT_TRUE(jobs_->CancelJob(&ctx, req, &out).ok());
  }
  ASSERT_TRUE(WaitForState(a.job_id(), v1::JOB_STATE_CANCELLED, 10));

  // Progress is answered with "cancelled" (the agent stops); reports are refused.
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::ReportProgressRequest req;
    req.set_agent_id(id);
    req.set_job_id(a.job_id());
    req.set_point_index(a.point_index());
    req.set_attempt(a.attempt());
    req.set_rank(a.ranks(0).rank());
    v1::ReportProgressResponse out;
    ASSERT_TRUE(agents_->ReportProgress(&ctx, req, &out).ok());
    EXPECT_TRUE(out.cancelled());
  }
  EXPECT_EQ(ReportRank(RankReportFor(a, id)).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ReportNode(NodeReportFor(a, id)).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  {  // A heartbeat that still names the job gets a cancel command for it.
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::HeartbeatRequest req;
    req.set_agent_id(id);
    req.set_state(v1::AGENT_STATE_BUSY);
    req.set_current_job_id(a.job_id());
    req.set_current_point_index(a.point_index());
    req.set_current_attempt(a.attempt());
    v1::HeartbeatResponse out;
    ASSERT_TRUE(agents_->Heartbeat(&ctx, req, &out).ok());
    bool cancelled = false;
    for (const v1::AgentCommand& c : out.commands()) {
      cancelled |= c.has_cancel() && c.cancel().job_id() == a.job_id();
    }
    EXPECT_TRUE(cancelled);
  }
  {  // A second cancel is refused: the job already finished.
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::CancelJobRequest req;
    req.set_job_id(a.job_id());
    v1::CancelJobResponse out;
    EXPECT_EQ(jobs_->CancelJob(&ctx, req, &out).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
  const v1::GetResultsResponse results = GetResults(a.job_id());
  EXPECT_EQ(results.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(results.results_size(), 0);
  {  // Watching the cancelled job gives its snapshot and ends.
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5));
    v1::WatchJobRequest req;
    req.set_job_id(a.job_id());
    auto reader = jobs_->WatchJob(&ctx, req);
    v1::WatchJobResponse event;
    int events = 0;
    while (reader->Read(&event)) ++events;
    EXPECT_TRUE(reader->Finish().ok());
    EXPECT_GE(events, 1);
  }
  EXPECT_TRUE(ServerAnswers());
}

}  // namespace
}  // namespace moecap::coordinator
