// The expert-parallel workload end to end on threads of this process (real Gloo on loopback):
// outputs match the single-rank reference, counts match the metric core for the measured
// activated experts, routing overrides behave, and the aggregation reads the ranks right.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "agent/comm/local_communicator.h"
#include "agent/compute/widening_backend.h"
#include "agent/workload/harness.h"
#include "agent/workload/memory.h"
#include "agent/workload/reference.h"
#include "agent/workload/report.h"
#include "common/aggregate/aggregator.h"
#include "common/plan/convert.h"
#include "tests/unit/agent/test_util.h"
#include "tests/unit/agent/workload/aggregated_run.h"

namespace moecap {
namespace {

using ::moecap::testing::CatalogModel;
using ::moecap::testing::OutputsOf;
using ::moecap::testing::RunWorkloadOnThreads;

WorkloadConfig SmallPlan(const std::string& model, int64_t scale) {
  WorkloadConfig c;
  c.model = CatalogModel(model);
  c.scale = scale;
  c.layers = 2;
  c.batches = {1, 5};
  c.phases = {ServingPhase::kPrefill, ServingPhase::kDecode};
  c.prompt_len = 3;
  c.iterations = 2;
  c.warmup = 1;
  c.check = true;
  c.threads_per_rank = 1;
  c.comm_timeout_s = 20;
  return c;
}

void ExpectConsistent(const WorkloadConfig& c, const std::vector<RankResult>& ranks) {
  testing::ExpectAggregatedConsistent(c, ranks, /*checked=*/true);
}

TEST(WorkloadTest, TwoRanksMixtralMatchesReferenceAndMetricCore) {
  const WorkloadConfig c = SmallPlan("mixtral-8x7b", 64);  // d = 64, f_e = 224
  const std::vector<RankResult> ranks = RunWorkloadOnThreads(c, 2);
  ExpectConsistent(c, ranks);
  // Decode batch 1 over 2 ranks: rank 1 owns no token but still computes the pairs sent to it.
  EXPECT_EQ(ranks[1].points[2].tally.own_tokens, 0);
}

// Decoder layers: attention over each rank's sequences, then the MoE block; the check recomputes
// both; the counted terms are analyze's for the stack (attention weights, KV cache, scores).
TEST(WorkloadTest, DecoderLayersOfMixtralOnTwoRanks) {
  WorkloadConfig c = SmallPlan("mixtral-8x7b", 16);  // d = 256, 2 heads, 1 KV head of 128
  c.layer = LayerKind::kDecoder;
  c.prompt_len = 6;
  c.output_len = 10;  // decode at context 11
  const std::vector<RankResult> ranks = RunWorkloadOnThreads(c, 2);
  ExpectConsistent(c, ranks);
  // Batch 1: rank 1 has no sequence, attends over nothing and still serves its experts.
  EXPECT_EQ(ranks[1].points[0].tally.own_tokens, 0);
  EXPECT_EQ(ranks[1].points[0].counts.physical[Term::kAttention].bytes, 0);
  EXPECT_GT(ranks[0].points[0].counts.counted[Term::kKvCache].bytes, 0);
}

// With the LM head: the logits of every decode token and each prompt's last, counted as analyze
// counts them (the weights once, on rank 0).
TEST(WorkloadTest, DecoderLayersWithTheLmHead) {
  WorkloadConfig c = SmallPlan("qwen3-30b-a3b", 32);
  c.layer = LayerKind::kDecoder;
  c.lm_head = true;
  c.layers = 1;
  c.batches = {3};
  c.prompt_len = 5;
  c.output_len = 6;
  const std::vector<RankResult> ranks = RunWorkloadOnThreads(c, 2);
  ExpectConsistent(c, ranks);
  EXPECT_GT(ranks[0].points[0].counts.counted[Term::kLmHead].bytes, 0);
  EXPECT_EQ(ranks[1].points[0].counts.counted[Term::kLmHead].bytes, 0);   // counted once
  EXPECT_GT(ranks[1].points[0].counts.physical[Term::kLmHead].bytes, 0);  // but read there too
  c.layer = LayerKind::kMoe;
  EXPECT_EQ(ValidateWorkload(c, 2).code(), absl::StatusCode::kInvalidArgument);
}

// gpt-oss's alternating sliding window, binding in both phases (P = 160 > w = 128), on 4 ranks.
TEST(WorkloadTest, DecoderLayersOfGptOssWithASlidingWindow) {
  WorkloadConfig c = SmallPlan("gpt-oss-20b", 32);
  c.layer = LayerKind::kDecoder;
  c.batches = {3};
  c.prompt_len = 160;
  c.output_len = 4;
  ExpectConsistent(c, RunWorkloadOnThreads(c, 4));
}

// MLA (DeepSeek-V3: a query LoRA, d = 112, 2 heads, latent 8, rope 64): the absorbed decode and
// the expanded prefill, checked against the reference, counted as analyze counts MLA (the latent
// cache, each pass's score form) on 4 ranks, batch 6 (two ranks with two sequences, two with one).
TEST(WorkloadTest, DecoderLayersOfDeepSeekV3WithMla) {
  WorkloadConfig c = SmallPlan("deepseek-v3", 64);
  c.layer = LayerKind::kDecoder;
  c.layers = 1;
  c.batches = {6};
  c.prompt_len = 70;  // two query blocks in the prefill
  c.output_len = 4;
  const std::vector<RankResult> ranks = RunWorkloadOnThreads(c, 4);
  ExpectConsistent(c, ranks);
  EXPECT_GT(ranks[3].points[0].counts.counted[Term::kKvCache].bytes, 0);
}

// DeepSeek-V3's first layer is dense: a stack of one dense and two MoE layers runs dense, MoE, MoE
// (attention in each). The check covers the whole stack; the counts equal analyze's for a model
// of those three layers, the dense FFN's term included, on 4 ranks (batch 5: rank 0 has two).
TEST(WorkloadTest, DenseAndMoeLayersOfDeepSeekV3) {
  WorkloadConfig c = SmallPlan("deepseek-v3", 64);
  c.layer = LayerKind::kDecoder;
  c.layers = 2;
  c.dense_layers = 1;
  c.batches = {5};
  c.prompt_len = 9;
  c.output_len = 4;
  const std::vector<RankResult> ranks = RunWorkloadOnThreads(c, 4);
  ExpectConsistent(c, ranks);
  const ModelSpec scaled = ScaledModel(c.model, c.scale);
  // Rank 0 carries the replicated weights: the dense FFN's once; its FLOPs are its own tokens'.
  const RankCounts& r0 = ranks[0].points[0].counts;
  EXPECT_EQ(r0.counted[Term::kDenseFfn].bytes, DenseFfnParamsPerLayer(scaled) * 4.0);
  EXPECT_EQ(ranks[1].points[0].counts.counted[Term::kDenseFfn].bytes, 0);
  EXPECT_EQ(ranks[1].points[0].counts.physical[Term::kDenseFfn].bytes,
            DenseFfnParamsPerLayer(scaled) * 4.0);
}

TEST(WorkloadTest, DenseLayersNeedDecoderLayersAndAModelThatHasThem) {
  WorkloadConfig c = SmallPlan("deepseek-v3", 64);
  c.dense_layers = 1;
  c.layer = LayerKind::kMoe;
  EXPECT_THAT(ValidateWorkload(c, 2).message(), ::testing::HasSubstr("give layer decoder too"));
  c.layer = LayerKind::kDecoder;
  c.dense_layers = 4;
  EXPECT_THAT(ValidateWorkload(c, 2).message(),
              ::testing::HasSubstr("dense-layers 4: model 'deepseek-v3' has 3 dense-FFN layers"));
  WorkloadConfig mixtral = SmallPlan("mixtral-8x7b", 64);
  mixtral.layer = LayerKind::kDecoder;
  mixtral.dense_layers = 1;
  EXPECT_THAT(ValidateWorkload(mixtral, 2).message(), ::testing::HasSubstr("has 0 dense-FFN"));
}

TEST(WorkloadTest, FourRanksDeepSeekV3SigmoidRouterAndSharedExpert) {
  WorkloadConfig c = SmallPlan("deepseek-v3", 64);  // d = 112, E = 256, k = 8, one shared
  c.layers = 1;
  c.phases = {ServingPhase::kDecode};
  c.batches = {6};
  ExpectConsistent(c, RunWorkloadOnThreads(c, 4));
}

TEST(WorkloadTest, UniformRoutingGivesTheSameTotalsOnTwoAndFourRanks) {
  WorkloadConfig c = SmallPlan("mixtral-8x7b", 64);
  c.routing.mode = RoutingMode::kUniform;
  c.check = false;
  Peaks peaks{1e11, 1e12, 1, "test"};
  absl::StatusOr<std::vector<v1::PointResult>> two =
      AggregateRanks(c, OutputsOf(c, RunWorkloadOnThreads(c, 2)), peaks);
  absl::StatusOr<std::vector<v1::PointResult>> four =
      AggregateRanks(c, OutputsOf(c, RunWorkloadOnThreads(c, 4)), peaks);
  ASSERT_TRUE(two.ok() && four.ok());
  ASSERT_EQ(two->size(), four->size());
  for (size_t i = 0; i < two->size(); ++i) {
    ASSERT_EQ((*two)[i].phases_size(), (*four)[i].phases_size());
    for (int j = 0; j < (*two)[i].phases_size(); ++j) {
      const v1::PhaseResult& a = (*two)[i].phases(j);
      const v1::PhaseResult& b = (*four)[i].phases(j);
      EXPECT_EQ(std::vector<double>(a.activated_experts().begin(), a.activated_experts().end()),
                std::vector<double>(b.activated_experts().begin(), b.activated_experts().end()));
      EXPECT_EQ(a.imbalance(), b.imbalance());  // the same histogram, merged from 2 or 4 ranks
      EXPECT_EQ(a.bytes(), b.bytes());
      EXPECT_EQ(a.flops(), b.flops());
      // More ranks, more of the rows leave their rank: remote bytes grow from 2 to 4 ranks.
      EXPECT_LE(a.dispatch_bandwidth().remote_bytes(), b.dispatch_bandwidth().remote_bytes());
      EXPECT_EQ(a.dispatch_bandwidth().logical_bytes(), b.dispatch_bandwidth().logical_bytes());
    }
  }
}

TEST(WorkloadTest, OneRankOnTheLocalCommunicator) {
  WorkloadConfig c = SmallPlan("mixtral-8x7b", 64);
  LocalCommunicator comm;
  CpuBackend backend(1);
  absl::StatusOr<RankResult> result = RunRank(c, RankContext{}, comm, backend);
  ASSERT_TRUE(result.ok()) << result.status();
  ExpectConsistent(c, {*result});
  // One rank sends everything to itself: no remote bytes.
  EXPECT_EQ(result->points[0].counts.comm.dispatch_remote, 0);
  EXPECT_GT(result->points[0].counts.comm.dispatch_logical, 0);
}

// The rank's milestones, in order: before each point its check (when the plan checks) or its
// measurement, the iterations measured so far, then REPORT with every point done.
TEST(WorkloadTest, TheRankReportsEachMilestoneAsItPassesIt) {
  WorkloadConfig c = SmallPlan("mixtral-8x7b", 64);
  c.batches = {1, 2};
  c.phases = {ServingPhase::kPrefill, ServingPhase::kDecode};
  c.iterations = 3;
  c.check = true;
  LocalCommunicator comm;
  CpuBackend backend(1);
  std::vector<v1::Progress> seen;
  std::vector<std::string> lines;
  RankContext context;
  context.progress = [&](const v1::Progress& p) { seen.push_back(p); };
  context.log = [&](const std::string& line) { lines.push_back(line); };
  ASSERT_TRUE(RunRank(c, context, comm, backend).ok());
  ASSERT_EQ(seen.size(), 5u);  // 2 phases × 2 batch sizes, then REPORT
  const v1::Phase phases[] = {v1::PHASE_PREFILL, v1::PHASE_PREFILL, v1::PHASE_DECODE,
                              v1::PHASE_DECODE};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(seen[i].stage(), v1::Progress::STAGE_CHECK) << i;
    EXPECT_EQ(seen[i].phase(), phases[i]) << i;
    EXPECT_EQ(seen[i].iterations_done(), static_cast<int64_t>(3 * i)) << i;
    EXPECT_EQ(seen[i].iterations_total(), 12) << i;
    EXPECT_EQ(seen[i].ranks_reporting(), 1) << i;
  }
  EXPECT_EQ(seen.back().stage(), v1::Progress::STAGE_REPORT);
  EXPECT_EQ(seen.back().iterations_done(), 12);
  // The people's lines: weights, then each point's check and measurement.
  ASSERT_EQ(lines.size(), 9u);
  EXPECT_EQ(lines.front().rfind("weights ready", 0), 0u) << lines.front();
  EXPECT_EQ(lines[1].rfind("prefill batch 1: check passed", 0), 0u) << lines[1];
  EXPECT_EQ(lines.back(), "decode batch 2: measured");
}

// A counter that reads 10 J, then 40 J, then fails: the first point's loop drew 30 J.
class ScriptedMeter : public EnergyMeter {
 public:
  absl::StatusOr<double> Joules() override {
    const int i = reads_++;
    if (i >= 2) return absl::UnavailableError("the counter went away");
    return i == 0 ? 10.0 : 40.0;
  }
  const std::string& source() const override { return source_; }

