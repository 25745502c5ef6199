// The read side of the JobService, as pure functions over jobs: the BASIC and FULL views, a
// job's results, and ListJobs' page request and filters. The JobManager calls them under its
// lock; they hold no state.
#ifndef MOECAP_COORDINATOR_JOB_QUERIES_H_
#define MOECAP_COORDINATOR_JOB_QUERIES_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "moecap/v1/job.pb.h"
#include "moecap/v1/job_service.pb.h"

namespace moecap::coordinator {

// FULL: the job as stored; otherwise without its plan, points and history.
v1::Job JobInView(const v1::Job& job, v1::JobView view);

// The results of the job's points that have one, with the job's plan, labels and, while it is
// queued, its placement verdict.
v1::GetResultsResponse ResultsOf(const v1::Job& job);

// A ListJobs page: at most `page_size` jobs submitted before sequence number `before`, newest
// first. InvalidArgument naming the field for a negative size or a token that is not one.
struct JobPage {
  int page_size = 100;
  int64_t before = INT64_MAX;
};
absl::StatusOr<JobPage> ParseJobPage(const v1::ListJobsRequest& request);
// The request's state and label filters.
bool MatchesFilters(const v1::Job& job, const v1::ListJobsRequest& request);

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_JOB_QUERIES_H_
