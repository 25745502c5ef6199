// The job lifecycle (see job_manager.h).
#include "coordinator/job_manager.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <tuple>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/aggregate/aggregator.h"
#include "common/aggregate/progress.h"
#include "common/status_macros.h"
#include "coordinator/job_queries.h"
#include "coordinator/job_states.h"
#include "coordinator/proto_util.h"
#include "spdlog/spdlog.h"

namespace moecap::coordinator {
namespace {

std::string StateWord(v1::JobState s) { return CoordinatorMetrics::JobStateLabel(s); }

std::string FailureKindWord(v1::FailureKind kind) {
  std::string name = v1::FailureKind_Name(kind);
  const std::string prefix = "FAILURE_KIND_";
  if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

v1::WatchJobResponse Event(absl::Time now) {
  v1::WatchJobResponse e;
  *e.mutable_time() = ToProtoTime(now);
  return e;
}

}  // namespace

JobManager::JobManager(const Clock& clock, JobStore& store, AgentRegistry& agents,
                       RendezvousStore& rendezvous, AgentStreamHub& streams, JobEventHub& events,
                       const Catalog& catalog, JobManagerOptions options,
                       CoordinatorMetrics* metrics)
    : clock_(clock),
      store_(store),
      agents_(agents),
      rendezvous_(rendezvous),
      streams_(streams),
      events_(events),
      catalog_(catalog),
      options_(options),
      scheduler_(options.scheduler),
      metrics_(metrics) {}

// ---------------------------------------------------------------------------------------------
// Commit machinery

JobWrite& JobManager::WriteOf(const JobEntry& e, Effects& fx) {
  JobWrite& w = fx.writes[e.job.id()];
  w.job_id = e.job.id();
  w.seq = e.seq;
  return w;
}

void JobManager::MarkPoint(const JobEntry& e, int32_t index, Effects& fx) {
  WriteOf(e, fx);
  fx.changed_points[e.job.id()].insert(index);
}

void JobManager::PrepareDispatch(Effects& fx) {
  for (auto& [id, w] : fx.writes) {
    const JobEntry* e = Find(id);
    if (e == nullptr) continue;
    v1::Job header = e->job;
    header.clear_points();
    header.clear_history();
    header.clear_wait_reason();
    header.clear_placement();
    header.set_queue_position(0);
    w.job = std::move(header);
    for (int32_t index : fx.changed_points[id]) {
      if (index >= 0 && index < e->job.points_size()) w.points.push_back(e->job.points(index));
    }
    if (absl::Status s = store_.Apply(w); !s.ok()) {
      spdlog::error("job {}: could not persist a change: {}", id, s.ToString());
      continue;  // kept in memory: the store lacks this change
    }
    PageOutIfFinished(id);
  }
  out_mu_.Lock();
}

void JobManager::PageOutIfFinished(const std::string& job_id) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return;
  const JobEntry& e = it->second;
  if (!IsTerminal(e.job.state()) || e.attempt.has_value()) return;
  finished_[job_id] = FinishedJob{e.seq, e.job.state()};
  jobs_.erase(it);
}

const JobManager::FinishedJob* JobManager::FindFinished(absl::string_view job_id) const {
  auto it = finished_.find(job_id);
  return it == finished_.end() ? nullptr : &it->second;
}

absl::StatusOr<v1::Job> JobManager::ReadFinished(absl::string_view job_id, v1::JobView view) const {
  const auto missing = [&] {
    return absl::DataLossError(
        absl::StrCat("job '", job_id, "' is finished but no longer in the job database"));
  };
  if (view == v1::JOB_VIEW_FULL) {
    MOECAP_ASSIGN_OR_RETURN(std::optional<StoredJob> stored, store_.LoadJob(job_id));
    if (!stored.has_value()) return missing();
    return std::move(stored->job);
  }
  MOECAP_ASSIGN_OR_RETURN(std::optional<v1::Job> header, store_.LoadJobHeader(job_id));
  if (!header.has_value()) return missing();
  return JobInView(*header, view);
}

void JobManager::Dispatch(Effects& fx) {
  for (const std::string& scope : fx.scopes_to_delete) rendezvous_.DeleteScope(scope);
  for (const auto& [agent, message] : fx.to_agents) streams_.Send(agent, message);
  for (const auto& [job, event, terminal] : fx.events) events_.Publish(job, event, terminal);
  out_mu_.Unlock();
}

// ---------------------------------------------------------------------------------------------
// State changes

void JobManager::SetJobState(JobEntry& e, v1::JobState state, const std::string& reason,
                             Effects& fx) {
  const absl::Time now = clock_.Now();
  v1::Job& job = e.job;
  job.set_state(state);
  v1::StateTransition t;
  t.set_state(state);
  *t.mutable_time() = ToProtoTime(now);
  t.set_reason(reason);
  *job.add_history() = t;
  WriteOf(e, fx).transitions.push_back({-1, t});
  if (state != v1::JOB_STATE_QUEUED) {
    job.clear_wait_reason();
    job.clear_placement();
    job.set_queue_position(0);
  }
  const bool terminal = IsTerminal(state);
  if (state == v1::JOB_STATE_FAILED) job.set_failure_reason(reason);
  if (terminal) {
    *job.mutable_finish_time() = ToProtoTime(now);
    if (metrics_ != nullptr) metrics_->JobFinished(state);
  }
  v1::WatchJobResponse event = Event(now);
  *event.mutable_job_state()->mutable_transition() = t;
  fx.events.emplace_back(job.id(), std::move(event), terminal);
  spdlog::info("job {}: {}{}{}", job.id(), StateWord(state), reason.empty() ? "" : ": ", reason);
}

void JobManager::SetPointState(JobEntry& e, int32_t index, v1::JobState state,
                               const std::string& reason, Effects& fx) {
  const absl::Time now = clock_.Now();
  v1::Point& p = *e.job.mutable_points(index);
  p.set_state(state);
  v1::StateTransition t;
  t.set_state(state);
  *t.mutable_time() = ToProtoTime(now);
  t.set_reason(reason);
  t.set_attempt(p.attempts());
  *p.add_history() = t;
  if (state == v1::JOB_STATE_FAILED) p.set_failure_reason(reason);
  if (!IsActive(state)) p.clear_progress();
  WriteOf(e, fx).transitions.push_back({index, t});
  MarkPoint(e, index, fx);
  int done = 0;
  for (const v1::Point& q : e.job.points()) done += IsTerminal(q.state()) ? 1 : 0;
  e.job.set_points_done(done);
  v1::WatchJobResponse event = Event(now);
  event.mutable_point_state()->set_point_index(index);
  *event.mutable_point_state()->mutable_transition() = t;
  fx.events.emplace_back(e.job.id(), std::move(event), false);
}

void JobManager::AdvanceJob(JobEntry& e, v1::JobState state, Effects& fx) {
  if (IsActive(e.job.state()) && e.job.state() < state) SetJobState(e, state, "", fx);
}

void JobManager::AdvancePoint(JobEntry& e, v1::JobState state, Effects& fx) {
  if (!e.attempt.has_value()) return;
  const int32_t index = e.attempt->point_index;
  if (e.job.points(index).state() < state) SetPointState(e, index, state, "", fx);
  bool last = true;
  for (int i = index + 1; i < e.job.points_size(); ++i) {
    if (!IsTerminal(e.job.points(i).state())) last = false;
  }
  // The job is AGGREGATING only once its last point is; until then it stays RUNNING.
  AdvanceJob(e, last ? state : std::min(state, v1::JOB_STATE_RUNNING), fx);
}

std::string JobManager::PointName(const JobEntry& e, int32_t index) const {
  std::vector<std::string> params;
  for (const v1::PointParameter& p : e.job.points(index).parameters()) {
    params.push_back(absl::StrCat(p.name(), "=", p.value()));
  }
  return absl::StrCat("point ", index, params.empty() ? "" : " (", absl::StrJoin(params, ", "),
                      params.empty() ? "" : ")");
}

// ---------------------------------------------------------------------------------------------
// Queue and placement

void JobManager::Enqueue(JobEntry& e) {
  e.queued_since = clock_.Now();
  queue_[{-e.job.priority(), e.seq}] = e.job.id();
  ++queue_version_;
}

void JobManager::Dequeue(const JobEntry& e) {
  if (queue_.erase({-e.job.priority(), e.seq}) > 0) ++queue_version_;
}

int32_t JobManager::QueuePosition(const JobEntry& e) const {
  auto it = queue_.find({-e.job.priority(), e.seq});
  if (it == queue_.end()) return 0;
  // Counted from the back: new jobs, the ones shown most (newest first), are there.
  return static_cast<int32_t>(queue_.size() - std::distance(it, queue_.end()) + 1);
}

void JobManager::Schedule(Effects& fx) {
  if (queue_.empty()) return;
  // A pass costs O(queue x agents): skip it while nothing it depends on changed (the queue,
  // the agents' states, the open streams), but refresh at least every second for time-based
  // rules (backfill windows) and the wait reasons.
  const ScheduleInputs inputs{queue_version_, agents_.version(), streams_.version()};
  const absl::Time now = clock_.Now();
  if (inputs == last_schedule_inputs_ && now - last_schedule_time_ < options_.schedule_refresh) {
    return;
  }
  last_schedule_inputs_ = inputs;
  last_schedule_time_ = now;
  std::vector<QueuedJob> queue;
  for (const auto& [key, id] : queue_) {
    const JobEntry* e = Find(id);
    queue.push_back({id, e->job.priority(), e->seq, e->queued_since, e->spec});
  }
  std::vector<SchedulableAgent> agents;
  for (const AgentView& a : agents_.LiveAgents()) {
    if (a.state == v1::AGENT_STATE_DRAINING) continue;
    SchedulableAgent s;
    s.agent_id = a.agent_id;
    s.name = a.info.name();
    s.backend = a.info.backend();
    s.devices.assign(a.info.inventory().devices().begin(), a.info.inventory().devices().end());
    s.free =
        a.state == v1::AGENT_STATE_IDLE && a.held_job_id.empty() && streams_.IsOpen(a.agent_id);
    agents.push_back(std::move(s));
  }
  ScheduleDecision decision = scheduler_.Schedule(std::move(queue), agents, clock_.Now());
  for (const Placement& p : decision.placements) {
    if (JobEntry* e = Find(p.job_id); e != nullptr) StartJob(*e, p, fx);
  }
  for (const auto& [id, verdict] : decision.waits) {
    JobEntry* e = Find(id);
    if (e == nullptr || e->job.wait_reason() == verdict.reason()) continue;
    // A new verdict: watchers see it at once (watch, submit --wait).
    e->job.set_wait_reason(verdict.reason());
    *e->job.mutable_placement() = verdict;
    v1::WatchJobResponse event = Event(now);
    *event.mutable_placement() = verdict;
    fx.events.emplace_back(id, std::move(event), false);
  }
}

void JobManager::StartJob(JobEntry& e, const Placement& placement, Effects& fx) {
  const std::string& id = e.job.id();
  const int32_t first_point = [&] {
    for (const v1::Point& p : e.job.points()) {
      if (!IsTerminal(p.state())) return p.index();
    }
    return 0;
  }();
  std::vector<std::string> held;
  for (const NodePlacement& n : placement.nodes) {
    if (absl::Status s = agents_.Hold(n.agent_id, id, first_point); !s.ok()) {
      for (const std::string& a : held) agents_.Release(a, id);
      return;  // the agent changed since the snapshot; next tick
    }
    held.push_back(n.agent_id);
  }
  Dequeue(e);
  const absl::Time now = clock_.Now();
  e.gang = placement.nodes;
  e.backend = placement.backend;
  e.job.clear_agents();
  std::vector<std::string> names;
  for (size_t i = 0; i < placement.nodes.size(); ++i) {
    v1::AssignedAgent* a = e.job.add_agents();
    a->set_agent_id(placement.nodes[i].agent_id);
    a->set_node_rank(static_cast<int32_t>(i));
    if (std::optional<AgentView> v = agents_.Find(placement.nodes[i].agent_id); v.has_value()) {
      a->set_agent_name(v->info.name());
      a->set_hostname(v->info.hostname());
    }
    names.push_back(a->agent_name());
  }
  e.job.set_attempts(e.job.attempts() + 1);
  if (!e.job.has_start_time()) *e.job.mutable_start_time() = ToProtoTime(now);
  if (metrics_ != nullptr) metrics_->JobScheduled(now - e.queued_since);
  SetJobState(e, v1::JOB_STATE_SCHEDULED,
              absl::StrCat("placed on ", absl::StrJoin(names, ", "), " (job attempt ",
                           e.job.attempts(), ")"),
              fx);
  StartNextPoint(e, fx);
}

void JobManager::StartNextPoint(JobEntry& e, Effects& fx) {
  const std::string& id = e.job.id();
  int32_t index = -1;
  for (const v1::Point& p : e.job.points()) {
    if (!IsTerminal(p.state())) {
      index = p.index();
      break;
    }
  }
  if (index < 0) {
    for (const NodePlacement& n : e.gang) agents_.Release(n.agent_id, id);
    e.gang.clear();
    SetJobState(e, v1::JOB_STATE_SUCCEEDED, "", fx);
    return;
  }
  v1::Point& point = *e.job.mutable_points(index);
  const v1::PointWorkload& w = point.workload();
  const double point_seconds =
      w.timeouts().has_point_seconds() ? w.timeouts().point_seconds() : 600.0;
  absl::StatusOr<Attempt> built =
      BuildAttempt(e.job, index, point.attempts() + 1, e.spec.devices_per_node, e.gang, e.backend,
                   clock_.Now() + absl::Seconds(point_seconds));
  if (!built.ok()) {
    SetPointState(e, index, v1::JOB_STATE_FAILED, std::string(built.status().message()), fx);
    StopAttemptAndReleaseGang(e, "job failed", {}, fx);
    FailJob(e, v1::JOB_STATE_FAILED, absl::StrCat(PointName(e, index), " cannot be placed"), fx);
    return;
  }
  Attempt a = *std::move(built);
  point.set_attempts(a.attempt);
  const int32_t nodes = static_cast<int32_t>(a.nodes.size());
  const int32_t world = a.nodes.front().assignment.world_size();
  std::set<std::string> members;
  std::vector<std::string> names;
  for (int32_t n = 0; n < nodes; ++n) {
    members.insert(a.nodes[n].agent_id);
    names.push_back(e.job.agents(n).agent_name());
  }
  for (int i = 0; i < e.job.agents_size(); ++i) {
    v1::AssignedAgent* aa = e.job.mutable_agents(i);
    aa->clear_ranks();
    aa->clear_device_indices();
    if (i < nodes) {
      for (const v1::RankAssignment& r : a.nodes[i].assignment.ranks()) {
        aa->add_ranks(r.rank());
        aa->add_device_indices(r.device_index());
      }
    }
    agents_.SetCurrentPoint(aa->agent_id(), id, index);
  }
  if (absl::Status s = rendezvous_.CreateScope(a.scope, members); !s.ok()) {
    spdlog::warn("job {}: {}", id, s.ToString());
  }
  for (const AttemptNode& node : a.nodes) {
    v1::StreamAssignmentsResponse m;
    *m.mutable_assignment() = node.assignment;
    fx.to_agents.emplace_back(node.agent_id, std::move(m));
  }
  e.attempt = std::move(a);
  SetPointState(e, index, v1::JOB_STATE_SCHEDULED,
                absl::StrCat("attempt ", point.attempts(), " on ", absl::StrJoin(names, ", "), " (",
                             world, " rank", world == 1 ? "" : "s", ")"),
                fx);
}

// ---------------------------------------------------------------------------------------------
// Ending attempts and jobs

void JobManager::StopAttemptAndReleaseGang(JobEntry& e, const std::string& reason,
                                           const std::set<std::string>& stopped_agents,
                                           Effects& fx) {
  const std::string& id = e.job.id();
  std::set<std::string> stopping;
  if (e.attempt.has_value()) {
    for (const AttemptNode& node : e.attempt->nodes) {
      if (stopped_agents.count(node.agent_id) > 0) continue;
      if (e.attempt->node_reports.count(node.agent_id) > 0) continue;  // it finished its part
      v1::StreamAssignmentsResponse m;
      v1::Cancel* c = m.mutable_cancel();
      c->set_job_id(id);
      c->set_point_index(e.attempt->point_index);
      c->set_attempt(e.attempt->attempt);
      c->set_reason(reason);
      fx.to_agents.emplace_back(node.agent_id, std::move(m));
      agents_.BeginRelease(node.agent_id, id);
      stopping.insert(node.agent_id);
    }
    fx.scopes_to_delete.push_back(e.attempt->scope);
    e.attempt.reset();
  }
  for (const NodePlacement& n : e.gang) {
    if (stopping.count(n.agent_id) == 0) agents_.Release(n.agent_id, id);
  }
  e.gang.clear();
}

void JobManager::FailJob(JobEntry& e, v1::JobState final_state, const std::string& reason,
                         Effects& fx) {
  Dequeue(e);
  for (int i = 0; i < e.job.points_size(); ++i) {
    if (!IsTerminal(e.job.points(i).state())) {
      SetPointState(
          e, i, v1::JOB_STATE_CANCELLED,
          final_state == v1::JOB_STATE_CANCELLED ? reason : absl::StrCat("not run: ", reason), fx);
    }
  }
  SetJobState(e, final_state, reason, fx);
}

void JobManager::FailAttempt(JobEntry& e, const std::string& reason, v1::FailureKind kind,
                             bool retryable, const std::set<std::string>& stopped_agents,
                             Effects& fx) {
  if (!e.attempt.has_value()) return;
  const int32_t index = e.attempt->point_index;
  v1::Point& point = *e.job.mutable_points(index);
  point.set_failure_reason(reason);
  StopAttemptAndReleaseGang(e, reason, stopped_agents, fx);
  const int32_t attempts = point.attempts();
  const int32_t max_retries = e.job.plan().retry().max_retries();
  const bool retry = retryable && kind != v1::FAILURE_KIND_CHECK &&
                     kind != v1::FAILURE_KIND_CANCELLED && attempts <= max_retries;
  if (retry) {
    SetPointState(e, index, v1::JOB_STATE_QUEUED,
                  absl::StrCat("attempt ", attempts, " failed: ", reason, "; retry ", attempts,
                               " of ", max_retries),
                  fx);
    SetJobState(e, v1::JOB_STATE_QUEUED,
                absl::StrCat(PointName(e, index), " attempt ", attempts, " failed (", reason,
                             "); requeued for a retry"),
                fx);
    Enqueue(e);
    return;
  }
  SetPointState(e, index, v1::JOB_STATE_FAILED, reason, fx);
  FailJob(e, v1::JOB_STATE_FAILED, absl::StrCat(PointName(e, index), " failed: ", reason), fx);
}

void JobManager::FailWithCause(JobEntry& e, const std::string& cause, const std::string& lost_agent,
                               Effects& fx) {
  if (!e.attempt.has_value()) return;
  std::set<std::string> stopped;
  if (!lost_agent.empty()) stopped.insert(lost_agent);
  std::vector<std::string> consequences;
  for (const PeerFailure& f : e.attempt->peer_failures) {
    if (f.agent_stopped) stopped.insert(f.agent_id);
    if (f.reason != cause) consequences.push_back(f.reason);  // a report may be the cause itself
  }
  const std::string reason =
      consequences.empty() ? cause
                           : absl::StrCat(cause, "; then ", absl::StrJoin(consequences, "; then "));
  // The cause is an agent gone, not the workload: the point may be retried elsewhere.
  FailAttempt(e, reason, v1::FAILURE_KIND_UNSPECIFIED, /*retryable=*/true, stopped, fx);
}

std::optional<std::string> JobManager::SuspectCause(const JobEntry& e) const {
  if (!e.attempt.has_value()) return std::nullopt;
  const Attempt& a = *e.attempt;
  for (const auto& [agent_id, closed_at] : a.streams_closed) {
    const bool reporter = std::any_of(a.peer_failures.begin(), a.peer_failures.end(),
                                      [&](const PeerFailure& f) { return f.agent_id == agent_id; });
    if (reporter) continue;
    std::string name = agent_id;
    for (const v1::AssignedAgent& aa : e.job.agents()) {
      if (aa.agent_id() == agent_id) name = aa.agent_name();
    }
    return absl::StrCat("agent '", name, "' lost: its assignment stream closed at ",
                        absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", closed_at, absl::UTCTimeZone()));
  }
  return std::nullopt;
}

void JobManager::CompleteAttempt(JobEntry& e, Effects& fx) {
  Attempt& a = *e.attempt;
  const int32_t index = a.point_index;
  AdvancePoint(e, v1::JOB_STATE_AGGREGATING, fx);
  PointAggregationInput in;
  in.point_index = index;
  in.attempt = a.attempt;
  const v1::Point& point = e.job.points(index);
  in.parameters.assign(point.parameters().begin(), point.parameters().end());
  in.workload = a.nodes.front().assignment.workload();
  in.nodes = NodeReportsOf(a);
  for (const v1::AssignedAgent& aa : e.job.agents())
    in.agent_names[aa.agent_id()] = aa.agent_name();
  in.pricing = e.job.plan().pricing();
  in.catalog = &catalog_;
  in.finish_time = clock_.Now();
  absl::StatusOr<v1::PointResult> result = AggregatePoint(in);
  std::set<std::string> all;
  for (const AttemptNode& node : a.nodes) all.insert(node.agent_id);
  if (!result.ok()) {
    FailAttempt(e, absl::StrCat("aggregation failed: ", result.status().message()),
                v1::FAILURE_KIND_INTERNAL, /*retryable=*/false, all, fx);
    return;
  }
  if (result->check().checked() && !result->check().passed()) {
    FailAttempt(e,
                absl::StrCat("the check against the single-rank reference failed: max abs error ",
                             result->check().max_abs_error(), " > ",
                             result->check().abs_tolerance(), " ", result->check().detail()),
                v1::FAILURE_KIND_CHECK, /*retryable=*/false, all, fx);
    return;
  }
  fx.scopes_to_delete.push_back(a.scope);
  e.attempt.reset();
  *e.job.mutable_points(index)->mutable_result() = *result;
  WriteOf(e, fx).results.push_back(*result);
  v1::WatchJobResponse event = Event(clock_.Now());
  *event.mutable_result() = *result;
  fx.events.emplace_back(e.job.id(), std::move(event), false);
  if (metrics_ != nullptr) {
    metrics_->SetPointResult(e.job.id(), e.job.model(), in.workload, *result);
  }
  SetPointState(e, index, v1::JOB_STATE_SUCCEEDED, "", fx);
  StartNextPoint(e, fx);
}

// ---------------------------------------------------------------------------------------------
// Lookups

JobManager::JobEntry* JobManager::Find(absl::string_view job_id) {
  auto it = jobs_.find(std::string(job_id));
  return it == jobs_.end() ? nullptr : &it->second;
}

const JobManager::JobEntry* JobManager::Find(absl::string_view job_id) const {
  auto it = jobs_.find(std::string(job_id));
  return it == jobs_.end() ? nullptr : &it->second;
}

v1::Job JobManager::View(const JobEntry& e, v1::JobView view) const {
  v1::Job out = JobInView(e.job, view);
  if (out.state() == v1::JOB_STATE_QUEUED) out.set_queue_position(QueuePosition(e));
  return out;
}

absl::StatusOr<std::pair<JobManager::JobEntry*, AttemptNode*>> JobManager::CurrentAttempt(
    absl::string_view agent_id, absl::string_view job_id, int32_t point_index, int32_t attempt) {
  JobEntry* e = Find(job_id);
  if (e == nullptr) {
    if (const FinishedJob* f = FindFinished(job_id); f != nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", job_id, " point ", point_index, " attempt ", attempt,
                       " is not current (the job is ", StateWord(f->state), "): report refused"));
    }
    return absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
  }
  if (!e->attempt.has_value() || e->attempt->point_index != point_index ||
      e->attempt->attempt != attempt) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job_id, " point ", point_index, " attempt ", attempt,
        " is not current (the job is ", StateWord(e->job.state()),
        e->attempt.has_value() ? absl::StrCat(", running point ", e->attempt->point_index,
                                              " attempt ", e->attempt->attempt)
                               : "",
        "): report refused"));
  }
  for (AttemptNode& node : e->attempt->nodes) {
    if (node.agent_id == agent_id) return std::make_pair(e, &node);
  }
  return absl::FailedPreconditionError(absl::StrCat("agent '", agent_id, "' holds no rank of job ",
                                                    job_id, " point ", point_index, " attempt ",
                                                    attempt));
}

