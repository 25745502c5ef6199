// The local cluster: embedded coordinator + agent processes.
#include "ctl/run_local.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "common/subprocess.h"
#include "coordinator/coordinator_server.h"
#include "coordinator/job_builder.h"
#include "ctl/coordinator_client.h"
#include "ctl/job_commands.h"
#include "ctl/results_view.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace moecap::ctl {
namespace {

// The directory of this executable (/proc/self/exe), to find moecap-agent beside it.
std::filesystem::path SelfDirectory() {
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : exe.parent_path();
}

bool IsExecutable(const std::filesystem::path& path) {
  return !path.empty() && access(path.c_str(), X_OK) == 0 && std::filesystem::is_regular_file(path);
}

absl::StatusOr<std::string> FindAgentBinary(const std::string& given) {
  if (!given.empty()) {
    if (IsExecutable(given)) return given;
    return UsageError(absl::StrCat("--agent-binary: '", given, "' is not an executable file"));
  }
  const std::filesystem::path self = SelfDirectory();
  // Installed side by side, or the build tree (build/<preset>/ctl and build/<preset>/agent/...).
  for (const std::filesystem::path& candidate :
       {self / "moecap-agent", self / ".." / "agent" / "daemon" / "moecap-agent",
        self / ".." / "agent" / "moecap-agent"}) {
    if (IsExecutable(candidate)) return candidate.lexically_normal().string();
  }
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
      const std::filesystem::path candidate =
          std::filesystem::path(std::string(dir)) / "moecap-agent";
      if (IsExecutable(candidate)) return candidate.string();
    }
  }
  return absl::NotFoundError(
      "cannot find the moecap-agent binary beside moecapctl or on PATH; build it "
      "(cmake --build --preset release) or pass --agent-binary");
}

// Agent processes that die with this one (PR_SET_PDEATHSIG) and are stopped, politely then
// firmly, when it goes out of scope. Every wait is bounded.
class AgentProcesses {
 public:
  explicit AgentProcesses(const Clock& clock = SystemClock()) : clock_(clock) {}
  ~AgentProcesses() { StopAll(absl::Seconds(5)); }

  absl::Status Start(const std::string& binary, const std::vector<std::string>& args,
                     const std::string& log_path) {
    std::vector<std::string> argv = {binary};
    argv.insert(argv.end(), args.begin(), args.end());
    SpawnOptions options;
    options.stdout_path = options.stderr_path = log_path;
    options.file_mode = 0644;
    absl::StatusOr<Subprocess> agent = Subprocess::Spawn(argv, options, clock_);
    if (!agent.ok()) return agent.status();
    agents_.push_back(*std::move(agent));
    logs_.push_back(log_path);
    return absl::OkStatus();
  }

  // The first agent that has exited, with the tail of its log, or OK while all run.
  absl::Status CheckAlive() {
    for (size_t i = 0; i < agents_.size(); ++i) {
      if (!agents_[i].running()) continue;  // reported already
      if (agents_[i].Poll().has_value()) {
        return absl::InternalError(absl::StrCat("agent ", i, " exited early; its log ", logs_[i],
                                                " ends with:\n", Tail(logs_[i])));
      }
    }
    return absl::OkStatus();
  }

  // SIGTERM to every agent, then `grace` shared by all of them to exit before SIGKILL.
  void StopAll(absl::Duration grace) {
    for (Subprocess& agent : agents_) agent.Signal(SIGTERM);
    const absl::Time deadline = clock_.Now() + grace;
    for (Subprocess& agent : agents_) {
      if (!agent.Wait(deadline - clock_.Now()).has_value()) agent.Kill();
    }
  }

 private:
  static std::string Tail(const std::string& path) {
    std::ifstream in(path);
    std::stringstream buf;
    buf << in.rdbuf();
    const std::string text = buf.str();
    return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
  }

  const Clock& clock_;
  std::vector<Subprocess> agents_;
  std::vector<std::string> logs_;
};

// Waits until `count` agents are idle, checking that none died. Bounded by `timeout` on `clock`.
absl::Status WaitForAgents(CoordinatorClient& client, AgentProcesses& agents, int count,
                           absl::Duration timeout, const Clock& clock) {
  const absl::Time deadline = clock.Now() + timeout;
  int idle = 0;
  while (clock.Now() < deadline) {
    MOECAP_RETURN_IF_ERROR(agents.CheckAlive());
    v1::ListAgentsRequest request;
    request.add_states(v1::AGENT_STATE_IDLE);
    absl::StatusOr<v1::ListAgentsResponse> listed = client.ListAgents(request);
    if (listed.ok()) {
      idle = listed->agents_size();
      if (idle >= count) return absl::OkStatus();
    }
    clock.SleepUntil(std::min(deadline, clock.Now() + absl::Milliseconds(100)));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("only ", idle, " of ", count, " local agents registered within ",
                   absl::FormatDuration(timeout), "; see their logs in the work directory"));
}

}  // namespace

