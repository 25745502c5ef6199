// AssignmentRunner: one assignment at a time, each reported exactly once (result or failure).
#include "agent/daemon/assignment_runner.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/compute/cpu_backend.h"
#include "agent/compute/host_probe.h"
#include "agent/daemon/assignment_check.h"
#include "agent/daemon/failure_class.h"
#include "agent/daemon/progress_tracker.h"
#include "agent/daemon/worker.h"
#include "agent/workload/node_report.h"
#include "agent/workload/rank_report.h"
#include "common/status_macros.h"
#include "google/protobuf/util/message_differencer.h"
#include "spdlog/spdlog.h"

namespace moecap::agentd {
namespace {

// Gloo's (cpu) or NCCL's (cuda) keys inside the assignment's rendezvous scope (the scope already
// isolates attempts).
constexpr char kGlooKeyPrefix[] = "gloo";
constexpr char kNcclKeyPrefix[] = "nccl";

std::optional<absl::Time> FromProtoTime(const google::protobuf::Timestamp& time) {
  if (time.seconds() == 0 && time.nanos() == 0) return std::nullopt;
  return absl::FromUnixSeconds(time.seconds()) + absl::Nanoseconds(time.nanos());
}

// A job id as a directory name: anything but [A-Za-z0-9._-] becomes '_'.
std::string DirName(absl::string_view id) {
  std::string out(id);
  for (char& c : out) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.';
    if (!keep) c = '_';
  }
  return out.empty() || out[0] == '.' ? absl::StrCat("job", out) : out;
}

std::string Describe(const v1::Assignment& a) {
  return absl::StrCat("job ", a.job_id(), " point ", a.point_index(), " attempt ", a.attempt());
}

LaunchFn DefaultLaunch() {
  return [](const LaunchOptions& options, const WorkloadConfig& config) {
    return LocalLauncher(options).Run(config);
  };
}

}  // namespace

AssignmentRunner::AssignmentRunner(AgentOptions options, v1::AgentInfo info, RunnerDeps deps)
    : options_(std::move(options)),
      info_(std::move(info)),
      deps_(std::move(deps)),
      sender_(*deps_.clock, deps_.agent_id, stopping_) {
  if (!deps_.launch) deps_.launch = DefaultLaunch();
}

AssignmentRunner::~AssignmentRunner() { Stop(); }

void AssignmentRunner::OnAssignment(const v1::Assignment& assignment) {
  std::string refusal;
  {
    absl::MutexLock lock(&mu_);
    // The coordinator sends the next point as soon as this agent's ReportNode for the last one is
    // in, which can be before the run's thread has cleared `current_`: give it a moment.
    // (A repeat of the running assignment is answered at once below.)
    auto settled = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (current_ == nullptr) return true;
      const v1::Assignment& running = current_->assignment;
      return running.job_id() == assignment.job_id() &&
             running.point_index() == assignment.point_index() &&
             running.attempt() == assignment.attempt();
    };
    mu_.AwaitWithTimeout(absl::Condition(&settled), options_.busy_grace);
    if (current_ != nullptr) {
      const v1::Assignment& running = current_->assignment;
      if (running.job_id() == assignment.job_id() &&
          running.point_index() == assignment.point_index() &&
          running.attempt() == assignment.attempt()) {
        spdlog::info("{} is already running here; the repeated assignment is ignored",
                     Describe(assignment));
        return;
      }
      refusal = absl::StrCat("the agent is busy with ", Describe(running));
    } else if (stopping_.HasBeenNotified()) {
      refusal = "the agent is shutting down";
    } else if (draining_) {
      refusal = "the agent is draining (it takes no new assignment)";
    } else {
      if (thread_.joinable()) thread_.join();  // the last run has finished (current_ is null)
      auto cancel = std::make_shared<std::atomic<bool>>(false);
      current_ = std::make_unique<Current>(Current{assignment, cancel});
      thread_ = std::thread([this, assignment, cancel] { Run(assignment, cancel); });
      return;
    }
  }
  spdlog::warn("refusing {}: {}", Describe(assignment), refusal);
  v1::ReportFailureRequest request;
  request.set_agent_id(deps_.agent_id());
  request.set_job_id(assignment.job_id());
  request.set_point_index(assignment.point_index());
  request.set_attempt(assignment.attempt());
  request.set_rank(-1);
  request.set_kind(v1::FAILURE_KIND_SETUP);
  request.set_reason(refusal);
  request.set_retryable(true);
  if (absl::Status s = deps_.client->ReportFailure(request); !s.ok()) {
    spdlog::warn("could not report the refusal: {}", s.ToString());
  }
}

void AssignmentRunner::OnReregistered() {
  absl::MutexLock lock(&mu_);
  if (current_ == nullptr) return;
  spdlog::warn(
      "registered again while running {}: the coordinator no longer counts on it; "
      "stopping it",
      Describe(current_->assignment));
  current_->cancel->store(true);
}

