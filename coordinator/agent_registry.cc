// Agent registrations, leases and job holding.
#include "coordinator/agent_registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "coordinator/proto_util.h"

namespace moecap::coordinator {
namespace {

absl::Status CheckInfo(const v1::AgentInfo& info) {
  if (info.name().empty()) return absl::InvalidArgumentError("field 'agent.name': empty");
  if (info.hostname().empty()) return absl::InvalidArgumentError("field 'agent.hostname': empty");
  if (info.data_plane_host().empty()) {
    return absl::InvalidArgumentError("field 'agent.data_plane_host': empty");
  }
  if (info.backend() != v1::BACKEND_CPU && info.backend() != v1::BACKEND_CUDA) {
    return absl::InvalidArgumentError(absl::StrCat(
        "field 'agent.backend': must be cpu or cuda, got ", v1::Backend_Name(info.backend())));
  }
  if (info.inventory().devices_size() == 0) {
    return absl::InvalidArgumentError("field 'agent.inventory.devices': an agent needs a device");
  }
  if (info.data_plane_port_min() < 0 || info.data_plane_port_max() > 65535 ||
      info.data_plane_port_min() > info.data_plane_port_max()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fields 'agent.data_plane_port_min/max': not a port range: ", info.data_plane_port_min(),
        "..", info.data_plane_port_max()));
  }
  return absl::OkStatus();
}

}  // namespace

AgentRegistry::AgentRegistry(const Clock& clock, AgentRegistryOptions options)
    : clock_(clock), options_(options) {
  // Ids carry a per-process prefix so that an id from before a coordinator restart is never
  // handed to another agent.
  next_id_ = (absl::ToUnixNanos(clock_.Now()) / 1000) % 0xffff * 100000 + 1;
}

void AgentRegistry::AddLossListener(LossListener listener) {
  listeners_.push_back(std::move(listener));
}

void AgentRegistry::Notify(const std::vector<AgentLoss>& losses) const {
  for (const AgentLoss& loss : losses) {
    for (const LossListener& l : listeners_) l(loss);
  }
}

absl::StatusOr<Registration> AgentRegistry::Register(const v1::AgentInfo& info,
                                                     absl::string_view previous_agent_id,
                                                     absl::string_view peer) {
  MOECAP_RETURN_IF_ERROR(CheckInfo(info));
  const absl::Time now = clock_.Now();
  std::vector<AgentLoss> losses;
  Registration reg;
  {
    absl::MutexLock lock(&mu_);
    Record* record = nullptr;
    if (!previous_agent_id.empty()) {
      auto it = agents_.find(std::string(previous_agent_id));
      if (it != agents_.end() && it->second.agent.info().hostname() == info.hostname()) {
        record = &it->second;
      }
    }
    // A live agent of the same name: the same host restarting (take its place) or a clash.
    // (A copy: the loop does not change names, but Register below may move this record's.)
    const std::set<std::string> same_name = ids_by_name_[info.name()];
    for (const std::string& id : same_name) {
      Record& r = agents_.at(id);
      if (&r == record || r.agent.info().name() != info.name()) continue;
      if (!IsLive(r.agent.state())) {
        if (record == nullptr) record = &r;  // a lost or gone agent of that name comes back
        continue;
      }
      if (r.agent.info().hostname() != info.hostname()) {
        return absl::AlreadyExistsError(
            absl::StrCat("agent name '", info.name(), "' is taken by the live agent ", id,
                         " on host '", r.agent.info().hostname(), "'; give another --name"));
      }
      if (record == nullptr) {
        record = &r;
      } else {
        // Two records for one host and name: retire the other one.
        if (!r.held_job_id.empty()) {
          losses.push_back({id, info.name(), r.held_job_id, "agent registered again"});
        }
        r.agent.set_state(v1::AGENT_STATE_GONE);
        r.agent.set_state_reason("replaced by a new registration of the same agent");
        r.held_job_id.clear();
      }
    }
    if (record == nullptr) {
      std::string id = absl::StrFormat("agent-%d", next_id_++);
      record = &agents_[id];
      record->agent.set_id(std::move(id));
      record->order = next_order_++;
    }
    if (!record->held_job_id.empty()) {
      losses.push_back({record->agent.id(), info.name(), record->held_job_id,
                        "agent registered again (it restarted or reconnected): its work is lost"});
    }
    if (record->agent.info().name() != info.name()) {
      if (auto old = ids_by_name_.find(record->agent.info().name()); old != ids_by_name_.end()) {
        old->second.erase(record->agent.id());
        if (old->second.empty()) ids_by_name_.erase(old);
      }
      ids_by_name_[info.name()].insert(record->agent.id());
    }
    ++version_;
    ++record->incarnation;
    record->held_job_id.clear();
    record->releasing = false;
    record->lease_deadline = now + options_.lease;
    v1::Agent& a = record->agent;
    *a.mutable_info() = info;
    a.set_state(v1::AGENT_STATE_IDLE);
    a.clear_state_reason();
    *a.mutable_registered_time() = ToProtoTime(now);
    *a.mutable_last_heartbeat_time() = ToProtoTime(now);
    *a.mutable_lease_deadline() = ToProtoTime(record->lease_deadline);
    a.clear_current_job_id();
    a.set_current_point_index(0);
    a.clear_usage();
    a.set_peer(std::string(peer));
    reg.agent_id = a.id();
    reg.incarnation = record->incarnation;
    reg.lease_deadline = record->lease_deadline;
    reg.lease = options_.lease;
    reg.heartbeat_interval = options_.lease * options_.heartbeat_fraction;
  }
  Notify(losses);
  return reg;
}

