// METRICS.md v2 "Validity": a sparse utilisation above 100 % means the measured time is under the
// roofline time, which the hardware rules out; such a figure is marked invalid with its likely
// cause. A figure built on an estimate (a rebuilt context, a batch from Little's law) is marked
// estimated with its assumptions. Every output (table, JSON, CSV, plot) carries both.
#ifndef MOECAP_COMMON_VALIDITY_H_
#define MOECAP_COMMON_VALIDITY_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace moecap {

struct Validity {
  bool valid = true;
  bool estimated = false;
  std::vector<std::string> reasons;      // why the figure is invalid, one line each
  std::vector<std::string> assumptions;  // what an estimate assumed, one line each

  void Invalidate(std::string reason);
  void Estimate(std::string assumption);
  // Adds `other`'s flags and lines (each line once).
  void Merge(const Validity& other);
};

// Marks `validity` invalid when `utilization` (a fraction) exceeds 1, naming `what` ("decode
// S-MBU") and the likely causes, ordered by how far over the roofline it is: far over (>= 20×)
// points at a time in the wrong unit first, a little over at the device count, the hardware and a
// pass counted twice.
void CheckUtilization(absl::string_view what, double utilization, Validity* validity);

// {"valid": true, "estimated": false, "reasons": [...], "assumptions": [...]}.
nlohmann::json ValidityJson(const Validity& validity);
// Copies the four keys of ValidityJson into `object`.
void AddValidityJson(const Validity& validity, nlohmann::json& object);

}  // namespace moecap

#endif  // MOECAP_COMMON_VALIDITY_H_