void AssignmentRunner::OnCancel(const v1::Cancel& cancel) {
  absl::MutexLock lock(&mu_);
  if (current_ == nullptr) return;
  const v1::Assignment& a = current_->assignment;
  const bool matches = cancel.job_id() == a.job_id() &&
                       (cancel.point_index() == -1 || cancel.point_index() == a.point_index()) &&
                       (cancel.attempt() == 0 || cancel.attempt() == a.attempt());
  if (!matches) return;
  spdlog::info("cancelling {}: {}", Describe(a), cancel.reason());
  current_->cancel->store(true);
}

void AssignmentRunner::OnDrain() {
  absl::MutexLock lock(&mu_);
  if (!draining_) spdlog::info("draining: no new assignment will be taken");
  draining_ = true;
}

v1::HeartbeatRequest AssignmentRunner::State() {
  v1::HeartbeatRequest state;
  {
    absl::MutexLock lock(&mu_);
    if (current_ != nullptr) {
      state.set_state(v1::AGENT_STATE_BUSY);
      state.set_current_job_id(current_->assignment.job_id());
      state.set_current_point_index(current_->assignment.point_index());
      state.set_current_attempt(current_->assignment.attempt());
    } else {
      state.set_state(draining_ ? v1::AGENT_STATE_DRAINING : v1::AGENT_STATE_IDLE);
    }
  }
  if (absl::StatusOr<int64_t> available = MemAvailableBytes(); available.ok()) {
    const int64_t total = static_cast<int64_t>(info_.inventory().host_memory_bytes());
    state.mutable_usage()->set_host_memory_used_bytes(
        static_cast<uint64_t>(std::max<int64_t>(0, total - *available)));
  }
  return state;
}

void AssignmentRunner::Stop() {
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  std::thread thread;
  {
    absl::MutexLock lock(&mu_);
    if (current_ != nullptr) current_->cancel->store(true);
    thread = std::move(thread_);
  }
  if (thread.joinable()) thread.join();
}

bool AssignmentRunner::WaitIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(
          +[](std::unique_ptr<Current>* current) { return *current == nullptr; }, &current_),
      timeout);
}

void AssignmentRunner::Run(v1::Assignment assignment, std::shared_ptr<std::atomic<bool>> cancel) {
  spdlog::info("starting {} ({} of {} ranks here)", Describe(assignment), assignment.ranks_size(),
               assignment.world_size());
  if (deps_.metrics != nullptr) {
    deps_.metrics->JobStarted(assignment.job_id(), assignment.point_index());
  }
  const absl::Status failure = Execute(assignment, *cancel);
  if (!failure.ok()) ReportFailure(assignment, failure, cancel->load());
  if (deps_.metrics != nullptr) deps_.metrics->JobFinished();
  spdlog::info("{} is over; idle", Describe(assignment));
  absl::MutexLock lock(&mu_);
  current_.reset();
}

absl::StatusOr<WorkloadConfig> AssignmentRunner::PrepareConfig(const v1::Assignment& a) const {
  return CheckAssignment(a, info_, *deps_.catalog, options_.threads_per_rank);
}

LaunchOptions AssignmentRunner::MakeLaunchOptions(const v1::Assignment& a,
                                                  std::atomic<bool>& cancel) const {
  LaunchOptions launch;
  launch.executable = options_.executable;
  launch.worker_args = {"--worker"};
  for (const v1::RankAssignment& r : a.ranks()) launch.rank_ids.push_back(r.rank());
  std::sort(launch.rank_ids.begin(), launch.rank_ids.end());
  launch.ranks = static_cast<int>(launch.rank_ids.size());
  const bool cuda = info_.backend() == v1::BACKEND_CUDA;
  launch.backend = cuda ? v1::BACKEND_CUDA : v1::BACKEND_CPU;
  // Each rank runs on its slot: on a GPU agent the slot index is the GPU's CUDA ordinal.
  for (int rank : launch.rank_ids) {
    for (const v1::RankAssignment& r : a.ranks()) {
      if (r.rank() == rank) launch.devices.push_back(r.device_index());
    }
  }
  launch.world_size = a.world_size();
  const absl::Time now = deps_.clock->Now();
  const std::optional<absl::Time> deadline = FromProtoTime(a.deadline());
  launch.timeout = deadline.has_value() ? std::max(*deadline - now, absl::Seconds(1))
                   : a.workload().timeouts().has_point_seconds()
                       ? absl::Seconds(a.workload().timeouts().point_seconds())
                       : options_.default_point_timeout;
  launch.work_dir = absl::StrCat(options_.work_dir, "/", DirName(a.job_id()), "-p", a.point_index(),
                                 "-a", a.attempt());
  launch.hostname = options_.data_address;
  launch.key_prefix = cuda ? kNcclKeyPrefix : kGlooKeyPrefix;
  // Without a scope (a one-rank point) the ranks meet in the job directory instead.
  if (!a.rendezvous_prefix().empty()) {
    launch.grpc_store = GrpcStoreEndpointOf(options_.coordinator, deps_.agent_id(),
                                            a.rendezvous_prefix(), options_.security);
  }
  launch.cancel = &cancel;
  launch.job_id = a.job_id();
  launch.point_index = a.point_index();
  launch.attempt = a.attempt();
  return launch;
}

