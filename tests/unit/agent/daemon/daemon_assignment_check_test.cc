// What an agent checks of an assignment before starting anything: ranks and devices, world size
// against expert parallelism, hardware, and the backend/dtype rule it shares with the plan
// validator. Each refusal names the field.
#include <gtest/gtest.h>

#include <string>

#include "agent/daemon/assignment_check.h"
#include "common/plan/plan.h"

namespace moecap::agentd {
namespace {

v1::AgentInfo Agent(v1::Backend backend) {
  v1::AgentInfo info;
  info.set_backend(backend);
  v1::Device* d = info.mutable_inventory()->add_devices();
  d->set_index(0);
  d->set_hardware(backend == v1::BACKEND_CUDA ? "h100-sxm" : "cpu");
  d->set_cores(4);
  return info;
}

v1::Assignment Point() {
  v1::Assignment a;
  a.set_world_size(1);
  v1::RankAssignment* r = a.add_ranks();
  r->set_rank(0);
  r->set_device_index(0);
  v1::PointWorkload* w = a.mutable_workload();
  w->set_model("mixtral-8x7b");
  w->add_phases(v1::PHASE_DECODE);
  w->set_batch_size(2);
  w->set_prompt_len(4);
  w->set_layers(1);
  w->set_scale(64);
  w->set_iterations(2);
  w->set_expert_parallel(1);
  w->set_dtype(v1::DTYPE_FP32);
  return a;
}

std::string Refusal(const v1::Assignment& a, v1::Backend backend = v1::BACKEND_CPU) {
  absl::StatusOr<WorkloadConfig> c = CheckAssignment(a, Agent(backend), *Catalog::Builtin(), 0);
  EXPECT_FALSE(c.ok());
  return std::string(c.status().message());
}

TEST(CheckAssignmentTest, AGoodPointGivesItsConfigWithTheDevicesCores) {
  absl::StatusOr<WorkloadConfig> c =
      CheckAssignment(Point(), Agent(v1::BACKEND_CPU), *Catalog::Builtin(), /*threads_per_rank=*/0);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->batches, std::vector<int64_t>{2});
  EXPECT_EQ(c->threads_per_rank, 4);
  c = CheckAssignment(Point(), Agent(v1::BACKEND_CPU), *Catalog::Builtin(), 3);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->threads_per_rank, 3);  // the agent's option wins
}

TEST(CheckAssignmentTest, RanksDevicesAndWorldAreNamed) {
  v1::Assignment a = Point();
  a.mutable_ranks(0)->set_device_index(5);
  EXPECT_NE(Refusal(a).find("assignment.ranks: device 5"), std::string::npos);
  a = Point();
  a.mutable_ranks(0)->set_rank(1);
  EXPECT_NE(Refusal(a).find("rank 1 is out of range"), std::string::npos);
  a = Point();
  a.set_world_size(2);
  a.set_rendezvous_prefix("j/0/1");
  EXPECT_NE(Refusal(a).find("workload.expert_parallel (1) differs"), std::string::npos);
  a = Point();
  a.mutable_workload()->set_hardware("h100-sxm");
  EXPECT_NE(Refusal(a).find("workload.hardware is 'h100-sxm'"), std::string::npos);
}

TEST(CheckAssignmentTest, TheBackendDtypeRuleIsThePlanValidators) {
  v1::Assignment a = Point();
  a.mutable_workload()->set_dtype(v1::DTYPE_FP8);
  // The agent refuses with the plan validator's words, so a plan that passed validation is never
  // refused here for its dtype, and one refused here was refused at submit already.
  const std::string rule(CheckBackendRunsDtype(v1::BACKEND_CUDA, v1::DTYPE_FP8).message());
  EXPECT_EQ(Refusal(a, v1::BACKEND_CUDA), "workload.dtype: " + rule);
  a = Point();
  a.mutable_workload()->set_backend(v1::BACKEND_CPU);
  EXPECT_NE(Refusal(a, v1::BACKEND_CUDA).find("workload.backend: cpu"), std::string::npos);
}

}  // namespace
}  // namespace moecap::agentd
