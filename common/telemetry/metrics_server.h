// Serves a Registry over HTTP for Prometheus: GET /metrics (text format 0.0.4) and GET /healthz,
// from a background thread, on the address given by --metrics-listen.
#ifndef MOECAP_COMMON_TELEMETRY_METRICS_SERVER_H_
#define MOECAP_COMMON_TELEMETRY_METRICS_SERVER_H_

#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/telemetry/registry.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace moecap::telemetry {

struct HostPort {
  std::string host;
  int port = 0;
};

// "HOST:PORT", "[::1]:PORT" or ":PORT" (all interfaces). The port is 0..65535; 0 asks the
// MetricsServer to pick a free one. Errors name `flag` ("--metrics-listen") and the reason.
absl::StatusOr<HostPort> ParseHostPort(absl::string_view text,
                                       absl::string_view flag = "--metrics-listen");

struct MetricsServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: a free port, reported by MetricsServer::port()
  // /healthz answers 200 "ok" while this returns OK (or when it is unset), else 503 and the
  // message, so Kubernetes probes and Docker HEALTHCHECKs see what the process sees. Called from
  // the server's worker threads, possibly concurrently: it must be thread-safe.
  std::function<absl::Status()> health;
  // Worker threads answering requests; scrapes are rare and short.
  int threads = 2;
  // Idle keep-alive connections and slow clients are cut after these, which bounds Stop().
  absl::Duration keep_alive_timeout = absl::Seconds(1);
  absl::Duration io_timeout = absl::Seconds(2);
};

class MetricsServer {
 public:
  // Binds (failing with Unavailable when the address is taken or invalid) and starts serving
  // from a background thread. `registry` must outlive the server.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const Registry& registry,
                                                              MetricsServerOptions options);
  // Stops and joins (see Stop()).
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  const std::string& host() const { return host_; }
  int port() const { return port_; }
  // "host:port" ("[::1]:port" for IPv6), e.g. for a Prometheus static target.
  std::string address() const;

  // Closes the listener, lets in-flight requests finish and joins the thread. Returns within
  // about keep_alive_timeout + io_timeout; idempotent.
  void Stop();

 private:
  MetricsServer(std::unique_ptr<httplib::Server> server, std::string host, int port);

  std::unique_ptr<httplib::Server> server_;
  const std::string host_;
  const int port_;
  std::thread thread_;
  std::future<void> finished_;  // ready when the listener thread returns
  bool stopped_ = false;        // only touched by the owner's thread (Stop, destructor)
};

}  // namespace moecap::telemetry

#endif  // MOECAP_COMMON_TELEMETRY_METRICS_SERVER_H_
