// Tests of plans (common/plan/plan.h): parsing, defaults, every validation error with its exact
// field path, sweep expansion (counts and order), and the example plans under examples/plans/.
#include "common/plan/plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "google/protobuf/util/message_differencer.h"

namespace moecap {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const Catalog& TestCatalog() {
  static const Catalog* catalog = [] {
    absl::StatusOr<Catalog> c = Catalog::Builtin();
    EXPECT_TRUE(c.ok()) << c.status();
    return new Catalog(*std::move(c));
  }();
  return *catalog;
}

v1::Plan MustParse(const std::string& yaml) {
  absl::StatusOr<v1::Plan> plan = ParsePlanYaml(yaml, "plan.yaml");
  EXPECT_TRUE(plan.ok()) << plan.status();
  return plan.ok() ? *plan : v1::Plan();
}

// The validation message of `yaml` (a Mixtral-8x7B plan unless it names another model).
std::string ValidationError(const std::string& yaml) {
  std::string text = yaml;
  if (text.find("model") == std::string::npos) text = "model: mixtral-8x7b\n" + text;
  absl::Status s = ValidatePlan(MustParse(text), TestCatalog());
  EXPECT_FALSE(s.ok()) << "accepted:\n" << text;
  return std::string(s.message());
}

absl::Status Validate(const std::string& yaml) {
  return ValidatePlan(MustParse(yaml), TestCatalog());
}

std::vector<std::string> Params(const v1::PlanPoint& p) {
  std::vector<std::string> out;
  for (const v1::PointParameter& param : p.parameters()) {
    out.push_back(param.name() + "=" + param.value());
  }
  return out;
}

TEST(ParsePlanYamlTest, FullPlan) {
  v1::Plan plan = MustParse(R"(
name: full
model: Mixtral-8x7B
hardware: {backend: cuda, hardware: h100-sxm, min_device_memory_bytes: 80GiB}
parallelism: {nodes: 2, devices_per_node: 4, expert_parallel: 8}
workload:
  phases: [prefill, decode]
  batch_sizes: [1, 8, 32]
  prompt_len: 512
  output_len: 128
  layers: 4
  scale: 2
  dtype: bfloat16          # ParseDtype's spellings work too
  routing: {zipf: {exponent: 1.1}}
  seed: 9
  warmup: 1
  iterations: 20
  check: true
sweeps:
  - prompt_len: [128, 1024]
pricing: {usd_per_device_hour: 2.5}
priority: 5
retry: {max_retries: 2}
labels: {team: inference}
)");
  EXPECT_EQ(plan.model(), "Mixtral-8x7B");
  EXPECT_EQ(plan.hardware().backend(), v1::BACKEND_CUDA);
  EXPECT_EQ(plan.parallelism().expert_parallel(), 8);
  EXPECT_EQ(plan.workload().dtype(), v1::DTYPE_BF16);
  EXPECT_DOUBLE_EQ(plan.workload().routing().zipf().exponent(), 1.1);
  EXPECT_EQ(plan.retry().max_retries(), 2);
  EXPECT_EQ(plan.labels().at("team"), "inference");
  EXPECT_TRUE(ValidatePlan(plan, TestCatalog()).ok()) << ValidatePlan(plan, TestCatalog());

  // YAML -> proto -> YAML -> proto is the identity, with and without defaults.
  absl::StatusOr<v1::Plan> again = ParsePlanYaml(PlanToYaml(plan), "again.yaml");
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << PlanToYaml(plan);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(plan, *again));
  ApplyPlanDefaults(&plan);
  again = ParsePlanYaml(PlanToYaml(plan), "again.yaml");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(plan, *again));
}

TEST(ParsePlanYamlTest, ErrorsNameOriginAndPath) {
  absl::StatusOr<v1::Plan> plan = ParsePlanYaml("workload:\n  batch_sizes: [1, 8, x]\n", "p.yaml");
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(),
            "p.yaml: field 'workload.batch_sizes[2]': expected an integer, got 'x'");
  plan = ParsePlanYaml("workload:\n  batchsize: 1\n", "p.yaml");
  EXPECT_EQ(plan.status().message(),
            "p.yaml: field 'workload.batchsize': unknown field (did you mean 'batch_sizes'?)");
  plan = ParsePlanYaml("model: x\nparallelism: {node: 2}\n", "p.yaml");
  EXPECT_EQ(plan.status().message(),
            "p.yaml: field 'parallelism.node': unknown field (did you mean 'nodes'?)");
}

