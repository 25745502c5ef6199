// moecap-agent: the daemon on each host of a moecap cluster. It registers with the coordinator
// (its devices and their peaks), keeps its lease, runs the ranks of the points assigned to it as
// processes of this binary (hidden --worker mode) and reports their results. SIGTERM/SIGINT:
// cancel what runs, deregister, exit 0.
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/compute/host_probe.h"
#include "agent/daemon/agent.h"
#include "agent/daemon/coordinator_client.h"
#include "agent/daemon/worker.h"
#include "common/telemetry/metrics_server.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

#ifndef MOECAP_VERSION
#define MOECAP_VERSION "unknown"
#endif

namespace moecap::agentd {
namespace {

std::string SelfExecutable() {
  char path[PATH_MAX] = {};
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string();
}

// The write end of the self-pipe the signal handler reports to. A signal handler can reach no
// object, so this one file-scope descriptor is the exception to "no global mutable state"; it is
// set once, before the handler is installed. (Blocking the signals instead does not work:
// OpenBLAS starts its threads before main, with the signals unblocked.)
int shutdown_pipe_write = -1;

void OnShutdownSignal(int signal) {
  const unsigned char byte = static_cast<unsigned char>(signal);
  [[maybe_unused]] const ssize_t ignored = write(shutdown_pipe_write, &byte, 1);
}

int Fail(absl::string_view what, const absl::Status& status) {
  spdlog::critical("{}: {}", std::string(what), std::string(status.message()));
  return 1;
}

int RunDaemon(AgentOptions options, const std::string& metrics_listen) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return Fail("moecap-agent cannot start", absl::InternalError("pipe2 failed"));
  }
  shutdown_pipe_write = pipe_fds[1];
  struct sigaction action = {};
  action.sa_handler = OnShutdownSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);

  absl::StatusOr<std::unique_ptr<Agent>> agent = Agent::Create(std::move(options));
  if (!agent.ok()) return Fail("moecap-agent cannot start", agent.status());

  std::unique_ptr<telemetry::MetricsServer> metrics_server;
  if (!metrics_listen.empty()) {
    absl::StatusOr<telemetry::HostPort> address = telemetry::ParseHostPort(metrics_listen);
    if (!address.ok()) return Fail("moecap-agent cannot start", address.status());
    telemetry::MetricsServerOptions server_options;
    server_options.host = address->host;
    server_options.port = address->port;
    Agent* a = agent->get();
    server_options.health = [a] { return a->Health(); };
    absl::StatusOr<std::unique_ptr<telemetry::MetricsServer>> server =
        telemetry::MetricsServer::Start((*agent)->registry(), server_options);
    if (!server.ok()) return Fail("--metrics-listen", server.status());
    metrics_server = *std::move(server);
    spdlog::info("metrics on http://{}/metrics", metrics_server->address());
  }

  // Waits for a signal (its number in the pipe) or for the end of Run (a 0 byte).
  std::thread signal_thread([&] {
    unsigned char signal = 0;
    while (true) {
      const ssize_t n = read(pipe_fds[0], &signal, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n == 1 && signal != 0) {
        spdlog::info("{}: shutting down", strsignal(signal));
        (*agent)->Shutdown();
      }
      return;
    }
  });
  (*agent)->Run();
  const unsigned char end = 0;
  [[maybe_unused]] const ssize_t ignored = write(pipe_fds[1], &end, 1);
  signal_thread.join();
  if (metrics_server != nullptr) metrics_server->Stop();
  return 0;
}

}  // namespace
}  // namespace moecap::agentd

