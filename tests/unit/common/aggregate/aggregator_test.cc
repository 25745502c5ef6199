// Cluster aggregation (common/aggregate), which moecap-bench shares: the v1::Percentiles
// builder, worked examples by hand (utilisation, cost, energy, the exchange's bandwidths,
// imbalance, overhead, the metric-core check), and the error cases.
#include "common/aggregate/aggregator.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/catalog.h"
#include "common/model.h"
#include "common/plan/convert.h"
#include "common/precision.h"
#include "tests/fakes/test_agents.h"

namespace moecap {
namespace {

using coordinator::testing::CpuAgent;
using coordinator::testing::Phase;

v1::RankReport Rank(int rank, v1::RankPhase prefill, v1::RankPhase decode) {
  v1::RankReport r;
  r.set_rank(rank);
  *r.add_phases() = std::move(prefill);
  *r.add_phases() = std::move(decode);
  return r;
}

TEST(PercentilesOfTest, InterpolatesLikeNumPy) {
  // Sorted {1, 2, 3, 4}; mean 2.5.
  const v1::Percentiles p = PercentilesOf({4, 1, 3, 2});
  EXPECT_DOUBLE_EQ(p.min(), 1);
  EXPECT_DOUBLE_EQ(p.max(), 4);
  EXPECT_DOUBLE_EQ(p.mean(), 2.5);
  EXPECT_DOUBLE_EQ(p.p50(), 2.5);   // position 0.5·3 = 1.5 between 2 and 3
  EXPECT_DOUBLE_EQ(p.p90(), 3.7);   // position 2.7 between 3 and 4: 3 + 0.7
  EXPECT_DOUBLE_EQ(p.p99(), 3.97);  // position 2.97: 3 + 0.97
  EXPECT_EQ(p.count(), 4);
  EXPECT_DOUBLE_EQ(p.stddev(), std::sqrt(1.25));  // mean of (1.5², 0.5², 0.5², 1.5²)
}

TEST(PercentilesOfTest, AllZeroForNoValues) {
  const v1::Percentiles p = PercentilesOf({});
  EXPECT_EQ(p.count(), 0);
  EXPECT_EQ(p.mean(), 0);
  EXPECT_EQ(p.stddev(), 0);
  EXPECT_EQ(p.p99(), 0);
}

// Two nodes, one rank and one device each (100 GB/s, 1 TFLOP/s fp32), B=2, P=4, O=3.
PointAggregationInput WorkedExample() {
  PointAggregationInput in;
  in.point_index = 3;
  in.attempt = 1;
  v1::PointWorkload& w = in.workload;
  w.add_phases(v1::PHASE_PREFILL);
  w.add_phases(v1::PHASE_DECODE);
  w.set_batch_size(2);
  w.set_prompt_len(4);
  w.set_output_len(3);
  w.set_dtype(v1::DTYPE_FP32);
  w.set_expert_parallel(2);
  const v1::AgentInfo a = CpuAgent("a");
  const v1::AgentInfo b = CpuAgent("b");
  v1::NodeReport na;
  na.set_agent_id("agent-a");
  na.set_hostname("a.local");
  *na.add_devices() = a.inventory().devices(0);
  *na.add_ranks() = Rank(0, Phase(v1::PHASE_PREFILL, 100e6, 1.0e9, {0.010, 0.012, 0.014}),
                         Phase(v1::PHASE_DECODE, 50e6, 2e8, {0.002, 0.002, 0.002}));
  v1::NodeReport nb;
  nb.set_agent_id("agent-b");
  nb.set_hostname("b.local");
  *nb.add_devices() = b.inventory().devices(0);
  *nb.add_ranks() = Rank(1, Phase(v1::PHASE_PREFILL, 60e6, 0.3e9, {0.011, 0.011, 0.016}),
                         Phase(v1::PHASE_DECODE, 30e6, 1e8, {0.001, 0.003, 0.002}));
  in.nodes = {na, nb};
  in.agent_names = {{"agent-a", "a"}, {"agent-b", "b"}};
  in.pricing.set_usd_per_device_hour(2.0);
  return in;
}

TEST(AggregatePointTest, WorkedExampleByHand) {
  absl::StatusOr<v1::PointResult> r = AggregatePoint(WorkedExample());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->point_index(), 3);
  EXPECT_EQ(r->devices(), 2);
  EXPECT_EQ(r->hardware(), "cpu");
  ASSERT_EQ(r->phases_size(), 2);