// ---------------------------------------------------------------------------------------------
// JobService

absl::StatusOr<v1::Job> JobManager::Submit(const PlanSubmission& submission, bool dry_run,
                                           absl::string_view submitted_by) {
  Submission one{submission, dry_run, std::string(submitted_by)};
  return std::move(SubmitAll(absl::MakeConstSpan(&one, 1)).front());
}

std::vector<absl::StatusOr<v1::Job>> JobManager::SubmitAll(
    absl::Span<const Submission> submissions) {
  // Parsing and validation, the costly part, outside the lock.
  std::vector<absl::StatusOr<v1::Job>> out;
  out.reserve(submissions.size());
  std::vector<size_t> to_queue;
  const absl::Time now = clock_.Now();
  for (const Submission& submission : submissions) {
    absl::StatusOr<v1::Job> built = BuildJob(submission.plan, catalog_);
    if (built.ok()) {
      built->set_state(v1::JOB_STATE_QUEUED);
      *built->mutable_submit_time() = ToProtoTime(now);
      built->set_submitted_by(submission.submitted_by);
      if (!submission.dry_run) to_queue.push_back(out.size());
    }
    out.push_back(std::move(built));
  }
  if (to_queue.empty()) return out;
  Commit([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<JobWrite> writes;
    std::vector<std::string> ids;
    for (const size_t i : to_queue) {
      const int64_t seq = next_seq_++;
      const std::string id = absl::StrFormat("job-%06d", seq);
      out[i]->set_id(id);
      JobEntry& e = jobs_[id];
      e.job = *std::move(out[i]);
      e.seq = seq;
      e.spec = GangSpecOf(e.job.plan(), catalog_);
      SetJobState(e, v1::JOB_STATE_QUEUED, "submitted", fx);
      for (int p = 0; p < e.job.points_size(); ++p) {
        SetPointState(e, p, v1::JOB_STATE_QUEUED, "", fx);
      }
      JobWrite& w = WriteOf(e, fx);
      w.job = e.job;
      w.job->clear_points();
      w.job->clear_history();
      for (const v1::Point& p : e.job.points()) w.points.push_back(p);
      writes.push_back(std::move(w));
      ids.push_back(id);
    }
    fx.events.clear();  // nobody can watch a job before it has an id
    fx.changed_points.clear();
    fx.writes.clear();
    const absl::Status stored = store_.ApplyAll(writes);
    if (!stored.ok()) {
      next_seq_ -= static_cast<int64_t>(ids.size());
      for (size_t k = 0; k < ids.size(); ++k) {
        jobs_.erase(ids[k]);
        out[to_queue[k]] = absl::UnavailableError(
            absl::StrCat("the job could not be stored, not queued: ", stored.message()));
      }
      return;
    }
    for (const std::string& id : ids) {
      JobEntry& e = jobs_[id];
      by_seq_[e.seq] = id;
      Enqueue(e);
      if (metrics_ != nullptr) metrics_->JobSubmitted();
    }
    for (size_t k = 0; k < ids.size(); ++k)
      out[to_queue[k]] = View(jobs_[ids[k]], v1::JOB_VIEW_FULL);
  });
  return out;
}