TEST(ApplyPlanDefaultsTest, EveryDefault) {
  v1::Plan plan = MustParse("model: mixtral-8x7b\n");
  ApplyPlanDefaults(&plan);
  EXPECT_EQ(plan.name(), "mixtral-8x7b");
  EXPECT_EQ(plan.hardware().backend(), v1::BACKEND_ANY);
  EXPECT_EQ(plan.parallelism().nodes(), 1);
  EXPECT_EQ(plan.parallelism().devices_per_node(), 1);
  EXPECT_EQ(plan.parallelism().expert_parallel(), 1);
  const v1::Workload& w = plan.workload();
  EXPECT_THAT(w.phases(), ElementsAre(v1::PHASE_PREFILL, v1::PHASE_DECODE));
  EXPECT_THAT(w.batch_sizes(), ElementsAre(1));
  EXPECT_EQ(w.prompt_len(), 512);
  EXPECT_EQ(w.output_len(), 256);
  EXPECT_EQ(w.layers(), 1);
  EXPECT_EQ(w.layer(), v1::LAYER_MOE);  // backend any: a GPU may run it
  EXPECT_EQ(w.scale(), 1);
  EXPECT_EQ(w.dtype(), v1::DTYPE_FP32);
  EXPECT_TRUE(w.routing().has_gate());
  EXPECT_EQ(w.seed(), 1u);
  EXPECT_EQ(w.warmup(), 3);
  EXPECT_EQ(w.iterations(), 10);
  EXPECT_FALSE(w.check());
  EXPECT_FALSE(w.timeouts().has_queue_seconds());  // no queue limit
  EXPECT_DOUBLE_EQ(w.timeouts().rendezvous_seconds(), 60);
  EXPECT_DOUBLE_EQ(w.timeouts().collective_seconds(), 60);
  EXPECT_DOUBLE_EQ(w.timeouts().point_seconds(), 600);
  EXPECT_DOUBLE_EQ(plan.pricing().usd_per_kwh(), 0.15);
  EXPECT_FALSE(plan.pricing().has_usd_per_device_hour());  // the catalog's cloud price
  EXPECT_EQ(plan.priority(), 0);
  EXPECT_EQ(plan.retry().max_retries(), 0);

  // Idempotent.
  v1::Plan twice = plan;
  ApplyPlanDefaults(&twice);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(plan, twice));
}

TEST(ApplyPlanDefaultsTest, DependentDefaults) {
  // CUDA defaults to bf16; expert_parallel to nodes × devices_per_node = 2 × 4.
  v1::Plan plan = MustParse(
      "model: mixtral-8x7b\nhardware: {backend: cuda}\nparallelism: {nodes: 2, "
      "devices_per_node: 4}\nworkload: {routing: zipf}\n");
  ApplyPlanDefaults(&plan);
  EXPECT_EQ(plan.workload().dtype(), v1::DTYPE_BF16);
  EXPECT_EQ(plan.workload().layer(), v1::LAYER_MOE);  // the GPU engine has no attention yet
  EXPECT_EQ(plan.parallelism().expert_parallel(), 8);
  EXPECT_DOUBLE_EQ(plan.workload().routing().zipf().exponent(), 1.0);
  // The cpu engine runs decoder layers by default; a given layer is kept.
  plan = MustParse("model: mixtral-8x7b\nhardware: {backend: cpu}\n");
  ApplyPlanDefaults(&plan);
  EXPECT_EQ(plan.workload().layer(), v1::LAYER_DECODER);
  plan = MustParse("model: mixtral-8x7b\nhardware: {backend: cpu}\nworkload: {layer: moe}\n");
  ApplyPlanDefaults(&plan);
  EXPECT_EQ(plan.workload().layer(), v1::LAYER_MOE);
  // Given values are kept; a batch-size sweep leaves workload.batch_sizes empty.
  plan = MustParse(
      "model: m\nworkload: {prompt_len: 7, dtype: fp16}\nsweeps: [{batch_sizes: [2, 4]}]\n");
  ApplyPlanDefaults(&plan);
  EXPECT_EQ(plan.workload().prompt_len(), 7);
  EXPECT_EQ(plan.workload().dtype(), v1::DTYPE_FP16);
  EXPECT_TRUE(plan.workload().batch_sizes().empty());
}

