// moecap-agent against the real coordinator (coordinator/, embedded in-process): two agent
// processes register, a 2-node plan submitted through JobService runs on both, and the point's
// cluster result arrives with the check passed and byte/FLOP counts equal to the metric core's
// for the activated experts it reports. This is the agent's side of the AgentService and
// RendezvousService contract, exercised with the coordinator that serves it.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/workload/config.h"
#include "common/catalog.h"
#include "common/metrics.h"
#include "common/plan/convert.h"
#include "coordinator/coordinator_server.h"
#include "moecap/v1/job_service.grpc.pb.h"
#include "tests/integration/agent/agent_process.h"

namespace moecap::testing {
namespace {

constexpr char kAgentBinary[] = MOECAP_AGENT_BINARY;

constexpr char kPlan[] = R"(
name: agent-it
model: mixtral-8x7b
hardware: {backend: cpu}
parallelism: {nodes: 2, devices_per_node: 1}
workload:
  phases: [prefill, decode]
  batch_sizes: [4]
  prompt_len: 8
  output_len: 16
  layer: moe  # the counts below are CountMoeBlocks'
  layers: 2
  scale: 32
  warmup: 1
  iterations: 3
  check: true
)";

TEST(AgentWithCoordinatorTest, TwoAgentsRunASubmittedPlan) {
  std::string templ = absl::StrCat(::testing::TempDir(), "/moecap-agent-coord-XXXXXX");
  ASSERT_NE(mkdtemp(templ.data()), nullptr);
  const std::string dir = templ;

  coordinator::CoordinatorOptions options;
  options.listen = "127.0.0.1:0";
  options.db_path = "";                 // in memory
  options.credentials.insecure = true;  // loopback
  absl::StatusOr<std::unique_ptr<coordinator::CoordinatorServer>> server =
      coordinator::CoordinatorServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = absl::StrCat("127.0.0.1:", (*server)->port());

  std::vector<std::unique_ptr<AgentProcess>> agents;
  for (const std::string& name : std::vector<std::string>{"n0", "n1"}) {
    agents.push_back(std::make_unique<AgentProcess>(
        kAgentBinary,
        std::vector<std::string>{"--coordinator", address, "--name", name, "--devices", "1",
                                 "--threads-per-rank", "1", "--peak-bandwidth-gb-s", "20",
                                 "--peak-gflops", "50", "--work-dir", absl::StrCat(dir, "/", name),
                                 "--log-level", "debug"},
        absl::StrCat(dir, "/", name, ".log")));
  }
  auto stub =
      v1::JobService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  const auto call = [](auto&& method) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return method(context);
  };
  const auto dump_logs = [&] {
    for (auto& agent : agents) std::cerr << "---- agent log ----\n" << agent->Log();
  };

  // Both agents registered and idle (bounded).
  bool idle = false;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(20);
       !idle && absl::Now() < deadline;) {
    v1::ListAgentsResponse listed;
    call([&](grpc::ClientContext& c) {
      return stub->ListAgents(&c, v1::ListAgentsRequest(), &listed);
    });
    idle = listed.agents_size() == 2 &&
           std::all_of(listed.agents().begin(), listed.agents().end(),
                       [](const v1::Agent& a) { return a.state() == v1::AGENT_STATE_IDLE; });
    if (!idle) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(idle) << "the agents did not register";

  v1::SubmitPlanRequest submit;
  submit.set_plan_yaml(kPlan);
  v1::SubmitPlanResponse submitted;
  const grpc::Status status =
      call([&](grpc::ClientContext& c) { return stub->SubmitPlan(&c, submit, &submitted); });
  ASSERT_TRUE(status.ok()) << status.error_message();
  const std::string job_id = submitted.job_id();

  v1::Job job;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(60); absl::Now() < deadline;) {
    v1::GetJobRequest get;
    get.set_job_id(job_id);
    v1::GetJobResponse got;
    call([&](grpc::ClientContext& c) { return stub->GetJob(&c, get, &got); });
    job = got.job();
    if (job.state() == v1::JOB_STATE_SUCCEEDED || job.state() == v1::JOB_STATE_FAILED ||
        job.state() == v1::JOB_STATE_CANCELLED) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (job.state() != v1::JOB_STATE_SUCCEEDED) dump_logs();
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.failure_reason();

  v1::GetResultsRequest get_results;
  get_results.set_job_id(job_id);
  v1::GetResultsResponse results;
  ASSERT_TRUE(call([&](grpc::ClientContext& c) {
                return stub->GetResults(&c, get_results, &results);
              }).ok());
  ASSERT_EQ(results.results_size(), 1);
  const v1::PointResult& point = results.results(0);
  EXPECT_EQ(point.devices(), 2);
  EXPECT_TRUE(point.check().passed()) << point.check().detail();
  EXPECT_EQ(point.nodes_size(), 2);
  ASSERT_EQ(point.phases_size(), 2);
  absl::StatusOr<Catalog> catalog = Catalog::Builtin();
  ASSERT_TRUE(catalog.ok());
  const ModelSpec scaled = ScaledModel(**catalog->FindModel("mixtral-8x7b"), 32);
  for (const v1::PhaseResult& phase : point.phases()) {
    const double tokens = phase.phase() == v1::PHASE_PREFILL ? 4 * 8 : 4;
    double activated = 0;
    for (double a : phase.activated_experts()) activated += a;
    const Counts expected =
        CountMoeBlocks(scaled, MakePrecision(Dtype::kFp32), 2, tokens, activated);
    EXPECT_EQ(phase.bytes(), expected.bytes()) << v1::Phase_Name(phase.phase());
    EXPECT_EQ(phase.flops(), expected.flops()) << v1::Phase_Name(phase.phase());
    EXPECT_GT(phase.s_mbu(), 0);
    // The denominators are the two agents' given peaks: 2 × 20 GB/s, 2 × 50 GFLOP/s.
    EXPECT_DOUBLE_EQ(phase.peak_bandwidth_bytes_per_s(), 40e9);
    EXPECT_DOUBLE_EQ(phase.peak_flops_per_s(), 100e9);
  }

  for (auto& agent : agents) agent->Signal(SIGTERM);
  for (auto& agent : agents) EXPECT_TRUE(agent->Wait(absl::Seconds(15)).has_value());
  (*server)->Shutdown();
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

}  // namespace
}  // namespace moecap::testing
