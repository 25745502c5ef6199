// Tests of the /metrics server over real loopback HTTP (httplib client): content, content type,
// health, unknown paths, bind errors, and that Stop() is prompt and final.
#include "common/telemetry/metrics_server.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"

namespace moecap::telemetry {
namespace {

using ::testing::HasSubstr;

class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GaugeFamily* depth = *registry_.AddGauge("moecap_test_queue_depth", "Jobs waiting.");
    (*depth->WithLabels({}))->Set(7);
  }

  static std::unique_ptr<httplib::Client> ClientFor(const MetricsServer& server) {
    auto client = std::make_unique<httplib::Client>(server.host(), server.port());
    client->set_connection_timeout(std::chrono::seconds(2));
    client->set_read_timeout(std::chrono::seconds(2));
    return client;
  }

  Registry registry_;
};

TEST_F(MetricsServerTest, ServesTheRegistryWithTheTextFormatContentType) {
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start(registry_, MetricsServerOptions{});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_GT((*server)->port(), 0);  // port 0 asked for a free one
  EXPECT_EQ((*server)->address(), "127.0.0.1:" + std::to_string((*server)->port()));

  auto client = ClientFor(**server);
  httplib::Result response = client->Get("/metrics");
  ASSERT_TRUE(response) << httplib::to_string(response.error());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(response->body, registry_.Render());
  EXPECT_THAT(response->body, HasSubstr("moecap_test_queue_depth 7\n"));

  // Updates show on the next scrape.
  (*(*registry_.GetGauge("moecap_test_queue_depth"))->WithLabels({}))->Set(8);
  response = client->Get("/metrics");
  ASSERT_TRUE(response);
  EXPECT_THAT(response->body, HasSubstr("moecap_test_queue_depth 8\n"));

  response = client->Get("/nothing-here");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 404);
}

TEST_F(MetricsServerTest, HealthzReflectsTheHealthCallback) {
  std::atomic<bool> healthy{true};  // read by the server's worker thread
  MetricsServerOptions options;
  options.health = [&healthy] {
    return healthy.load() ? absl::OkStatus() : absl::UnavailableError("coordinator unreachable");
  };
  absl::StatusOr<std::unique_ptr<MetricsServer>> server = MetricsServer::Start(registry_, options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ClientFor(**server);

  httplib::Result response = client->Get("/healthz");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "ok\n");

  healthy = false;
  response = client->Get("/healthz");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 503);
  EXPECT_THAT(response->body, HasSubstr("coordinator unreachable"));
  (*server)->Stop();  // before `healthy` goes out of scope
}

TEST_F(MetricsServerTest, StopIsPromptWithAnIdleKeepAliveClientAndRefusesAfterwards) {
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start(registry_, MetricsServerOptions{});
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ClientFor(**server);
  client->set_keep_alive(true);  // leaves a connection open on the server's worker
  ASSERT_TRUE(client->Get("/metrics"));

  const auto start = std::chrono::steady_clock::now();
  (*server)->Stop();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Bounded by keep_alive_timeout (1 s) + io_timeout (2 s); allow slack for a loaded host.
  EXPECT_LT(seconds, 4.0);
  (*server)->Stop();  // idempotent

  auto fresh = ClientFor(**server);
  EXPECT_FALSE(fresh->Get("/metrics"));
}

TEST_F(MetricsServerTest, BindingATakenPortFailsWithUnavailable) {
  absl::StatusOr<std::unique_ptr<MetricsServer>> first =
      MetricsServer::Start(registry_, MetricsServerOptions{});
  ASSERT_TRUE(first.ok());
  MetricsServerOptions options;
  options.port = (*first)->port();
  absl::StatusOr<std::unique_ptr<MetricsServer>> second = MetricsServer::Start(registry_, options);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr(std::to_string(options.port)));
}

TEST_F(MetricsServerTest, RejectsZeroThreads) {
  MetricsServerOptions options;
  options.threads = 0;
  EXPECT_EQ(MetricsServer::Start(registry_, options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ParseHostPortTest, AcceptsHostPortForms) {
  absl::StatusOr<HostPort> v4 = ParseHostPort("0.0.0.0:9464");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "0.0.0.0");
  EXPECT_EQ(v4->port, 9464);
  absl::StatusOr<HostPort> v6 = ParseHostPort("[::1]:0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  absl::StatusOr<HostPort> any = ParseHostPort(":9465");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->host, "0.0.0.0");
  absl::StatusOr<HostPort> name = ParseHostPort("localhost:1");
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(name->host, "localhost");
}

TEST(ParseHostPortTest, RejectsMalformedAddressesNamingTheFlag) {
  EXPECT_THAT(ParseHostPort("9464").status().message(),
              HasSubstr("--metrics-listen: \"9464\" has no port"));
  EXPECT_THAT(ParseHostPort("host:70000").status().message(), HasSubstr("0..65535"));
  EXPECT_THAT(ParseHostPort("host:x").status().message(), HasSubstr("not a number"));
  EXPECT_THAT(ParseHostPort("::1:9464").status().message(), HasSubstr("brackets"));
  EXPECT_THAT(ParseHostPort("[::1]9464", "--listen").status().message(),
              HasSubstr("--listen: \"[::1]9464\" is not [IPV6]:PORT"));
}

}  // namespace
}  // namespace moecap::telemetry