  const v1::PhaseResult& prefill = r->phases(0);
  EXPECT_EQ(prefill.phase(), v1::PHASE_PREFILL);
  // Slowest rank per step: max(0.010, 0.011), max(0.012, 0.011), max(0.014, 0.016)
  // = [0.011, 0.012, 0.016]; mean 0.039 / 3 = 0.013 s; p50 0.012; p90 at position 1.8:
  // 0.012 + 0.8 · 0.004 = 0.0152.
  EXPECT_NEAR(prefill.step_time().mean(), 0.013, 1e-15);
  EXPECT_NEAR(prefill.step_time().p50(), 0.012, 1e-15);
  EXPECT_NEAR(prefill.step_time().p90(), 0.0152, 1e-15);
  EXPECT_DOUBLE_EQ(prefill.step_time().max(), 0.016);
  EXPECT_EQ(prefill.step_time().count(), 3);
  // bytes 100e6 + 60e6 = 160e6 over 0.013 s and 2 × 100 GB/s: 160e6 / 2.6e9 = 0.0615384...
  EXPECT_DOUBLE_EQ(prefill.bytes(), 160e6);
  EXPECT_NEAR(prefill.s_mbu(), 160e6 / 2.6e9, 1e-12);
  // FLOPs 1.3e9 over 0.013 s and 2 TFLOP/s: 1.3e9 / 2.6e10 = 0.05.
  EXPECT_NEAR(prefill.s_mfu(), 0.05, 1e-12);
  EXPECT_NEAR(prefill.dense_mbu(), 2 * 160e6 / 2.6e9, 1e-12);  // dense counts are 2x here
  EXPECT_NEAR(prefill.tokens_per_s(), 8 / 0.013, 1e-9);        // B·P / TTFT
  EXPECT_DOUBLE_EQ(prefill.peak_bandwidth_bytes_per_s(), 200e9);
  // Rank means 0.036/3 = 0.012 and 0.038/3: ratio 0.038 / 0.036 = 1.0555...
  EXPECT_NEAR(prefill.rank_step_time_ratio(), 0.038 / 0.036, 1e-12);
  // Roofline: max(160e6 / 200e9, 1.3e9 / 2e12) = max(0.8 ms, 0.65 ms) = 0.8 ms.
  EXPECT_NEAR(prefill.roofline_seconds(), 0.0008, 1e-15);
  EXPECT_DOUBLE_EQ(prefill.breakdown().routed_experts().bytes(), 160e6);

  const v1::PhaseResult& decode = r->phases(1);
  // Slowest: [0.002, 0.003, 0.002], mean 0.007 / 3 s; bytes 80e6 -> 80e6 / (0.00233.. · 200e9)
  // = 0.1714285...; tokens/s = B / TPOT = 2 / 0.00233.. = 857.14...
  EXPECT_NEAR(decode.step_time().mean(), 0.007 / 3, 1e-15);
  EXPECT_NEAR(decode.s_mbu(), 80e6 / (0.007 / 3 * 200e9), 1e-12);
  EXPECT_NEAR(decode.tokens_per_s(), 2 / (0.007 / 3), 1e-9);

  // Cost: t = 0.013 + (3 − 1) · 0.00233.. = 0.0176667 s; 2 $/h × 2 devices × t / 3600 over
  // B·O = 6 tokens × 1e6 = 3.2716 $; over B·(P+O) = 14 tokens: 1.40212 $.
  ASSERT_TRUE(r->has_cost());
  const double t = 0.013 + 2 * 0.007 / 3;
  EXPECT_NEAR(r->cost().batch_seconds(), t, 1e-15);
  EXPECT_EQ(r->cost().price_basis(), "given");
  EXPECT_NEAR(r->cost().usd_per_million_output_tokens(), 2 * 2 * t / 3600 / 6 * 1e6, 1e-9);
  EXPECT_NEAR(r->cost().usd_per_million_output_tokens(), 3.2716, 1e-4);
  EXPECT_NEAR(r->cost().usd_per_million_total_tokens(), 1.40212, 1e-5);

