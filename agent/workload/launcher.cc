// LocalLauncher (rank processes in one group, bounded waits, group kill) and the worker side.
#include "agent/workload/launcher.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/comm/file_kv_store.h"
#include "agent/comm/gloo_communicator.h"
#include "agent/compute/cpu_backend.h"
#include "agent/compute/host_probe.h"
#include "agent/workload/memory.h"
#include "common/status_macros.h"
#include "common/subprocess.h"

namespace moecap {
namespace {

std::string RankFile(const std::string& dir, int rank, absl::string_view ext) {
  return absl::StrCat(dir, "/rank-", rank, ".", ext);
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The last lines of a rank's log, for error messages.
std::string LogTail(const std::string& path, size_t max_chars = 1500) {
  absl::StatusOr<std::string> log = ReadFile(path);
  if (!log.ok() || log->empty()) return "(empty log)";
  return log->size() > max_chars ? absl::StrCat("...", log->substr(log->size() - max_chars)) : *log;
}

// How often the launcher looks at its ranks while they run or are being killed.
constexpr absl::Duration kPollInterval = absl::Milliseconds(2);
// How long killed ranks get to be reaped (a rank stuck in the kernel, in a GPU driver say, is left
// a zombie rather than hanging the launcher).
constexpr absl::Duration kReapGrace = absl::Seconds(5);

// Kills the whole group and reaps every child, waiting at most `grace` (on `clock`) for them.
void KillAndReap(pid_t group, std::vector<Subprocess>& ranks, absl::Duration grace,
                 const Clock& clock) {
  if (group > 0) kill(-group, SIGKILL);
  const absl::Time deadline = clock.Now() + grace;
  while (true) {
    bool running = false;
    for (Subprocess& rank : ranks) running |= !rank.Poll().has_value();
    const absl::Time now = clock.Now();
    if (!running || now >= deadline) return;
    clock.SleepUntil(std::min(deadline, now + kPollInterval));
  }
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return absl::StrCat("was killed by signal ", WTERMSIG(status), " (",
                        strsignal(WTERMSIG(status)), ")");
  }
  return "stopped";
}

// A rank's error from its result file, with its status code.
struct RankError {
  absl::StatusCode code = absl::StatusCode::kUnknown;
  std::string message;
};

std::optional<RankError> ReadRankError(const std::string& dir, int rank) {
  absl::StatusOr<std::string> text = ReadFile(RankFile(dir, rank, "json"));
  if (!text.ok()) return std::nullopt;
  const nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.contains("error")) return std::nullopt;
  RankError e;
  e.code = static_cast<absl::StatusCode>(j["error"].value("code", 2));
  e.message = j["error"].value("message", "");
  return e;
}

// Errors that are consequences of another rank's failure (a broken or timed-out collective).
bool IsKnockOn(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded ||
         code == absl::StatusCode::kCancelled;
}

// Fault injection for the tests of failure handling: MOECAP_FAULT_EXIT_RANK=R makes rank R exit
// abruptly (status 42, no result) right after the rendezvous, like a crash;
// MOECAP_FAULT_HANG_RANK=R makes it stop responding (its peers must time out, not hang).
void InjectFault(int rank) {
  const auto is_me = [rank](const char* name) {
    const char* value = std::getenv(name);
    int target = -1;
    return value != nullptr && absl::SimpleAtoi(value, &target) && target == rank;
  };
  if (is_me("MOECAP_FAULT_EXIT_RANK")) _exit(42);
  if (is_me("MOECAP_FAULT_HANG_RANK")) {
    // A parked rank process waiting for its launcher's SIGKILL: no clock to inject, nothing that
    // could end the wait but the kill, which is the point of the fault.
    while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace

absl::StatusOr<std::vector<RankResult>> LocalLauncher::Run(const WorkloadConfig& config) {
  std::vector<int> ids = options_.rank_ids;  // the global rank of each rank started here
  if (ids.empty()) {
    for (int r = 0; r < options_.ranks; ++r) ids.push_back(r);
  }
  const int ranks = static_cast<int>(ids.size());
  const int world = options_.world_size > 0 ? options_.world_size : ranks;
  MOECAP_RETURN_IF_ERROR(ValidateWorkload(config, world));
  if (options_.backend == "cpu") {
    const MemoryEstimate estimate = EstimateMemory(config, world, ranks);
    if (absl::StatusOr<int64_t> available = MemAvailableBytes(); available.ok()) {
      MOECAP_RETURN_IF_ERROR(CheckMemoryFits(config, estimate, *available));
    }
  }
  if (!options_.devices.empty() && static_cast<int>(options_.devices.size()) != ranks) {
    return absl::InvalidArgumentError(absl::StrCat("launcher: ", options_.devices.size(),
                                                   " devices given for ", ranks, " ranks"));
  }
  if (options_.executable.empty()) {
    return absl::InvalidArgumentError("launcher: no worker executable given");
  }

  std::string dir = options_.work_dir;
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ =
        absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/moecap-job-XXXXXX");
    if (mkdtemp(templ.data()) == nullptr) {
      return absl::InternalError(
          absl::StrCat("cannot create a job directory from ", templ, ": ", std::strerror(errno)));
    }
    dir = templ;
  } else if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", std::strerror(errno)));
  }
  const std::string store_dir = absl::StrCat(dir, "/store");
  if (mkdir(store_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(
        absl::StrCat("cannot create ", store_dir, ": ", std::strerror(errno)));
  }
  const auto cleanup = [&](bool success) {
    if (options_.keep_work_dir || (!success && std::getenv("MOECAP_KEEP_JOB_DIR") != nullptr)) {
      return;
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  };
  nlohmann::json devices = nlohmann::json::object();  // global rank -> device
  for (int r = 0; r < ranks; ++r) {
    devices[absl::StrCat(ids[r])] = options_.devices.empty() ? r : options_.devices[r];
  }
  const nlohmann::json job = {
      {"config", WorkloadToJson(config)},
      {"hostname", options_.hostname},
      {"ranks_on_host", ranks},
      {"backend", options_.backend},
      {"devices", devices},
      {"key_prefix", options_.key_prefix.empty() ? absl::StrCat("moecap-bench/", getpid())
                                                 : options_.key_prefix}};
  nlohmann::json job_with_store = job;
  if (!options_.store.is_null()) job_with_store["store"] = options_.store;
  if (absl::Status s = WriteFileAtomically(absl::StrCat(dir, "/job.json"), job_with_store.dump());
      !s.ok()) {
    cleanup(false);
    return s;
  }

  // The ranks share one process group (the first rank's), so one kill reaches them all.
  pid_t group = 0;
  std::vector<Subprocess> children;  // by position: children[r] runs global rank ids[r]
  for (int r = 0; r < ranks; ++r) {
    std::vector<std::string> args = {options_.executable};
    args.insert(args.end(), options_.worker_args.begin(), options_.worker_args.end());
    for (const std::string& a :
         {std::string("--worker-rank"), absl::StrCat(ids[r]), std::string("--worker-world"),
          absl::StrCat(world), std::string("--worker-dir"), dir}) {
      args.push_back(a);
    }
    SpawnOptions spawn;
    spawn.stdout_path = spawn.stderr_path = RankFile(dir, ids[r], "log");
    spawn.process_group = group;  // 0: this rank starts the group
    absl::StatusOr<Subprocess> child = Subprocess::Spawn(args, spawn, clock_);
    if (!child.ok()) {
      KillAndReap(group, children, kReapGrace, clock_);
      cleanup(false);
      return absl::Status(child.status().code(), absl::StrCat("cannot start rank ", ids[r], ": ",
                                                              child.status().message()));
    }
    if (group == 0) group = child->pid();
    children.push_back(*std::move(child));
  }

  // Wait for every rank, bounded by the job timeout. After the first failure the others get a
  // short grace period to exit on their own (their collectives fail fast once the failed rank's
  // connections close), so the failed rank's own error is on disk before the group is killed.
  const absl::Time deadline = clock_.Now() + options_.timeout;
  absl::Time stop_at = deadline;
  // How each rank ended by itself; not those the launcher killed (their end is not their error).
  std::vector<std::optional<int>> exit_status(static_cast<size_t>(ranks));
  int first_failed = -1;
  while (true) {
    bool reaped = false;
    std::vector<int> running;  // global ranks
    for (int r = 0; r < ranks; ++r) {
      Subprocess& child = children[static_cast<size_t>(r)];
      if (!child.running()) continue;
      if (const std::optional<int> status = child.Poll(); status.has_value()) {
        exit_status[static_cast<size_t>(r)] = status;
        if (!(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) && first_failed < 0) {
          first_failed = r;
          stop_at = std::min(deadline, clock_.Now() + absl::Seconds(2));
        }
        reaped = true;
      } else {
        running.push_back(ids[r]);
      }
    }
    if (running.empty()) break;
    if (options_.cancel != nullptr && options_.cancel->load()) {
      KillAndReap(group, children, kReapGrace, clock_);
      cleanup(false);
      return absl::CancelledError("the ranks were cancelled and killed");
    }
    const absl::Time now = clock_.Now();
    if (now >= stop_at) {
      if (first_failed >= 0) break;
      KillAndReap(group, children, kReapGrace, clock_);
      const std::string message = absl::StrCat(
          "the job did not finish within ", absl::FormatDuration(options_.timeout), "; ranks [",
          absl::StrJoin(running, ", "), "] were still running and were killed; rank ",
          running.front(), "'s log ends: ", LogTail(RankFile(dir, running.front(), "log")));
      cleanup(false);
      return absl::DeadlineExceededError(message);
    }
    if (!reaped) clock_.SleepUntil(std::min(stop_at, now + kPollInterval));
  }
  if (first_failed >= 0) {
    KillAndReap(group, children, kReapGrace, clock_);
    // Report the root cause, in this order: a rank's own error; a rank that died without leaving
    // a result (a crash); only then a peer's knock-on error ("connection closed", "timed out").
    absl::Status status;
    for (int r = 0; r < ranks && status.ok(); ++r) {
      std::optional<RankError> error = ReadRankError(dir, ids[r]);
      if (error && !IsKnockOn(error->code)) status = absl::Status(error->code, error->message);
    }
    for (int r = 0; r < ranks && status.ok(); ++r) {
      const std::optional<int> exit = exit_status[static_cast<size_t>(r)];
      const bool failed = exit.has_value() && !(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0);
      if (failed && !ReadRankError(dir, ids[r])) {
        status = absl::InternalError(absl::StrCat(
            "rank ", ids[r], " ", DescribeExit(*exit),
            " without a result; its log ends: ", LogTail(RankFile(dir, ids[r], "log"))));
      }
    }
    for (int r = 0; r < ranks && status.ok(); ++r) {
      std::optional<RankError> error = ReadRankError(dir, ids[r]);
      if (error) status = absl::Status(error->code, error->message);
    }
    if (status.ok()) {
      status = absl::InternalError(
          absl::StrCat("rank ", ids[first_failed],
                       " failed: ", DescribeExit(*exit_status[static_cast<size_t>(first_failed)])));
    }
    cleanup(false);
    return status;
  }

  std::vector<RankResult> results;
  for (int r = 0; r < ranks; ++r) {
    absl::StatusOr<std::string> text = ReadFile(RankFile(dir, ids[r], "json"));
    if (!text.ok()) {
      cleanup(false);
      return absl::InternalError(
          absl::StrCat("rank ", ids[r], " exited cleanly but left no result"));
    }
    const nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.contains("result")) {
      cleanup(false);
      return absl::InternalError(absl::StrCat("rank ", ids[r], " left an unreadable result"));
    }
    absl::StatusOr<RankResult> result = RankResultFromJson(j["result"]);
    if (!result.ok()) {
      cleanup(false);
      return result.status();
    }
    results.push_back(*std::move(result));
  }
  cleanup(true);
  return results;
}

absl::StatusOr<RankResult> ConnectAndRunRank(const WorkloadConfig& config, int rank, int world,
                                             KvStore& store, const RankJoinOptions& options) {
  GlooOptions gloo;
  gloo.rank = rank;
  gloo.size = world;
  gloo.hostname = options.hostname;
  gloo.key_prefix = options.key_prefix;
  gloo.timeout = absl::Seconds(config.comm_timeout_s);
  absl::StatusOr<std::unique_ptr<GlooCommunicator>> comm = GlooCommunicator::Connect(store, gloo);
  if (!comm.ok()) return comm.status();
  InjectFault(rank);
  CpuBackend backend(0);
  RankContext context;
  context.ranks_on_host = options.ranks_on_host;
  context.progress = options.progress;
  // The CPU package's counter, which the host's ranks share.
  std::unique_ptr<EnergyMeter> energy = OpenRaplMeter(kPowercapRoot, &context.energy_unavailable);
  context.energy = energy.get();
  context.energy_shared_by = options.ranks_on_host;
  return RunRank(config, context, **comm, backend);
}

int RunLocalWorker(int rank, int world, const std::string& job_dir, const WorkerHooks& hooks) {
  const std::string result_path = RankFile(job_dir, rank, "json");
  const auto report_error = [&](const absl::Status& status) {
    std::cerr << "rank " << rank << ": " << status.message() << std::endl;
    const nlohmann::json j = {
        {"error", {{"code", static_cast<int>(status.code())}, {"message", status.message()}}}};
    (void)WriteFileAtomically(result_path, j.dump());
    return 3;
  };
  absl::StatusOr<std::string> text = ReadFile(absl::StrCat(job_dir, "/job.json"));
  if (!text.ok()) return report_error(text.status());
  const nlohmann::json job = nlohmann::json::parse(*text, nullptr, false);
  if (job.is_discarded() || !job.contains("config")) {
    return report_error(absl::InvalidArgumentError("job.json is not a job description"));
  }
  absl::StatusOr<WorkloadConfig> config = WorkloadFromJson(job["config"]);
  if (!config.ok()) return report_error(config.status());

  std::unique_ptr<KvStore> store;
  if (hooks.make_store && job.contains("store")) {
    absl::StatusOr<std::unique_ptr<KvStore>> made = hooks.make_store(job["store"]);
    if (!made.ok()) return report_error(made.status());
    store = *std::move(made);
  } else {
    store = std::make_unique<FileKvStore>(absl::StrCat(job_dir, "/store"));
  }
  RankJoinOptions options;
  options.hostname = job.value("hostname", "127.0.0.1");
  options.key_prefix = job.value("key_prefix", "moecap-bench");
  options.ranks_on_host = job.value("ranks_on_host", world);
  options.progress = [rank](const std::string& line) {
    std::cerr << "rank " << rank << ": " << line << std::endl;
  };
  options.backend = job.value("backend", "cpu");
  options.device = rank;
  if (job.contains("devices") && job["devices"].is_object()) {
    options.device = job["devices"].value(absl::StrCat(rank), rank);
  }
  absl::StatusOr<RankResult> result =
      hooks.run_rank ? hooks.run_rank(*config, rank, world, *store, options)
      : options.backend == "cpu"
          ? ConnectAndRunRank(*config, rank, world, *store, options)
          : absl::StatusOr<RankResult>(absl::FailedPreconditionError(absl::StrCat(
                "job.json backend '", options.backend,
                "': this worker binary runs only the cpu backend (built without CUDA?)")));
  if (!result.ok()) return report_error(result.status());
  if (absl::Status s = WriteFileAtomically(
          result_path, nlohmann::json{{"result", RankResultToJson(*result)}}.dump());
      !s.ok()) {
    return report_error(s);
  }
  return 0;
}

}  // namespace moecap
