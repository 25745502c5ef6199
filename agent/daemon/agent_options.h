// What moecap-agent is told on its command line, as plain structs main() fills and passes down.
#ifndef MOECAP_AGENT_DAEMON_AGENT_OPTIONS_H_
#define MOECAP_AGENT_DAEMON_AGENT_OPTIONS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "agent/daemon/backoff.h"

namespace moecap::agentd {

enum class BackendChoice { kCpu, kCuda, kAuto };

// How the agent and its rank workers reach the coordinator (docs/security.md): TLS with this
// host's certificate (mTLS: the coordinator takes the agent's identity from it), or plaintext
// when `insecure` says so. Paths are absolute (the workers run in other directories).
struct CoordinatorSecurity {
  bool insecure = false;
  std::string ca_file;      // PEM CA that signed the coordinator's certificate
  std::string cert_file;    // PEM certificate naming this agent (CN or DNS SAN = --name)
  std::string key_file;     // its key
  std::string server_name;  // name expected in the coordinator's certificate (default: host)
};

// The host's hardware as the agent offers it.
struct InventoryOptions {
  BackendChoice backend = BackendChoice::kAuto;
  int devices = 1;  // CPU backend: rank slots offered; the host's cores and peaks split evenly
  // Given peaks of the whole host (0: probe them at start). Skipping the probe makes start fast
  // (tests) and lets an operator pin the denominators.
  double peak_bandwidth_gb_s = 0;  // GB/s = 1e9 bytes/s
  double peak_gflops = 0;          // fp32 GFLOP/s = 1e9 FLOP/s
  // Probe sizes: small enough to finish in about a second, large enough to leave the caches.
  int64_t probe_array_bytes = 128LL << 20;
  int64_t probe_gemm_size = 1024;
  std::vector<std::string> catalog_dirs;  // extra hardware/model catalog directories
};

struct AgentOptions {
  std::string coordinator;  // HOST:PORT of the coordinator's gRPC endpoint
  CoordinatorSecurity security;
  std::string name;                        // unique among live agents; default: the hostname
  std::string data_address = "127.0.0.1";  // where peers reach this host's ranks
  std::string work_dir;                    // job directories (logs, rank results) go below it
  std::string executable;                  // this binary (its --worker mode runs the ranks)
  std::string version;
  std::map<std::string, std::string> labels;
  InventoryOptions inventory;
  int threads_per_rank = 0;  // BLAS threads per rank; 0: the cores of the rank's device
  // Reconnects after the coordinator goes away.
  BackoffOptions reconnect;
  // A connection that stayed up this long counts as healthy: the backoff starts over.
  absl::Duration healthy_connection = absl::Seconds(10);
  // Bounds of single calls to the coordinator.
  absl::Duration rpc_timeout = absl::Seconds(5);
  // How long a report is retried while the coordinator is unreachable (the agent stays busy
  // meanwhile, so this is bounded; a restarted coordinator requeues the point anyway).
  absl::Duration report_retry = absl::Seconds(60);
  // How long a new assignment waits for the previous run to clear before it is refused as busy:
  // the coordinator sends the next point as soon as the last one's ReportNode is in.
  absl::Duration busy_grace = absl::Seconds(10);
  // How often the running assignment's progress is looked at (and reported when it changed).
  absl::Duration progress_interval = absl::Milliseconds(500);
  // A point without a deadline in its assignment gets this one (PointWorkload.timeouts default).
  absl::Duration default_point_timeout = absl::Seconds(600);
};

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_AGENT_OPTIONS_H_