 private:
  int reads_ = 0;
  std::string source_ = "scripted";
};

TEST(WorkloadTest, TheMeasuredLoopsEnergyIsThisRanksShareOfTheCounter) {
  WorkloadConfig c = SmallPlan("mixtral-8x7b", 64);
  c.batches = {1, 2};
  c.phases = {ServingPhase::kDecode};
  LocalCommunicator comm;
  CpuBackend backend(1);
  ScriptedMeter meter;
  RankContext context;
  context.energy = &meter;
  context.energy_shared_by = 3;  // a package counter three ranks share
  absl::StatusOr<RankResult> result = RunRank(c, context, comm, backend);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->points.size(), 2u);
  // (40 − 10) / 3 ranks.
  ASSERT_TRUE(result->points[0].energy_joules.has_value());
  EXPECT_DOUBLE_EQ(*result->points[0].energy_joules, 10.0);
  EXPECT_NE(result->points[0].energy_source.find("1/3"), std::string::npos);
  // The second point could not read its counter: no figure, and why.
  EXPECT_FALSE(result->points[1].energy_joules.has_value());
  EXPECT_EQ(result->points[1].energy_unavailable, "the counter went away");
  // Without a meter, the reason given is kept.
  RankContext none;
  none.energy_unavailable = "no RAPL package zone under /x";
  absl::StatusOr<RankResult> unmeasured = RunRank(c, none, comm, backend);
  ASSERT_TRUE(unmeasured.ok());
  EXPECT_EQ(unmeasured->points[0].energy_unavailable, "no RAPL package zone under /x");
}