TEST(ValidatePlanTest, Model) {
  absl::Status s = Validate("model: mixtrel-8x7b\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), StartsWith("field 'model': unknown model 'mixtrel-8x7b'"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("did you mean mixtral-8x7b"));
  EXPECT_EQ(ValidationError("name: x\nmodel: ''\n"),
            "field 'model': required: a catalog model name (`moecapctl models` lists them), or "
            "give model_override");
  // Aliases and case work.
  EXPECT_TRUE(Validate("model: MISTRALAI/Mixtral-8x7B-v0.1\n").ok());
}

TEST(ValidatePlanTest, ModelOverride) {
  const std::string good = R"(
model: toy
model_override:
  layers: 2
  hidden_size: 8
  vocab_size: 10
  attention: {heads: 2, kv_heads: 1, head_dim: 4}
  moe: {experts: 4, experts_per_token: 2, expert_ffn_size: 4}
)";
  EXPECT_TRUE(Validate(good).ok()) << Validate(good);
  absl::StatusOr<ModelSpec> model = ResolvePlanModel(MustParse(good), TestCatalog());
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->name, "toy");
  EXPECT_EQ(model->experts, 4);
  EXPECT_TRUE(model->normalize_topk);  // absent normalize_topk reads as true

  std::string bad = good;
  bad.replace(bad.find("experts_per_token: 2"), 20, "experts_per_token: 9");
  EXPECT_THAT(ValidationError(bad), StartsWith("field 'model_override': "));
  EXPECT_EQ(ValidationError(good + "  name: other\n"),
            "field 'model_override.name': 'other' differs from model 'toy'; give one name");
}

TEST(ValidatePlanTest, Hardware) {
  absl::Status s = Validate("model: mixtral-8x7b\nhardware: {hardware: h1000}\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()),
              StartsWith("field 'hardware.hardware': unknown hardware 'h1000'"));
  EXPECT_EQ(ValidationError("hardware: {backend: cpu, hardware: h100-sxm}\n"),
            "field 'hardware.hardware': 'h100-sxm' is a GPU but hardware.backend is cpu");
}

TEST(ValidatePlanTest, Parallelism) {
  EXPECT_EQ(ValidationError("parallelism: {nodes: 0}\n"),
            "field 'parallelism.nodes': must be >= 1, got 0");
  EXPECT_EQ(ValidationError("parallelism: {devices_per_node: -1}\n"),
            "field 'parallelism.devices_per_node': must be >= 1, got -1");
  EXPECT_EQ(ValidationError("parallelism: {nodes: 2, expert_parallel: 4}\n"),
            "field 'parallelism.expert_parallel': must be between 1 and parallelism.nodes × "
            "parallelism.devices_per_node (2), got 4");
  // 4 × 4 = 16 ranks for Mixtral's 8 experts.
  EXPECT_EQ(ValidationError("parallelism: {nodes: 4, devices_per_node: 4}\n"),
            "field 'parallelism.expert_parallel': 16 ranks exceed the model's 8 experts; set "
            "parallelism.allow_expert_replication: true to replicate experts");
  EXPECT_TRUE(Validate("model: mixtral-8x7b\nparallelism: {nodes: 4, devices_per_node: 4, "
                       "allow_expert_replication: true}\n")
                  .ok());
  EXPECT_EQ(ValidationError("parallelism: {nodes: 12, allow_expert_replication: true}\n"),
            "field 'parallelism.expert_parallel': 12 ranks cannot hold replicas of the model's 8 "
            "experts evenly (use a multiple of 8)");
  EXPECT_EQ(ValidationError("parallelism: {nodes: 3}\n"),
            "field 'parallelism.expert_parallel': the model's 8 experts are not divisible by 3 "
            "ranks (use a divisor of 8)");
  // Fewer ranks than the job holds is fine (the rest idle for this point).
  EXPECT_TRUE(Validate("model: mixtral-8x7b\nparallelism: {nodes: 3, expert_parallel: 2}\n").ok());
}

