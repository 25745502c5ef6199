// Persistence of jobs behind an interface (Ray's GCS table storage): SqliteJobStore keeps every
// job, point, state change, report and result in a file; InMemoryJobStore serves tests.
//
// The JobManager describes each change as one JobWrite, applied atomically (one transaction), so
// a crash leaves a job either before or after a change, never half-way.
#ifndef MOECAP_COORDINATOR_JOB_STORE_H_
#define MOECAP_COORDINATOR_JOB_STORE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "moecap/v1/job.pb.h"
#include "moecap/v1/report.pb.h"

namespace moecap::coordinator {

enum class ReportKind { kRank = 1, kNode = 2, kFailure = 3, kProgress = 4 };

// A report as received (the request message, serialized), for audit and re-aggregation.
struct StoredReport {
  std::string job_id;
  int32_t point_index = 0;
  int32_t attempt = 0;
  std::string agent_id;
  int32_t rank = -1;  // kRank: the rank; else -1 (or the failing rank of a kFailure)
  ReportKind kind = ReportKind::kNode;
  absl::Time time;
  std::string payload;  // serialized RankReport, NodeReport or ReportFailureRequest
};

struct StoredTransition {
  int32_t point_index = -1;  // -1: the job's own state
  v1::StateTransition transition;
};

// One atomic change to one job.
struct JobWrite {
  std::string job_id;
  int64_t seq = 0;  // submission order (with `job`)
  // The job's fields without points and history (those travel separately); absent: unchanged.
  std::optional<v1::Job> job;
  std::vector<v1::Point> points;  // points whose fields changed, without history and result
  std::vector<StoredTransition> transitions;
  std::vector<StoredReport> reports;
  std::vector<v1::PointResult> results;

  bool empty() const {
    return !job.has_value() && points.empty() && transitions.empty() && reports.empty() &&
           results.empty();
  }
};

struct StoredJob {
  int64_t seq = 0;
  v1::Job job;  // assembled: fields, history, points with their history and results
};

class JobStore {
 public:
  virtual ~JobStore() = default;
  // Applies every part of every write, in order, or none (one transaction: several jobs
  // submitted together are committed at once). The first write of a job must carry `job`.
  virtual absl::Status ApplyAll(absl::Span<const JobWrite> writes) = 0;
  absl::Status Apply(const JobWrite& write) { return ApplyAll(absl::MakeConstSpan(&write, 1)); }
  // Every job, in submission order.
  virtual absl::StatusOr<std::vector<StoredJob>> LoadJobs() = 0;
  // One job, assembled as LoadJobs does; nullopt when the store has none of that id. The
  // JobManager pages finished jobs in with it.
  virtual absl::StatusOr<std::optional<StoredJob>> LoadJob(absl::string_view job_id) = 0;
  // A job's own row, as its last write left it: the job without points and history; nullopt
  // when the store has none of that id.
  virtual absl::StatusOr<std::optional<v1::Job>> LoadJobHeader(absl::string_view job_id) = 0;
  // The reports of a job, in arrival order.
  virtual absl::StatusOr<std::vector<StoredReport>> LoadReports(absl::string_view job_id) = 0;
};

// Reassembles stored rows into a job: shared by both stores so they cannot disagree.
class JobAssembler {
 public:
  void SetJob(int64_t seq, v1::Job job);
  void SetPoint(const std::string& job_id, v1::Point point);
  void AddTransition(const std::string& job_id, const StoredTransition& t);
  void SetResult(const std::string& job_id, v1::PointResult result);
  std::vector<StoredJob> Finish();

 private:
  struct Entry {
    int64_t seq = 0;
    v1::Job job;
    bool has_job = false;
    std::vector<v1::Point> points;  // by index
  };
  Entry& At(const std::string& job_id) { return entries_[job_id]; }
  static v1::Point& PointAt(Entry& e, int32_t index);
  std::map<std::string, Entry> entries_;
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_JOB_STORE_H_
