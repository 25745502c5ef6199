// Starts the ranks of a job as processes on this host and collects their results: the way
// moecap-bench runs without a cluster, and the way an agent runs its ranks. The launcher and its
// ranks talk only through typed files in the job directory (agent/workload/rank_files.h): each
// rank reads its RankLaunch, appends its Progress records and leaves a RankOutput (its
// RankReports, or its error with code and failure cause). Children never outlive the launcher:
// they share a process group that is killed on any failure or timeout, and each asks the kernel
// to kill it if the launching thread dies (PR_SET_PDEATHSIG). Every wait is bounded.
#ifndef MOECAP_AGENT_WORKLOAD_LAUNCHER_H_
#define MOECAP_AGENT_WORKLOAD_LAUNCHER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/comm/kv_store.h"
#include "agent/workload/config.h"
#include "agent/workload/harness.h"
#include "common/clock.h"
#include "moecap/v1/job.pb.h"
#include "moecap/v1/rank.pb.h"

namespace moecap {

struct LaunchOptions {
  // The binary with a worker mode, and the arguments that select it; the launcher appends
  // `--worker-launch DIR/rank-R.launch`.
  std::string executable;
  std::vector<std::string> worker_args;
  int ranks = 1;
  absl::Duration timeout = absl::Minutes(30);  // the whole job, start to last result
  std::string work_dir;                        // empty: a fresh directory under $TMPDIR (or /tmp)
  bool keep_work_dir = false;                  // keep it afterwards (for debugging); else removed
  std::string hostname = "127.0.0.1";          // the ranks' data-plane address
  // An agent's share of a job spread over hosts (moecap-agent): the global ranks to start here
  // (empty: 0..ranks-1; when given, `ranks` is ignored) and the world they belong to (0: the
  // ranks started here). Rank files are named by global rank.
  std::vector<int> rank_ids;
  int world_size = 0;
  // The job's keys in the store (GlooOptions::key_prefix); empty: "moecap-bench/<pid>". Ranks
  // started by different launchers must agree on it.
  std::string key_prefix;
  // The coordinator's store for the ranks to meet in; unset: a FileKvStore in the job directory.
  std::optional<v1::GrpcStoreEndpoint> grpc_store;
  // When set and it turns true, the ranks are killed (bounded) and Run returns Cancelled.
  const std::atomic<bool>* cancel = nullptr;
  // The compute backend the ranks run on: CPU (Gloo, host memory) or CUDA (NCCL, one GPU per
  // rank; the worker binary's WorkerHooks::run_rank must know it). A non-CPU backend skips the
  // host-memory check (the weights live on the devices).
  v1::Backend backend = v1::BACKEND_CPU;
  // The device of each rank started here, parallel to rank_ids (or to 0..ranks-1); empty: the
  // rank's position among the ranks started here.
  std::vector<int> devices;
  // The identity the ranks' reports carry.
  std::string job_id;
  int point_index = 0;
  int attempt = 0;
  // Called on Run's thread with a rank's newest progress (its global rank, the record) as it
  // arrives, at most every progress_poll; may be empty.
  std::function<void(int rank, const v1::Progress& progress)> on_progress;
  absl::Duration progress_poll = absl::Milliseconds(100);
};

class LocalLauncher {
 public:
  // `clock` times the job's timeout, the grace periods and the polls of the ranks; it must
  // outlive the launcher.
  explicit LocalLauncher(LaunchOptions options, const Clock& clock = SystemClock())
      : options_(std::move(options)), clock_(clock) {}

  // Runs the job and returns the ranks' outputs in rank order (each with one RankReport per batch
  // size of `config`). A rank that fails, crashes or overruns the timeout fails the job with the
  // root cause: a rank's own error (code, message and FailureCause as the rank made it) before a
  // crash (FailureCause::kCrash, with the tail of its log) before a peer's knock-on error; an
  // overrun is DeadlineExceeded with FailureCause::kTimeout. Call it from a thread that lives
  // until it returns (PR_SET_PDEATHSIG follows that thread).
  absl::StatusOr<std::vector<v1::RankOutput>> Run(const WorkloadConfig& config);

 private:
  LaunchOptions options_;
  const Clock& clock_;
};

// How a rank process joins its job: the data-plane address, the job's key prefix in the store,
// how many ranks share this host, its backend and device, and where its progress and log go.
struct RankJoinOptions {
  std::string hostname = "127.0.0.1";
  std::string key_prefix = "moecap";
  int ranks_on_host = 1;
  v1::Backend backend = v1::BACKEND_CPU;
  int device = 0;  // the rank's device (GPU ordinal) on this host
  std::function<void(const v1::Progress&)> progress;  // RankContext::progress; may be empty
  std::function<void(const std::string&)> log;        // RankContext::log; may be empty
};

// Joins the rendezvous in `store` (Gloo over TCP, bounded by config.comm_timeout_s), runs the
// rank on the CPU backend and returns its result. A failed rendezvous carries
// FailureCause::kRendezvous.
absl::StatusOr<RankResult> ConnectAndRunRank(const WorkloadConfig& config, int rank, int world,
                                             KvStore& store, const RankJoinOptions& options);

// What a worker binary adds to the worker side (moecap-agent: the coordinator's store).
struct WorkerHooks {
  // Builds the store a launch's grpc_store names; unset: such a launch is refused.
  std::function<absl::StatusOr<std::unique_ptr<KvStore>>(const v1::GrpcStoreEndpoint& store)>
      make_grpc_store;
  // Runs the rank once the store exists (options.backend says which backend the job wants);
  // unset: ConnectAndRunRank for CPU, any other backend refused. Keeps moecap_workload free of
  // CUDA: the binaries built with the GPU backend route CUDA to it here.
  std::function<absl::StatusOr<RankResult>(const WorkloadConfig& config, int rank, int world,
                                           KvStore& store, const RankJoinOptions& options)>
      run_rank;
};

// The worker side: reads its RankLaunch from `launch_path` (DIR/rank-R.launch), joins the
// rendezvous (a FileKvStore in the launch's store_directory, or the store `hooks` make), runs
// the rank, appending its progress to DIR/rank-R.progress, and writes DIR/rank-R.out. Returns the
// process exit status: 0 on success, 3 on error (the error is in rank-R.out when it could be
// written).
int RunLocalWorker(const std::string& launch_path, const WorkerHooks& hooks = {});

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_LAUNCHER_H_