TEST(ValidatePlanTest, Workload) {
  EXPECT_EQ(ValidationError("workload: {batch_sizes: [1, 0]}\n"),
            "field 'workload.batch_sizes[1]': must be >= 1, got 0");
  EXPECT_EQ(ValidationError("workload: {prompt_len: 0}\n"),
            "field 'workload.prompt_len': must be >= 1, got 0");
  EXPECT_EQ(ValidationError("workload: {output_len: 0, phases: [prefill]}\n"),
            "field 'workload.output_len': must be >= 1, got 0");
  EXPECT_EQ(ValidationError("workload: {output_len: 1}\n"),
            "field 'workload.output_len': decode needs at least 2 output tokens (the prefill "
            "emits the first), got 1; or leave decode out of workload.phases");
  EXPECT_TRUE(Validate("model: mixtral-8x7b\nworkload: {output_len: 1, phases: [prefill]}\n").ok());
  EXPECT_EQ(ValidationError("workload: {phases: [decode, decode]}\n"),
            "field 'workload.phases[1]': 'decode' is given twice");
  EXPECT_EQ(ValidationError("workload: {iterations: 0}\n"),
            "field 'workload.iterations': must be >= 1, got 0");
  EXPECT_EQ(ValidationError("workload: {warmup: -1}\n"),
            "field 'workload.warmup': must be >= 0, got -1");
  EXPECT_TRUE(Validate("model: mixtral-8x7b\nworkload: {warmup: 0}\n").ok());
  EXPECT_EQ(ValidationError("workload: {layers: 0}\n"),
            "field 'workload.layers': must be >= 1, got 0");
  EXPECT_EQ(ValidationError("workload: {scale: 0}\n"),
            "field 'workload.scale': must be >= 1, got 0");
  // Mixtral's hidden size 4096 / 5000 rounds down to 0.
  EXPECT_EQ(ValidationError("workload: {scale: 5000}\n"),
            "field 'workload.scale': scale 5000 shrinks the model's hidden_size (4096) to 0");
  EXPECT_EQ(ValidationError("workload: {timeouts: {point_seconds: 0}}\n"),
            "field 'workload.timeouts.point_seconds': must be > 0 seconds, got 0");
}

TEST(ValidatePlanTest, Dtype) {
  EXPECT_EQ(ValidationError("hardware: {backend: cpu}\nworkload: {dtype: fp8}\n"),
            "field 'workload.dtype': fp8 is not supported by the cpu backend (supported: fp32, "
            "bf16; `moecapctl analyze` computes the figures of an fp8 model without running it)");
  // The same rule as the agent's: neither engine runs fp8 yet, so a plan
  // asking for it is refused here rather than by every agent it would be sent to.
  EXPECT_EQ(ValidationError("hardware: {backend: cuda, hardware: h100-sxm}\nworkload: {dtype: "
                            "fp8}\n"),
            "field 'workload.dtype': fp8 is not supported by the cuda backend (supported: fp32, "
            "bf16; `moecapctl analyze` computes the figures of an fp8 model without running it)");
  EXPECT_EQ(CheckBackendRunsDtype(v1::BACKEND_CUDA, v1::DTYPE_BF16), absl::OkStatus());
  EXPECT_EQ(CheckBackendRunsDtype(v1::BACKEND_ANY, v1::DTYPE_FP32), absl::OkStatus());
  EXPECT_FALSE(CheckBackendRunsDtype(v1::BACKEND_ANY, v1::DTYPE_FP16).ok());
  EXPECT_TRUE(Validate("model: mixtral-8x7b\nhardware: {hardware: h100-sxm}\nworkload: {dtype: "
                       "bf16}\n")
                  .ok());
  // A device the catalog gives no peak for the dtype.
  Catalog catalog = TestCatalog();
  HardwareSpec old = **catalog.FindHardware("a100-sxm-80gb");
  old.name = "old-gpu";
  old.peak_flops.erase(Dtype::kBf16);
  catalog.AddHardware(old);
  EXPECT_EQ(ValidatePlan(MustParse("model: mixtral-8x7b\nhardware: {hardware: old-gpu}\n"
                                   "workload: {dtype: bf16}\n"),
                         catalog)
                .message(),
            "field 'workload.dtype': hardware 'old-gpu' does not support bf16 (the catalog has no "
            "peak for it)");
  // A plan built in code may carry a number outside the enum.
  v1::Plan plan = MustParse("model: mixtral-8x7b\n");
  plan.mutable_workload()->set_dtype(static_cast<v1::Dtype>(42));
  EXPECT_EQ(ValidatePlan(plan, TestCatalog()).message(),
            "field 'workload.dtype': must be one of fp32, bf16, fp16, fp8");
}

