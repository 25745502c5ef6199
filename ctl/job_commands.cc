// submit, watch, status, results, cancel, agents.
#include "ctl/job_commands.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/aggregate/aggregator.h"
#include "common/status_macros.h"
#include "ctl/format.h"
#include "ctl/results_view.h"

namespace moecap::ctl {
namespace {

void AddClusterFlags(CLI::App* cmd, ClusterOptions& o) {
  cmd->add_option("--coordinator", o.coordinator,
                  absl::StrCat("coordinator HOST:PORT (default $MOECAP_COORDINATOR, else ",
                               kDefaultCoordinator, ")"));
  cmd->add_option("--timeout-s", o.timeout_s, "seconds to wait for each request")
      ->capture_default_str();
  cmd->add_option("--token", o.token,
                  "bearer token from the coordinator's --tokens-file (default $MOECAP_TOKEN)");
  cmd->add_option("--token-file", o.token_file, "file whose first line is the bearer token");
  cmd->add_option("--tls-ca", o.tls_ca,
                  "PEM CA of the coordinator's certificate: connect with TLS (default "
                  "$MOECAP_TLS_CA; without it: plaintext)");
  cmd->add_option("--tls-cert", o.tls_cert, "PEM client certificate (optional, with --tls-ca)");
  cmd->add_option("--tls-key", o.tls_key, "PEM key of --tls-cert");
  cmd->add_option(
      "--tls-server-name", o.tls_server_name,
      "name expected in the coordinator's certificate (default: the --coordinator host)");
  cmd->add_flag("--insecure", o.insecure,
                "plaintext, even when sending a token to a non-local coordinator");
}

absl::Status RequireJobId(const std::string& job_id) {
  if (job_id.empty()) return UsageError("JOB: a job id is required (see `moecapctl status`)");
  return absl::OkStatus();
}

std::string TimeText(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixSeconds(ts.seconds()),
                          absl::LocalTimeZone());
}

std::string ProgressBar(double fraction, int width) {
  const int filled = static_cast<int>(fraction * width + 0.5);
  return absl::StrCat("[", std::string(std::max(0, filled), '#'),
                      std::string(std::max(0, width - filled), '.'), "]");
}

bool IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

// Draws the watch: state changes as lines; progress as one line redrawn in place on a terminal
// (and only at a few points per iteration count otherwise, so logs stay short).
class WatchPrinter {
 public:
  explicit WatchPrinter(std::ostream& out) : out_(out), tty_(isatty(STDOUT_FILENO) != 0) {}

  void Event(const v1::WatchJobResponse& event) {
    switch (event.event_case()) {
      case v1::WatchJobResponse::kSnapshot:
        Snapshot(event.snapshot());
        break;
      case v1::WatchJobResponse::kJobState:
        JobState(event.job_state().transition());
        break;
      case v1::WatchJobResponse::kPointState:
        PointState(event.point_state().point_index(), event.point_state().transition());
        break;
      case v1::WatchJobResponse::kProgress:
        Progress(event.progress());
        break;
      case v1::WatchJobResponse::kResult:
        Result(event.result());
        break;
      case v1::WatchJobResponse::kPlacement:
        Placement(event.placement());
        break;
      case v1::WatchJobResponse::EVENT_NOT_SET:
        break;
    }
  }
  // A second watch of the same job: its snapshot updates the state without a header line.
  void set_quiet_snapshot(bool quiet) { quiet_snapshot_ = quiet; }