CLI::App* RegisterRunCommand(CLI::App& app, RunLocalOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "run", "run a plan on a local cluster: an embedded coordinator and N agent processes");
  cmd->add_option("PLAN", o.plan_path, "plan file (see docs/plans.md)")->required();
  cmd->add_option("--local", o.local_agents, "number of local agents to start")->required();
  cmd->add_option("--devices-per-agent", o.devices_per_agent,
                  "rank slots each local CPU agent offers")
      ->capture_default_str();
  cmd->add_option("--agent-binary", o.agent_binary,
                  "moecap-agent to start (default: beside "
                  "moecapctl, then PATH)");
  cmd->add_option("--agent-arg", o.agent_args, "extra flag for every agent (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--db", o.db_path, "keep the run's job in this SQLite file");
  cmd->add_option("--work-dir", o.work_dir, "agents' logs and scratch (default: temporary)");
  cmd->add_option("-o,--output", o.output, "results format: table, json or csv")
      ->capture_default_str();
  cmd->add_flag("--explain", o.explain, "print each term of the byte and FLOP counts");
  cmd->add_option("--timeout-s", o.timeout_s, "give up after this long")->capture_default_str();
  return cmd;
}

absl::Status CheckLocalFit(const coordinator::GangSpec& spec, int agents, int devices_per_agent) {
  if (spec.backend == v1::BACKEND_CUDA) {
    return UsageError(
        "the plan needs cuda agents (hardware.backend: cuda); `run --local` starts cpu agents. "
        "Run it on a GPU cluster (moecapctl submit) or set hardware.backend: cpu");
  }
  if (spec.devices_per_node > devices_per_agent) {
    return UsageError(
        absl::StrCat("the plan needs ", spec.devices_per_node,
                     " devices per node (parallelism.devices_per_node); the local agents offer ",
                     devices_per_agent, ": pass --devices-per-agent ", spec.devices_per_node));
  }
  if (spec.nodes > agents) {
    return UsageError(absl::StrCat(
        "the plan needs ", spec.nodes, " nodes (parallelism.nodes) of ", spec.devices_per_node,
        " device", spec.devices_per_node == 1 ? "" : "s", " each; --local ", agents, " starts ",
        agents, " agent", agents == 1 ? "" : "s", ": pass --local ", spec.nodes));
  }
  return absl::OkStatus();
}