absl::StatusOr<v1::Job> JobManager::GetJob(absl::string_view job_id, v1::JobView view) const {
  absl::MutexLock lock(&mu_);
  if (const JobEntry* e = Find(job_id); e != nullptr) return View(*e, view);
  if (FindFinished(job_id) != nullptr) return ReadFinished(job_id, view);
  return absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
}

absl::StatusOr<v1::ListJobsResponse> JobManager::ListJobs(
    const v1::ListJobsRequest& request) const {
  MOECAP_ASSIGN_OR_RETURN(const JobPage page, ParseJobPage(request));
  v1::ListJobsResponse response;
  absl::MutexLock lock(&mu_);
  for (auto it = by_seq_.lower_bound(page.before); it != by_seq_.begin();) {
    --it;
    const JobEntry* e = Find(it->second);
    const FinishedJob* f = e == nullptr ? FindFinished(it->second) : nullptr;
    if (e == nullptr && f == nullptr) continue;
    if (e != nullptr && !MatchesFilters(e->job, request)) continue;
    // A finished job: the state filter from memory first; its labels need the stored job.
    if (f != nullptr && request.states_size() > 0 &&
        std::find(request.states().begin(), request.states().end(), f->state) ==
            request.states().end()) {
      continue;
    }
    v1::Job job;
    if (e != nullptr) {
      job = View(*e, request.view());
    } else {
      MOECAP_ASSIGN_OR_RETURN(job, ReadFinished(it->second, request.view()));
      if (!MatchesFilters(job, request)) continue;
    }
    if (response.jobs_size() == page.page_size) {
      response.set_next_page_token(absl::StrCat(it->first + 1));
      break;
    }
    *response.add_jobs() = std::move(job);
  }
  return response;
}