TEST(ValidatePlanTest, Routing) {
  EXPECT_EQ(ValidationError("workload: {routing: {zipf: {exponent: 0}}}\n"),
            "field 'workload.routing.zipf.exponent': must be > 0, got 0");
  EXPECT_EQ(ValidationError("workload: {routing: {histogram: {layers: [[1, 2, 3]]}}}\n"),
            "field 'workload.routing.histogram.layers[0]': has 3 weights; the model has 8 experts");
  EXPECT_EQ(ValidationError("workload:\n  layers: 3\n  routing: {histogram: {layers: "
                            "[[1,1,1,1,1,1,1,1], [1,1,1,1,1,1,1,1]]}}\n"),
            "field 'workload.routing.histogram.layers': has 2 layer entries; expected 1 or one "
            "per stacked layer (3)");
  EXPECT_EQ(ValidationError("workload: {routing: {histogram: {layers: [[1,1,1,-1,1,1,1,1]]}}}\n"),
            "field 'workload.routing.histogram.layers[0][3]': must be >= 0, got -1");
  EXPECT_EQ(ValidationError("workload: {routing: {histogram: {layers: [[0,0,0,0,0,0,0,0]]}}}\n"),
            "field 'workload.routing.histogram.layers[0]': all weights are 0");
  EXPECT_EQ(ValidationError("workload: {routing: {histogram: {}}}\n"),
            "field 'workload.routing.histogram.layers': empty: give one list of 8 expert "
            "weights, or one per stacked layer");
  // One entry serves every stacked layer.
  EXPECT_TRUE(Validate("model: mixtral-8x7b\nworkload:\n  layers: 3\n  routing: {histogram: "
                       "{layers: [[1,2,3,4,5,6,7,8]]}}\n")
                  .ok());
}

TEST(ValidatePlanTest, Sweeps) {
  EXPECT_EQ(ValidationError("sweeps: [{prompt_len: [128, 0]}]\n"),
            "field 'sweeps[0].prompt_len[1]': must be >= 1, got 0");
  EXPECT_EQ(ValidationError("sweeps: [{prompt_len: []}]\n"),
            "field 'sweeps[0].prompt_len': no values");
  EXPECT_EQ(ValidationError("sweeps: [{layers: [1]}, {prompt_len: [1]}, {layers: [2]}]\n"),
            "field 'sweeps[2].layers': axis given twice (also in sweeps[0])");
  EXPECT_EQ(ValidationError("sweeps: [{}]\n"),
            "field 'sweeps[0]': empty axis: give one of batch_sizes, prompt_len, output_len, "
            "dtype, expert_parallel, layers, scale, routing");
  EXPECT_EQ(ValidationError("workload: {batch_sizes: [1]}\nsweeps: [{batch_sizes: [2]}]\n"),
            "field 'sweeps[0].batch_sizes': batch sizes are also given in workload.batch_sizes; "
            "keep one");
  EXPECT_EQ(ValidationError("parallelism: {devices_per_node: 8}\nsweeps: [{expert_parallel: "
                            "[2, 6]}]\n"),
            "field 'sweeps[0].expert_parallel[1]': the model's 8 experts are not divisible by 6 "
            "ranks (use a divisor of 8)");
  EXPECT_EQ(ValidationError("hardware: {backend: cpu}\nsweeps: [{dtype: [fp32, fp16]}]\n"),
            "field 'sweeps[0].dtype[1]': fp16 is not supported by the cpu backend (supported: "
            "fp32, bf16; `moecapctl analyze` computes the figures of an fp16 model without "
            "running it)");
  EXPECT_EQ(ValidationError("sweeps: [{routing: [uniform, {zipf: {exponent: -1}}]}]\n"),
            "field 'sweeps[0].routing[1].zipf.exponent': must be > 0, got -1");
  EXPECT_EQ(ValidationError("sweeps: [{output_len: [1]}]\n"),
            "field 'sweeps[0].output_len[0]': decode needs at least 2 output tokens (the prefill "
            "emits the first), got 1; or leave decode out of workload.phases");
  // A histogram must fit every swept layer count.
  EXPECT_EQ(ValidationError("workload: {routing: {histogram: {layers: [[1,1,1,1,1,1,1,1], "
                            "[1,1,1,1,1,1,1,1]]}}}\nsweeps: [{layers: [2, 4]}]\n"),
            "field 'workload.routing.histogram.layers': has 2 layer entries; expected 1 or one "
            "per stacked layer (4)");
  // 101 × 100 = 10,100 points > 10,000.
  std::string many = "sweeps: [{prompt_len: [";
  for (int i = 1; i <= 101; ++i) many += std::to_string(i) + (i < 101 ? "," : "]}]\n");
  many += "workload: {batch_sizes: [";
  for (int i = 1; i <= 100; ++i) many += std::to_string(i) + (i < 100 ? "," : "]}\n");
  EXPECT_EQ(ValidationError(many),
            "field 'sweeps': the plan expands into more than 10000 points; narrow the sweeps");
}

