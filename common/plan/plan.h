// Benchmark plans: YAML -> moecap.v1.Plan, defaults, validation against the catalogs, and the
// expansion of sweeps into points. The schema and every default are documented in docs/plans.md.
//
// The coordinator (and `moecapctl run --local`) use them in this order:
//   ParsePlanYaml -> ValidatePlan -> ApplyPlanDefaults -> ExpandSweeps.
// All functions are pure: no I/O, no global state, thread-compatible.
#ifndef MOECAP_COMMON_PLAN_PLAN_H_
#define MOECAP_COMMON_PLAN_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/catalog.h"
#include "common/model.h"
#include "moecap/v1/plan.pb.h"

namespace moecap {

// A plan expands into at most this many points; more is an error (a mistyped sweep).
inline constexpr int64_t kMaxPlanPoints = 10000;

// Defaults (docs/plans.md lists the same table).
inline constexpr int64_t kDefaultPromptLen = 512;
inline constexpr int64_t kDefaultOutputLen = 256;
inline constexpr int32_t kDefaultWarmup = 3;
inline constexpr int32_t kDefaultIterations = 10;
inline constexpr uint64_t kDefaultSeed = 1;
inline constexpr double kDefaultZipfExponent = 1.0;
inline constexpr double kDefaultRendezvousSeconds = 60;
inline constexpr double kDefaultCollectiveSeconds = 60;
inline constexpr double kDefaultPointSeconds = 600;
inline constexpr double kDefaultUsdPerKwh = 0.15;

// Parses a plan written in YAML (the field names of proto/moecap/v1/plan.proto). Does not apply
// defaults or validate. Errors are InvalidArgument naming `origin` and the full field path:
//   "plan.yaml: field 'workload.batch_sizes[2]': expected an integer, got 'x'"
//   "plan.yaml: field 'workload.batchsize': unknown field (did you mean 'batch_sizes'?)"
//   "plan.yaml:4: YAML syntax error: ..."
// Besides the value names, dtypes take the spellings of ParseDtype ("bfloat16", "half", ...).
absl::StatusOr<v1::Plan> ParsePlanYaml(absl::string_view yaml, absl::string_view origin);

// The plan in YAML; ParsePlanYaml(PlanToYaml(p)) == p.
std::string PlanToYaml(const v1::Plan& plan);

// Fills every field left out with its default, in place. Idempotent. Does not consult the
// catalog (model names stay as written).
void ApplyPlanDefaults(v1::Plan* plan);

// Checks a plan (with or without defaults applied: absent fields take theirs) against the
// catalog. The first problem is returned as InvalidArgument "field 'PATH': REASON" (NotFound for
// an unknown model or hardware, with the nearest names), prefixed with "ORIGIN: " when `origin`
// is given. Does not check that the plan fits in memory (the workload does).
absl::Status ValidatePlan(const v1::Plan& plan, const Catalog& catalog,
                          absl::string_view origin = "");

// The dtypes a backend's workload engine runs, one rule for the plan validator and the agent: the
// CPU engine (OpenBLAS) and the GPU engine (cuBLAS) run fp32 and bf16; BACKEND_ANY what both run.
// InvalidArgument naming the dtype, the backend and what to pass instead otherwise. (Whether this
// host's OpenBLAS has bf16 is the agent's own runtime check on top.)
absl::Status CheckBackendRunsDtype(v1::Backend backend, v1::Dtype dtype);

// The model a plan runs: model_override when given, else the catalog entry of `model`.
absl::StatusOr<ModelSpec> ResolvePlanModel(const v1::Plan& plan, const Catalog& catalog);

// The points of a plan: the cartesian product of its sweep axes, in the order the axes are given
// (the first varies slowest), with workload.batch_sizes as the last axis unless a sweep gives
// batch sizes. Each point has every default applied and its parameters (one per axis, batch_size
// always). The model is named as written; PointWorkload.model_spec is set only from
// model_override (the overload with a catalog resolves it). More than kMaxPlanPoints points, or
// an empty axis, is InvalidArgument. Expects a plan that ValidatePlan accepts.
absl::StatusOr<std::vector<v1::PlanPoint>> ExpandSweeps(const v1::Plan& plan);
// The same, with the model resolved in the catalog: PointWorkload.model is the canonical id and
// model_spec the full model.
absl::StatusOr<std::vector<v1::PlanPoint>> ExpandSweeps(const v1::Plan& plan,
                                                        const Catalog& catalog);

// The number of points ExpandSweeps would give (saturating at kMaxPlanPoints + 1).
int64_t CountPlanPoints(const v1::Plan& plan);

// Text of a routing for tables and labels: "gate", "uniform", "zipf(1.2)", "histogram".
std::string RoutingName(const v1::Routing& routing);

}  // namespace moecap

#endif  // MOECAP_COMMON_PLAN_PLAN_H_
