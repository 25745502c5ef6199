// JobStore in memory.
#include "coordinator/in_memory_job_store.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace moecap::coordinator {

absl::Status InMemoryJobStore::ApplyAll(absl::Span<const JobWrite> writes) {
  absl::MutexLock lock(&mu_);
  // All or none: every write is checked before any is applied.
  absl::flat_hash_set<std::string> created;
  for (const JobWrite& write : writes) {
    if (write.job.has_value()) created.insert(write.job_id);
    if (!write.empty() && !jobs_.contains(write.job_id) && !created.contains(write.job_id)) {
      return absl::FailedPreconditionError(
          absl::StrCat("job '", write.job_id, "': first write without the job"));
    }
  }
  for (const JobWrite& write : writes) {
    if (write.empty()) continue;
    Rows& rows = jobs_[write.job_id];
    if (write.job.has_value()) {
      rows.seq = write.seq;
      rows.job = *write.job;
      rows.job.clear_points();
      rows.job.clear_history();
    }
    for (const v1::Point& p : write.points) {
      v1::Point& stored = rows.points[p.index()];
      stored = p;
      stored.clear_history();
      stored.clear_result();
    }
    rows.transitions.insert(rows.transitions.end(), write.transitions.begin(),
                            write.transitions.end());
    rows.reports.insert(rows.reports.end(), write.reports.begin(), write.reports.end());
    for (const v1::PointResult& r : write.results) rows.results[r.point_index()] = r;
  }
  return absl::OkStatus();
}

void InMemoryJobStore::Add(const std::string& id, const Rows& rows, JobAssembler& assembler) {
  assembler.SetJob(rows.seq, rows.job);
  for (const auto& [index, p] : rows.points) assembler.SetPoint(id, p);
  for (const StoredTransition& t : rows.transitions) assembler.AddTransition(id, t);
  for (const auto& [index, r] : rows.results) assembler.SetResult(id, r);
}

absl::StatusOr<std::vector<StoredJob>> InMemoryJobStore::LoadJobs() {
  absl::MutexLock lock(&mu_);
  JobAssembler assembler;
  for (const auto& [id, rows] : jobs_) Add(id, rows, assembler);
  return assembler.Finish();
}

absl::StatusOr<std::optional<StoredJob>> InMemoryJobStore::LoadJob(absl::string_view job_id) {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(std::string(job_id));
  if (it == jobs_.end()) return std::nullopt;
  JobAssembler assembler;
  Add(it->first, it->second, assembler);
  std::vector<StoredJob> one = assembler.Finish();
  if (one.empty()) return std::nullopt;
  return std::move(one.front());
}

absl::StatusOr<std::optional<v1::Job>> InMemoryJobStore::LoadJobHeader(absl::string_view job_id) {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(std::string(job_id));
  if (it == jobs_.end()) return std::nullopt;
  return it->second.job;
}

absl::StatusOr<std::vector<StoredReport>> InMemoryJobStore::LoadReports(absl::string_view job_id) {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(std::string(job_id));
  if (it == jobs_.end()) return std::vector<StoredReport>();
  return it->second.reports;
}

}  // namespace moecap::coordinator