  void Snapshot(const v1::Job& job) {
    points_total_ = job.points_total();
    state_ = job.state();
    if (!quiet_snapshot_) {
      Line(absl::StrFormat("job %s (%s): %s, %d point(s)", job.id(), job.name(),
                           JobStateName(job.state()), job.points_total()));
    }
    if (job.state() == v1::JOB_STATE_QUEUED && job.has_placement()) Placement(job.placement());
  }
  // A queued job's wait verdict, printed when it changes.
  void Placement(const v1::PlacementVerdict& v) {
    if (v.reason().empty() || v.reason() == placement_.reason()) return;
    placement_ = v;
    Line(absl::StrCat("job waits: ", v.reason()));
  }
  const v1::PlacementVerdict& placement() const { return placement_; }
  void JobState(const v1::StateTransition& t) {
    state_ = t.state();
    if (t.state() != v1::JOB_STATE_QUEUED) placement_.Clear();
    // Points report their own rendezvous/running/aggregating steps; the job's echo adds nothing.
    if (t.state() == v1::JOB_STATE_RENDEZVOUS || t.state() == v1::JOB_STATE_RUNNING ||
        t.state() == v1::JOB_STATE_AGGREGATING) {
      return;
    }
    Line(absl::StrCat("job ", JobStateName(t.state()),
                      t.reason().empty() ? "" : absl::StrCat(": ", t.reason())));
  }
  void PointState(int point, const v1::StateTransition& t) {
    if (IsTerminal(t.state())) ++points_done_;
    Line(absl::StrFormat("point %d/%d %s%s", point + 1, points_total_, JobStateName(t.state()),
                         t.reason().empty() ? "" : absl::StrCat(": ", t.reason())));
  }
  void Progress(const v1::PointProgress& p) {
    const v1::Progress& pr = p.progress();
    if (pr.iterations_total() <= 0) return;  // setup: nothing to measure yet
    const double fraction =
        static_cast<double>(pr.iterations_done()) / static_cast<double>(pr.iterations_total());
    const std::string text = absl::StrFormat(
        "point %d/%d %s %s %s %d/%d", p.point_index() + 1, points_total_, PhaseName(pr.phase()),
        absl::AsciiStrToLower(v1::Progress::Stage_Name(pr.stage()).substr(6)),
        ProgressBar(fraction, 24), pr.iterations_done(), pr.iterations_total());
    if (tty_) {
      out_ << "\r" << text << "\033[K" << std::flush;
      pending_ = true;
    } else if (pr.iterations_done() == pr.iterations_total()) {
      out_ << text << "\n";
    }
  }
  void Result(const v1::PointResult& r) {
    std::vector<std::string> parts;
    for (const v1::PhaseResult& ph : r.phases()) {
      // Decoder layers split the step: attention (its busiest rank), dense FFNs where the stack has
      // them, and the MoE blocks.
      const v1::PhaseTimes& sub = ph.sub_times();
      const std::string dense =
          sub.has_dense_ffn() ? absl::StrCat(", dense ffn ", HumanSeconds(sub.dense_ffn().mean()))
                              : "";
      const std::string split =
          sub.has_attention()
              ? absl::StrCat(" (attention ", HumanSeconds(sub.attention().mean()), dense, ", moe ",
                             HumanSeconds(MoeMeanSeconds(sub)), ")")
              : "";
      parts.push_back(absl::StrFormat("%s S-MBU %s S-MFU %s%s", PhaseName(ph.phase()),
                                      Percent(ph.s_mbu()), Percent(ph.s_mfu()), split));
    }
    Line(absl::StrFormat("point %d/%d result: %s", r.point_index() + 1, points_total_,
                         absl::StrJoin(parts, ", ")));
  }
  v1::JobState state() const { return state_; }

 private:
  void Line(const std::string& text) {
    if (pending_) out_ << "\r\033[K";
    pending_ = false;
    out_ << text << "\n" << std::flush;
  }

  std::ostream& out_;
  bool tty_;
  bool pending_ = false;
  int points_total_ = 0;
  int points_done_ = 0;
  v1::JobState state_ = v1::JOB_STATE_UNSPECIFIED;
  v1::PlacementVerdict placement_;  // the latest, while queued
  bool quiet_snapshot_ = false;
};

}  // namespace

ClientOptions ClusterOptions::ToClientOptions() const {
  ClientOptions o;
  o.address = coordinator;
  o.timeout = absl::Seconds(timeout_s);
  o.token = token;
  o.token_file = token_file;
  o.tls_ca_file = tls_ca;
  o.tls_cert_file = tls_cert;
  o.tls_key_file = tls_key;
  o.tls_server_name = tls_server_name;
  o.insecure = insecure;
  return o;
}