absl::StatusOr<v1::Job> JobManager::Cancel(absl::string_view job_id, absl::string_view reason) {
  absl::StatusOr<v1::Job> out;
  Commit([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    JobEntry* e = Find(job_id);
    const FinishedJob* finished = FindFinished(job_id);
    if (finished != nullptr) {
      out = absl::FailedPreconditionError(absl::StrCat("job ", job_id, " already finished (",
                                                       StateWord(finished->state),
                                                       "); nothing to cancel"));
    } else if (e == nullptr) {
      out = absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
    } else if (IsTerminal(e->job.state())) {
      out = absl::FailedPreconditionError(absl::StrCat("job ", job_id, " already finished (",
                                                       StateWord(e->job.state()),
                                                       "); nothing to cancel"));
    } else {
      const std::string why =
          reason.empty() ? std::string("cancelled") : absl::StrCat("cancelled: ", reason);
      StopAttemptAndReleaseGang(*e, why, {}, fx);
      FailJob(*e, v1::JOB_STATE_CANCELLED, why, fx);
      out = View(*e, v1::JOB_VIEW_BASIC);
    }
  });
  return out;
}

absl::StatusOr<v1::GetResultsResponse> JobManager::GetResults(absl::string_view job_id) const {
  absl::MutexLock lock(&mu_);
  if (const JobEntry* e = Find(job_id); e != nullptr) return ResultsOf(e->job);
  if (FindFinished(job_id) == nullptr) {
    return absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
  }
  MOECAP_ASSIGN_OR_RETURN(const v1::Job job, ReadFinished(job_id, v1::JOB_VIEW_FULL));
  return ResultsOf(job);
}

