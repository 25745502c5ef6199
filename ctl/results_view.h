// Renders a job's results (GetResultsResponse) as the table, JSON or CSV that `moecapctl results`,
// `submit --wait` and `run --local` print: one row per point and phase, and the accuracy scores of
// the job's model at its points' precisions (the A of CAP, as `analyze` shows it).
#ifndef MOECAP_CTL_RESULTS_VIEW_H_
#define MOECAP_CTL_RESULTS_VIEW_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/plan/convert.h"
#include "ctl/accuracy_commands.h"
#include "ctl/command.h"
#include "moecap/v1/job_service.pb.h"

namespace moecap::ctl {

// Short lower-case names: "succeeded", "decode", "idle".
std::string JobStateName(v1::JobState state);
std::string PhaseName(v1::Phase phase);
std::string AgentStateName(v1::AgentState state);

// The precision of each of `results.results()`, in their order: its point's workload dtype, from
// the job's plan expanded as the coordinator expanded it (a sweep's dtype axis sets it per point;
// the defaults give it when the plan names none). A point index the plan lacks is an error.
absl::StatusOr<std::vector<Dtype>> ResultPrecisions(const v1::GetResultsResponse& results);

// The scores of the job's model in the catalog directories, looked up as `analyze` looks them up
// (AccuracyOfRun): one RunAccuracy per distinct precision of the points that have a result, in
// the order of the points; none when no point has one.
absl::StatusOr<std::vector<RunAccuracy>> AccuracyOfResults(const GlobalOptions& global,
                                                           const v1::GetResultsResponse& results);

// `accuracy` as AccuracyOfResults gives it. The table ends with AccuracyLines of each; JSON has
// the key "accuracy" beside the response's (AccuracyJson's scores of every precision, each score
// naming its "precision"; null when there is none); the CSV rows carry no scores.
absl::Status PrintResults(const v1::GetResultsResponse& results,
                          const std::vector<RunAccuracy>& accuracy, OutputFormat format,
                          bool explain, std::ostream& out);

// What `results`, `submit --wait` and `run --local` print: AccuracyOfResults, then PrintResults.
// When the look-up fails (a malformed accuracy entry), the results are printed without scores
// and its error is returned after them: a job's results are never lost to the accuracy store.
absl::Status PrintJobResults(const GlobalOptions& global, const v1::GetResultsResponse& results,
                             OutputFormat format, bool explain, std::ostream& out);

using ::moecap::ProtoToJson;  // common/plan/convert.h

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_RESULTS_VIEW_H_