CLI::App* RegisterSubmitCommand(CLI::App& app, SubmitOptions& o) {
  CLI::App* cmd = app.add_subcommand("submit", "submit a benchmark plan (YAML) to the coordinator");
  cmd->add_option("PLAN", o.plan_path, "plan file (see docs/plans.md)")->required();
  cmd->add_flag("--wait", o.wait, "watch the job until it ends, then print its results");
  cmd->add_flag("--dry-run", o.dry_run, "validate and expand the plan without queueing it");
  cmd->add_option("--wait-timeout-s", o.wait_timeout_s, "give up watching after this long")
      ->capture_default_str();
  cmd->add_option("--agents-grace-s", o.agents_grace_s,
                  "with --wait: how long a job that needs more agents than are registered waits "
                  "for them before moecapctl gives up (exit 3); 0: at once")
      ->capture_default_str();
  cmd->add_option("-o,--output", o.output, "results format with --wait: table, json, csv")
      ->capture_default_str();
  AddClusterFlags(cmd, o.cluster);
  return cmd;
}

CLI::App* RegisterWatchCommand(CLI::App& app, WatchOptions& o) {
  CLI::App* cmd = app.add_subcommand("watch", "follow a job's progress until it ends");
  cmd->add_option("JOB", o.job_id, "job id")->required();
  cmd->add_option("--watch-timeout-s", o.timeout_s, "give up after this long")
      ->capture_default_str();
  cmd->add_option("--agents-grace-s", o.agents_grace_s,
                  "how long a job that needs more agents than are registered waits for them "
                  "before moecapctl gives up (exit 3); 0: at once")
      ->capture_default_str();
  AddClusterFlags(cmd, o.cluster);
  return cmd;
}

CLI::App* RegisterStatusCommand(CLI::App& app, StatusOptions& o) {
  CLI::App* cmd = app.add_subcommand("status", "list jobs, or show one job and its points");
  cmd->add_option("JOB", o.job_id, "job id (omit to list jobs)");
  cmd->add_option("-o,--output", o.output, "table or json")->capture_default_str();
  AddClusterFlags(cmd, o.cluster);
  return cmd;
}

CLI::App* RegisterResultsCommand(CLI::App& app, ResultsOptions& o) {
  CLI::App* cmd = app.add_subcommand("results", "a job's results: S-MBU, S-MFU, cost per point");
  cmd->add_option("JOB", o.job_id, "job id")->required();
  cmd->add_option("-o,--output", o.output, "table, json or csv")->capture_default_str();
  cmd->add_flag("--explain", o.explain, "print each term of the byte and FLOP counts");
  AddClusterFlags(cmd, o.cluster);
  return cmd;
}

CLI::App* RegisterCancelCommand(CLI::App& app, CancelOptions& o) {
  CLI::App* cmd = app.add_subcommand("cancel", "cancel a queued or running job");
  cmd->add_option("JOB", o.job_id, "job id")->required();
  cmd->add_option("--reason", o.reason, "recorded with the job");
  AddClusterFlags(cmd, o.cluster);
  return cmd;
}

CLI::App* RegisterAgentsCommand(CLI::App& app, AgentsOptions& o) {
  CLI::App* cmd = app.add_subcommand("agents", "list the agents and their hardware");
  cmd->add_option("-o,--output", o.output, "table or json")->capture_default_str();
  AddClusterFlags(cmd, o.cluster);
  return cmd;
}