absl::StatusOr<JobEventHub::SubscriptionId> JobManager::Watch(
    absl::string_view job_id, bool include_progress,
    std::shared_ptr<JobEventHub::Watcher> watcher) {
  v1::WatchJobResponse snapshot;
  bool terminal = false;
  {
    absl::MutexLock lock(&mu_);
    const JobEntry* e = Find(job_id);
    snapshot = Event(clock_.Now());
    if (e != nullptr) {
      *snapshot.mutable_snapshot() = View(*e, v1::JOB_VIEW_FULL);
      terminal = IsTerminal(e->job.state());
    } else if (FindFinished(job_id) != nullptr) {
      MOECAP_ASSIGN_OR_RETURN(*snapshot.mutable_snapshot(),
                              ReadFinished(job_id, v1::JOB_VIEW_FULL));
      terminal = true;
    } else {
      return absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
    }
    // Events already committed are in the snapshot; later ones wait for out_mu_.
    out_mu_.Lock();
  }
  watcher->OnEvent(snapshot);
  JobEventHub::SubscriptionId id = 0;
  if (terminal) {
    watcher->OnEnd(absl::OkStatus());
  } else {
    id = events_.Subscribe(job_id, include_progress, std::move(watcher));
  }
  out_mu_.Unlock();
  return id;
}

