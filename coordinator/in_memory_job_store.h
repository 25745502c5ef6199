// A JobStore in memory, for tests (and a coordinator started without a database file).
#ifndef MOECAP_COORDINATOR_IN_MEMORY_JOB_STORE_H_
#define MOECAP_COORDINATOR_IN_MEMORY_JOB_STORE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/job_store.h"

namespace moecap::coordinator {

// Thread-safe.
class InMemoryJobStore final : public JobStore {
 public:
  absl::Status ApplyAll(absl::Span<const JobWrite> writes) override;
  absl::StatusOr<std::vector<StoredJob>> LoadJobs() override;
  absl::StatusOr<std::optional<StoredJob>> LoadJob(absl::string_view job_id) override;
  absl::StatusOr<std::optional<v1::Job>> LoadJobHeader(absl::string_view job_id) override;
  absl::StatusOr<std::vector<StoredReport>> LoadReports(absl::string_view job_id) override;

 private:
  struct Rows {
    int64_t seq = 0;
    v1::Job job;
    std::map<int32_t, v1::Point> points;
    std::vector<StoredTransition> transitions;
    std::vector<StoredReport> reports;
    std::map<int32_t, v1::PointResult> results;
  };
  static void Add(const std::string& id, const Rows& rows, JobAssembler& assembler);

  absl::Mutex mu_;
  std::map<std::string, Rows> jobs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_IN_MEMORY_JOB_STORE_H_