absl::StatusOr<v1::JobState> WatchUntilDone(CoordinatorClient& client, const std::string& job_id,
                                            absl::Duration timeout, const CommandIo& io,
                                            absl::Duration agents_grace) {
  WatchPrinter printer(io.out);
  v1::WatchJobRequest request;
  request.set_job_id(job_id);
  request.set_include_progress(true);
  const absl::Time start = absl::Now();
  const bool grace = agents_grace > absl::ZeroDuration();
  const auto unplaceable = [&] {
    return printer.state() == v1::JOB_STATE_QUEUED && printer.placement().needs_more_agents();
  };
  // Within a grace, the first watch ends at its end (the verdict may not change before it), and
  // a second one, from a new snapshot, watches on for the rest of the timeout.
  absl::Status status = client.WatchJob(request, grace ? std::min(timeout, agents_grace) : timeout,
                                        [&](const v1::WatchJobResponse& event) {
                                          printer.Event(event);
                                          // No registered agents could run it: waiting would last
                                          // until someone registers more.
                                          if (!grace && unplaceable()) return false;
                                          return !IsTerminal(printer.state());
                                        });
  if (grace && absl::IsDeadlineExceeded(status) && !unplaceable() &&
      absl::Now() - start < timeout) {
    printer.set_quiet_snapshot(true);  // the same job again: no second header line
    status = client.WatchJob(request, timeout - (absl::Now() - start),
                             [&](const v1::WatchJobResponse& event) {
                               printer.Event(event);
                               return !IsTerminal(printer.state());
                             });
  }
  const v1::PlacementVerdict& verdict = printer.placement();
  if (unplaceable() && (!grace || absl::IsDeadlineExceeded(status))) {
    return UnplaceableError(absl::StrCat(
        "job ", job_id, " cannot start: it ", verdict.reason(),
        ". It stays queued; register more agents, or cancel it (moecapctl cancel ", job_id, ")"));
  }
  if (absl::IsDeadlineExceeded(status) && !verdict.reason().empty()) {
    return absl::DeadlineExceededError(absl::StrCat("gave up watching job ", job_id, " after ",
                                                    absl::FormatDuration(timeout),
                                                    ": it is still queued: it ", verdict.reason()));
  }
  if (!status.ok()) return status;
  if (IsTerminal(printer.state())) return printer.state();
  // The stream ended without a terminal event (e.g. the coordinator restarted): ask once.
  v1::GetJobRequest get;
  get.set_job_id(job_id);
  absl::StatusOr<v1::GetJobResponse> job = client.GetJob(get);
  if (!job.ok()) return job.status();
  return job->job().state();
}

absl::Status FinalStateStatus(CoordinatorClient& client, const std::string& job_id,
                              v1::JobState state) {
  if (state == v1::JOB_STATE_SUCCEEDED) return absl::OkStatus();
  v1::GetJobRequest get;
  get.set_job_id(job_id);
  absl::StatusOr<v1::GetJobResponse> job = client.GetJob(get);
  const std::string reason =
      job.ok() && !job->job().failure_reason().empty() ? job->job().failure_reason() : "";
  return absl::AbortedError(absl::StrCat("job ", job_id, " ", JobStateName(state),
                                         reason.empty() ? "" : absl::StrCat(": ", reason)));
}

absl::Status RunSubmitCommand(const SubmitOptions& o, const GlobalOptions& global,
                              const CommandIo& io) {
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(o.output);
  if (!format.ok()) return format.status();
  std::ifstream in(o.plan_path);
  if (!in) return UsageError(absl::StrCat("PLAN: cannot read '", o.plan_path, "'"));
  std::stringstream text;
  text << in.rdbuf();
  CoordinatorClient client(o.cluster.ToClientOptions());
  v1::SubmitPlanRequest request;
  request.set_plan_yaml(text.str());
  request.set_origin(o.plan_path);
  request.set_dry_run(o.dry_run);
  absl::StatusOr<v1::SubmitPlanResponse> response = client.SubmitPlan(request);
  if (!response.ok()) return response.status();
  if (o.dry_run) {
    io.out << "plan " << o.plan_path << " is valid: " << response->job().points_total()
           << " point(s)\n";
    return absl::OkStatus();
  }
  const std::string& job_id = response->job_id();
  if (!o.wait) {
    io.out << job_id << "\n";
    return absl::OkStatus();
  }
  io.err << "submitted job " << job_id << "\n";
  // Table mode interleaves progress with the results; JSON and CSV keep stdout for the results,
  // so that `-o json > results.json` is a file other tools read.
  const CommandIo progress_io{*format == OutputFormat::kTable ? io.out : io.err, io.err};
  absl::StatusOr<v1::JobState> state =
      WatchUntilDone(client, job_id, absl::Seconds(o.wait_timeout_s), progress_io,
                     absl::Seconds(o.agents_grace_s));
  if (!state.ok()) return state.status();
  v1::GetResultsRequest get;
  get.set_job_id(job_id);
  absl::StatusOr<v1::GetResultsResponse> results = client.GetResults(get);
  if (!results.ok()) return results.status();
  if (*format == OutputFormat::kTable) io.out << "\n";
  MOECAP_RETURN_IF_ERROR(PrintJobResults(global, *results, *format, /*explain=*/false, io.out));
  return FinalStateStatus(client, job_id, *state);
}

