// Validity flags and their reasons.
#include "common/validity.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace moecap {
namespace {
void AddOnce(std::vector<std::string>& lines, std::string line) {
  if (std::find(lines.begin(), lines.end(), line) == lines.end()) lines.push_back(std::move(line));
}
}  // namespace

void Validity::Invalidate(std::string reason) {
  valid = false;
  AddOnce(reasons, std::move(reason));
}

void Validity::Estimate(std::string assumption) {
  estimated = true;
  AddOnce(assumptions, std::move(assumption));
}

void Validity::Merge(const Validity& other) {
  valid = valid && other.valid;
  estimated = estimated || other.estimated;
  for (const std::string& r : other.reasons) AddOnce(reasons, r);
  for (const std::string& a : other.assumptions) AddOnce(assumptions, a);
}

void CheckUtilization(absl::string_view what, double utilization, Validity* validity) {
  if (!(utilization > 1.0)) return;
  const std::string causes =
      utilization >= 20
          ? "a time in the wrong unit (milliseconds read as seconds?), too few devices counted "
            "(--gpus), the wrong hardware, or a pass counted twice"
          : "too few devices counted (--gpus), the wrong hardware or peaks, a pass counted twice, "
            "or a time in the wrong unit";
  validity->Invalidate(absl::StrFormat(
      "%s %.1f%% is over 100%%: the measured time is %.3gx under the roofline time, which the "
      "hardware rules out; likely %s",
      what, utilization * 100, utilization, causes));
}

nlohmann::json ValidityJson(const Validity& v) {
  return {{"valid", v.valid},
          {"estimated", v.estimated},
          {"reasons", v.reasons},
          {"assumptions", v.assumptions}};
}

void AddValidityJson(const Validity& v, nlohmann::json& object) {
  object["valid"] = v.valid;
  object["estimated"] = v.estimated;
  object["reasons"] = v.reasons;
  object["assumptions"] = v.assumptions;
}

}  // namespace moecap
