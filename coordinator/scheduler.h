// Gang placement of queued jobs onto free agents: which jobs start now, on which agents and
// devices, and why the others wait. A pure policy over snapshots (no locks, no clock), so every
// rule is tested directly.
//
// The rule:
// - Order: higher priority first; FIFO (submission order) among equal priorities.
// - A job starts only when `nodes` free agents each offer `devices_per_node` matching devices
//   (backend, hardware catalog id when the plan names one, memory), all at once.
// - Backfill with an age limit: a job that cannot start lets the jobs behind it use the agents
//   it cannot use, for `backfill_window` after it was queued. After that it reserves: no job
//   behind it starts until it has started, so running jobs drain towards it and it cannot starve.
// - A job that could not fit even if every live agent were free (the cluster is too small for
//   it today) never reserves: it waits for agents to register, with that reason.
#ifndef MOECAP_COORDINATOR_SCHEDULER_H_
#define MOECAP_COORDINATOR_SCHEDULER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "moecap/v1/agent.pb.h"
#include "moecap/v1/common.pb.h"
#include "moecap/v1/job.pb.h"

namespace moecap::coordinator {

// What one job needs from each of its agents.
struct GangSpec {
  int32_t nodes = 1;
  int32_t devices_per_node = 1;
  v1::Backend backend = v1::BACKEND_ANY;
  std::string hardware;  // catalog id; empty: any
  uint64_t min_device_memory_bytes = 0;
};

struct QueuedJob {
  std::string job_id;
  int32_t priority = 0;
  int64_t seq = 0;          // submission order
  absl::Time queued_since;  // when it last entered the queue
  GangSpec spec;
};

struct SchedulableAgent {
  std::string agent_id;
  std::string name;
  v1::Backend backend = v1::BACKEND_UNSPECIFIED;
  std::vector<v1::Device> devices;
  bool free = false;  // idle, unheld, assignment stream open
};

struct NodePlacement {
  std::string agent_id;
  std::vector<int32_t> device_indices;  // devices_per_node of them
};

struct Placement {
  std::string job_id;
  v1::Backend backend = v1::BACKEND_UNSPECIFIED;  // the agents' backend
  std::vector<NodePlacement> nodes;               // node_rank order
};

struct ScheduleDecision {
  std::vector<Placement> placements;
  std::map<std::string, v1::PlacementVerdict> waits;  // every job not placed
};

struct SchedulerOptions {
  absl::Duration backfill_window = absl::Minutes(5);
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerOptions options) : options_(options) {}

  // `queue` in any order; `agents` in the order placement should prefer (registration order).
  ScheduleDecision Schedule(std::vector<QueuedJob> queue,
                            const std::vector<SchedulableAgent>& agents, absl::Time now) const;

  // The devices of `agent` that `spec` may use (for `backend`, a concrete backend).
  static std::vector<int32_t> MatchingDevices(const SchedulableAgent& agent, const GangSpec& spec,
                                              v1::Backend backend);
  // "3 cuda agents with 8 h100-sxm devices of >= 80 GiB each"
  static std::string Describe(const GangSpec& spec);

 private:
  const SchedulerOptions options_;
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_SCHEDULER_H_