int main(int argc, char** argv) {
  using moecap::agentd::AgentOptions;
  using moecap::agentd::BackendChoice;
  AgentOptions options;
  std::string backend = "auto";
  std::string metrics_listen;
  std::string log_level = "info";
  std::vector<std::string> labels;
  double reconnect_max_s = absl::ToDoubleSeconds(options.reconnect.max);
  if (const char* env = std::getenv("MOECAP_COORDINATOR"); env != nullptr) {
    options.coordinator = env;
  }

  CLI::App app{
      "moecap-agent: the moecap daemon of one host; runs the benchmark points the coordinator "
      "assigns it and reports their results"};
  app.add_option("--coordinator", options.coordinator,
                 "coordinator HOST:PORT (default: $MOECAP_COORDINATOR)");
  app.add_option("--name", options.name, "agent name, unique in the cluster (default: hostname)");
  // Transport security: mTLS or an explicit --insecure (docs/security.md).
  app.add_option("--tls-ca", options.security.ca_file,
                 "PEM CA that signed the coordinator's certificate (TLS)");
  app.add_option("--tls-cert", options.security.cert_file,
                 "PEM certificate of this agent: its CN or a DNS SAN is the agent's --name");
  app.add_option("--tls-key", options.security.key_file, "PEM private key of --tls-cert");
  app.add_option("--tls-server-name", options.security.server_name,
                 "name expected in the coordinator's certificate (default: the --coordinator "
                 "host)");
  app.add_flag("--insecure", options.security.insecure,
               "plaintext gRPC to a coordinator started with --insecure (logs a warning)");
  app.add_option("--backend", backend,
                 "cpu, cuda or auto. cuda: one rank slot per GPU (found through NVML, peaks from "
                 "the hardware catalog by GPU name, else probed), ranks on cuBLAS + NCCL; needs a "
                 "build with CUDA and an NVIDIA driver. auto: cuda when both are there, else cpu "
                 "(the log says why)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
      ->capture_default_str();
  app.add_option("--data-address", options.data_address,
                 "address the other hosts' ranks reach this host's ranks at")
      ->capture_default_str();
  app.add_option("--devices", options.inventory.devices,
                 "CPU backend: rank slots this agent offers (the host's cores and peaks are split "
                 "evenly); the cuda backend offers one slot per GPU")
      ->capture_default_str();
  app.add_option("--threads-per-rank", options.threads_per_rank,
                 "BLAS threads per rank (0: the cores of the rank's slot)")
      ->capture_default_str();
  app.add_option("--peak-bandwidth-gb-s", options.inventory.peak_bandwidth_gb_s,
                 "the host's peak memory bandwidth, GB/s (cuda: per GPU) (0: catalog or probe)");
  app.add_option("--peak-gflops", options.inventory.peak_gflops,
                 "the host's peak fp32 GFLOP/s (cuda: per GPU) (0: catalog or probe)");
  app.add_option("--catalog", options.inventory.catalog_dirs,
                 "extra catalog directory (models/, hardware/)");
  app.add_option("--label", labels, "KEY=VALUE label reported with the agent (repeatable)");
  app.add_option("--metrics-listen", metrics_listen,
                 "serve Prometheus /metrics and /healthz on HOST:PORT (default: off)");
  app.add_option("--work-dir", options.work_dir,
                 "directory for job directories (default: $TMPDIR/moecap-agent-NAME)");
  app.add_option("--reconnect-max-s", reconnect_max_s,
                 "longest pause between reconnection attempts, seconds")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or critical")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical"}))
      ->capture_default_str();
  bool check_args = false;
  app.add_flag("--check-args", check_args,
               "parse and validate the arguments, say whether they are accepted and exit without "
               "connecting or reading any file (checks a deployment's command line)");
  bool worker = false;
  std::string worker_launch;
  app.add_flag("--worker", worker)->group("");
  app.add_option("--worker-launch", worker_launch)->group("");
  CLI11_PARSE(app, argc, argv);

  if (worker) return moecap::agentd::RunAgentWorker(worker_launch);

  if (absl::Status s = moecap::agentd::ValidateSecurity(options.security); !s.ok()) {
    std::cerr << "moecap-agent: " << s.message() << std::endl;
    return 1;
  }
  for (const std::string& label : labels) {
    std::pair<std::string, std::string> kv = absl::StrSplit(label, absl::MaxSplits('=', 1));
    if (kv.first.empty()) {
      std::cerr << "moecap-agent: --label '" << label << "': expected KEY=VALUE" << std::endl;
      return 1;
    }
    options.labels[kv.first] = kv.second;
  }
  if (!(reconnect_max_s > 0)) {
    std::cerr << "moecap-agent: --reconnect-max-s must be > 0" << std::endl;
    return 1;
  }
  if (check_args) {
    std::cout << "moecap-agent: arguments accepted" << std::endl;
    return 0;
  }
  // The rank workers run in job directories: give them absolute paths.
  for (std::string* path :
       {&options.security.ca_file, &options.security.cert_file, &options.security.key_file}) {
    if (!path->empty()) *path = std::filesystem::absolute(*path).string();
  }

  auto logger = spdlog::stderr_color_mt("moecap-agent");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));
  if (options.name.empty()) options.name = moecap::GetHostInfo().hostname;
  if (options.security.insecure) {
    spdlog::warn("--insecure: plaintext gRPC to the coordinator; this agent is not authenticated");
  }
  spdlog::set_pattern(absl::StrCat("[%Y-%m-%dT%H:%M:%S.%e] [%l] [", options.name, "] %v"));

  options.inventory.backend = backend == "cpu"    ? BackendChoice::kCpu
                              : backend == "cuda" ? BackendChoice::kCuda
                                                  : BackendChoice::kAuto;
  options.reconnect.max = absl::Seconds(reconnect_max_s);
  options.reconnect.initial = std::min(options.reconnect.initial, options.reconnect.max);
  options.executable = moecap::agentd::SelfExecutable();
  options.version = MOECAP_VERSION;
  if (options.work_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    options.work_dir =
        absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/moecap-agent-", options.name);
  }
  return moecap::agentd::RunDaemon(std::move(options), metrics_listen);
}
