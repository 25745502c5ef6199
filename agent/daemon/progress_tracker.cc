// ProgressTracker: the ranks' newest records, folded into the slowest.
#include "agent/daemon/progress_tracker.h"

#include "common/aggregate/progress.h"

namespace moecap::agentd {

ProgressTracker::ProgressTracker(const std::vector<int>& ranks, const WorkloadConfig& config)
    : iterations_total_(static_cast<int64_t>(config.iterations) *
                        static_cast<int64_t>(config.phases.size() * config.batches.size())) {
  if (!config.phases.empty()) {
    first_phase_ =
        config.phases.front() == ServingPhase::kPrefill ? v1::PHASE_PREFILL : v1::PHASE_DECODE;
  }
  for (int r : ranks) ranks_[r] = std::nullopt;
}

void ProgressTracker::Observe(int rank, const v1::Progress& progress) {
  absl::MutexLock lock(&mu_);
  auto it = ranks_.find(rank);
  if (it != ranks_.end()) it->second = progress;
}

v1::Progress ProgressTracker::Current() const {
  std::vector<v1::Progress> reports;
  bool all_reported = true;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [rank, progress] : ranks_) {
      if (progress.has_value()) {
        reports.push_back(*progress);
      } else {
        all_reported = false;
      }
    }
  }
  v1::Progress out;
  if (all_reported && !reports.empty()) {
    out = SlowestProgress(reports);
  } else {
    out.set_stage(v1::Progress::STAGE_SETUP);
    out.set_phase(first_phase_);
  }
  out.set_iterations_total(iterations_total_);
  out.set_ranks_reporting(static_cast<int32_t>(reports.size()));
  return out;
}

}  // namespace moecap::agentd
