// The agents the coordinator knows: registrations with their hardware inventory, leases renewed
// by heartbeats, and which job holds each agent. ExpireLeases marks agents whose lease ran out
// LOST; listeners (the JobManager) then fail the work those agents held.
//
// An agent that comes back (after LOST, after a restart, or reconnecting with its previous id)
// registers again: it keeps its id, gets a new incarnation, and starts IDLE with no job, so it can
// never hold two ranks of one attempt nor have its old reports counted twice.
//
// Thread-safe. Listeners run on the caller's thread after the registry's lock is released, so
// they may call back into the registry.
#ifndef MOECAP_COORDINATOR_AGENT_REGISTRY_H_
#define MOECAP_COORDINATOR_AGENT_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "moecap/v1/agent.pb.h"

namespace moecap::coordinator {

struct AgentRegistryOptions {
  absl::Duration lease = absl::Seconds(10);
  // Suggested to agents: heartbeat this often (a third of the lease survives two lost beats).
  double heartbeat_fraction = 1.0 / 3.0;
};

// What the JobManager must know when an agent stops holding its work.
struct AgentLoss {
  std::string agent_id;
  std::string agent_name;
  std::string held_job_id;  // empty when it held none
  std::string reason;       // "lease expired ...", "deregistered: ...", "re-registered ..."
};

struct Registration {
  std::string agent_id;
  int64_t incarnation = 0;
  absl::Time lease_deadline;
  absl::Duration lease;
  absl::Duration heartbeat_interval;
};

// An agent as the scheduler sees it.
struct AgentView {
  std::string agent_id;
  int64_t incarnation = 0;
  int64_t order = 0;  // registration order, for stable placement
  v1::AgentInfo info;
  v1::AgentState state = v1::AGENT_STATE_UNSPECIFIED;
  std::string held_job_id;  // the job it runs or is stopping
  bool releasing = false;   // its job was stopped; waits for the agent to say it is idle
};

class AgentRegistry {
 public:
  using LossListener = std::function<void(const AgentLoss&)>;

  AgentRegistry(const Clock& clock, AgentRegistryOptions options);
  AgentRegistry(const AgentRegistry&) = delete;
  AgentRegistry& operator=(const AgentRegistry&) = delete;

  // Called for every agent that loses its work (lease expiry, deregistration, re-registration
  // while holding a job). Add listeners before serving.
  void AddLossListener(LossListener listener);

  // Registers an agent (see the file comment). InvalidArgument for a malformed AgentInfo (no
  // name or hostname, backend not cpu/cuda, no device); AlreadyExists when another live agent on
  // another host has the same name.
  absl::StatusOr<Registration> Register(const v1::AgentInfo& info,
                                        absl::string_view previous_agent_id,
                                        absl::string_view peer);

  // Renews the lease. NotFound for an unknown, LOST or GONE agent (it must register again).
  // `state` DRAINING makes the agent take no new job.
  absl::StatusOr<absl::Time> Heartbeat(absl::string_view agent_id, v1::AgentState state,
                                       const v1::ResourceUsage& usage);

  // Ends the agent's lease now (state GONE). NotFound for an unknown agent.
  absl::Status Deregister(absl::string_view agent_id, absl::string_view reason);

  // Marks every live agent whose lease deadline is before `now` LOST. Returns their number.
  int ExpireLeases(absl::Time now);

  // NotFound unless the agent is registered and its lease is current (IDLE, BUSY or DRAINING).
  absl::Status CheckLive(absl::string_view agent_id) const;

  // Job holding. Hold: the agent must be IDLE and unheld (FailedPrecondition otherwise); it
  // becomes BUSY. Release: back to IDLE now (no-op unless `job_id` holds it). BeginRelease: the
  // job was stopped; the agent stays BUSY, unavailable, until FinishRelease (the agent said it
  // stopped) or until it is lost.
  absl::Status Hold(absl::string_view agent_id, absl::string_view job_id, int32_t point_index);
  void SetCurrentPoint(absl::string_view agent_id, absl::string_view job_id, int32_t point_index);
  void Release(absl::string_view agent_id, absl::string_view job_id);
  void BeginRelease(absl::string_view agent_id, absl::string_view job_id);
  void FinishRelease(absl::string_view agent_id, absl::string_view job_id);

  std::optional<AgentView> Find(absl::string_view agent_id) const;
  // What a heartbeat needs about the agent's job, without copying its description (Find copies
  // the whole AgentInfo): nullopt for an unknown agent.
  struct HoldState {
    std::string held_job_id;
    bool releasing = false;
  };
  std::optional<HoldState> HoldOf(absl::string_view agent_id) const;
  // Grows on every change that can make an agent placeable or not (registration, loss,
  // deregistration, hold, release, DRAINING <-> IDLE), so the scheduler can skip a pass when
  // nothing changed.
  int64_t version() const {
    absl::MutexLock lock(&mu_);
    return version_;
  }
  // Live agents (IDLE, BUSY, DRAINING), in registration order.
  std::vector<AgentView> LiveAgents() const;
  // For ListAgents: every agent in `states` (empty: all but GONE), in registration order.
  std::vector<v1::Agent> List(const std::vector<v1::AgentState>& states) const;
  // Agents by state (every state present, possibly 0), for metrics.
  std::map<v1::AgentState, int> CountByState() const;
  // Name and whether the lease is current, for the moecap_agent_up series.
  std::vector<std::pair<std::string, bool>> NamesAndLiveness() const;

  absl::Duration lease() const { return options_.lease; }

 private:
  struct Record {
    v1::Agent agent;
    int64_t incarnation = 0;
    int64_t order = 0;
    std::string held_job_id;
    bool releasing = false;
    absl::Time lease_deadline;
  };

  static bool IsLive(v1::AgentState s) {
    return s == v1::AGENT_STATE_IDLE || s == v1::AGENT_STATE_BUSY || s == v1::AGENT_STATE_DRAINING;
  }
  void Notify(const std::vector<AgentLoss>& losses) const;
  AgentView ViewOf(const Record& r) const;

  const Clock& clock_;
  const AgentRegistryOptions options_;
  mutable absl::Mutex mu_;
  std::map<std::string, Record> agents_ ABSL_GUARDED_BY(mu_);  // by id
  // Ids by agent name (in id order, as agents_ iterates), so Register need not scan every agent.
  std::map<std::string, std::set<std::string>> ids_by_name_ ABSL_GUARDED_BY(mu_);
  int64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<LossListener> listeners_;  // set before serving, then read-only
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_AGENT_REGISTRY_H_
