// moecap_metrics_fixture: serves PopulateExampleMetrics() over MetricsServer for the Prometheus
// end-to-end tests. Writes its address to --port-file once serving, runs until SIGTERM/SIGINT or
// --exit-after-s (so a crashed test script cannot leave it running), then stops cleanly.
#include <signal.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "common/telemetry/metric_names.h"
#include "common/telemetry/metrics_server.h"
#include "common/telemetry/registry.h"
#include "tests/e2e/example_metrics.h"

namespace {

int Run(const std::string& listen, const std::string& port_file, int exit_after_s) {
  using moecap::telemetry::MetricsServer;
  absl::StatusOr<moecap::telemetry::HostPort> address =
      moecap::telemetry::ParseHostPort(listen, "--listen");
  if (!address.ok()) {
    std::cerr << address.status().message() << "\n";
    return 2;
  }
  moecap::telemetry::Registry registry;
  if (absl::Status status = moecap::telemetry::testing::PopulateExampleMetrics(registry);
      !status.ok()) {
    std::cerr << "populate: " << status << "\n";
    return 1;
  }
  // Block the stop signals before any thread starts, so only sigtimedwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  moecap::telemetry::MetricsServerOptions options;
  options.host = address->host;
  options.port = address->port;
  absl::StatusOr<std::unique_ptr<MetricsServer>> server = MetricsServer::Start(registry, options);
  if (!server.ok()) {
    std::cerr << server.status() << "\n";
    return 1;
  }
  std::cout << "serving on " << (*server)->address() << std::endl;
  if (!port_file.empty()) {
    // Written whole, then renamed: a reader never sees half an address.
    const std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << (*server)->address() << "\n";
    std::rename(tmp.c_str(), port_file.c_str());
  }
  timespec timeout{exit_after_s, 0};
  const int signal_number = sigtimedwait(&stop_signals, nullptr, &timeout);
  std::cout << (signal_number > 0 ? "stopping on signal" : "stopping after --exit-after-s")
            << std::endl;
  (*server)->Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Serves every declared moecap metric with example values (tests only)."};
  std::string listen = "127.0.0.1:0";
  std::string port_file;
  int exit_after_s = 300;
  bool list = false;
  app.add_option("--listen", listen, "HOST:PORT to serve /metrics on (port 0: a free one)");
  app.add_option("--port-file", port_file, "file to write HOST:PORT to once serving");
  app.add_option("--exit-after-s", exit_after_s, "stop by itself after this many seconds")
      ->check(CLI::PositiveNumber);
  app.add_flag("--list-metrics", list, "print every declared metric as NAME TYPE and exit");
  CLI11_PARSE(app, argc, argv);
  if (list) {
    for (const moecap::telemetry::MetricDef& def : moecap::telemetry::kCoordinatorMetrics) {
      std::cout << def.name << " " << moecap::telemetry::MetricTypeName(def.type) << "\n";
    }
    for (const moecap::telemetry::MetricDef& def : moecap::telemetry::kAgentMetrics) {
      std::cout << def.name << " " << moecap::telemetry::MetricTypeName(def.type) << "\n";
    }
    return 0;
  }
  return Run(listen, port_file, exit_after_s);
}
