// Where this agent's ranks are in a point, read from the lines the harness logs (RankContext
// progress: "weights ready", "<phase> batch B: check ...", "<phase> batch B: measured"), which the
// worker writes to its rank log as "rank R: <line>". The result is the slowest rank's position as
// the API's Progress (stage, phase, iterations done of total).
#ifndef MOECAP_AGENT_DAEMON_PROGRESS_TRACKER_H_
#define MOECAP_AGENT_DAEMON_PROGRESS_TRACKER_H_

#include <map>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/workload/config.h"
#include "moecap/v1/job.pb.h"

namespace moecap::agentd {

class ProgressTracker {
 public:
  // `ranks`: this agent's global ranks; `config`: the point they run.
  ProgressTracker(const std::vector<int>& ranks, const WorkloadConfig& config);

  // Everything rank `rank` has logged so far (the whole log: the tracker keeps no offsets).
  void ObserveLog(int rank, absl::string_view log);

  // The slowest rank: SETUP until every rank has its weights (it has joined the communicator
  // by then); CHECK until its check of the current phase is logged (when the plan checks); then
  // MEASURE; REPORT once every phase is measured. iterations_done counts measured phases'
  // iterations (the harness logs no finer steps).
  v1::Progress Current() const;

 private:
  struct RankState {
    bool seen = false;
    bool weights_ready = false;
    int checked = 0;   // phases whose check is logged
    int measured = 0;  // phases measured
  };
  std::map<int, RankState> ranks_;
  std::vector<ServingPhase> phases_;
  int iterations_ = 0;
  bool check_ = false;
};

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_PROGRESS_TRACKER_H_
