// Reassembly of stored job rows (shared by the stores).
#include "coordinator/job_store.h"

#include <algorithm>
#include <utility>

namespace moecap::coordinator {

void JobAssembler::SetJob(int64_t seq, v1::Job job) {
  Entry& e = At(job.id());
  e.seq = seq;
  job.clear_points();
  job.clear_history();
  job.mutable_history()->Swap(e.job.mutable_history());  // transitions read before the row
  e.job = std::move(job);
  e.has_job = true;
}

v1::Point& JobAssembler::PointAt(Entry& e, int32_t index) {
  if (e.points.size() <= static_cast<size_t>(index)) e.points.resize(index + 1);
  return e.points[index];
}

void JobAssembler::SetPoint(const std::string& job_id, v1::Point point) {
  v1::Point& p = PointAt(At(job_id), point.index());
  // Keep what arrived separately (history, result) whatever the row order.
  point.mutable_history()->Swap(p.mutable_history());
  if (p.has_result()) point.mutable_result()->Swap(p.mutable_result());
  p = std::move(point);
}

void JobAssembler::AddTransition(const std::string& job_id, const StoredTransition& t) {
  Entry& e = At(job_id);
  if (t.point_index < 0) {
    *e.job.add_history() = t.transition;
  } else {
    *PointAt(e, t.point_index).add_history() = t.transition;
  }
}

void JobAssembler::SetResult(const std::string& job_id, v1::PointResult result) {
  v1::Point& p = PointAt(At(job_id), result.point_index());
  *p.mutable_result() = std::move(result);
}

std::vector<StoredJob> JobAssembler::Finish() {
  std::vector<StoredJob> out;
  for (auto& [id, e] : entries_) {
    if (!e.has_job) continue;  // rows of a job whose header never made it: ignore
    StoredJob s;
    s.seq = e.seq;
    s.job = std::move(e.job);
    for (size_t i = 0; i < e.points.size(); ++i) {
      e.points[i].set_index(static_cast<int32_t>(i));
      *s.job.add_points() = std::move(e.points[i]);
    }
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(),
            [](const StoredJob& a, const StoredJob& b) { return a.seq < b.seq; });
  entries_.clear();
  return out;
}

}  // namespace moecap::coordinator