  // Per node: node a's prefill is its own 100e6 bytes over its slowest time (its own, mean
  // 0.012 s) and its one device: 100e6 / (0.012 · 100e9) = 0.08333...
  ASSERT_EQ(r->nodes_size(), 2);
  EXPECT_EQ(r->nodes(0).agent_name(), "a");
  ASSERT_EQ(r->nodes(0).ranks_size(), 1);
  EXPECT_NEAR(r->nodes(0).phases(0).s_mbu(), 100e6 / (0.012 * 100e9), 1e-12);
}

TEST(AggregatePointTest, MeasuredEnergyIsSummedAndPricesTheAmortisedHour) {
  PointAggregationInput in = WorkedExample();
  // Decode: rank 0 drew 0.5 J per step over a 2.5 ms window, rank 1 0.3 J over 2.0 ms.
  for (auto [node, joules, window] : {std::tuple{0, 0.5, 0.0025}, std::tuple{1, 0.3, 0.002}}) {
    v1::RankPhase* decode = in.nodes[node].mutable_ranks(0)->mutable_phases(1);
    ASSERT_EQ(decode->phase(), v1::PHASE_DECODE);
    decode->set_energy_joules_per_step(joules);
    decode->set_energy_window_seconds_per_step(window);
    decode->set_energy_source("rapl: package-0");
  }
  in.nodes[1].mutable_ranks(0)->mutable_phases(0)->set_energy_unavailable("RAPL not readable");
  in.pricing.clear_usd_per_device_hour();
  in.pricing.set_amortize_hours(1000);
  Catalog catalog = *Catalog::Builtin();
  HardwareSpec cpu = **catalog.FindHardware("cpu");
  cpu.purchase_usd = 5000;  // a price to amortise (the built-in generic entry has none)
  cpu.tdp_watts = 280;
  catalog.AddHardware(cpu);
  in.catalog = &catalog;
  absl::StatusOr<v1::PointResult> r = AggregatePoint(in);
  ASSERT_TRUE(r.ok()) << r.status();
  const v1::PhaseResult& decode = r->phases(1);
  ASSERT_TRUE(decode.has_energy_joules_per_step());
  // 0.5 + 0.3 = 0.8 J per step; over the longer window, 2.5 ms: 320 W; per token, B = 2
  // tokens per step: 0.4 J.
  EXPECT_DOUBLE_EQ(decode.energy_joules_per_step(), 0.8);
  EXPECT_DOUBLE_EQ(decode.mean_power_watts(), 320);
  EXPECT_NEAR(decode.joules_per_token(), 0.4, 1e-12);
  EXPECT_EQ(decode.energy_source(), "rapl: package-0");
  // Prefill: rank 0 reported nothing, rank 1 why: no figure, the first rank's reason.
  EXPECT_FALSE(r->phases(0).has_energy_joules_per_step());
  EXPECT_EQ(r->phases(0).energy_unavailable(), "rank 0: no energy reported");
  // The energy part of the amortised hour at the measured 320 W over 2 devices, not 280 W TDP:
  // 5000 / 1000 + 0.160 kW · 0.15 $/kWh = 5.024 $/h.
  ASSERT_TRUE(r->has_cost());
  EXPECT_EQ(r->cost().energy_basis(), "measured");
  EXPECT_DOUBLE_EQ(r->cost().watts_per_device(), 160);
  EXPECT_NEAR(r->cost().usd_per_device_hour(), 5.024, 1e-12);
}

TEST(AggregatePointTest, NoCostWithoutAPriceOrBothPhases) {
  PointAggregationInput in = WorkedExample();
  in.pricing.Clear();  // "cpu" has no catalog price
  Catalog catalog = *Catalog::Builtin();
  HardwareSpec cpu = **catalog.FindHardware("cpu");
  cpu.purchase_usd = 5000;  // a price to amortise (the built-in generic entry has none)
  cpu.tdp_watts = 280;
  catalog.AddHardware(cpu);
  in.catalog = &catalog;
  absl::StatusOr<v1::PointResult> r = AggregatePoint(in);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->has_cost());
}

