// /metrics and /healthz over cpp-httplib, served from one background listener thread.
#include "common/telemetry/metrics_server.h"

#include <sys/socket.h>

#include <chrono>
#include <exception>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/telemetry/text_format.h"
#include "httplib.h"

namespace moecap::telemetry {
namespace {

std::chrono::microseconds ToChrono(absl::Duration d) { return absl::ToChronoMicroseconds(d); }

}  // namespace

absl::StatusOr<HostPort> ParseHostPort(absl::string_view text, absl::string_view flag) {
  HostPort result;
  absl::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": \"", text, "\" is not [IPV6]:PORT"));
    }
    result.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": \"", text, "\" has no port (expected HOST:PORT)"));
    }
    if (text.substr(0, colon).find(':') != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": \"", text, "\": write IPv6 hosts in brackets ([::1]:9464)"));
    }
    result.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  if (result.host.empty()) result.host = "0.0.0.0";
  int port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": port \"", port_text, "\" is not a number in 0..65535"));
  }
  result.port = port;
  return result;
}

MetricsServer::MetricsServer(std::unique_ptr<httplib::Server> server, std::string host, int port)
    : server_(std::move(server)), host_(std::move(host)), port_(port) {}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const Registry& registry,
                                                                    MetricsServerOptions options) {
  if (options.threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics server threads: must be at least 1, got ", options.threads));
  }
  auto server = std::make_unique<httplib::Server>();
  const size_t threads = static_cast<size_t>(options.threads);
  server->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server->set_keep_alive_timeout(
      std::max<time_t>(1, absl::ToInt64Seconds(options.keep_alive_timeout)));
  server->set_read_timeout(ToChrono(options.io_timeout));
  // httplib's default sets SO_REUSEPORT, which would let a second process bind the same port and
  // silently share the scrapes; SO_REUSEADDR alone allows a quick restart but not that.
  server->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server->set_write_timeout(ToChrono(options.io_timeout));

  server->Get("/metrics", [&registry](const httplib::Request&, httplib::Response& response) {
    response.set_content(registry.Render(), kTextFormatContentType);
  });
  server->Get("/healthz",
              [health = options.health](const httplib::Request&, httplib::Response& response) {
                const absl::Status status = health ? health() : absl::OkStatus();
                response.status = status.ok() ? 200 : 503;
                response.set_content(status.ok() ? "ok\n" : absl::StrCat(status.ToString(), "\n"),
                                     "text/plain; charset=utf-8");
              });
  // A throwing handler must not take the process down (no exception leaves a module).
  server->set_exception_handler(
      [](const httplib::Request&, httplib::Response& response, std::exception_ptr) {
        response.status = 500;
        response.set_content("internal error\n", "text/plain; charset=utf-8");
      });

  int port = options.port;
  if (port == 0) {
    port = server->bind_to_any_port(options.host);
    if (port < 0) {
      return absl::UnavailableError(
          absl::StrCat("metrics server: cannot bind ", options.host, " on any port"));
    }
  } else if (!server->bind_to_port(options.host, port)) {
    return absl::UnavailableError(absl::StrCat("metrics server: cannot bind ", options.host, ":",
                                               port, " (in use, or not an address of this host)"));
  }

  auto self =
      std::unique_ptr<MetricsServer>(new MetricsServer(std::move(server), options.host, port));
  std::promise<void> finished;
  self->finished_ = finished.get_future();
  httplib::Server* raw = self->server_.get();
  self->thread_ = std::thread([raw, finished = std::move(finished)]() mutable {
    raw->listen_after_bind();
    finished.set_value();
  });
  // httplib's stop() only takes effect once the listener runs (and must be called once), so
  // Start() returns only when it does, or fails when the listener returned at once.
  while (!raw->is_running()) {
    if (self->finished_.wait_for(std::chrono::milliseconds(1)) == std::future_status::ready) {
      self->Stop();
      return absl::UnavailableError(
          absl::StrCat("metrics server on ", self->address(), ": listener did not start"));
    }
  }
  return self;
}

std::string MetricsServer::address() const {
  if (host_.find(':') != std::string::npos) return absl::StrCat("[", host_, "]:", port_);
  return absl::StrCat(host_, ":", port_);
}

void MetricsServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // Start() saw the listener running (or already finished); stop() closes the listening socket,
  // the accept loop ends and httplib joins its workers, whose connections end within the
  // keep-alive and I/O timeouts. stop() must run only once: it asserts on a closed socket.
  if (finished_.valid() &&
      finished_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    server_->stop();
  }
  if (thread_.joinable()) thread_.join();
}

MetricsServer::~MetricsServer() { Stop(); }

}  // namespace moecap::telemetry