// ---------------------------------------------------------------------------------------------
// AgentService

void JobManager::OnAgentRegistered(absl::string_view agent_id) { streams_.Reset(agent_id); }

void JobManager::OnStreamOpened(absl::string_view agent_id) {
  std::optional<AgentView> agent = agents_.Find(agent_id);
  if (!agent.has_value() || agent->held_job_id.empty() || agent->releasing) return;
  Commit([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    JobEntry* e = Find(agent->held_job_id);
    if (e == nullptr || !e->attempt.has_value() ||
        e->attempt->node_reports.count(std::string(agent_id)) > 0) {
      return;
    }
    e->attempt->streams_closed.erase(std::string(agent_id));  // back: no longer suspect
    for (const AttemptNode& node : e->attempt->nodes) {
      if (node.agent_id != agent_id) continue;
      v1::StreamAssignmentsResponse m;
      *m.mutable_assignment() = node.assignment;
      fx.to_agents.emplace_back(node.agent_id, std::move(m));
    }
  });
}

void JobManager::OnStreamClosed(absl::string_view agent_id) {
  std::optional<AgentView> agent = agents_.Find(agent_id);
  if (!agent.has_value() || agent->held_job_id.empty() || agent->releasing) return;
  Commit([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    JobEntry* e = Find(agent->held_job_id);
    if (e == nullptr || !e->attempt.has_value()) return;
    Attempt& a = *e->attempt;
    const bool runs_ranks = std::any_of(a.nodes.begin(), a.nodes.end(), [&](const AttemptNode& n) {
      return n.agent_id == agent_id;
    });
    if (!runs_ranks || a.node_reports.count(std::string(agent_id)) > 0) return;
    a.streams_closed[std::string(agent_id)] = clock_.Now();
    if (a.peer_failures.empty()) return;
    if (std::optional<std::string> cause = SuspectCause(*e); cause.has_value()) {
      FailWithCause(*e, *cause, "", fx);
    }
  });
}

