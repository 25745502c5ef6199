// Phase aggregation.
#include "common/records/phase_stats.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/stats.h"

namespace moecap::records {

void PhaseAccumulator::Add(const CountedPass& pass, double latency_s, double s_mbu, double s_mfu,
                           int64_t line) {
  ++passes_;
  const double worst = std::max(s_mbu, s_mfu);
  if (worst > 1.0) {
    if (invalid_ == 0) {
      first_invalid_line_ = line;
      first_invalid_value_ = worst;
    }
    ++invalid_;
  }
  if (pass.validity.estimated) {
    ++estimated_;
    assumptions_.Merge(pass.validity);
  }
  tokens_ += pass.tokens;
  counts_ += pass.counts;
  time_s_ += latency_s;
  batch_sum_ += pass.sequences;
  activated_sum_ += pass.activated_experts_per_layer;
  s_mbu_.push_back(s_mbu);
  s_mfu_.push_back(s_mfu);
}

PhaseSummary PhaseAccumulator::Finish(absl::string_view phase, double devices,
                                      double peak_bandwidth, double peak_flops) {
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
  s.invalid_passes = invalid_;
  s.estimated_passes = estimated_;
  s.validity = assumptions_;
  if (estimated_ > 0 && estimated_ < passes_) {
    s.validity.Estimate(absl::StrCat(estimated_, " of the ", passes_, " ", phase,
                                     " passes are estimated as above"));
  }
  CheckUtilization(absl::StrCat(phase, " S-MBU"), s.s_mbu, &s.validity);
  CheckUtilization(absl::StrCat(phase, " S-MFU"), s.s_mfu, &s.validity);
  if (invalid_ > 0) {
    s.validity.Invalidate(absl::StrFormat(
        "%d of the %d %s passes are over 100%% S-MBU or S-MFU (the first on line %d at %.1f%%): "
        "their times are under the roofline time",
        invalid_, passes_, phase, first_invalid_line_, first_invalid_value_ * 100));
  }
  return s;
}

}  // namespace moecap::records
