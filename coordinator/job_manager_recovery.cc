// JobManager::Recover: the jobs of the store taken back after a restart (see job_manager.h).
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/job_manager.h"
#include "coordinator/job_states.h"
#include "spdlog/spdlog.h"

namespace moecap::coordinator {

absl::Status JobManager::Recover() {
  absl::StatusOr<std::vector<StoredJob>> stored = store_.LoadJobs();
  if (!stored.ok()) return stored.status();
  int requeued = 0;
  int failed = 0;
  Commit([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (StoredJob& s : *stored) {
      const std::string id = s.job.id();
      JobEntry& e = jobs_[id];
      e.job = std::move(s.job);
      e.seq = s.seq;
      e.spec = GangSpecOf(e.job.plan(), catalog_);
      by_seq_[e.seq] = id;
      next_seq_ = std::max(next_seq_, e.seq + 1);
      for (const v1::StateTransition& t : e.job.history()) {
        if (t.state() == v1::JOB_STATE_INTERRUPTED) ++e.interruptions;
      }
      if (metrics_ != nullptr) {
        for (const v1::Point& p : e.job.points()) {
          if (p.has_result()) {
            metrics_->SetPointResult(id, e.job.model(), p.workload(), p.result());
          }
        }
      }
      const v1::JobState state = e.job.state();
      if (IsTerminal(state)) {
        PageOutIfFinished(id);  // after its results went to the metrics above
        continue;
      }
      if (state == v1::JOB_STATE_QUEUED) {
        Enqueue(e);
        continue;
      }
      // It was running when the coordinator stopped.
      std::vector<int32_t> running;
      for (const v1::Point& p : e.job.points()) {
        if (IsActive(p.state()) || p.state() == v1::JOB_STATE_INTERRUPTED) {
          running.push_back(p.index());
        }
      }
      const std::string why = "the coordinator restarted while the job ran";
      for (int32_t i : running) SetPointState(e, i, v1::JOB_STATE_INTERRUPTED, why, fx);
      SetJobState(e, v1::JOB_STATE_INTERRUPTED, why, fx);
      ++e.interruptions;
      if (e.interruptions <= options_.max_interruptions) {
        for (int32_t i : running) {
          SetPointState(e, i, v1::JOB_STATE_QUEUED, "requeued after a coordinator restart", fx);
        }
        SetJobState(e, v1::JOB_STATE_QUEUED,
                    absl::StrCat("requeued after a coordinator restart (", e.interruptions, " of ",
                                 options_.max_interruptions, ")"),
                    fx);
        Enqueue(e);
        ++requeued;
      } else {
        const std::string reason =
            absl::StrCat("interrupted by a coordinator restart again (it was requeued ",
                         options_.max_interruptions, " time",
                         options_.max_interruptions == 1 ? "" : "s", " already)");
        for (int32_t i : running) SetPointState(e, i, v1::JOB_STATE_FAILED, reason, fx);
        FailJob(e, v1::JOB_STATE_FAILED, reason, fx);
        ++failed;
      }
    }
    spdlog::info(
        "recovered {} jobs from the store: {} queued, {} interrupted and requeued, {} "
        "failed after a second interruption",
        jobs_.size() + finished_.size(), queue_.size(), requeued, failed);
  });
  return absl::OkStatus();
}

}  // namespace moecap::coordinator