absl::Status AssignmentRunner::Execute(const v1::Assignment& a, std::atomic<bool>& cancel) {
  const absl::Time started = deps_.clock->Now();
  const auto send_progress = [&](const v1::Progress& progress) {
    v1::ReportProgressRequest request;
    request.set_agent_id(deps_.agent_id());
    request.set_job_id(a.job_id());
    request.set_point_index(a.point_index());
    request.set_attempt(a.attempt());
    request.set_rank(-1);
    *request.mutable_progress() = progress;
    absl::StatusOr<v1::ReportProgressResponse> response = deps_.client->ReportProgress(request);
    if (!response.ok()) {
      spdlog::debug("progress not delivered: {}", response.status().ToString());
    } else if (response->cancelled()) {
      spdlog::info("the coordinator says {} was cancelled", Describe(a));
      cancel.store(true);
    }
  };
  v1::Progress setup;
  setup.set_stage(v1::Progress::STAGE_SETUP);
  send_progress(setup);

  absl::StatusOr<WorkloadConfig> config = PrepareConfig(a);
  if (!config.ok()) return config.status();
  LaunchOptions launch = MakeLaunchOptions(a, cancel);
  std::error_code error;
  std::filesystem::remove_all(launch.work_dir, error);  // a crashed earlier run's leftovers
  std::filesystem::create_directories(options_.work_dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create --work-dir ", options_.work_dir, ": ", error.message()));
  }
  if (cancel.load()) return absl::CancelledError("cancelled before the ranks started");

  // Progress: the launcher hands over the ranks' records as they come; this thread sends the
  // slowest rank's position whenever it changes, at most every progress_interval.
  ProgressTracker tracker(launch.rank_ids, *config);
  launch.on_progress = [&tracker](int rank, const v1::Progress& p) { tracker.Observe(rank, p); };
  absl::Notification launched;
  std::thread progress_thread([&] {
    std::optional<v1::Progress> last;
    while (!deps_.clock->WaitUntil(deps_.clock->Now() + options_.progress_interval, launched)) {
      const v1::Progress now = tracker.Current();
      if (!last.has_value() || !google::protobuf::util::MessageDifferencer::Equals(now, *last)) {
        send_progress(now);
        last = now;
      }
    }
  });
  absl::StatusOr<std::vector<v1::RankOutput>> results = deps_.launch(launch, *config);
  launched.Notify();
  progress_thread.join();

  if (cancel.load()) {
    return absl::CancelledError(stopping_.HasBeenNotified() ? "the agent is shutting down"
                                                            : "cancelled by the coordinator");
  }
  if (!results.ok()) return results.status();

  for (const v1::RankOutput& r : *results) {
    if (r.reports_size() != 1) {
      return absl::InternalError(absl::StrCat("rank ", r.rank(), " reported ", r.reports_size(),
                                              " batch sizes for a point of one"));
    }
  }
  // A failed check is a result the coordinator must not aggregate: the point fails (CHECK).
  std::vector<std::string> failed_checks;
  for (const v1::RankOutput& r : *results) {
    for (const v1::RankReport& report : r.reports()) {
      const v1::CheckResult& check = report.check();
      if (check.checked() && !check.passed()) {
        failed_checks.push_back(absl::StrCat("rank ", r.rank(), ": ", check.detail()));
      }
    }
  }
  if (!failed_checks.empty()) {
    v1::ReportFailureRequest request;
    request.set_job_id(a.job_id());
    request.set_point_index(a.point_index());
    request.set_attempt(a.attempt());
    request.set_rank(-1);
    request.set_kind(v1::FAILURE_KIND_CHECK);
    request.set_reason(absl::StrCat("the output differs from the single-rank reference: ",
                                    absl::StrJoin(failed_checks, "; ")));
    request.set_retryable(false);
    spdlog::warn("{}: {}", Describe(a), request.reason());
    sender_.Send("ReportFailure", deps_.clock->Now() + options_.report_retry,
                 [&](const std::string& id) {
                   request.set_agent_id(id);
                   return deps_.client->ReportFailure(request);
                 });
    return absl::OkStatus();
  }
  ReportResults(a, *config, *results, started);
  return absl::OkStatus();
}