TEST(AggregatePointTest, MissingOrDuplicateRanksAreErrors) {
  PointAggregationInput in = WorkedExample();
  in.nodes[1].clear_ranks();
  absl::StatusOr<v1::PointResult> r = AggregatePoint(in);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("rank 1 is missing"), std::string::npos);

  in = WorkedExample();
  in.nodes[1].mutable_ranks(0)->set_rank(0);
  r = AggregatePoint(in);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("reported twice"), std::string::npos);

  in = WorkedExample();
  in.nodes[0].mutable_ranks(0)->mutable_phases()->RemoveLast();
  r = AggregatePoint(in);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AggregatePointTest, RanksSharingADeviceCountItOnce) {
  // Two ranks on one CPU host (one device reported twice): the peak is the host's, once.
  PointAggregationInput in = WorkedExample();
  *in.nodes[0].add_ranks() = in.nodes[1].ranks(0);
  *in.nodes[0].add_devices() = in.nodes[0].devices(0);
  in.nodes.pop_back();
  absl::StatusOr<v1::PointResult> r = AggregatePoint(in);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->devices(), 1);
  EXPECT_DOUBLE_EQ(r->phases(0).peak_bandwidth_bytes_per_s(), 100e9);
  EXPECT_NEAR(r->phases(0).s_mbu(), 160e6 / (0.013 * 100e9), 1e-12);
}

void SetExchange(v1::RankPhase& p, double dispatch_logical, double dispatch_remote,
                 double combine_logical, double combine_remote, double dispatch_s,
                 double combine_s) {
  v1::Communication* c = p.mutable_communication();
  c->set_dispatch_logical_bytes(dispatch_logical);
  c->set_dispatch_remote_bytes(dispatch_remote);
  c->set_combine_logical_bytes(combine_logical);
  c->set_combine_remote_bytes(combine_remote);
  p.mutable_sub_times()->mutable_dispatch()->set_mean(dispatch_s);
  p.mutable_sub_times()->mutable_combine()->set_mean(combine_s);
}

void SetHistogram(v1::RankPhase& p, const std::vector<int32_t>& experts,
                  const std::vector<std::vector<int64_t>>& layers) {
  v1::ExpertHistogram* h = p.mutable_expert_tokens();
  for (int32_t e : experts) h->add_experts(e);
  for (const std::vector<int64_t>& layer : layers) {
    v1::ExpertHistogram::Layer* row = h->add_layers();
    for (int64_t t : layer) row->add_tokens(t);
  }
}

