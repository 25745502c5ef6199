// Everything a coordinator is started with: parsed from flags in main, or filled in by code that
// embeds the coordinator (`moecapctl run --local`, tests).
#ifndef MOECAP_COORDINATOR_COORDINATOR_OPTIONS_H_
#define MOECAP_COORDINATOR_COORDINATOR_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "coordinator/job_manager.h"
#include "coordinator/rendezvous_store.h"
#include "coordinator/submission_queue.h"

namespace moecap::coordinator {

// Transport security and caller identity (coordinator/auth.h, docs/security.md). Exactly one of
// `insecure` and TLS (cert + key) must be chosen: the default, neither, does not start.
struct CredentialsOptions {
  bool insecure = false;      // plaintext gRPC, only when asked for (--insecure)
  std::string tls_cert_file;  // PEM: the server's certificate chain
  std::string tls_key_file;   // PEM: its private key
  // PEM: CAs that sign agent (client) certificates. Set: agent calls need a verified
  // certificate naming the agent (mTLS); unset: agents are not authenticated.
  std::string tls_ca_file;
  // `TOKEN ROLE [NAME]` lines: JobService calls need a bearer token (read-only: reads; admin:
  // also submit and cancel). Empty: no token is checked.
  std::string tokens_file;
};

struct CoordinatorOptions {
  std::string listen = "0.0.0.0:50051";  // HOST:PORT; port 0 picks a free port
  std::string db_path = "moecap.db";     // SQLite file; empty: jobs kept in memory only
  bool db_synchronous_full = false;      // fsync every commit (power-loss safe) vs. WAL NORMAL
  absl::Duration lease = absl::Seconds(10);
  std::string metrics_listen;  // HOST:PORT of /metrics; empty: not served
  std::vector<std::string> catalog_dirs;
  int max_receive_message_bytes = 16 << 20;
  int max_send_message_bytes = 64 << 20;
  absl::Duration tick = absl::Milliseconds(50);      // leases, rendezvous timeouts, scheduling
  absl::Duration shutdown_grace = absl::Seconds(5);  // in-flight calls get this long to end
  JobManagerOptions jobs;
  SubmissionQueueOptions submissions;
  RendezvousLimits rendezvous;
  CredentialsOptions credentials;
  std::string version = "dev";
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_COORDINATOR_OPTIONS_H_