void JobManager::OnAgentLoss(const AgentLoss& loss) {
  Commit([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    JobEntry* e = Find(loss.held_job_id);
    const bool in_gang =
        e != nullptr && std::any_of(e->gang.begin(), e->gang.end(), [&](const NodePlacement& n) {
          return n.agent_id == loss.agent_id;
        });
    if (!in_gang || IsTerminal(e->job.state())) return;
    if (e->attempt.has_value()) {
      FailWithCause(*e, loss.reason, loss.agent_id, fx);
    } else {
      StopAttemptAndReleaseGang(*e, loss.reason, {loss.agent_id}, fx);
      SetJobState(*e, v1::JOB_STATE_QUEUED, absl::StrCat(loss.reason, "; requeued"), fx);
      Enqueue(*e);
    }
  });
}

std::vector<v1::AgentCommand> JobManager::OnHeartbeat(const v1::HeartbeatRequest& request) {
  std::vector<v1::AgentCommand> commands;
  std::optional<AgentRegistry::HoldState> agent = agents_.HoldOf(request.agent_id());
  if (!agent.has_value()) return commands;
  const bool busy = request.state() == v1::AGENT_STATE_BUSY && !request.current_job_id().empty();
  const auto cancel = [&](const std::string& job, int32_t point, int32_t attempt,
                          const std::string& reason) {
    v1::Cancel* c = commands.emplace_back().mutable_cancel();
    c->set_job_id(job);
    c->set_point_index(point);
    c->set_attempt(attempt);
    c->set_reason(reason);
  };
  if (agent->releasing) {
    if (!busy || request.current_job_id() != agent->held_job_id) {
      agents_.FinishRelease(request.agent_id(), agent->held_job_id);  // it stopped
    } else {
      cancel(agent->held_job_id, -1, 0, "the job was stopped");
    }
    return commands;
  }
  if (!busy) return commands;
  absl::MutexLock lock(&mu_);
  const JobEntry* e = Find(request.current_job_id());
  const bool current =
      e != nullptr && e->attempt.has_value() &&
      e->attempt->point_index == request.current_point_index() &&
      e->attempt->attempt == request.current_attempt() &&
      std::any_of(e->attempt->nodes.begin(), e->attempt->nodes.end(),
                  [&](const AttemptNode& n) { return n.agent_id == request.agent_id(); });
  const bool reported = current && e->attempt->node_reports.count(request.agent_id()) > 0;
  if (!current && !reported) {
    cancel(request.current_job_id(), request.current_point_index(), request.current_attempt(),
           "this assignment is no longer current");
  }
  return commands;
}

absl::StatusOr<bool> JobManager::ReportProgress(const v1::ReportProgressRequest& request) {
  MOECAP_RETURN_IF_ERROR(agents_.CheckLive(request.agent_id()));
  absl::StatusOr<bool> out = false;
  Commit([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto current = CurrentAttempt(request.agent_id(), request.job_id(), request.point_index(),
                                  request.attempt());
    if (!current.ok()) {
      if (absl::IsNotFound(current.status())) {
        out = current.status();
      } else {
        out = true;  // no longer current: the agent stops
      }
    } else {
      JobEntry& e = *current->first;
      Attempt& a = *e.attempt;
      a.progress[{request.agent_id(), request.rank()}] = request.progress();
      std::vector<v1::Progress> reports;
      for (const auto& [reporter, progress] : a.progress) reports.push_back(progress);
      const v1::Progress slowest = SlowestProgress(reports);
      *e.job.mutable_points(a.point_index)->mutable_progress() = slowest;
      const v1::Progress::Stage stage = request.progress().stage();
      if (stage == v1::Progress::STAGE_SETUP) {
        AdvancePoint(e, v1::JOB_STATE_RENDEZVOUS, fx);
      } else if (stage != v1::Progress::STAGE_UNSPECIFIED) {
        AdvancePoint(e, v1::JOB_STATE_RUNNING, fx);
      }
      const absl::Time now = clock_.Now();
      if (now - a.last_progress_event >= options_.progress_interval) {
        a.last_progress_event = now;
        v1::WatchJobResponse event = Event(now);
        v1::PointProgress* p = event.mutable_progress();
        p->set_point_index(a.point_index);
        p->set_attempt(a.attempt);
        *p->mutable_progress() = slowest;
        fx.events.emplace_back(e.job.id(), std::move(event), false);
      }
    }
  });
  return out;
}

absl::Status JobManager::ReportRank(const v1::RankReport& report) {
  MOECAP_RETURN_IF_ERROR(agents_.CheckLive(report.agent_id()));
  absl::Status out;
  Commit([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto current =
        CurrentAttempt(report.agent_id(), report.job_id(), report.point_index(), report.attempt());
    if (!current.ok()) {
      out = current.status();
    } else {
      JobEntry& e = *current->first;
      const AttemptNode& node = *current->second;
      if (std::find(node.ranks.begin(), node.ranks.end(), report.rank()) == node.ranks.end()) {
        out = absl::InvalidArgumentError(absl::StrCat("field 'report.rank': agent '",
                                                      report.agent_id(), "' does not hold rank ",
                                                      report.rank(), " of this attempt"));
      } else if (e.attempt->rank_reports.count(report.rank()) == 0) {  // else a duplicate
        e.attempt->rank_reports[report.rank()] = report;
        WriteOf(e, fx).reports.push_back({e.job.id(), report.point_index(), report.attempt(),
                                          report.agent_id(), report.rank(), ReportKind::kRank,
                                          clock_.Now(), report.SerializeAsString()});
        AdvancePoint(e, v1::JOB_STATE_RUNNING, fx);
      }
    }
  });
  return out;
}