// The exchange's figures over the cluster, by hand (common/parallel_metrics.h's definitions).
TEST(AggregatePointTest, ExchangeImbalanceAndOverheadByHand) {
  PointAggregationInput in = WorkedExample();
  v1::RankPhase& d0 = *in.nodes[0].mutable_ranks(0)->mutable_phases(1);
  v1::RankPhase& d1 = *in.nodes[1].mutable_ranks(0)->mutable_phases(1);
  SetExchange(d0, 100, 50, 80, 40, 0.001, 0.002);
  SetExchange(d1, 60, 30, 40, 20, 0.002, 0.001);
  // Experts 0, 1 on rank 0 and 2, 3 on rank 1; two layers.
  SetHistogram(d0, {0, 1}, {{6, 2}, {2, 2}});
  SetHistogram(d1, {2, 3}, {{0, 0}, {2, 2}});
  d0.mutable_step_time()->set_count(3);
  d1.mutable_step_time()->set_count(3);
  d0.set_loop_seconds(0.008);   // steps 3 · 0.002 = 0.006 s of it: overhead 0.25
  d1.set_loop_seconds(0.0075);  // steps 0.006 s: overhead 0.2
  d1.mutable_check()->set_checked(true);
  d1.mutable_check()->set_passed(false);
  d1.mutable_check()->set_max_abs_error(0.5);
  absl::StatusOr<v1::PointResult> r = AggregatePoint(in);
  ASSERT_TRUE(r.ok()) << r.status();
  const v1::PhaseResult& decode = r->phases(1);

  // Both all-to-alls: bytes summed (dispatch 160 / 80, combine 120 / 60); the busiest rank's
  // logical bytes 100 + 80 = 180 over the slowest rank's 0.001 + 0.002 = 0.003 s: algbw 60 kB/s,
  // busbw over 2 ranks 30 kB/s, remote (50 + 40) / 0.003 = 30 kB/s.
  const v1::Communication& c = decode.communication();
  EXPECT_DOUBLE_EQ(c.dispatch_logical_bytes(), 160);
  EXPECT_DOUBLE_EQ(c.combine_remote_bytes(), 60);
  EXPECT_NEAR(c.algbw_bytes_per_s(), 60000, 1e-9);
  EXPECT_NEAR(c.busbw_bytes_per_s(), 30000, 1e-9);
  EXPECT_NEAR(c.remote_bw_bytes_per_s(), 30000, 1e-9);
  // Dispatch alone: the slowest rank's mean 0.002 s: 100 / 0.002 = 50 kB/s, busbw 25 kB/s,
  // remote 50 / 0.002 = 25 kB/s; over the fastest rank's 0.001 s: 100 kB/s and 50 kB/s.
  const v1::CollectiveBandwidth& dispatch = decode.dispatch_bandwidth();
  EXPECT_DOUBLE_EQ(dispatch.logical_bytes(), 160);
  EXPECT_DOUBLE_EQ(dispatch.seconds(), 0.002);
  EXPECT_NEAR(dispatch.algbw_bytes_per_s(), 50000, 1e-9);
  EXPECT_NEAR(dispatch.busbw_bytes_per_s(), 25000, 1e-9);
  EXPECT_NEAR(dispatch.remote_bw_bytes_per_s(), 25000, 1e-9);
  EXPECT_DOUBLE_EQ(dispatch.transfer_seconds(), 0.001);
  EXPECT_NEAR(dispatch.transfer_algbw_bytes_per_s(), 100000, 1e-9);
  EXPECT_NEAR(dispatch.transfer_remote_bw_bytes_per_s(), 50000, 1e-9);

  // Merged histogram: layer 0 [6, 2, 0, 0] (mean 2, busiest 6: 3), layer 1 [2, 2, 2, 2] (1).
  ASSERT_EQ(decode.imbalance_per_layer_size(), 2);
  EXPECT_DOUBLE_EQ(decode.imbalance_per_layer(0), 3);
  EXPECT_DOUBLE_EQ(decode.imbalance_per_layer(1), 1);
  EXPECT_DOUBLE_EQ(decode.imbalance(), 3);
  // Per node, its busiest expert against the layer's mean: a holds the 6 (3); b's largest layer
  // is layer 1, 2 / 2 = 1.
  EXPECT_DOUBLE_EQ(r->nodes(0).phases(1).imbalance(), 3);
  EXPECT_DOUBLE_EQ(r->nodes(1).phases(1).imbalance(), 1);

  // The harness's overhead on the rank where it is smallest.
  EXPECT_NEAR(decode.harness_overhead(), 0.2, 1e-12);
  EXPECT_DOUBLE_EQ(r->phases(0).harness_overhead(), 0);  // no loop time reported
  // The phase's check is its worst rank's; one row per rank, with its agent.
  EXPECT_TRUE(decode.check().checked());
  EXPECT_FALSE(decode.check().passed());
  EXPECT_FALSE(r->phases(0).check().checked());
  ASSERT_EQ(decode.ranks_size(), 2);
  EXPECT_EQ(decode.ranks(1).rank(), 1);
  EXPECT_EQ(decode.ranks(1).agent_id(), "agent-b");
  EXPECT_DOUBLE_EQ(decode.ranks(0).dispatch_mean_seconds(), 0.001);
  EXPECT_DOUBLE_EQ(decode.ranks(0).counts().total_bytes(), 50e6);
  EXPECT_EQ(decode.tokens_per_step(), 2);
  EXPECT_EQ(r->phases(0).tokens_per_step(), 8);
}