absl::Status RunWatchCommand(const WatchOptions& o, const CommandIo& io) {
  MOECAP_RETURN_IF_ERROR(RequireJobId(o.job_id));
  CoordinatorClient client(o.cluster.ToClientOptions());
  absl::StatusOr<v1::JobState> state = WatchUntilDone(client, o.job_id, absl::Seconds(o.timeout_s),
                                                      io, absl::Seconds(o.agents_grace_s));
  if (!state.ok()) return state.status();
  return FinalStateStatus(client, o.job_id, *state);
}

absl::Status RunStatusCommand(const StatusOptions& o, const CommandIo& io) {
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(o.output);
  if (!format.ok()) return format.status();
  CoordinatorClient client(o.cluster.ToClientOptions());
  if (o.job_id.empty()) {
    v1::ListJobsRequest request;
    request.set_page_size(1000);
    absl::StatusOr<v1::ListJobsResponse> jobs = client.ListJobs(request);
    if (!jobs.ok()) return jobs.status();
    if (*format == OutputFormat::kJson) {
      absl::StatusOr<std::string> json = ProtoToJson(*jobs);
      if (!json.ok()) return json.status();
      io.out << *json << "\n";
      return absl::OkStatus();
    }
    TextTable table({"job", "name", "model", "state", "points", "submitted", "reason"});
    for (const v1::Job& job : jobs->jobs()) {
      std::string state = JobStateName(job.state());
      if (job.queue_position() > 0) absl::StrAppend(&state, " (#", job.queue_position(), ")");
      table.AddRow({job.id(), job.name(), job.model(), state,
                    absl::StrCat(job.points_done(), "/", job.points_total()),
                    TimeText(job.submit_time()),
                    job.failure_reason().empty() ? job.wait_reason() : job.failure_reason()});
    }
    io.out << table.Render();
    return absl::OkStatus();
  }
  v1::GetJobRequest request;
  request.set_job_id(o.job_id);
  request.set_view(v1::JOB_VIEW_FULL);
  absl::StatusOr<v1::GetJobResponse> response = client.GetJob(request);
  if (!response.ok()) return response.status();
  const v1::Job& job = response->job();
  if (*format == OutputFormat::kJson) {
    absl::StatusOr<std::string> json = ProtoToJson(job);
    if (!json.ok()) return json.status();
    io.out << *json << "\n";
    return absl::OkStatus();
  }
  io.out << absl::StrFormat("job %s (%s), model %s: %s", job.id(), job.name(), job.model(),
                            JobStateName(job.state()));
  if (job.queue_position() > 0) io.out << " (queue position " << job.queue_position() << ")";
  io.out << "\n";
  if (!job.failure_reason().empty()) io.out << "reason: " << job.failure_reason() << "\n";
  if (!job.wait_reason().empty()) io.out << "waits: it " << job.wait_reason() << "\n";
  io.out << "submitted " << TimeText(job.submit_time()) << ", attempts " << job.attempts()
         << "\n\n";
  TextTable history({"time", "state", "reason"});
  for (const v1::StateTransition& t : job.history()) {
    history.AddRow({TimeText(t.time()), JobStateName(t.state()), t.reason()});
  }
  io.out << history.Render() << "\n";
  TextTable points({"point", "parameters", "state", "attempts", "progress", "reason"});
  for (const v1::Point& p : job.points()) {
    std::vector<std::string> params;
    for (const v1::PointParameter& pp : p.parameters()) {
      params.push_back(absl::StrCat(pp.name(), "=", pp.value()));
    }
    std::string progress = "-";
    if (p.has_progress() && p.progress().iterations_total() > 0) {
      progress = absl::StrCat(PhaseName(p.progress().phase()), " ", p.progress().iterations_done(),
                              "/", p.progress().iterations_total());
    }
    points.AddRow({absl::StrCat(p.index()), absl::StrJoin(params, " "), JobStateName(p.state()),
                   absl::StrCat(p.attempts()), progress, p.failure_reason()});
  }
  io.out << points.Render();
  return absl::OkStatus();
}