absl::StatusOr<absl::Time> AgentRegistry::Heartbeat(absl::string_view agent_id,
                                                    v1::AgentState state,
                                                    const v1::ResourceUsage& usage) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(std::string(agent_id));
  if (it == agents_.end() || !IsLive(it->second.agent.state())) {
    return absl::NotFoundError(absl::StrCat("agent '", agent_id, "' is not registered",
                                            it == agents_.end() ? "" : " (its lease ended)",
                                            "; register again"));
  }
  Record& r = it->second;
  r.lease_deadline = now + options_.lease;
  *r.agent.mutable_last_heartbeat_time() = ToProtoTime(now);
  *r.agent.mutable_lease_deadline() = ToProtoTime(r.lease_deadline);
  *r.agent.mutable_usage() = usage;
  if (r.held_job_id.empty()) {
    const v1::AgentState next =
        state == v1::AGENT_STATE_DRAINING ? v1::AGENT_STATE_DRAINING : v1::AGENT_STATE_IDLE;
    if (r.agent.state() != next) ++version_;
    r.agent.set_state(next);
  }
  return r.lease_deadline;
}

absl::Status AgentRegistry::Deregister(absl::string_view agent_id, absl::string_view reason) {
  std::vector<AgentLoss> losses;
  {
    absl::MutexLock lock(&mu_);
    auto it = agents_.find(std::string(agent_id));
    if (it == agents_.end()) {
      return absl::NotFoundError(absl::StrCat("agent '", agent_id, "' is not registered"));
    }
    Record& r = it->second;
    if (!r.held_job_id.empty() && IsLive(r.agent.state())) {
      losses.push_back({r.agent.id(), r.agent.info().name(), r.held_job_id,
                        absl::StrCat("agent '", r.agent.info().name(), "' deregistered: ",
                                     reason.empty() ? "shutting down" : reason)});
    }
    ++version_;
    r.held_job_id.clear();
    r.releasing = false;
    r.agent.set_state(v1::AGENT_STATE_GONE);
    r.agent.set_state_reason(absl::StrCat("deregistered: ", reason));
    r.agent.clear_current_job_id();
  }
  Notify(losses);
  return absl::OkStatus();
}

int AgentRegistry::ExpireLeases(absl::Time now) {
  std::vector<AgentLoss> losses;
  int expired = 0;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, r] : agents_) {
      if (!IsLive(r.agent.state()) || r.lease_deadline >= now) continue;
      ++expired;
      ++version_;
      const std::string reason =
          absl::StrCat("agent '", r.agent.info().name(), "' (", r.agent.info().hostname(),
                       ") lost: no heartbeat for ",
                       absl::FormatDuration(now - r.lease_deadline + options_.lease), " (lease ",
                       absl::FormatDuration(options_.lease), ")");
      if (!r.held_job_id.empty()) {
        losses.push_back({id, r.agent.info().name(), r.held_job_id, reason});
      }
      r.held_job_id.clear();
      r.releasing = false;
      r.agent.set_state(v1::AGENT_STATE_LOST);
      r.agent.set_state_reason(reason);
      r.agent.clear_current_job_id();
    }
  }
  Notify(losses);
  return expired;
}

absl::Status AgentRegistry::CheckLive(absl::string_view agent_id) const {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(std::string(agent_id));
  if (it == agents_.end()) {
    return absl::NotFoundError(absl::StrCat("agent '", agent_id, "' is not registered"));
  }
  if (!IsLive(it->second.agent.state())) {
    return absl::NotFoundError(absl::StrCat("agent '", agent_id, "' is ",
                                            it->second.agent.state() == v1::AGENT_STATE_LOST
                                                ? "lost (its lease expired)"
                                                : "deregistered",
                                            "; register again"));
  }
  return absl::OkStatus();
}