// Sub-phase times come from the slowest rank, except the data-parallel ones (attention, LM head):
// those from the rank that spent the most on them, which the step waited for.
TEST(AggregatePointTest, AttentionTimesAreTheBusiestRanksNotTheSlowests) {
  PointAggregationInput in = WorkedExample();
  // Prefill: rank 1 is the slowest (mean 0.038 / 3 s against 0.012 s) but attends over less.
  v1::PhaseTimes& t0 = *in.nodes[0].mutable_ranks(0)->mutable_phases(0)->mutable_sub_times();
  v1::PhaseTimes& t1 = *in.nodes[1].mutable_ranks(0)->mutable_phases(0)->mutable_sub_times();
  t0.mutable_attention()->set_mean(0.004);
  t0.mutable_lm_head()->set_mean(0.0002);
  t0.mutable_experts()->set_mean(0.003);
  t1.mutable_attention()->set_mean(0.001);
  t1.mutable_lm_head()->set_mean(0.0005);
  t1.mutable_experts()->set_mean(0.006);
  absl::StatusOr<v1::PointResult> r = AggregatePoint(in);
  ASSERT_TRUE(r.ok()) << r.status();
  const v1::PhaseTimes& t = r->phases(0).sub_times();
  EXPECT_DOUBLE_EQ(t.experts().mean(), 0.006);    // the slowest rank's
  EXPECT_DOUBLE_EQ(t.attention().mean(), 0.004);  // rank 0 attended longest
  EXPECT_DOUBLE_EQ(t.lm_head().mean(), 0.0005);   // rank 1 computed the most logits
}

// With the workload's model, the counted terms are held against CountMoeBlocks for the model as
// run (scaled) and the activated experts the ranks measured.
TEST(AggregatePointTest, CountsAreHeldAgainstTheMetricCore) {
  const ModelSpec mixtral = **Catalog::Builtin()->FindModel("mixtral-8x7b");
  PointAggregationInput in = WorkedExample();
  in.workload.clear_phases();
  in.workload.add_phases(v1::PHASE_DECODE);
  *in.workload.mutable_model_spec() = ModelSpecToProto(mixtral);
  in.workload.set_scale(64);
  in.workload.set_layers(1);
  // B = 2 decode tokens; rank 0 activated 2 experts, rank 1 one: A = 3.
  const Counts core =
      CountMoeBlocks(ScaledModel(mixtral, 64), MakePrecision(Dtype::kFp32), 1, 2, 3);
  for (int node = 0; node < 2; ++node) {
    v1::RankPhase& d = *in.nodes[node].mutable_ranks(0)->mutable_phases(1);
    d.clear_activated_experts();
    d.add_activated_experts(node == 0 ? 2 : 1);
    *d.mutable_counts() = TermCountsToProto(node == 0 ? core : Counts());
  }
  absl::StatusOr<v1::PointResult> r = AggregatePoint(in);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->phases_size(), 1);
  EXPECT_TRUE(r->phases(0).metric_core().checked());
  EXPECT_TRUE(r->phases(0).metric_core().matches());
  EXPECT_DOUBLE_EQ(r->phases(0).metric_core().counts().total_bytes(), core.bytes());

  // One byte more on rank 1 is a mismatch.
  Counts more;
  more[Term::kRoutedExperts].bytes = 1;
  *in.nodes[1].mutable_ranks(0)->mutable_phases(1)->mutable_counts() = TermCountsToProto(more);
  r = AggregatePoint(in);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->phases(0).metric_core().checked());
  EXPECT_FALSE(r->phases(0).metric_core().matches());

  // Without the model there is nothing to hold them against.
  in.workload.clear_model_spec();
  r = AggregatePoint(in);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->phases(0).metric_core().checked());
}

}  // namespace
}  // namespace moecap