TEST(ValidatePlanTest, PricingRetryLabelsAndOrigin) {
  EXPECT_EQ(ValidationError("pricing: {usd_per_device_hour: -1}\n"),
            "field 'pricing.usd_per_device_hour': must be >= 0, got -1");
  EXPECT_EQ(ValidationError("pricing: {amortize_hours: 0}\n"),
            "field 'pricing.amortize_hours': must be > 0, got 0");
  EXPECT_EQ(ValidationError("retry: {max_retries: -1}\n"),
            "field 'retry.max_retries': must be between 0 and 100, got -1");
  absl::Status s = ValidatePlan(MustParse("model: mixtral-8x7b\nworkload: {iterations: 0}\n"),
                                TestCatalog(), "plan.yaml");
  EXPECT_EQ(s.message(), "plan.yaml: field 'workload.iterations': must be >= 1, got 0");
}

TEST(ExpandSweepsTest, BatchSizesOnly) {
  absl::StatusOr<std::vector<v1::PlanPoint>> points =
      ExpandSweeps(MustParse("model: mixtral-8x7b\nworkload: {batch_sizes: [1, 8, 32]}\n"));
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*points)[i].index(), i);
  EXPECT_THAT(Params((*points)[2]), ElementsAre("batch_size=32"));
  const v1::PointWorkload& w = (*points)[2].workload();
  EXPECT_EQ(w.batch_size(), 32);
  EXPECT_EQ(w.model(), "mixtral-8x7b");
  EXPECT_FALSE(w.has_model_spec());  // no catalog given
  // Every default is resolved in the point.
  EXPECT_EQ(w.prompt_len(), 512);
  EXPECT_EQ(w.iterations(), 10);
  EXPECT_EQ(w.expert_parallel(), 1);
  EXPECT_EQ(w.dtype(), v1::DTYPE_FP32);
  EXPECT_TRUE(w.routing().has_gate());
  EXPECT_THAT(w.phases(), ElementsAre(v1::PHASE_PREFILL, v1::PHASE_DECODE));
}

TEST(ExpandSweepsTest, CartesianProductInOrder) {
  const v1::Plan plan = MustParse(R"(
model: qwen3-30b-a3b
hardware: {backend: cuda}
parallelism: {devices_per_node: 4}
workload: {batch_sizes: [1, 16, 64]}
sweeps:
  - prompt_len: [512, 4096]
  - dtype: [bf16, fp32]
  - expert_parallel: [1, 2, 4]
)");
  ASSERT_TRUE(ValidatePlan(plan, TestCatalog()).ok());
  absl::StatusOr<std::vector<v1::PlanPoint>> points = ExpandSweeps(plan);
  ASSERT_TRUE(points.ok()) << points.status();
  // 2 × 2 × 3 × 3 = 36, the first axis slowest, the batch sizes fastest.
  ASSERT_EQ(points->size(), 36u);
  EXPECT_EQ(CountPlanPoints(plan), 36);
  EXPECT_THAT(Params((*points)[0]),
              ElementsAre("prompt_len=512", "dtype=bf16", "expert_parallel=1", "batch_size=1"));
  EXPECT_THAT(Params((*points)[1]),
              ElementsAre("prompt_len=512", "dtype=bf16", "expert_parallel=1", "batch_size=16"));
  // Index 3 = (0, 0, 1, 0): the EP axis moved once.
  EXPECT_THAT(Params((*points)[3]),
              ElementsAre("prompt_len=512", "dtype=bf16", "expert_parallel=2", "batch_size=1"));
  // Index 9 = (0, 1, 0, 0).
  EXPECT_THAT(Params((*points)[9]),
              ElementsAre("prompt_len=512", "dtype=fp32", "expert_parallel=1", "batch_size=1"));
  // Index 18 = (1, 0, 0, 0).
  EXPECT_THAT(Params((*points)[18]),
              ElementsAre("prompt_len=4096", "dtype=bf16", "expert_parallel=1", "batch_size=1"));
  const v1::PointWorkload& last = (*points)[35].workload();
  EXPECT_EQ(last.prompt_len(), 4096);
  EXPECT_EQ(last.dtype(), v1::DTYPE_FP32);
  EXPECT_EQ(last.expert_parallel(), 4);
  EXPECT_EQ(last.batch_size(), 64);
}