absl::Status AgentRegistry::Hold(absl::string_view agent_id, absl::string_view job_id,
                                 int32_t point_index) {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(std::string(agent_id));
  if (it == agents_.end() || it->second.agent.state() != v1::AGENT_STATE_IDLE ||
      !it->second.held_job_id.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("agent '", agent_id, "' is not idle"));
  }
  Record& r = it->second;
  ++version_;
  r.held_job_id = std::string(job_id);
  r.releasing = false;
  r.agent.set_state(v1::AGENT_STATE_BUSY);
  r.agent.set_current_job_id(std::string(job_id));
  r.agent.set_current_point_index(point_index);
  return absl::OkStatus();
}

void AgentRegistry::SetCurrentPoint(absl::string_view agent_id, absl::string_view job_id,
                                    int32_t point_index) {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(std::string(agent_id));
  if (it == agents_.end() || it->second.held_job_id != job_id) return;
  it->second.agent.set_current_point_index(point_index);
}

void AgentRegistry::Release(absl::string_view agent_id, absl::string_view job_id) {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(std::string(agent_id));
  if (it == agents_.end() || it->second.held_job_id != job_id) return;
  Record& r = it->second;
  ++version_;
  r.held_job_id.clear();
  r.releasing = false;
  r.agent.clear_current_job_id();
  r.agent.set_current_point_index(0);
  r.agent.clear_state_reason();
  if (r.agent.state() == v1::AGENT_STATE_BUSY) r.agent.set_state(v1::AGENT_STATE_IDLE);
}

void AgentRegistry::BeginRelease(absl::string_view agent_id, absl::string_view job_id) {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(std::string(agent_id));
  if (it == agents_.end() || it->second.held_job_id != job_id) return;
  it->second.releasing = true;
  it->second.agent.set_state_reason(
      absl::StrCat("stopping job ", job_id, "; takes no new job until it says it stopped"));
}

void AgentRegistry::FinishRelease(absl::string_view agent_id, absl::string_view job_id) {
  {
    absl::MutexLock lock(&mu_);
    auto it = agents_.find(std::string(agent_id));
    if (it == agents_.end() || it->second.held_job_id != job_id || !it->second.releasing) return;
  }
  Release(agent_id, job_id);
}

AgentView AgentRegistry::ViewOf(const Record& r) const {
  AgentView v;
  v.agent_id = r.agent.id();
  v.incarnation = r.incarnation;
  v.order = r.order;
  v.info = r.agent.info();
  v.state = r.agent.state();
  v.held_job_id = r.held_job_id;
  v.releasing = r.releasing;
  return v;
}

std::optional<AgentView> AgentRegistry::Find(absl::string_view agent_id) const {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(std::string(agent_id));
  if (it == agents_.end()) return std::nullopt;
  return ViewOf(it->second);
}

std::optional<AgentRegistry::HoldState> AgentRegistry::HoldOf(absl::string_view agent_id) const {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(std::string(agent_id));
  if (it == agents_.end()) return std::nullopt;
  return HoldState{it->second.held_job_id, it->second.releasing};
}

std::vector<AgentView> AgentRegistry::LiveAgents() const {
  std::vector<AgentView> out;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, r] : agents_) {
      if (IsLive(r.agent.state())) out.push_back(ViewOf(r));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const AgentView& a, const AgentView& b) { return a.order < b.order; });
  return out;
}

std::vector<v1::Agent> AgentRegistry::List(const std::vector<v1::AgentState>& states) const {
  std::vector<std::pair<int64_t, v1::Agent>> sorted;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, r] : agents_) {
      const v1::AgentState s = r.agent.state();
      const bool wanted = states.empty()
                              ? s != v1::AGENT_STATE_GONE
                              : std::find(states.begin(), states.end(), s) != states.end();
      if (wanted) sorted.emplace_back(r.order, r.agent);
    }
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<v1::Agent> out;
  out.reserve(sorted.size());
  for (auto& [order, agent] : sorted) out.push_back(std::move(agent));
  return out;
}

std::map<v1::AgentState, int> AgentRegistry::CountByState() const {
  std::map<v1::AgentState, int> counts;
  for (v1::AgentState s : {v1::AGENT_STATE_IDLE, v1::AGENT_STATE_BUSY, v1::AGENT_STATE_DRAINING,
                           v1::AGENT_STATE_LOST, v1::AGENT_STATE_GONE}) {
    counts[s] = 0;
  }
  absl::MutexLock lock(&mu_);
  for (const auto& [id, r] : agents_) ++counts[r.agent.state()];
  return counts;
}

std::vector<std::pair<std::string, bool>> AgentRegistry::NamesAndLiveness() const {
  std::vector<std::pair<std::string, bool>> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, r] : agents_) {
    if (r.agent.state() == v1::AGENT_STATE_GONE) continue;
    out.emplace_back(r.agent.info().name(), IsLive(r.agent.state()));
  }
  return out;
}

}  // namespace moecap::coordinator
