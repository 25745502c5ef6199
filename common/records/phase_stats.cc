// Phase aggregation.
#include "common/records/phase_stats.h"

#include "common/stats.h"

namespace moecap::records {

void PhaseAccumulator::Add(const CountedPass& pass, double latency_s, double s_mbu, double s_mfu) {
  ++passes_;
  tokens_ += pass.tokens;
  counts_ += pass.counts;
  time_s_ += latency_s;
  batch_sum_ += pass.sequences;
  activated_sum_ += pass.activated_experts_per_layer;
  s_mbu_.push_back(s_mbu);
  s_mfu_.push_back(s_mfu);
}

PhaseSummary PhaseAccumulator::Finish(double devices, double peak_bandwidth, double peak_flops) {
  PhaseSummary s;
  s.passes = passes_;
  s.tokens = tokens_;
  s.counts = counts_;
  s.time_s = time_s_;
  s.s_mbu = Utilization(counts_.bytes(), time_s_, devices, peak_bandwidth);
  s.s_mfu = Utilization(counts_.flops(), time_s_, devices, peak_flops);
  s.s_mbu_p50 = Percentile(s_mbu_, 0.50);
  s.s_mbu_p90 = Percentile(s_mbu_, 0.90);
  s.s_mbu_p99 = Percentile(s_mbu_, 0.99);
  s.s_mfu_p50 = Percentile(s_mfu_, 0.50);
  s.s_mfu_p90 = Percentile(s_mfu_, 0.90);
  s.s_mfu_p99 = Percentile(s_mfu_, 0.99);
  const double n = static_cast<double>(passes_);
  s.mean_batch = batch_sum_ / n;
  s.mean_activated_experts = activated_sum_ / n;
  return s;
}

}  // namespace moecap::records
