// Fuzzes the plan pipeline the coordinator runs on every submission: YAML -> ParsePlanYaml ->
// ValidatePlan (built-in catalog) -> ExpandSweeps. Besides crashes, leaks and sanitizer findings
// it checks: every rejection is InvalidArgument (or NotFound for an unknown catalog name) with a
// message that names the origin (and, after parsing, the field path); an accepted plan expands
// into CountPlanPoints points (at most kMaxPlanPoints), and it and its defaulted form survive
// PlanToYaml -> ParsePlanYaml unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/catalog.h"
#include "common/plan/plan.h"
#include "google/protobuf/util/message_differencer.h"

namespace {

using namespace moecap;  // NOLINT: a fuzz target, not a library

void Check(bool condition) {
  if (!condition) std::abort();
}

// The plan reads back from its own YAML as the same message.
void CheckRoundTrip(const v1::Plan& plan) {
  absl::StatusOr<v1::Plan> again = ParsePlanYaml(PlanToYaml(plan), "again.yaml");
  Check(again.ok());
  Check(google::protobuf::util::MessageDifferencer::Equals(plan, *again));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Catalog* const catalog = new Catalog(*Catalog::Builtin());
  const std::string text(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<v1::Plan> plan = ParsePlanYaml(text, "fuzz.yaml");
  if (!plan.ok()) {
    Check(plan.status().code() == absl::StatusCode::kInvalidArgument);
    Check(absl::StartsWith(plan.status().message(), "fuzz.yaml"));
    Check(plan.status().message().size() > std::string("fuzz.yaml: ").size());
    return 0;
  }
  // Whatever parses is data the coordinator would store and send back: it must round-trip even
  // when validation then refuses it.
  CheckRoundTrip(*plan);

  const absl::Status valid = ValidatePlan(*plan, *catalog, "fuzz.yaml");
  if (!valid.ok()) {
    Check(valid.code() == absl::StatusCode::kInvalidArgument ||
          valid.code() == absl::StatusCode::kNotFound);
    Check(absl::StartsWith(valid.message(), "fuzz.yaml: field '"));
    return 0;
  }

  const int64_t count = CountPlanPoints(*plan);
  Check(count >= 1 && count <= kMaxPlanPoints);
  absl::StatusOr<std::vector<v1::PlanPoint>> points = ExpandSweeps(*plan, *catalog);
  Check(points.ok());
  Check(static_cast<int64_t>(points->size()) == count);
  for (size_t i = 0; i < points->size(); ++i) {
    const v1::PlanPoint& point = (*points)[i];
    Check(point.index() == static_cast<int32_t>(i));
    Check(point.workload().batch_size() >= 1);
    Check(point.workload().iterations() >= 1);
    Check(point.workload().has_model_spec());
  }

  v1::Plan defaulted = *plan;
  ApplyPlanDefaults(&defaulted);
  CheckRoundTrip(defaulted);
  Check(ValidatePlan(defaulted, *catalog).ok());
  v1::Plan twice = defaulted;
  ApplyPlanDefaults(&twice);
  Check(google::protobuf::util::MessageDifferencer::Equals(defaulted, twice));
  return 0;
}
