// Plan intake.
#include "coordinator/job_builder.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/plan/plan.h"
#include "common/status_macros.h"

namespace moecap::coordinator {

absl::StatusOr<v1::Job> BuildJob(const PlanSubmission& submission, const Catalog& catalog) {
  const std::string origin = submission.origin.empty() ? "plan" : submission.origin;
  v1::Plan plan;
  if (submission.plan.has_value()) {
    plan = *submission.plan;
  } else {
    if (submission.plan_yaml.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ": no plan given (set 'plan' or 'plan_yaml')"));
    }
    absl::StatusOr<v1::Plan> parsed = ParsePlanYaml(submission.plan_yaml, origin);
    if (!parsed.ok()) return parsed.status();
    plan = *std::move(parsed);
  }
  MOECAP_RETURN_IF_ERROR(ValidatePlan(plan, catalog, origin));
  ApplyPlanDefaults(&plan);
  if (!plan.hardware().hardware().empty() && plan.hardware().min_device_memory_bytes() > 0) {
    absl::StatusOr<const HardwareSpec*> hw = catalog.FindHardware(plan.hardware().hardware());
    if (hw.ok() &&
        static_cast<double>(plan.hardware().min_device_memory_bytes()) > (*hw)->memory_bytes) {
      return absl::FailedPreconditionError(absl::StrCat(
          origin, ": field 'hardware.min_device_memory_bytes': ",
          plan.hardware().min_device_memory_bytes(), " bytes is more than a ", (*hw)->name,
          " has (", (*hw)->memory_bytes, "): no agent can ever run this plan"));
    }
  }
  absl::StatusOr<std::vector<v1::PlanPoint>> points = ExpandSweeps(plan, catalog);
  if (!points.ok()) {
    return absl::Status(points.status().code(),
                        absl::StrCat(origin, ": ", points.status().message()));
  }
  v1::Job job;
  job.set_name(plan.name());
  job.set_priority(plan.priority());
  for (const auto& [k, v] : plan.labels()) (*job.mutable_labels())[k] = v;
  if (!submission.plan.has_value()) job.set_plan_yaml(submission.plan_yaml);
  for (v1::PlanPoint& p : *points) {
    v1::Point* point = job.add_points();
    point->set_index(p.index());
    *point->mutable_parameters() = std::move(*p.mutable_parameters());
    *point->mutable_workload() = std::move(*p.mutable_workload());
    point->set_state(v1::JOB_STATE_QUEUED);
  }
  job.set_points_total(job.points_size());
  if (job.points_size() > 0) job.set_model(job.points(0).workload().model());
  *job.mutable_plan() = std::move(plan);
  return job;
}

GangSpec GangSpecOf(const v1::Plan& plan, const Catalog& catalog) {
  GangSpec spec;
  spec.nodes = plan.parallelism().nodes();
  spec.devices_per_node = plan.parallelism().devices_per_node();
  spec.backend = plan.hardware().backend();
  spec.hardware = plan.hardware().hardware();
  if (!spec.hardware.empty()) {
    if (absl::StatusOr<const HardwareSpec*> hw = catalog.FindHardware(spec.hardware); hw.ok()) {
      spec.hardware = (*hw)->name;  // agents report catalog ids
    }
  }
  spec.min_device_memory_bytes = plan.hardware().min_device_memory_bytes();
  return spec;
}

}  // namespace moecap::coordinator
