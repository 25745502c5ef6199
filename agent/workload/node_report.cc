// NodeReport assembly.
#include "agent/workload/node_report.h"

#include <set>

#include "google/protobuf/util/time_util.h"

namespace moecap {

v1::NodeReport BuildNodeReport(const std::vector<v1::RankReport>& ranks, const NodeRun& run,
                               bool ranks_included) {
  using google::protobuf::util::TimeUtil;
  v1::NodeReport node;
  node.set_job_id(run.job_id);
  node.set_point_index(run.point_index);
  node.set_attempt(run.attempt);
  node.set_agent_id(run.agent_id);
  node.set_hostname(run.hostname);
  std::set<int> used;
  for (const v1::RankReport& rank : ranks) {
    used.insert(rank.device_index());
    if (ranks_included) *node.add_ranks() = rank;
  }
  for (const v1::Device& device : run.devices) {
    if (used.count(device.index()) > 0) *node.add_devices() = device;
  }
  *node.mutable_start_time() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(run.start));
  *node.mutable_end_time() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(run.end));
  node.mutable_environment()->insert(run.environment.begin(), run.environment.end());
  return node;
}

}  // namespace moecap
