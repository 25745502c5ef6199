// Coordinator metrics.
#include "coordinator/coordinator_metrics.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/cost.h"
#include "common/status_macros.h"
#include "common/telemetry/metric_names.h"

namespace moecap::coordinator {
namespace {

namespace tm = ::moecap::telemetry;

std::string PhaseLabel(v1::Phase phase) {
  return phase == v1::PHASE_PREFILL ? "prefill" : phase == v1::PHASE_DECODE ? "decode" : "unknown";
}

template <typename T>
T* Must(absl::StatusOr<T*> s, absl::Status& first_error) {
  if (!s.ok()) {
    if (first_error.ok()) first_error = s.status();
    return nullptr;
  }
  return *s;
}

}  // namespace

std::string CoordinatorMetrics::JobStateLabel(v1::JobState state) {
  std::string name = v1::JobState_Name(state);
  constexpr absl::string_view kPrefix = "JOB_STATE_";
  if (absl::StartsWith(name, kPrefix)) name = name.substr(kPrefix.size());
  return absl::AsciiStrToLower(name);
}

std::string CoordinatorMetrics::AgentStateLabel(v1::AgentState state) {
  std::string name = v1::AgentState_Name(state);
  constexpr absl::string_view kPrefix = "AGENT_STATE_";
  if (absl::StartsWith(name, kPrefix)) name = name.substr(kPrefix.size());
  return absl::AsciiStrToLower(name);
}

absl::StatusOr<std::unique_ptr<CoordinatorMetrics>> CoordinatorMetrics::Create(
    telemetry::Registry& registry, size_t max_result_jobs) {
  std::unique_ptr<CoordinatorMetrics> m(new CoordinatorMetrics(registry, max_result_jobs));
  MOECAP_RETURN_IF_ERROR(m->Init());
  return m;
}

absl::Status CoordinatorMetrics::Init() {
  MOECAP_RETURN_IF_ERROR(registry_.Register(tm::kCoordinatorMetrics));
  absl::Status error;
  agents_ = Must(registry_.GetGauge(tm::kAgents), error);
  agent_up_ = Must(registry_.GetGauge(tm::kAgentUp), error);
  jobs_ = Must(registry_.GetGauge(tm::kJobs), error);
  waiting_ = Must(registry_.GetGauge(tm::kJobsWaiting), error);
  finished_ = Must(registry_.GetCounter(tm::kJobsFinishedTotal), error);
  rpc_handled_ = Must(registry_.GetCounter(tm::kGrpcServerHandledTotal), error);
  rpc_seconds_ = Must(registry_.GetHistogram(tm::kGrpcServerHandlingSeconds), error);
  tm::CounterFamily* submitted = Must(registry_.GetCounter(tm::kJobsSubmittedTotal), error);
  tm::GaugeFamily* depth = Must(registry_.GetGauge(tm::kJobQueueDepth), error);
  tm::GaugeFamily* oldest = Must(registry_.GetGauge(tm::kJobQueueOldestAgeSeconds), error);
  tm::HistogramFamily* scheduling =
      Must(registry_.GetHistogram(tm::kSchedulingLatencySeconds), error);
  if (!error.ok()) return error;
  const auto child = [&](auto* family, auto& out) -> absl::Status {
    auto c = family->WithLabels({});
    if (!c.ok()) return c.status();
    out = *c;
    return absl::OkStatus();
  };
  MOECAP_RETURN_IF_ERROR(child(submitted, submitted_));
  MOECAP_RETURN_IF_ERROR(child(depth, queue_depth_));
  MOECAP_RETURN_IF_ERROR(child(oldest, oldest_age_));
  MOECAP_RETURN_IF_ERROR(child(scheduling, scheduling_));
  // Series that alerts use with increase() must exist before their first event.
  for (v1::JobState s : {v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_FAILED, v1::JOB_STATE_CANCELLED}) {
    (void)finished_->WithLabels({JobStateLabel(s)});
  }
  return absl::OkStatus();
}

void CoordinatorMetrics::JobSubmitted() { submitted_->Increment(); }

void CoordinatorMetrics::JobFinished(v1::JobState state) {
  if (auto c = finished_->WithLabels({JobStateLabel(state)}); c.ok()) (*c)->Increment();
}

void CoordinatorMetrics::JobScheduled(absl::Duration waited) {
  scheduling_->Observe(absl::ToDoubleSeconds(waited));
}

void CoordinatorMetrics::RpcHandled(absl::string_view service, absl::string_view method,
                                    absl::string_view type, absl::string_view code,
                                    double seconds) {
  const std::vector<std::string> labels = {std::string(service), std::string(method),
                                           std::string(type), std::string(code)};
  if (auto c = rpc_handled_->WithLabels(labels); c.ok()) (*c)->Increment();
  if (auto h = rpc_seconds_->WithLabels(labels); h.ok()) (*h)->Observe(seconds);
}

void CoordinatorMetrics::SetAgents(
    const std::map<v1::AgentState, int>& by_state,
    const std::vector<std::pair<std::string, bool>>& names_and_liveness) {
  for (v1::AgentState s : {v1::AGENT_STATE_IDLE, v1::AGENT_STATE_BUSY, v1::AGENT_STATE_DRAINING,
                           v1::AGENT_STATE_LOST}) {
    auto it = by_state.find(s);
    if (auto g = agents_->WithLabels({AgentStateLabel(s)}); g.ok()) {
      (*g)->Set(it == by_state.end() ? 0 : it->second);
    }
  }
  absl::MutexLock lock(&mu_);
  std::vector<std::string> names;
  for (const auto& [name, live] : names_and_liveness) {
    names.push_back(name);
    if (auto g = agent_up_->WithLabels({name}); g.ok()) (*g)->Set(live ? 1 : 0);
  }
  for (const std::string& old : agent_up_names_) {
    if (std::find(names.begin(), names.end(), old) == names.end()) agent_up_->Remove({old});
  }
  agent_up_names_ = std::move(names);
}

void CoordinatorMetrics::SetJobs(const JobStats& stats) {
  for (int s = v1::JOB_STATE_QUEUED; s <= v1::JOB_STATE_INTERRUPTED; ++s) {
    const auto state = static_cast<v1::JobState>(s);
    auto it = stats.by_state.find(state);
    if (auto g = jobs_->WithLabels({JobStateLabel(state)}); g.ok()) {
      (*g)->Set(it == stats.by_state.end() ? 0 : it->second);
    }
  }
  queue_depth_->Set(stats.queue_depth);
  oldest_age_->Set(absl::ToDoubleSeconds(stats.oldest_queued));
  for (const auto& [why, count] : stats.waiting_by_why) {
    if (auto g = waiting_->WithLabels({why}); g.ok()) (*g)->Set(count);
  }
}

void CoordinatorMetrics::ForgetJobLocked(const std::string& job_id) {
  auto it = result_series_.find(job_id);
  if (it == result_series_.end()) return;
  for (const SeriesRef& s : it->second) {
    if (auto g = registry_.GetGauge(s.family); g.ok()) {
      (*g)->Remove(s.labels);
    } else if (auto sm = registry_.GetSummary(s.family); sm.ok()) {
      (*sm)->Remove(s.labels);
    }
  }
  result_series_.erase(it);
}

void CoordinatorMetrics::SetPointResult(absl::string_view job_id, absl::string_view model,
                                        const v1::PointWorkload& w, const v1::PointResult& r) {
  const std::string job(job_id);
  const std::string point = absl::StrCat(r.point_index());
  const std::string batch = absl::StrCat(w.batch_size());
  const std::string hardware = r.hardware().empty() ? "unknown" : r.hardware();
  const std::string model_label = model.empty() ? "unknown" : std::string(model);
  absl::MutexLock lock(&mu_);
  if (result_series_.count(job) == 0) {
    result_jobs_.push_back(job);
    result_series_[job];
    while (result_jobs_.size() > max_result_jobs_) {
      ForgetJobLocked(result_jobs_.front());
      result_jobs_.pop_front();
    }
  }
  std::vector<SeriesRef>& series = result_series_[job];
  const auto gauge = [&](absl::string_view family, std::vector<std::string> labels, double v) {
    absl::StatusOr<tm::GaugeFamily*> f = registry_.GetGauge(family);
    if (!f.ok()) return;
    if (auto g = (*f)->WithLabels(labels); g.ok()) {
      (*g)->Set(v);
      series.push_back({std::string(family), std::move(labels)});
    }
  };
  const v1::PhaseResult* prefill = nullptr;
  const v1::PhaseResult* decode = nullptr;
  for (const v1::PhaseResult& p : r.phases()) {
    const std::string phase = PhaseLabel(p.phase());
    if (p.phase() == v1::PHASE_PREFILL) prefill = &p;
    if (p.phase() == v1::PHASE_DECODE) decode = &p;
    const std::vector<std::string> labels = {job, point, model_label, hardware, phase, batch};
    gauge(tm::kResultSparseMbu, labels, p.s_mbu());
    gauge(tm::kResultSparseMfu, labels, p.s_mfu());
    gauge(tm::kResultDenseMbu, labels, p.dense_mbu());
    gauge(tm::kResultDenseMfu, labels, p.dense_mfu());
    gauge(tm::kResultStepBytes, labels, p.bytes());
    gauge(tm::kResultStepFlops, labels, p.flops());
    if (p.has_energy_joules_per_step()) {
      gauge(tm::kResultJoulesPerToken, labels, p.joules_per_token());
      gauge(tm::kResultPowerWatts, labels, p.mean_power_watts());
    }
    if (auto f = registry_.GetSummary(tm::kResultStepSeconds); f.ok()) {
      if (auto s = (*f)->WithLabels(labels); s.ok()) {
        const v1::Percentiles& t = p.step_time();
        const double values[] = {t.p50(), t.p90(), t.p99()};
        (void)(*s)->Set(values, t.mean() * static_cast<double>(t.count()),
                        static_cast<uint64_t>(std::max<int64_t>(0, t.count())));
        series.push_back({std::string(tm::kResultStepSeconds), labels});
      }
    }
    if (p.rank_step_time_ratio() > 0) {
      gauge(tm::kResultImbalanceRatio, {job, point, phase, batch}, p.rank_step_time_ratio());
    }
    for (const v1::NodeResult& n : r.nodes()) {
      for (const v1::NodePhaseResult& np : n.phases()) {
        if (np.phase() != p.phase()) continue;
        const std::string agent = n.agent_name().empty() ? n.agent_id() : n.agent_name();
        gauge(tm::kResultNodeSparseMbu, {job, point, phase, batch, agent}, np.s_mbu());
        gauge(tm::kResultNodeSparseMfu, {job, point, phase, batch, agent}, np.s_mfu());
      }
    }
  }
  const std::vector<std::string> point_labels = {job, point, model_label, hardware, batch};
  gauge(tm::kResultDevices, point_labels, r.devices());
  if (r.has_cost()) {
    gauge(tm::kResultUsdPerMillionOutputTokens, point_labels,
          r.cost().usd_per_million_output_tokens());
    gauge(tm::kResultUsdPerMillionTotalTokens, point_labels,
          r.cost().usd_per_million_total_tokens());
  }
  if (prefill != nullptr && decode != nullptr) {
    const double t =
        BatchSeconds(prefill->step_time().mean(), decode->step_time().mean(), w.output_len());
    if (t > 0) {
      gauge(tm::kResultOutputTokensPerSecond, point_labels,
            static_cast<double>(w.batch_size() * w.output_len()) / t);
    }
  }
}

}  // namespace moecap::coordinator
