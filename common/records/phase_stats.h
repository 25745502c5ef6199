// Aggregation of the passes of one phase (prefill or decode): sums, time-weighted utilisations
// and the distribution of the per-pass values (exact percentiles, common/stats.h). Memory per pass
// is two doubles (its S-MBU and S-MFU), the least the exact percentiles need; everything else is a
// running sum; Finish holds a copy of one series at a time while it selects its percentiles.
#ifndef MOECAP_COMMON_RECORDS_PHASE_STATS_H_
#define MOECAP_COMMON_RECORDS_PHASE_STATS_H_

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/hbm_traffic.h"
#include "common/metrics.h"
#include "common/records/pass_counts.h"
#include "common/validity.h"

namespace moecap::records {

struct PhaseSummary {
  int64_t passes = 0;
  double tokens = 0;  // Σ tokens computed
  Counts counts;      // Σ per term
  double time_s = 0;  // Σ latency
  // Σ bytes / (Σ time · G · BW) and Σ FLOPs / (Σ time · G · FLOPS).
  double s_mbu = 0;
  double s_mfu = 0;
  double s_mbu_p50 = 0, s_mbu_p90 = 0, s_mbu_p99 = 0;
  double s_mfu_p50 = 0, s_mfu_p90 = 0, s_mfu_p99 = 0;
  double mean_batch = 0;              // mean over passes of b
  double mean_activated_experts = 0;  // mean over passes of ā (per MoE layer)
  int64_t invalid_passes = 0;         // passes with a sparse utilisation over 100 %
  int64_t estimated_passes = 0;       // passes counted from an estimate (pass.validity)
  Validity validity;                  // of the phase's figures, with the passes' reasons
  std::optional<HbmTraffic> hbm;      // with a layout: what the devices really read
};

class PhaseAccumulator {
 public:
  // `line` is where the pass starts in the file, for the first invalid pass's message.
  void Add(const CountedPass& pass, double latency_s, double s_mbu, double s_mfu, int64_t line = 0);
  int64_t passes() const { return passes_; }
  // Precondition: passes() > 0. `phase` names the phase in the validity reasons.
  PhaseSummary Finish(absl::string_view phase, double devices, double peak_bandwidth,
                      double peak_flops);

 private:
  int64_t passes_ = 0;
  double tokens_ = 0;
  Counts counts_;
  double time_s_ = 0;
  double batch_sum_ = 0;
  double activated_sum_ = 0;
  std::vector<double> s_mbu_;
  std::vector<double> s_mfu_;
  int64_t invalid_ = 0;
  int64_t first_invalid_line_ = 0;
  double first_invalid_value_ = 0;
  int64_t estimated_ = 0;
  Validity assumptions_;  // the passes' estimates, each assumption once
};

}  // namespace moecap::records

#endif  // MOECAP_COMMON_RECORDS_PHASE_STATS_H_
