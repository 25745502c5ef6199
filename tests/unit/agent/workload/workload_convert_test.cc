// PointWorkload -> WorkloadConfig: every field lands where the workload engine reads it, the
// model comes from the catalog or the inline spec, and what the CPU agent cannot run is refused
// naming the field.
#include "agent/workload/workload_convert.h"

#include <gtest/gtest.h>

#include "common/plan/convert.h"

namespace moecap {
namespace {

class WorkloadConvertTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Catalog> catalog = Catalog::Builtin();
    ASSERT_TRUE(catalog.ok()) << catalog.status();
    catalog_ = *std::move(catalog);
    point_.set_model("mixtral-8x7b");
    point_.set_backend(v1::BACKEND_CPU);
    point_.add_phases(v1::PHASE_PREFILL);
    point_.add_phases(v1::PHASE_DECODE);
    point_.set_batch_size(8);
    point_.set_prompt_len(64);
    point_.set_output_len(32);
    point_.set_layers(3);
    point_.set_scale(16);
    point_.set_dtype(v1::DTYPE_FP32);
    point_.set_seed(42);
    point_.set_warmup(2);
    point_.set_iterations(7);
    point_.set_check(true);
    point_.mutable_timeouts()->set_collective_seconds(12.5);
    point_.set_expert_parallel(4);
  }

  Catalog catalog_;
  v1::PointWorkload point_;
};

TEST_F(WorkloadConvertTest, EveryFieldLandsInTheConfig) {
  absl::StatusOr<WorkloadConfig> c = WorkloadConfigFromPoint(point_, &catalog_, 3);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model.name, "mixtral-8x7b");
  EXPECT_EQ(c->model.hidden_size, 4096);  // full size: the harness scales it
  EXPECT_EQ(c->scale, 16);
  EXPECT_EQ(c->layers, 3);
  EXPECT_EQ(c->dtype, Dtype::kFp32);
  EXPECT_EQ(c->batches, std::vector<int64_t>{8});
  EXPECT_EQ(c->phases, (std::vector<ServingPhase>{ServingPhase::kPrefill, ServingPhase::kDecode}));
  EXPECT_EQ(c->prompt_len, 64);
  EXPECT_EQ(c->iterations, 7);
  EXPECT_EQ(c->warmup, 2);
  EXPECT_EQ(c->seed, 42u);
  EXPECT_TRUE(c->check);
  EXPECT_EQ(c->routing.mode, RoutingMode::kGate);
  EXPECT_EQ(c->threads_per_rank, 3);
  EXPECT_DOUBLE_EQ(c->comm_timeout_s, 12.5);
  EXPECT_TRUE(ValidateWorkload(*c, 4).ok());
}

TEST_F(WorkloadConvertTest, InlineModelSpecWinsAndDefaultsApply) {
  ModelSpec toy;
  toy.name = "toy";
  toy.layers = 2;
  toy.hidden_size = 8;
  toy.vocab_size = 10;
  toy.gqa = {2, 1, 4};
  toy.experts = 4;
  toy.experts_per_token = 2;
  toy.expert_ffn_size = 4;
  *point_.mutable_model_spec() = ModelSpecToProto(toy);
  point_.set_dtype(v1::DTYPE_UNSPECIFIED);                // CPU default: fp32
  point_.mutable_timeouts()->clear_collective_seconds();  // default 60 s
  absl::StatusOr<WorkloadConfig> c = WorkloadConfigFromPoint(point_, &catalog_, 0);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model.name, "toy");
  EXPECT_EQ(c->model.experts, 4);
  EXPECT_EQ(c->dtype, Dtype::kFp32);
  EXPECT_DOUBLE_EQ(c->comm_timeout_s, 60);
}