void AssignmentRunner::ReportResults(const v1::Assignment& a, const WorkloadConfig& config,
                                     const std::vector<v1::RankOutput>& outputs,
                                     absl::Time started) {
  const absl::Time finished = deps_.clock->Now();
  v1::ReportProgressRequest progress;
  progress.set_agent_id(deps_.agent_id());
  progress.set_job_id(a.job_id());
  progress.set_point_index(a.point_index());
  progress.set_attempt(a.attempt());
  progress.set_rank(-1);
  progress.mutable_progress()->set_stage(v1::Progress::STAGE_REPORT);
  progress.mutable_progress()->set_phase(
      a.workload().phases().empty()
          ? v1::PHASE_UNSPECIFIED
          : static_cast<v1::Phase>(a.workload().phases(a.workload().phases_size() - 1)));
  const int64_t total = static_cast<int64_t>(config.iterations) * a.workload().phases_size();
  progress.mutable_progress()->set_iterations_done(total);
  progress.mutable_progress()->set_iterations_total(total);
  progress.mutable_progress()->set_ranks_reporting(static_cast<int32_t>(outputs.size()));
  if (absl::StatusOr<v1::ReportProgressResponse> r = deps_.client->ReportProgress(progress);
      !r.ok()) {
    spdlog::debug("progress not delivered: {}", r.status().ToString());
  }

  const absl::Time until = deps_.clock->Now() + options_.report_retry;
  // Each rank's report goes out as it is made (ReportRank); the node report then carries only
  // those that could not be delivered, so nothing travels or is stored twice.
  std::vector<v1::RankReport> undelivered;
  std::vector<v1::RankReport> all;
  for (const v1::RankOutput& output : outputs) {
    // The rank made its report for the assignment's point (its one batch size), identity and
    // device included.
    v1::ReportRankRequest request;
    *request.mutable_report() = output.reports(0);
    const bool delivered = sender_.Send(absl::StrCat("ReportRank of rank ", output.rank()), until,
                                        [&](const std::string& id) {
                                          request.mutable_report()->set_agent_id(id);
                                          return deps_.client->ReportRank(request);
                                        });
    if (!delivered) undelivered.push_back(request.report());
    all.push_back(request.report());
  }
  NodeRun run;
  run.job_id = a.job_id();
  run.point_index = a.point_index();
  run.attempt = a.attempt();
  run.hostname = info_.hostname();
  run.devices.assign(info_.inventory().devices().begin(), info_.inventory().devices().end());
  run.start = started;
  run.end = finished;
  run.environment["moecap_version"] = options_.version;
  if (!outputs.empty()) {
    const v1::RankEnvironment& environment = outputs.front().environment();
    run.environment["backend"] = environment.backend();
    run.environment["blas"] = environment.library();
    run.environment["communicator"] = environment.communicator();
    run.environment["threads_per_rank"] = absl::StrCat(environment.threads());
  }
  run.environment["os"] = info_.inventory().os();
  run.environment["cpu_model"] = info_.inventory().cpu_model();
  // The devices come from every rank's report; the ranks inside only when some went undelivered
  // (then all of them: the coordinator takes a node report's ranks as given).
  v1::NodeReport node = BuildNodeReport(all, run, /*ranks_included=*/!undelivered.empty());
  v1::ReportNodeRequest request;
  *request.mutable_report() = std::move(node);
  sender_.Send("ReportNode", until, [&](const std::string& id) {
    request.mutable_report()->set_agent_id(id);
    for (v1::RankReport& rank : *request.mutable_report()->mutable_ranks()) rank.set_agent_id(id);
    return deps_.client->ReportNode(request);
  });
  if (deps_.metrics != nullptr) deps_.metrics->RecordResults(a.job_id(), all);
  spdlog::info("{} reported: {} rank(s)", Describe(a), outputs.size());
}

void AssignmentRunner::ReportFailure(const v1::Assignment& a, const absl::Status& status,
                                     bool cancelled) {
  FailureClass failure = ClassifyFailure(status);
  if (cancelled) failure = {v1::FAILURE_KIND_CANCELLED, false};
  v1::ReportFailureRequest request;
  request.set_job_id(a.job_id());
  request.set_point_index(a.point_index());
  request.set_attempt(a.attempt());
  request.set_rank(-1);
  request.set_kind(failure.kind);
  request.set_reason(std::string(status.message()));
  request.set_retryable(failure.retryable);
  spdlog::warn("{} failed ({}): {}", Describe(a), v1::FailureKind_Name(failure.kind),
               std::string(status.message()));
  sender_.Send("ReportFailure", deps_.clock->Now() + options_.report_retry,
               [&](const std::string& id) {
                 request.set_agent_id(id);
                 return deps_.client->ReportFailure(request);
               });
}

}  // namespace moecap::agentd
