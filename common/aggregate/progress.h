// Where a point is when several reporters run it: the slowest one's Progress. The agent folds its
// ranks' records into one (agent/daemon/progress_tracker.h), the coordinator its agents' reports.
#ifndef MOECAP_COMMON_AGGREGATE_PROGRESS_H_
#define MOECAP_COMMON_AGGREGATE_PROGRESS_H_

#include <vector>

#include "moecap/v1/job.pb.h"

namespace moecap {

// The reporter furthest behind: fewest iterations done, then the earliest stage in the order a
// point passes them (SETUP, WARMUP, CHECK, MEASURE, REPORT; the enum's numbers are not that
// order). iterations_total is the largest reported, ranks_reporting the sum of the reports' (a
// report without one counts one). Empty input: an empty Progress.
v1::Progress SlowestProgress(const std::vector<v1::Progress>& reports);

}  // namespace moecap

#endif  // MOECAP_COMMON_AGGREGATE_PROGRESS_H_
