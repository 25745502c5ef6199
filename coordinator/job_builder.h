// Plan intake: a submitted plan (message or YAML) -> a validated job with its points, ready to
// queue. Pure; the JobManager gives it an id and a state.
#ifndef MOECAP_COORDINATOR_JOB_BUILDER_H_
#define MOECAP_COORDINATOR_JOB_BUILDER_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/catalog.h"
#include "coordinator/scheduler.h"
#include "moecap/v1/job.pb.h"
#include "moecap/v1/plan.pb.h"

namespace moecap::coordinator {

struct PlanSubmission {
  std::optional<v1::Plan> plan;  // one of plan or plan_yaml
  std::string plan_yaml;
  std::string origin = "plan";  // names the plan in errors
};

// Parses (YAML), validates, applies defaults and expands the sweeps. Errors name the field path:
// InvalidArgument for a malformed plan, NotFound for an unknown model or hardware,
// FailedPrecondition for a plan that no agent could ever run (e.g. more device memory than its
// required hardware has). The job has its plan, points (state QUEUED), name, model, labels and
// priority; no id, state or times.
absl::StatusOr<v1::Job> BuildJob(const PlanSubmission& submission, const Catalog& catalog);

// What the job needs from its agents (plan with defaults applied).
GangSpec GangSpecOf(const v1::Plan& plan, const Catalog& catalog);

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_JOB_BUILDER_H_