absl::Status RunRunCommand(const RunLocalOptions& o, const GlobalOptions& global,
                           const CommandIo& io) {
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(o.output);
  if (!format.ok()) return format.status();
  if (o.local_agents < 1) {
    return UsageError(absl::StrCat("--local: must be at least 1, got ", o.local_agents));
  }
  if (o.devices_per_agent < 1) {
    return UsageError(
        absl::StrCat("--devices-per-agent: must be at least 1, got ", o.devices_per_agent));
  }
  std::ifstream plan_file(o.plan_path);
  if (!plan_file) return UsageError(absl::StrCat("PLAN: cannot read '", o.plan_path, "'"));
  std::stringstream plan_text;
  plan_text << plan_file.rdbuf();
  {
    // A plan the local agents could never run is refused before anything starts.
    MOECAP_ASSIGN_OR_RETURN(const Catalog catalog, LoadCatalog(global));
    coordinator::PlanSubmission submission;
    submission.plan_yaml = plan_text.str();
    submission.origin = o.plan_path;
    MOECAP_ASSIGN_OR_RETURN(const v1::Job job, coordinator::BuildJob(submission, catalog));
    MOECAP_RETURN_IF_ERROR(CheckLocalFit(coordinator::GangSpecOf(job.plan(), catalog),
                                         o.local_agents, o.devices_per_agent));
  }
  absl::StatusOr<std::string> agent_binary = FindAgentBinary(o.agent_binary);
  if (!agent_binary.ok()) return agent_binary.status();

  // Scratch space: the agents' logs and work directories.
  std::filesystem::path work_dir = o.work_dir;
  const bool temporary = work_dir.empty();
  if (temporary) {
    std::string pattern = (std::filesystem::temp_directory_path() / "moecap-run-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) return absl::InternalError("mkdtemp failed");
    work_dir = pattern;
  }
  std::filesystem::create_directories(work_dir);
  struct Cleanup {
    std::filesystem::path dir;
    bool remove;
    ~Cleanup() {
      std::error_code ec;
      if (remove) std::filesystem::remove_all(dir, ec);
    }
  } cleanup{work_dir, temporary};

  // The embedded coordinator logs warnings only, to stderr: stdout carries the results (and the
  // progress, in table mode).
  spdlog::set_default_logger(spdlog::stderr_color_mt("moecap-coordinator"));
  spdlog::set_level(spdlog::level::warn);
  coordinator::CoordinatorOptions options;
  options.listen = "127.0.0.1:0";
  // Plaintext on purpose: the embedded coordinator listens on loopback only, for agents this
  // command starts itself; nothing off this host can reach it.
  options.credentials.insecure = true;
  options.db_path = o.db_path;
  options.catalog_dirs = global.catalog_dirs;
  absl::StatusOr<std::unique_ptr<coordinator::CoordinatorServer>> server =
      coordinator::CoordinatorServer::Start(options);
  if (!server.ok()) return server.status();
  const std::string address = absl::StrCat("127.0.0.1:", (*server)->port());
  io.err << "local coordinator on " << address << "; starting " << o.local_agents
         << " agent(s), logs in " << work_dir.string() << (temporary ? " (removed after)" : "")
         << "\n";

  AgentProcesses agents;
  const int threads_per_rank =
      std::max<int>(1, static_cast<int>(std::thread::hardware_concurrency()) /
                           (o.local_agents * o.devices_per_agent));
  for (int i = 0; i < o.local_agents; ++i) {
    const std::filesystem::path agent_dir = work_dir / absl::StrCat("agent-", i);
    std::filesystem::create_directories(agent_dir);
    std::vector<std::string> args = {"--coordinator", address, "--name", absl::StrCat("local-", i),
                                     "--backend", "cpu", "--data-address", "127.0.0.1", "--devices",
                                     absl::StrCat(o.devices_per_agent), "--work-dir",
                                     agent_dir.string(), "--log-level", "warn",
                                     // Loopback, to the embedded plaintext coordinator.
                                     "--insecure",
                                     // All local ranks share this host's cores: one BLAS pool
                                     // each of its fair share, not one of all cores per rank.
                                     "--threads-per-rank", absl::StrCat(threads_per_rank)};
    for (const std::string& catalog : global.catalog_dirs) {
      args.push_back("--catalog");
      args.push_back(catalog);
    }
    args.insert(args.end(), o.agent_args.begin(), o.agent_args.end());
    MOECAP_RETURN_IF_ERROR(
        agents.Start(*agent_binary, args, (work_dir / absl::StrCat("agent-", i, ".log")).string()));
  }

  ClientOptions client_options;
  client_options.address = address;
  CoordinatorClient client(client_options);
  MOECAP_RETURN_IF_ERROR(
      WaitForAgents(client, agents, o.local_agents, absl::Seconds(120), SystemClock()));

  v1::SubmitPlanRequest submit;
  submit.set_plan_yaml(plan_text.str());
  submit.set_origin(o.plan_path);
  absl::StatusOr<v1::SubmitPlanResponse> submitted = client.SubmitPlan(submit);
  if (!submitted.ok()) return submitted.status();
  const std::string job_id = submitted->job_id();
  io.err << "submitted job " << job_id << "\n";

  // Table mode interleaves progress with the results; JSON and CSV keep stdout for the results,
  // so that `-o json > results.json` is a file other tools read.
  const CommandIo progress_io{*format == OutputFormat::kTable ? io.out : io.err, io.err};
  absl::StatusOr<v1::JobState> state =
      WatchUntilDone(client, job_id, absl::Seconds(o.timeout_s), progress_io);
  if (!state.ok()) return state.status();
  v1::GetResultsRequest get;
  get.set_job_id(job_id);
  absl::StatusOr<v1::GetResultsResponse> results = client.GetResults(get);
  if (!results.ok()) return results.status();
  if (*format == OutputFormat::kTable) io.out << "\n";
  MOECAP_RETURN_IF_ERROR(PrintJobResults(global, *results, *format, o.explain, io.out));
  const absl::Status final_status = FinalStateStatus(client, job_id, *state);
  agents.StopAll(absl::Seconds(5));
  (*server)->Shutdown();
  return final_status;
}

}  // namespace moecap::ctl
