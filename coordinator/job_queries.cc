// The read side of the JobService (see job_queries.h).
#include "coordinator/job_queries.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace moecap::coordinator {

v1::Job JobInView(const v1::Job& job, v1::JobView view) {
  v1::Job out = job;
  if (view != v1::JOB_VIEW_FULL) {
    out.clear_plan();
    out.clear_plan_yaml();
    out.clear_points();
    out.clear_history();
  }
  return out;
}

v1::GetResultsResponse ResultsOf(const v1::Job& job) {
  v1::GetResultsResponse r;
  r.set_job_id(job.id());
  r.set_job_name(job.name());
  r.set_state(job.state());
  r.set_model(job.model());
  *r.mutable_plan() = job.plan();
  for (const v1::Point& p : job.points()) {
    if (p.has_result()) *r.add_results() = p.result();
  }
  for (const auto& [k, v] : job.labels()) (*r.mutable_labels())[k] = v;
  if (job.has_placement()) *r.mutable_placement() = job.placement();
  return r;
}

absl::StatusOr<JobPage> ParseJobPage(const v1::ListJobsRequest& request) {
  if (request.page_size() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("field 'page_size': must be >= 0, got ", request.page_size()));
  }
  JobPage page;
  page.page_size = request.page_size() == 0 ? 100 : std::min(request.page_size(), 1000);
  if (!request.page_token().empty() &&
      (!absl::SimpleAtoi(request.page_token(), &page.before) || page.before <= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("field 'page_token': '", request.page_token(), "' is not a page token"));
  }
  return page;
}

bool MatchesFilters(const v1::Job& job, const v1::ListJobsRequest& request) {
  if (request.states_size() > 0 && std::find(request.states().begin(), request.states().end(),
                                             job.state()) == request.states().end()) {
    return false;
  }
  for (const auto& [k, v] : request.labels()) {
    auto l = job.labels().find(k);
    if (l == job.labels().end() || l->second != v) return false;
  }
  return true;
}

}  // namespace moecap::coordinator