TEST(ExpandSweepsTest, BatchAxisKeepsItsPlace) {
  absl::StatusOr<std::vector<v1::PlanPoint>> points = ExpandSweeps(MustParse(R"(
model: mixtral-8x7b
sweeps:
  - batch_sizes: [4, 2]
  - layers: [1, 3]
)"));
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 4u);
  EXPECT_THAT(Params((*points)[0]), ElementsAre("batch_size=4", "layers=1"));
  EXPECT_THAT(Params((*points)[1]), ElementsAre("batch_size=4", "layers=3"));
  EXPECT_THAT(Params((*points)[2]), ElementsAre("batch_size=2", "layers=1"));
  EXPECT_EQ((*points)[3].workload().batch_size(), 2);
  EXPECT_EQ((*points)[3].workload().layers(), 3);
}

TEST(ExpandSweepsTest, RoutingAxisNames) {
  absl::StatusOr<std::vector<v1::PlanPoint>> points = ExpandSweeps(MustParse(R"(
model: mixtral-8x7b
sweeps:
  - routing: [uniform, gate, {zipf: {exponent: 0.6}}, zipf, {zipf: {exponent: 1.2, shuffle_experts: true}}]
)"));
  ASSERT_TRUE(points.ok()) << points.status();
  std::vector<std::string> names;
  for (const v1::PlanPoint& p : *points) names.push_back(p.parameters(0).value());
  EXPECT_THAT(names, ElementsAre("uniform", "gate", "zipf(0.6)", "zipf(1)", "zipf(1.2,shuffled)"));
  // The default exponent is applied inside sweep values too.
  EXPECT_DOUBLE_EQ((*points)[3].workload().routing().zipf().exponent(), 1.0);
}

TEST(ExpandSweepsTest, CatalogResolvesTheModel) {
  absl::StatusOr<std::vector<v1::PlanPoint>> points =
      ExpandSweeps(MustParse("model: Mixtral-8x7B\n"), TestCatalog());
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 1u);
  const v1::PointWorkload& w = (*points)[0].workload();
  EXPECT_EQ(w.model(), "mixtral-8x7b");
  EXPECT_EQ(w.model_spec().hidden_size(), 4096);
  EXPECT_EQ(w.model_spec().moe().experts(), 8);
  EXPECT_EQ(ExpandSweeps(MustParse("model: nope\n"), TestCatalog()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ExpandSweepsTest, TooManyPoints) {
  std::string yaml = "model: mixtral-8x7b\nsweeps:\n  - prompt_len: [";
  for (int i = 1; i <= 101; ++i) yaml += std::to_string(i) + (i < 101 ? "," : "]\n");
  yaml += "workload:\n  batch_sizes: [";
  for (int i = 1; i <= 100; ++i) yaml += std::to_string(i) + (i < 100 ? "," : "]\n");
  const v1::Plan plan = MustParse(yaml);
  EXPECT_EQ(CountPlanPoints(plan), kMaxPlanPoints + 1);
  absl::StatusOr<std::vector<v1::PlanPoint>> points = ExpandSweeps(plan);
  ASSERT_FALSE(points.ok());
  EXPECT_EQ(points.status().message(),
            "field 'sweeps': the plan expands into more than 10000 points; narrow the sweeps");
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ExamplePlansTest, AllParseValidateAndExpand) {
  // Expected point counts, computed from each file's axes.
  const std::map<std::string, size_t> expected_points = {
      {"mixtral-8x7b-cpu-small.yaml", 3},      // batch 1, 8, 32
      {"mixtral-8x7b-cpu-decoder.yaml", 3},    // batch 1, 8, 32
      {"mixtral-8x7b-h100x8.yaml", 5},         // 5 batch sizes
      {"deepseek-v3-h100x16.yaml", 4},         // 4 batch sizes
      {"qwen3-30b-a3b-sweep.yaml", 36},        // 2 × 2 × 3 × 3
      {"dbrx-routing-imbalance.yaml", 8},      // 4 routings × 2 batch sizes
      {"mixtral-8x22b-histogram.yaml", 2},     // 2 batch sizes
      {"custom-model-cpu.yaml", 6},            // 3 layer counts × 2 batch sizes
      {"mixtral-8x7b-h100x1.yaml", 4},         // batch 1, 8, 32, 64
      {"mixtral-8x7b-gpu-check.yaml", 3},      // batch 1, 8, 32
      {"deepseek-v2-lite-cpu-dense.yaml", 2},  // batch 1, 8
  };
  size_t seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(MOECAP_EXAMPLES_DIR)) {
    if (entry.path().extension() != ".yaml") continue;
    const std::string file = entry.path().filename().string();
    SCOPED_TRACE(file);
    absl::StatusOr<v1::Plan> plan = ParsePlanYaml(ReadFile(entry.path()), file);
    ASSERT_TRUE(plan.ok()) << plan.status();
    absl::Status valid = ValidatePlan(*plan, TestCatalog(), file);
    ASSERT_TRUE(valid.ok()) << valid;
    absl::StatusOr<std::vector<v1::PlanPoint>> points = ExpandSweeps(*plan, TestCatalog());
    ASSERT_TRUE(points.ok()) << points.status();
    auto it = expected_points.find(file);
    ASSERT_NE(it, expected_points.end()) << "add the new example to expected_points";
    EXPECT_EQ(points->size(), it->second);
    if (file == "deepseek-v2-lite-cpu-dense.yaml") {
      EXPECT_EQ(points->front().workload().dense_layers(), 1);  // every point carries it
    }
    ++seen;
  }
  EXPECT_EQ(seen, expected_points.size());
}

TEST(ExamplePlansTest, CpuSmallPlanIsSmall) {
  absl::StatusOr<v1::Plan> plan = ParsePlanYaml(
      ReadFile(std::filesystem::path(MOECAP_EXAMPLES_DIR) / "mixtral-8x7b-cpu-small.yaml"),
      "mixtral-8x7b-cpu-small.yaml");
  ASSERT_TRUE(plan.ok()) << plan.status();
  ApplyPlanDefaults(&*plan);
  EXPECT_EQ(plan->model(), "mixtral-8x7b");
  EXPECT_EQ(plan->hardware().backend(), v1::BACKEND_CPU);
  EXPECT_EQ(plan->workload().scale(), 16);
  EXPECT_EQ(plan->workload().layers(), 2);
  EXPECT_EQ(plan->parallelism().expert_parallel(), 2);
  EXPECT_THAT(plan->workload().batch_sizes(), ElementsAre(1, 8, 32));
  EXPECT_THAT(plan->workload().phases(), ElementsAre(v1::PHASE_PREFILL, v1::PHASE_DECODE));
  EXPECT_LE(plan->workload().iterations(), 10);
}

// The default expert_parallel (nodes × devices_per_node) overflowed 32 bits (undefined
// behaviour) for huge ranks; now it is clamped and the plan refused.
TEST(PlanBadInputTest, HugeRanksAreRefusedWithoutOverflow) {
  const std::string message =
      ValidationError("parallelism: {nodes: 2147483647, devices_per_node: 2147483647}\n");
  EXPECT_NE(message.find("field 'parallelism.expert_parallel'"), std::string::npos) << message;
  v1::Plan plan =
      MustParse("model: mixtral-8x7b\nparallelism: {nodes: 65536, devices_per_node: 65536}\n");
  ApplyPlanDefaults(&plan);
  EXPECT_EQ(plan.parallelism().expert_parallel(), 2147483647);  // clamped, not wrapped to 0
}

// A string that is not UTF-8 (raw bytes in the YAML; escapes give code points) was accepted, and
// then could not be sent (protobuf strings are UTF-8) nor read back from PlanToYaml. The reader
// refuses such bytes wherever they are, naming their line.
TEST(PlanBadInputTest, NonUtf8StringsAreRefusedWithTheirLine) {
  absl::StatusOr<v1::Plan> plan = ParsePlanYaml("model: mixtral-8x7b\nname: a\xff\n", "p.yaml");
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(),
            "p.yaml:2: YAML syntax error: invalid leading UTF-8 octet (the text must be UTF-8)");
  plan = ParsePlanYaml("model: mixtral-8x7b\n\nlabels: {k\xc0\x80: x}\n", "p.yaml");
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("p.yaml:3: YAML syntax error: "));
  EXPECT_THAT(plan.status().message(), HasSubstr("(the text must be UTF-8)"));
  // Multi-byte text is fine and round-trips.
  plan = ParsePlanYaml("model: mixtral-8x7b\nname: \"Größe ✓ 😀\"\n", "p.yaml");
  ASSERT_TRUE(plan.ok()) << plan.status();
  absl::StatusOr<v1::Plan> again = ParsePlanYaml(PlanToYaml(*plan), "again.yaml");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->name(), "Größe ✓ 😀");
}

}  // namespace
}  // namespace moecap