TEST(WorkloadTest, TheCheckCatchesAWrongOutput) {
  const ModelSpec scaled = ScaledModel(CatalogModel("mixtral-8x7b"), 64);
  CpuBackend backend(1);
  LocalCommunicator comm;
  absl::StatusOr<MoeWeights> weights =
      MoeWeights::Generate(backend, scaled, 1, Dtype::kFp32, 5, Range{0, scaled.experts});
  ASSERT_TRUE(weights.ok());
  ExpertParallelMoe moe(scaled, *weights, backend, comm);
  const int64_t tokens = 4;
  std::vector<float> input(tokens * scaled.hidden_size), output(input.size());
  FillInputRows(5, tokens, 0, tokens, scaled.hidden_size, input.data());
  ASSERT_TRUE(moe.Prepare(tokens, tokens, {}, input.data()).ok());
  RoutingRecord record;
  ASSERT_TRUE(moe.Step(nullptr, nullptr, &record).ok());
  ASSERT_TRUE(moe.ReadOutput(output.data()).ok());
  absl::StatusOr<CheckResult> good = CheckAgainstReference(
      backend, scaled, *weights, 5, input.data(), tokens, {}, record, output.data(), 1e-4);
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(good->passed) << good->max_rel_error;
  output[7] += 0.5f;  // one wrong element
  absl::StatusOr<CheckResult> bad = CheckAgainstReference(
      backend, scaled, *weights, 5, input.data(), tokens, {}, record, output.data(), 1e-4);
  ASSERT_TRUE(bad.ok());
  EXPECT_FALSE(bad->passed);
  EXPECT_NEAR(bad->max_abs_error, 0.5, 1e-3);
  // A token sent to an expert its logits do not rank in the top-k is a routing mismatch.
  record.chosen[0][0] = (record.chosen[0][0] + 1) % 8 == record.chosen[0][1]
                            ? (record.chosen[0][0] + 2) % 8
                            : (record.chosen[0][0] + 1) % 8;
  absl::StatusOr<CheckResult> misrouted = CheckAgainstReference(
      backend, scaled, *weights, 5, input.data(), tokens, {}, record, output.data(), 1e-4);
  ASSERT_TRUE(misrouted.ok());
  EXPECT_FALSE(misrouted->passed);
}