TEST_F(WorkloadConvertTest, RoutingKinds) {
  point_.mutable_routing()->mutable_zipf()->set_exponent(1.5);
  absl::StatusOr<WorkloadConfig> zipf = WorkloadConfigFromPoint(point_, &catalog_, 0);
  ASSERT_TRUE(zipf.ok()) << zipf.status();
  EXPECT_EQ(zipf->routing.mode, RoutingMode::kZipf);
  EXPECT_DOUBLE_EQ(zipf->routing.zipf_exponent, 1.5);

  point_.mutable_routing()->mutable_zipf()->clear_exponent();  // default 1.0
  EXPECT_DOUBLE_EQ(WorkloadConfigFromPoint(point_, &catalog_, 0)->routing.zipf_exponent, 1.0);

  point_.mutable_routing()->mutable_uniform();
  EXPECT_EQ(WorkloadConfigFromPoint(point_, &catalog_, 0)->routing.mode, RoutingMode::kUniform);

  v1::ExpertWeights* row = point_.mutable_routing()->mutable_histogram()->add_layers();
  for (double w : {4.0, 3.0, 2.0, 1.0, 0.0, 0.0, 1.0, 1.0}) row->add_weights(w);
  absl::StatusOr<WorkloadConfig> histogram = WorkloadConfigFromPoint(point_, &catalog_, 0);
  ASSERT_TRUE(histogram.ok()) << histogram.status();
  EXPECT_EQ(histogram->routing.mode, RoutingMode::kHistogram);
  ASSERT_EQ(histogram->routing.histogram.size(), 1u);
  EXPECT_EQ(histogram->routing.histogram[0],
            (std::vector<double>{4.0, 3.0, 2.0, 1.0, 0.0, 0.0, 1.0, 1.0}));
}

TEST_F(WorkloadConvertTest, RefusalsNameTheField) {
  const auto error = [&](v1::PointWorkload p) {
    absl::StatusOr<WorkloadConfig> c = WorkloadConfigFromPoint(p, &catalog_, 0);
    EXPECT_FALSE(c.ok());
    return std::string(c.status().message());
  };
  v1::PointWorkload p = point_;
  p.set_model("no-such-model");
  EXPECT_NE(error(p).find("workload.model"), std::string::npos);
  p = point_;
  p.clear_model();
  EXPECT_NE(error(p).find("workload.model"), std::string::npos);
  p = point_;
  p.clear_phases();
  EXPECT_NE(error(p).find("workload.phases"), std::string::npos);
  p = point_;
  p.set_batch_size(0);
  EXPECT_NE(error(p).find("workload.batch_size"), std::string::npos);
  p = point_;
  p.mutable_routing()->mutable_zipf()->set_exponent(-1);
  EXPECT_NE(error(p).find("workload.routing.zipf.exponent"), std::string::npos);
  p = point_;
  p.mutable_routing()->mutable_zipf()->set_shuffle_experts(true);
  EXPECT_NE(error(p).find("shuffle_experts"), std::string::npos);
  p = point_;
  p.mutable_routing()->mutable_histogram();
  EXPECT_NE(error(p).find("workload.routing.histogram.layers"), std::string::npos);
  p = point_;
  p.mutable_timeouts()->set_collective_seconds(0);
  EXPECT_NE(error(p).find("workload.timeouts.collective_seconds"), std::string::npos);
}

// What a launcher hands its rank processes comes back as the same plan, every field (compared as
// moecap-bench's JSON names them), for each routing mode.
TEST_F(WorkloadConvertTest, ALaunchCarriesThePlanWhole) {
  absl::StatusOr<const ModelSpec*> model = catalog_.FindModel("deepseek-v3");
  ASSERT_TRUE(model.ok()) << model.status();
  WorkloadConfig c;
  c.model = **model;
  c.scale = 32;
  c.layers = 3;
  c.dtype = Dtype::kBf16;
  c.batches = {1, 8, 32};
  c.phases = {ServingPhase::kPrefill, ServingPhase::kDecode};
  c.prompt_len = 48;
  c.iterations = 9;
  c.warmup = 4;
  c.seed = 99;
  c.check = true;
  c.tolerance = 0.04;
  c.threads_per_rank = 3;
  c.comm_timeout_s = 17.5;
  RoutingSpec zipf{RoutingMode::kZipf, 1.3, {}};
  RoutingSpec histogram{RoutingMode::kHistogram, 1.0, {{1, 0, 2}, {0.5, 0.5, 0}}};
  for (const RoutingSpec& routing :
       {RoutingSpec{}, RoutingSpec{RoutingMode::kUniform, 1.0, {}}, zipf, histogram}) {
    c.routing = routing;
    v1::RankLaunch launch;
    SetLaunchWorkload(c, 4, launch);
    EXPECT_EQ(launch.workload().expert_parallel(), 4);
    absl::StatusOr<WorkloadConfig> back = WorkloadOfLaunch(launch);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(WorkloadToJson(*back), WorkloadToJson(c)) << RoutingModeName(routing.mode);
    EXPECT_EQ(ModelToJson(back->model), ModelToJson(c.model));
  }
}

}  // namespace
}  // namespace moecap
