// What one agent (or moecap-bench on one host) ran for one point, as the API's NodeReport: its
// ranks' reports, the devices they used with the peaks that are the denominators, the run's
// times and the environment. Pure: the daemon and moecap-bench both build theirs here and hand
// them to the one aggregator (common/aggregate).
#ifndef MOECAP_AGENT_WORKLOAD_NODE_REPORT_H_
#define MOECAP_AGENT_WORKLOAD_NODE_REPORT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "moecap/v1/report.pb.h"

namespace moecap {

struct NodeRun {
  std::string job_id;
  int point_index = 0;
  int attempt = 0;
  std::string agent_id;
  std::string hostname;
  // Every device the node has; those a rank ran on (RankReport.device_index) are reported.
  std::vector<v1::Device> devices;
  absl::Time start = absl::UnixEpoch();
  absl::Time end = absl::UnixEpoch();
  std::map<std::string, std::string> environment;
};

// `ranks` are this node's ranks of the point (ranks_included: whether they travel inside the
// node report, or were already delivered one by one and are left out).
v1::NodeReport BuildNodeReport(const std::vector<v1::RankReport>& ranks, const NodeRun& run,
                               bool ranks_included = true);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_NODE_REPORT_H_
