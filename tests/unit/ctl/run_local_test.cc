// `run --local`: a plan the local CPU agents could never run is refused before anything starts,
// naming what is short and the flag to pass.
#include "ctl/run_local.h"

#include <gtest/gtest.h>

namespace moecap::ctl {
namespace {

coordinator::GangSpec Spec(int nodes, int devices_per_node, v1::Backend backend) {
  coordinator::GangSpec spec;
  spec.nodes = nodes;
  spec.devices_per_node = devices_per_node;
  spec.backend = backend;
  return spec;
}

TEST(CheckLocalFitTest, EnoughAgentsAndSlotsFit) {
  EXPECT_TRUE(CheckLocalFit(Spec(2, 1, v1::BACKEND_CPU), 2, 1).ok());
  EXPECT_TRUE(CheckLocalFit(Spec(2, 2, v1::BACKEND_ANY), 3, 2).ok());
}

TEST(CheckLocalFitTest, TooFewAgentsNamesTheNodesAndTheFlag) {
  const absl::Status s = CheckLocalFit(Spec(4, 1, v1::BACKEND_CPU), 2, 1);
  EXPECT_TRUE(IsUsageError(s)) << s;
  EXPECT_NE(s.message().find("needs 4 nodes (parallelism.nodes) of 1 device each"),
            std::string::npos)
      << s;
  EXPECT_NE(s.message().find("--local 2 starts 2 agents: pass --local 4"), std::string::npos) << s;
}

TEST(CheckLocalFitTest, TooFewSlotsPerAgentNamesTheDevicesAndTheFlag) {
  const absl::Status s = CheckLocalFit(Spec(1, 4, v1::BACKEND_CPU), 8, 2);
  EXPECT_TRUE(IsUsageError(s)) << s;
  EXPECT_NE(s.message().find("needs 4 devices per node"), std::string::npos) << s;
  EXPECT_NE(s.message().find("--devices-per-agent 4"), std::string::npos) << s;
}

TEST(CheckLocalFitTest, ACudaPlanIsRefused) {
  const absl::Status s = CheckLocalFit(Spec(1, 1, v1::BACKEND_CUDA), 4, 1);
  EXPECT_TRUE(IsUsageError(s)) << s;
  EXPECT_NE(s.message().find("hardware.backend: cuda"), std::string::npos) << s;
}

}  // namespace
}  // namespace moecap::ctl
