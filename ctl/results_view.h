// Renders a job's results (GetResultsResponse) as the table, JSON or CSV that `moecapctl results`
// and `submit --wait` print: one row per point and phase.
#ifndef MOECAP_CTL_RESULTS_VIEW_H_
#define MOECAP_CTL_RESULTS_VIEW_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "common/plan/convert.h"
#include "ctl/command.h"
#include "moecap/v1/job_service.pb.h"

namespace moecap::ctl {

// Short lower-case names: "succeeded", "decode", "idle".
std::string JobStateName(v1::JobState state);
std::string PhaseName(v1::Phase phase);
std::string AgentStateName(v1::AgentState state);

absl::Status PrintResults(const v1::GetResultsResponse& results, OutputFormat format, bool explain,
                          std::ostream& out);

using ::moecap::ProtoToJson;  // common/plan/convert.h

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_RESULTS_VIEW_H_