absl::Status JobManager::ReportNode(const v1::NodeReport& report) {
  MOECAP_RETURN_IF_ERROR(agents_.CheckLive(report.agent_id()));
  absl::Status out;
  Commit([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto current =
        CurrentAttempt(report.agent_id(), report.job_id(), report.point_index(), report.attempt());
    if (!current.ok()) {
      out = current.status();
    } else if (current->first->attempt->node_reports.count(report.agent_id()) == 0) {
      JobEntry& e = *current->first;
      Attempt& a = *e.attempt;
      out = CheckNodeReport(*current->second, report, a.rank_reports);
      if (out.ok()) {
        a.node_reports[report.agent_id()] = report;
        WriteOf(e, fx).reports.push_back({e.job.id(), report.point_index(), report.attempt(),
                                          report.agent_id(), -1, ReportKind::kNode, clock_.Now(),
                                          report.SerializeAsString()});
        AdvancePoint(e, v1::JOB_STATE_RUNNING, fx);
        if (a.node_reports.size() == a.nodes.size()) CompleteAttempt(e, fx);
      }
    }
  });
  return out;
}

absl::Status JobManager::ReportFailure(const v1::ReportFailureRequest& request) {
  MOECAP_RETURN_IF_ERROR(agents_.CheckLive(request.agent_id()));
  std::optional<AgentView> agent = agents_.Find(request.agent_id());
  if (agent.has_value() && agent->releasing && agent->held_job_id == request.job_id()) {
    agents_.FinishRelease(request.agent_id(), request.job_id());  // the stop is acknowledged
    return absl::OkStatus();
  }
  return Commit([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    auto current = CurrentAttempt(request.agent_id(), request.job_id(), request.point_index(),
                                  request.attempt());
    if (!current.ok()) return current.status();
    JobEntry& e = *current->first;
    Attempt& a = *e.attempt;
    const std::string name = agent.has_value() ? agent->info.name() : request.agent_id();
    const std::string reason = absl::StrCat(
        "agent '", name, "'", request.rank() >= 0 ? absl::StrCat(" rank ", request.rank()) : "",
        " reported ", FailureKindWord(request.kind()), ": ", request.reason());
    WriteOf(e, fx).reports.push_back({e.job.id(), request.point_index(), request.attempt(),
                                      request.agent_id(), request.rank(), ReportKind::kFailure,
                                      clock_.Now(), request.SerializeAsString()});
    // A rank's failure (rank >= 0) leaves the agent's other ranks running: it gets a cancel.
    const bool agent_stopped = request.rank() < 0;
    const bool may_be_a_consequence = (request.kind() == v1::FAILURE_KIND_COLLECTIVE ||
                                       request.kind() == v1::FAILURE_KIND_RENDEZVOUS) &&
                                      a.nodes.size() > 1 &&
                                      options_.root_cause_wait > absl::ZeroDuration();
    if (!may_be_a_consequence) {
      std::set<std::string> stopped;
      if (agent_stopped) stopped.insert(request.agent_id());
      FailAttempt(e, reason, request.kind(), request.retryable(), stopped, fx);
      return absl::OkStatus();
    }
    a.peer_failures.push_back({request.agent_id(), reason, agent_stopped});
    if (std::optional<std::string> cause = SuspectCause(e); cause.has_value()) {
      FailWithCause(e, *cause, "", fx);
    } else if (a.peer_failures.size() == 1) {
      a.root_cause_deadline = clock_.Now() + options_.root_cause_wait;
      spdlog::info("job {}: {}; waiting up to {} for a lost peer before failing the point",
                   e.job.id(), reason, absl::FormatDuration(options_.root_cause_wait));
    }
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------------------------
// Periodic work

void JobManager::Tick() {
  Commit([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time now = clock_.Now();
    for (auto& [id, e] : jobs_) {
      const v1::JobState state = e.job.state();
      if (state == v1::JOB_STATE_QUEUED) {
        const v1::Timeouts& t = e.job.plan().workload().timeouts();
        if (t.has_queue_seconds() &&
            now - FromProtoTime(e.job.submit_time()) > absl::Seconds(t.queue_seconds())) {
          FailJob(e, v1::JOB_STATE_FAILED,
                  absl::StrCat("not scheduled within ", t.queue_seconds(),
                               " s (workload.timeouts.queue_seconds)",
                               e.job.wait_reason().empty() ? "" : ": ", e.job.wait_reason()),
                  fx);
        }
      } else if (e.attempt.has_value() && now >= e.attempt->root_cause_deadline) {
        // No peer was lost in time: the first report was the cause.
        const std::string cause = e.attempt->peer_failures.front().reason;
        FailWithCause(e, cause, "", fx);
      } else if (e.attempt.has_value() &&
                 now > e.attempt->deadline + options_.point_deadline_grace) {
        const v1::PointWorkload& w = e.job.points(e.attempt->point_index).workload();
        FailAttempt(
            e,
            absl::StrCat("no report within the point's deadline (", w.timeouts().point_seconds(),
                         " s, workload.timeouts.point_seconds)"),
            v1::FAILURE_KIND_TIMEOUT, /*retryable=*/true, {}, fx);
      }
    }
    Schedule(fx);
  });
}

JobStats JobManager::Stats() const {
  JobStats stats;
  for (int s = v1::JOB_STATE_QUEUED; s <= v1::JOB_STATE_INTERRUPTED; ++s) {
    stats.by_state[static_cast<v1::JobState>(s)] = 0;
  }
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  for (const auto& [id, e] : jobs_) ++stats.by_state[e.job.state()];
  for (const auto& [id, f] : finished_) ++stats.by_state[f.state];
  stats.queue_depth = static_cast<int>(queue_.size());
  stats.waiting_by_why = {{"needs_agents", 0}, {"agents_busy", 0}, {"behind_job", 0}};
  for (const auto& [key, id] : queue_) {
    const JobEntry* e = Find(id);
    stats.oldest_queued = std::max(stats.oldest_queued, now - FromProtoTime(e->job.submit_time()));
    if (!e->job.has_placement()) continue;  // not tried yet
    const v1::PlacementVerdict& v = e->job.placement();
    ++stats.waiting_by_why[v.needs_more_agents()        ? "needs_agents"
                           : !v.behind_job_id().empty() ? "behind_job"
                                                        : "agents_busy"];
  }
  return stats;
}

}  // namespace moecap::coordinator