// This OpenBLAS has no cblas_sbgemm. To test the bf16 data path anyway (bf16 rows on the wire,
// SwiGLU output rounded to bf16, results returned in bf16), GEMMs in bf16 are emulated by widening
// the operands to fp32 (WideningBackend).
TEST(WorkloadTest, Bf16DataPathMatchesTheReferenceWithinBf16Tolerance) {
  WorkloadConfig c = SmallPlan("mixtral-8x7b", 64);
  c.dtype = Dtype::kBf16;
  c.phases = {ServingPhase::kDecode};
  const std::vector<RankResult> ranks = RunWorkloadOnThreads<WideningBackend>(c, 2);
  ExpectConsistent(c, ranks);
  // Rows travel in bf16: d·2 = 128 bytes each (d = 64). Batch 5 over 2 ranks: rank 0 owns 3
  // tokens and sends 3·k·layers = 12 rows.
  EXPECT_EQ(ranks[0].points[1].counts.comm.dispatch_logical, 12 * 128);
  // p_w = 2: the routed-expert bytes are half of fp32's for the same activated experts.
  const RankPointResult& p = ranks[0].points[1];
  EXPECT_EQ(p.counts.counted[Term::kRoutedExperts].bytes,
            2.0 * p.tally.local_activated_sum * 3 * 64 * 224);
}

TEST(MemoryEstimateTest, FullScaleDeepSeekV3StackDoesNotFit) {
  WorkloadConfig c;
  c.model = CatalogModel("deepseek-v3");
  c.layers = 61;
  // Per layer: E·3·d·f_e + d·E + 3·d·f_s = 256·44,040,192 + 1,835,008 + 44,040,192 parameters,
  // about 11.32e9; times 61 layers and 4 bytes: about 2.76e12 bytes over all ranks.
  const MemoryEstimate e = EstimateMemory(c, 8, 8);
  EXPECT_GT(e.host_total, 2'700'000'000'000);
  const absl::Status s = CheckMemoryFits(c, e, int64_t{24} << 30);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("does not fit in memory"), std::string::npos) << s;
  // A scaled-down, two-layer stack fits easily.
  c.scale = 64;
  c.layers = 2;
  EXPECT_TRUE(CheckMemoryFits(c, EstimateMemory(c, 8, 8), int64_t{24} << 30).ok());
}

}  // namespace
}  // namespace moecap
