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
#include "agent/workload/rank_files.h"
#include "agent/workload/rank_report.h"
#include "agent/workload/workload_convert.h"
#include "common/failure_cause.h"
#include "common/status_macros.h"
#include "common/subprocess.h"

namespace moecap {
namespace {

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

// A rank's error from its output file, as the rank made it (code, message, failure cause).
std::optional<absl::Status> ReadRankError(const std::string& dir, int rank) {
  v1::RankOutput output;
  if (!ReadMessageFile(RankFilePath(dir, rank, RankFile::kOutput), output).ok() ||
      !output.has_error()) {
    return std::nullopt;
  }
  return StatusOfRankError(output.error());
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

absl::StatusOr<std::vector<v1::RankOutput>> LocalLauncher::Run(const WorkloadConfig& config) {
  std::vector<int> ids = options_.rank_ids;  // the global rank of each rank started here
  if (ids.empty()) {
    for (int r = 0; r < options_.ranks; ++r) ids.push_back(r);
  }
  const int ranks = static_cast<int>(ids.size());
  const int world = options_.world_size > 0 ? options_.world_size : ranks;
  MOECAP_RETURN_IF_ERROR(ValidateWorkload(config, world));
  if (options_.backend == v1::BACKEND_CPU) {
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
  v1::RankLaunch base;
  base.set_world_size(world);
  base.set_ranks_on_host(ranks);
  base.set_backend(options_.backend);
  base.set_hostname(options_.hostname);
  base.set_key_prefix(options_.key_prefix.empty() ? absl::StrCat("moecap-bench/", getpid())
                                                  : options_.key_prefix);
  if (options_.grpc_store.has_value()) {
    *base.mutable_grpc_store() = *options_.grpc_store;
  } else {
    base.set_store_directory(store_dir);
  }
  SetLaunchWorkload(config, world, base);
  base.set_job_id(options_.job_id);
  base.set_point_index(options_.point_index);
  base.set_attempt(options_.attempt);
  for (int r = 0; r < ranks; ++r) {
    v1::RankLaunch launch = base;
    launch.set_rank(ids[r]);
    launch.set_device(options_.devices.empty() ? r : options_.devices[r]);
    if (absl::Status s = WriteMessageFile(RankFilePath(dir, ids[r], RankFile::kLaunch), launch);
        !s.ok()) {
      cleanup(false);
      return s;
    }
  }

  // The ranks share one process group (the first rank's), so one kill reaches them all.
  pid_t group = 0;
  std::vector<Subprocess> children;  // by position: children[r] runs global rank ids[r]
  for (int r = 0; r < ranks; ++r) {
    std::vector<std::string> args = {options_.executable};
    args.insert(args.end(), options_.worker_args.begin(), options_.worker_args.end());
    args.push_back("--worker-launch");
    args.push_back(RankFilePath(dir, ids[r], RankFile::kLaunch));
    SpawnOptions spawn;
    spawn.stdout_path = spawn.stderr_path = RankFilePath(dir, ids[r], RankFile::kLog);
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
  // Progress: each rank's file, read as it grows, at most every progress_poll.
  std::vector<ProgressReader> progress;
  for (int r = 0; r < ranks; ++r)
    progress.emplace_back(RankFilePath(dir, ids[r], RankFile::kProgress));
  absl::Time next_progress = clock_.Now();
  const auto poll_progress = [&] {
    if (!options_.on_progress) return;
    for (int r = 0; r < ranks; ++r) {
      absl::StatusOr<std::optional<v1::Progress>> record = progress[static_cast<size_t>(r)].Poll();
      if (record.ok() && record->has_value()) options_.on_progress(ids[r], **record);
    }
  };
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
    if (const absl::Time now = clock_.Now(); now >= next_progress) {
      poll_progress();
      next_progress = now + options_.progress_poll;
    }
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
          running.front(),
          "'s log ends: ", LogTail(RankFilePath(dir, running.front(), RankFile::kLog)));
      cleanup(false);
      return WithFailureCause(absl::DeadlineExceededError(message), FailureCause::kTimeout);
    }
    if (!reaped) clock_.SleepUntil(std::min(stop_at, now + kPollInterval));
  }
  if (first_failed >= 0) {
    KillAndReap(group, children, kReapGrace, clock_);
    // Report the root cause, in this order: a rank's own error; a rank that died without leaving
    // a result (a crash); only then a peer's knock-on error ("connection closed", "timed out").
    std::vector<std::optional<absl::Status>> errors;  // each rank's own, read once
    for (int r = 0; r < ranks; ++r) errors.push_back(ReadRankError(dir, ids[r]));
    absl::Status status;
    for (int r = 0; r < ranks && status.ok(); ++r) {
      const std::optional<absl::Status>& error = errors[static_cast<size_t>(r)];
      if (error && !IsKnockOn(error->code())) status = *error;
    }
    for (int r = 0; r < ranks && status.ok(); ++r) {
      const std::optional<int> exit = exit_status[static_cast<size_t>(r)];
      const bool failed = exit.has_value() && !(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0);
      if (failed && !errors[static_cast<size_t>(r)]) {
        status = WithFailureCause(
            absl::InternalError(absl::StrCat("rank ", ids[r], " ", DescribeExit(*exit),
                                             " without a result; its log ends: ",
                                             LogTail(RankFilePath(dir, ids[r], RankFile::kLog)))),
            FailureCause::kCrash);
      }
    }
    for (int r = 0; r < ranks && status.ok(); ++r) {
      if (errors[static_cast<size_t>(r)]) status = *errors[static_cast<size_t>(r)];
    }
    if (status.ok()) {
      status = WithFailureCause(absl::InternalError(absl::StrCat(
                                    "rank ", ids[first_failed], " failed: ",
                                    DescribeExit(*exit_status[static_cast<size_t>(first_failed)]))),
                                FailureCause::kCrash);
    }
    cleanup(false);
    return status;
  }

  poll_progress();  // the records the ranks wrote as they ended (REPORT)
  std::vector<v1::RankOutput> outputs;
  for (int r = 0; r < ranks; ++r) {
    v1::RankOutput output;
    if (absl::Status s = ReadMessageFile(RankFilePath(dir, ids[r], RankFile::kOutput), output);
        !s.ok()) {
      cleanup(false);
      return WithFailureCause(absl::InternalError(absl::StrCat("rank ", ids[r],
                                                               " exited cleanly but left no "
                                                               "readable output: ",
                                                               s.message())),
                              FailureCause::kCrash);
    }
    if (output.has_error() || output.reports_size() != static_cast<int>(config.batches.size())) {
      cleanup(false);
      return absl::InternalError(absl::StrCat(
          "rank ", ids[r], " exited cleanly but its output has ", output.reports_size(),
          " report(s) for ", config.batches.size(), " batch size(s)"));
    }
    outputs.push_back(std::move(output));
  }
  cleanup(true);
  return outputs;
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
  if (!comm.ok()) return WithFailureCause(comm.status(), FailureCause::kRendezvous);
  InjectFault(rank);
  CpuBackend backend(0);
  RankContext context;
  context.ranks_on_host = options.ranks_on_host;
  context.progress = options.progress;
  context.log = options.log;
  // The CPU package's counter, which the host's ranks share.
  std::unique_ptr<EnergyMeter> energy = OpenRaplMeter(kPowercapRoot, &context.energy_unavailable);
  context.energy = energy.get();
  context.energy_shared_by = options.ranks_on_host;
  return RunRank(config, context, **comm, backend);
}

int RunLocalWorker(const std::string& launch_path, const WorkerHooks& hooks) {
  v1::RankLaunch launch;
  if (absl::Status s = ReadMessageFile(launch_path, launch); !s.ok()) {
    std::cerr << "worker: " << s.message() << std::endl;
    return 3;
  }
  const int rank = launch.rank();
  const std::string dir = std::filesystem::path(launch_path).parent_path().string();
  const std::string output_path = RankFilePath(dir, rank, RankFile::kOutput);
  const auto report_error = [&](const absl::Status& status) {
    std::cerr << "rank " << rank << ": " << status.message() << std::endl;
    v1::RankOutput output;
    output.set_rank(rank);
    *output.mutable_error() = RankErrorOf(status);
    (void)WriteMessageFile(output_path, output);
    return 3;
  };
  absl::StatusOr<WorkloadConfig> config = WorkloadOfLaunch(launch);
  if (!config.ok()) return report_error(config.status());

  std::unique_ptr<KvStore> store;
  switch (launch.store_case()) {
    case v1::RankLaunch::kStoreDirectory:
      store = std::make_unique<FileKvStore>(launch.store_directory());
      break;
    case v1::RankLaunch::kGrpcStore: {
      if (!hooks.make_grpc_store) {
        return report_error(absl::FailedPreconditionError(
            "the launch names the coordinator's store, and this worker binary cannot reach it"));
      }
      absl::StatusOr<std::unique_ptr<KvStore>> made = hooks.make_grpc_store(launch.grpc_store());
      if (!made.ok()) return report_error(made.status());
      store = *std::move(made);
      break;
    }
    case v1::RankLaunch::STORE_NOT_SET:
      return report_error(absl::InvalidArgumentError("the launch names no rendezvous store"));
  }
  ProgressWriter progress(RankFilePath(dir, rank, RankFile::kProgress));
  RankJoinOptions options;
  options.hostname = launch.hostname();
  options.key_prefix = launch.key_prefix();
  options.ranks_on_host = std::max(1, launch.ranks_on_host());
  options.backend = launch.backend();
  options.device = launch.device();
  options.progress = [&progress](const v1::Progress& p) { progress.Append(p); };
  options.log = [rank](const std::string& line) {
    std::cerr << "rank " << rank << ": " << line << std::endl;
  };
  const int world = launch.world_size();
  absl::StatusOr<RankResult> result =
      hooks.run_rank ? hooks.run_rank(*config, rank, world, *store, options)
      : options.backend == v1::BACKEND_CPU
          ? ConnectAndRunRank(*config, rank, world, *store, options)
          : absl::StatusOr<RankResult>(absl::FailedPreconditionError(absl::StrCat(
                "launch backend ", v1::Backend_Name(options.backend),
                ": this worker binary runs only the cpu backend (built without CUDA?)")));
  if (!result.ok()) return report_error(result.status());
  RankReportContext context;
  context.job_id = launch.job_id();
  context.point_index = launch.point_index();
  context.attempt = launch.attempt();
  context.device_index = launch.device();
  if (absl::Status s =
          WriteMessageFile(output_path, RankOutputFromResult(*result, *config, context));
      !s.ok()) {
    return report_error(s);
  }
  return 0;
}

}  // namespace moecap
