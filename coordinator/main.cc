// moecap-coordinator: parses flags into CoordinatorOptions, starts a CoordinatorServer, prints
// "listening on HOST:PORT" (so scripts using port 0 find it) and serves until SIGTERM or SIGINT,
// then shuts down within the grace period.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "coordinator/auth.h"
#include "coordinator/coordinator_server.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

#ifndef MOECAP_VERSION
#define MOECAP_VERSION "dev"
#endif

int main(int argc, char** argv) {
  moecap::coordinator::CoordinatorOptions options;
  options.version = MOECAP_VERSION;
  double lease_s = 10;
  double backfill_s = 300;
  double grace_s = 5;
  std::string log_level = "info";

  CLI::App app{
      "moecap-coordinator: schedules MoE benchmark plans onto moecap agents and "
      "aggregates their reports into cluster S-MBU, S-MFU and cost."};
  app.set_version_flag("--version", MOECAP_VERSION);
  app.add_option("--listen", options.listen, "gRPC address HOST:PORT (port 0: a free port)")
      ->capture_default_str();
  app.add_option("--db", options.db_path,
                 "SQLite file of jobs, reports and results (created if absent; '' keeps them "
                 "in memory)")
      ->capture_default_str();
  app.add_flag("--db-sync-full", options.db_synchronous_full,
               "fsync every commit (survives power loss; slower)");
  app.add_option("--lease-s", lease_s, "agent lease, seconds: an agent silent this long is lost")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--metrics-listen", options.metrics_listen,
                 "Prometheus /metrics address HOST:PORT (empty: not served)");
  app.add_option("--catalog", options.catalog_dirs,
                 "extra catalog directory with models/*.yaml and hardware/*.yaml (repeatable)");
  app.add_option("--backfill-window-s", backfill_s,
                 "seconds a queued job lets later jobs start ahead of it before it reserves "
                 "the next free agents")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  app.add_option("--shutdown-grace-s", grace_s, "seconds in-flight calls get at shutdown")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  // Submissions are parsed and committed apart from heartbeats (coordinator/submission_queue.h).
  app.add_option("--submit-workers", options.submissions.workers,
                 "threads that parse and commit submitted plans, at a lower CPU priority than "
                 "the threads serving agents")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--submit-queue", options.submissions.max_pending,
                 "submissions waiting for a worker at most; more are refused (RESOURCE_EXHAUSTED)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--submit-nice", options.submissions.nice,
                 "niceness added to the submission workers (0: the coordinator's priority)")
      ->check(CLI::Range(0, 19))
      ->capture_default_str();
  // Transport security: TLS or an explicit --insecure (docs/security.md).
  moecap::coordinator::CredentialsOptions& creds = options.credentials;
  app.add_option("--tls-cert", creds.tls_cert_file, "PEM certificate chain of this server (TLS)");
  app.add_option("--tls-key", creds.tls_key_file, "PEM private key of --tls-cert");
  app.add_option("--tls-ca", creds.tls_ca_file,
                 "PEM CA bundle that signs agent certificates: agents must then present one "
                 "naming them (mTLS)");
  app.add_flag("--insecure", creds.insecure,
               "serve plaintext gRPC without TLS (trusted networks only; logs a warning)");
  app.add_option("--tokens-file", creds.tokens_file,
                 "moecapctl bearer tokens, lines 'TOKEN ROLE [NAME]', ROLE read-only or admin "
                 "(default: no token checked)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  bool check_args = false;
  app.add_flag("--check-args", check_args,
               "parse and validate the arguments, say whether they are accepted and exit without "
               "serving or reading any file (checks a deployment's command line)");
  CLI11_PARSE(app, argc, argv);

  options.lease = absl::Seconds(lease_s);
  options.jobs.scheduler.backfill_window = absl::Seconds(backfill_s);
  options.shutdown_grace = absl::Seconds(grace_s);
  // Logs go to stderr; stdout carries only the "listening on" line scripts read.
  spdlog::set_default_logger(spdlog::stderr_color_mt("moecap-coordinator"));
  spdlog::set_level(spdlog::level::from_str(log_level));

  // Block the stop signals in every thread; this one waits for them with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (absl::Status s = moecap::coordinator::ValidateCredentials(creds); !s.ok()) {
    spdlog::error("{}", std::string(s.message()));
    return EXIT_FAILURE;
  }
  if (check_args) {
    std::cout << "moecap-coordinator: arguments accepted" << std::endl;
    return EXIT_SUCCESS;
  }
  if (creds.insecure) {
    spdlog::warn(
        "--insecure: gRPC is plaintext and agents are not authenticated; anyone who reaches {} "
        "can act as an agent{}",
        options.listen, creds.tokens_file.empty() ? " and submit or cancel jobs" : "");
  } else if (creds.tls_ca_file.empty()) {
    spdlog::warn("TLS without --tls-ca: agents are not authenticated by certificate");
  }
  if (creds.tokens_file.empty() && !creds.insecure) {
    spdlog::warn("no --tokens-file: moecapctl calls are not authenticated");
  }

  absl::StatusOr<std::unique_ptr<moecap::coordinator::CoordinatorServer>> server =
      moecap::coordinator::CoordinatorServer::Start(options);
  if (!server.ok()) {
    spdlog::error("{}", server.status().ToString());
    return EXIT_FAILURE;
  }
  std::cout << "listening on " << (*server)->address() << std::endl;
  if ((*server)->metrics_port() != 0) {
    std::cout << "metrics on port " << (*server)->metrics_port() << std::endl;
  }

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  spdlog::info("{}: shutting down", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown();
  return EXIT_SUCCESS;
}
