// ProgressTracker: counts the harness's progress lines per rank.
#include "agent/daemon/progress_tracker.h"

#include <algorithm>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace moecap::agentd {

ProgressTracker::ProgressTracker(const std::vector<int>& ranks, const WorkloadConfig& config)
    : phases_(config.phases), iterations_(config.iterations), check_(config.check) {
  for (int r : ranks) ranks_[r] = RankState{};
}

void ProgressTracker::ObserveLog(int rank, absl::string_view log) {
  auto it = ranks_.find(rank);
  if (it == ranks_.end()) return;
  RankState state;
  const std::string prefix = absl::StrCat("rank ", rank, ": ");
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (!absl::ConsumePrefix(&line, prefix)) continue;
    state.seen = true;
    if (absl::StrContains(line, "weights ready")) {
      state.weights_ready = true;
    } else if (absl::StrContains(line, ": check ")) {
      ++state.checked;
    } else if (absl::EndsWith(line, ": measured")) {
      ++state.measured;
    }
  }
  it->second = state;
}

v1::Progress ProgressTracker::Current() const {
  v1::Progress progress;
  const int phases = static_cast<int>(phases_.size());
  progress.set_iterations_total(static_cast<int64_t>(iterations_) * phases);
  int reporting = 0;
  bool all_ready = true;
  int measured = phases;
  int checked = phases;
  for (const auto& [rank, state] : ranks_) {
    reporting += state.seen ? 1 : 0;
    all_ready = all_ready && state.weights_ready;
    measured = std::min(measured, state.measured);
    checked = std::min(checked, state.checked);
  }
  progress.set_ranks_reporting(reporting);
  if (!phases_.empty()) {
    const ServingPhase current = phases_[static_cast<size_t>(std::min(measured, phases - 1))];
    progress.set_phase(current == ServingPhase::kPrefill ? v1::PHASE_PREFILL : v1::PHASE_DECODE);
  }
  progress.set_iterations_done(static_cast<int64_t>(iterations_) * (all_ready ? measured : 0));
  if (!all_ready) {
    progress.set_stage(v1::Progress::STAGE_SETUP);
  } else if (measured >= phases) {
    progress.set_stage(v1::Progress::STAGE_REPORT);
  } else if (check_ && checked <= measured) {
    progress.set_stage(v1::Progress::STAGE_CHECK);
  } else {
    progress.set_stage(v1::Progress::STAGE_MEASURE);
  }
  return progress;
}

}  // namespace moecap::agentd
