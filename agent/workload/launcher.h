// Starts the ranks of a job as processes on this host and collects their results: the way
// moecap-bench runs without a cluster, and the way an agent can run its ranks. The job directory
// holds the plan (config.json), the rendezvous store (store/), each rank's result (rank-N.json)
// and its log (rank-N.log). Children never outlive the launcher: they share a process group that
// is killed on any failure or timeout, and each asks the kernel to kill it if the launching thread
// dies (PR_SET_PDEATHSIG). Every wait is bounded.
#ifndef MOECAP_AGENT_WORKLOAD_LAUNCHER_H_
#define MOECAP_AGENT_WORKLOAD_LAUNCHER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/comm/kv_store.h"
#include "agent/workload/config.h"
#include "agent/workload/harness.h"
#include "common/clock.h"

namespace moecap {

struct LaunchOptions {
  // The binary with a worker mode, and the arguments that select it; the launcher appends
  // `--worker-rank R --worker-world N --worker-dir DIR`.
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
  // A description of the rendezvous store, written to job.json as "store" for the worker's
  // WorkerHooks::make_store; null: a FileKvStore in the job directory.
  nlohmann::json store;
  // When set and it turns true, the ranks are killed (bounded) and Run returns Cancelled.
  const std::atomic<bool>* cancel = nullptr;
  // The compute backend the ranks run on, written to job.json as "backend": "cpu" (Gloo, host
  // memory) or "cuda" (NCCL, one GPU per rank; the worker binary's WorkerHooks::run_rank must
  // know it). A non-cpu backend skips the host-memory check (the weights live on the devices).
  std::string backend = "cpu";
  // The device of each rank started here, parallel to rank_ids (or to 0..ranks-1); empty: the
  // rank's position among the ranks started here. Written to job.json as "devices".
  std::vector<int> devices;
};

class LocalLauncher {
 public:
  // `clock` times the job's timeout, the grace periods and the polls of the ranks; it must
  // outlive the launcher.
  explicit LocalLauncher(LaunchOptions options, const Clock& clock = SystemClock())
      : options_(std::move(options)), clock_(clock) {}

  // Runs the job and returns the ranks' results in rank order. A rank that fails, crashes or
  // overruns the timeout fails the job with its own error message (or the tail of its log).
  // Call it from a thread that lives until it returns (PR_SET_PDEATHSIG follows that thread).
  absl::StatusOr<std::vector<RankResult>> Run(const WorkloadConfig& config);

 private:
  LaunchOptions options_;
  const Clock& clock_;
};

// How a rank process joins its job: the data-plane address, the job's key prefix in the store,
// and how many ranks share this host.
struct RankJoinOptions {
  std::string hostname = "127.0.0.1";
  std::string key_prefix = "moecap";
  int ranks_on_host = 1;
  std::function<void(const std::string&)> progress;  // may be empty
  std::string backend = "cpu";                       // job.json "backend"
  int device = 0;                                    // the rank's device (GPU ordinal) on this host
};

// Joins the rendezvous in `store` (Gloo over TCP, bounded by config.comm_timeout_s), runs the
// rank on the CPU backend and returns its result. The agent daemon calls this with the
// coordinator's store; RunLocalWorker with a FileKvStore.
absl::StatusOr<RankResult> ConnectAndRunRank(const WorkloadConfig& config, int rank, int world,
                                             KvStore& store, const RankJoinOptions& options);

// What a worker binary adds to the worker side (moecap-agent: the coordinator's store).
struct WorkerHooks {
  // Builds the store job.json's "store" describes; unset, or no "store" in job.json: a
  // FileKvStore in DIR/store.
  std::function<absl::StatusOr<std::unique_ptr<KvStore>>(const nlohmann::json& store)> make_store;
  // Runs the rank once the store exists (options.backend says which backend the job wants);
  // unset: ConnectAndRunRank for "cpu", any other backend refused. Keeps moecap_workload free of
  // CUDA: the binaries built with the GPU backend route "cuda" to it here.
  std::function<absl::StatusOr<RankResult>(const WorkloadConfig& config, int rank, int world,
                                           KvStore& store, const RankJoinOptions& options)>
      run_rank;
};

// The worker side: reads the job directory (DIR/job.json), joins the rendezvous (a FileKvStore in
// DIR/store, or the store `hooks` make), runs the rank and writes DIR/rank-R.json
// ({"result": ...} or {"error": ...}). Returns the process exit status: 0 on success, 3 on error.
int RunLocalWorker(int rank, int world, const std::string& job_dir, const WorkerHooks& hooks = {});

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_LAUNCHER_H_