absl::Status RunResultsCommand(const ResultsOptions& o, const GlobalOptions& global,
                               const CommandIo& io) {
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(o.output);
  if (!format.ok()) return format.status();
  CoordinatorClient client(o.cluster.ToClientOptions());
  v1::GetResultsRequest request;
  request.set_job_id(o.job_id);
  absl::StatusOr<v1::GetResultsResponse> results = client.GetResults(request);
  if (!results.ok()) return results.status();
  if (results->state() == v1::JOB_STATE_QUEUED && !results->placement().reason().empty()) {
    // On stderr: stdout stays the results in the format asked for.
    io.err << "job " << o.job_id << " is queued: it " << results->placement().reason() << "\n";
  }
  // The A of CAP beside the C and P: the scores of the job's model at its points' precisions.
  return PrintJobResults(global, *results, *format, o.explain, io.out);
}

absl::Status RunCancelCommand(const CancelOptions& o, const CommandIo& io) {
  CoordinatorClient client(o.cluster.ToClientOptions());
  v1::CancelJobRequest request;
  request.set_job_id(o.job_id);
  request.set_reason(o.reason.empty() ? "cancelled with moecapctl" : o.reason);
  absl::StatusOr<v1::CancelJobResponse> response = client.CancelJob(request);
  if (!response.ok()) return response.status();
  io.out << "job " << o.job_id << ": " << JobStateName(response->job().state()) << "\n";
  return absl::OkStatus();
}

absl::Status RunAgentsCommand(const AgentsOptions& o, const CommandIo& io) {
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(o.output);
  if (!format.ok()) return format.status();
  CoordinatorClient client(o.cluster.ToClientOptions());
  absl::StatusOr<v1::ListAgentsResponse> agents = client.ListAgents(v1::ListAgentsRequest());
  if (!agents.ok()) return agents.status();
  if (*format == OutputFormat::kJson) {
    absl::StatusOr<std::string> json = ProtoToJson(*agents);
    if (!json.ok()) return json.status();
    io.out << *json << "\n";
    return absl::OkStatus();
  }
  TextTable table(
      {"agent", "name", "state", "backend", "devices", "data plane", "last heartbeat", "job"});
  for (const v1::Agent& a : agents->agents()) {
    std::map<std::string, int> device_names;
    for (const auto& d : a.info().inventory().devices()) ++device_names[d.name()];
    std::vector<std::string> devices;
    for (const auto& [name, count] : device_names) {
      devices.push_back(absl::StrCat(count, " x ", name));
    }
    table.AddRow(
        {a.id(), a.info().name(),
         absl::StrCat(AgentStateName(a.state()),
                      a.state_reason().empty() ? "" : absl::StrCat(" (", a.state_reason(), ")")),
         absl::AsciiStrToLower(v1::Backend_Name(a.info().backend()).substr(8)),
         absl::StrJoin(devices, ", "), a.info().data_plane_host(),
         TimeText(a.last_heartbeat_time()), a.current_job_id()});
  }
  io.out << table.Render();
  return absl::OkStatus();
}

}  // namespace moecap::ctl
