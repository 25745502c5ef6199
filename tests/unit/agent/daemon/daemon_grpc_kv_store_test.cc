// GrpcKvStore against an in-process coordinator fake (a real gRPC server on loopback with an
// in-memory store): values, server-side waits, timeouts that name the keys, counters, a deleted
// scope, a coordinator that comes up late (UNAVAILABLE retried, the pauses on a fake clock) or
// never, scopes that keep attempts apart, and two Gloo ranks meeting through it.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "agent/comm/gloo_communicator.h"
#include "agent/comm/grpc_kv_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/integration/agent/fake_coordinator.h"

namespace moecap {
namespace {

using testing::FakeCoordinator;
using testing::FakeCoordinatorOptions;
using testing::Recorded;

class GrpcKvStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<FakeCoordinator>> fake =
        FakeCoordinator::Start(FakeCoordinatorOptions());
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = *std::move(fake);
  }

  // A channel to the fake (or to `port`) that reconnects within milliseconds after a refused
  // connection, so a test that starts the server late need not wait out gRPC's 1 s backoff.
  std::shared_ptr<grpc::Channel> Channel(int port = 0) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 10);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 10);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 50);
    return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port > 0 ? port : fake_->port()),
                                     grpc::InsecureChannelCredentials(), args);
  }

  std::unique_ptr<GrpcKvStore> Store(const std::string& scope,
                                     std::shared_ptr<grpc::Channel> channel = nullptr,
                                     const Clock& clock = SystemClock()) {
    GrpcKvStoreOptions options;
    options.agent_id = "agent-1";
    options.scope = scope;
    options.call_timeout = absl::Seconds(5);
    return std::make_unique<GrpcKvStore>(channel != nullptr ? channel : Channel(), options, clock);
  }

  std::unique_ptr<FakeCoordinator> fake_;
};

TEST_F(GrpcKvStoreTest, SetThenGet) {
  auto store = Store("job-1/0/1");
  ASSERT_TRUE(store->Set("rank0", std::string("addr\0bytes", 10)).ok());
  absl::StatusOr<std::string> value = store->Get("rank0", absl::Seconds(1));
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, std::string("addr\0bytes", 10));  // binary values survive
}

TEST_F(GrpcKvStoreTest, GetWaitsOnTheServerForALaterSet) {
  auto reader = Store("s");
  auto writer = Store("s");
  absl::StatusOr<std::string> value;
  std::thread get([&] { value = reader->Get("k", absl::Seconds(20)); });
  // The key is set only once the Get is blocked on the server, so the Get cannot find it at once.
  ASSERT_TRUE(fake_->WaitFor([](const Recorded& r) { return r.rendezvous_waiting > 0; },
                             absl::Seconds(10)));
  EXPECT_TRUE(writer->Set("k", "v").ok());
  get.join();
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, "v");
}

TEST_F(GrpcKvStoreTest, TimeoutsNameTheMissingKeys) {
  auto store = Store("s");
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> value = store->Get("never", absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsDeadlineExceeded(value.status())) << value.status();
  EXPECT_NE(value.status().message().find("'never'"), std::string::npos) << value.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));

  ASSERT_TRUE(store->Set("a", "1").ok());
  const absl::Status wait = store->Wait({"a", "b"}, absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsDeadlineExceeded(wait)) << wait;
  EXPECT_NE(wait.message().find("missing keys: b"), std::string::npos) << wait;
  ASSERT_TRUE(store->Set("b", "2").ok());
  EXPECT_TRUE(store->Wait({"a", "b"}, absl::Seconds(1)).ok());
}

TEST_F(GrpcKvStoreTest, AddCountsAndScopesKeepAttemptsApart) {
  auto first = Store("job-1/0/1");
  auto second = Store("job-1/0/2");
  EXPECT_EQ(*first->Add("joined", 1), 1);
  EXPECT_EQ(*first->Add("joined", 2), 3);
  EXPECT_EQ(*second->Add("joined", 1), 1);  // another attempt's counter
  ASSERT_TRUE(first->Set("k", "first").ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(second->Get("k", absl::Milliseconds(100)).status()));
}

TEST_F(GrpcKvStoreTest, ADeletedScopeIsNotFound) {
  auto store = Store("gone");
  ASSERT_TRUE(store->Set("k", "v").ok());
  auto channel = grpc::CreateChannel(fake_->address(), grpc::InsecureChannelCredentials());
  auto stub = v1::RendezvousService::NewStub(channel);
  grpc::ClientContext context;
  v1::RendezvousDeleteScopeRequest request;
  request.set_scope("gone");
  v1::RendezvousDeleteScopeResponse response;
  ASSERT_TRUE(stub->DeleteScope(&context, request, &response).ok());
  const absl::Status status = store->Get("k", absl::Seconds(1)).status();
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
}

// The coordinator comes up during the third pause between retries: the first three tries find
// nothing listening, the fourth succeeds, and the pauses double from retry_interval.
TEST_F(GrpcKvStoreTest, RetriesWhileTheCoordinatorIsNotUpYet) {
  const int port = fake_->port();
  fake_.reset();  // nothing listens there now
  std::shared_ptr<grpc::Channel> channel = Channel(port);
  FakeClock clock;
  bool connected = false;
  clock.set_on_wait([&](size_t waits) {
    if (waits != 3) return;
    FakeCoordinatorOptions options;
    options.port = port;
    absl::StatusOr<std::unique_ptr<FakeCoordinator>> fake = FakeCoordinator::Start(options);
    if (!fake.ok()) return;  // the port was taken meanwhile: the test fails below
    fake_ = *std::move(fake);
    // Bounded, on real time: the channel reconnects after its (10 ms) backoff.
    connected =
        channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10));
  });
  auto store = Store("s", channel, clock);
  const absl::Status set = store->Set("k", "v");
  ASSERT_NE(fake_, nullptr);
  ASSERT_TRUE(connected);
  EXPECT_TRUE(set.ok()) << set;
  EXPECT_EQ(clock.waits(),
            (std::vector<absl::Duration>{absl::Milliseconds(50), absl::Milliseconds(100),
                                         absl::Milliseconds(200)}));
  EXPECT_EQ(*store->Get("k", absl::Seconds(1)), "v");
}

// Nothing ever listens: the retries pause 50 ms doubling to 1 s, and give up when the next pause
// would pass the call timeout (5 s), all on the fake clock.
TEST_F(GrpcKvStoreTest, GivesUpWhenTheCoordinatorStaysUnavailable) {
  const int port = fake_->port();
  fake_.reset();
  FakeClock clock;
  auto store = Store("s", Channel(port), clock);
  const absl::Time start = clock.Now();
  const absl::Status set = store->Set("k", "v");
  EXPECT_TRUE(absl::IsUnavailable(set)) << set;
  EXPECT_NE(set.message().find("stayed unavailable"), std::string::npos) << set;
  EXPECT_NE(set.message().find("set of 'k' in scope 's'"), std::string::npos) << set;
  const absl::Duration ms = absl::Milliseconds(1);
  EXPECT_EQ(clock.waits(),
            (std::vector<absl::Duration>{50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1000 * ms,
                                         1000 * ms, 1000 * ms}));
  EXPECT_LT(clock.Now() - start, absl::Seconds(5));
}

TEST_F(GrpcKvStoreTest, TwoGlooRanksMeetThroughIt) {
  std::vector<std::thread> ranks;
  std::vector<double> sums(2, 0);
  for (int r = 0; r < 2; ++r) {
    ranks.emplace_back([&, r] {
      auto store = Store("job-gloo/0/1");
      GlooOptions options;
      options.rank = r;
      options.size = 2;
      options.key_prefix = "gloo";
      options.timeout = absl::Seconds(20);
      absl::StatusOr<std::unique_ptr<GlooCommunicator>> comm =
          GlooCommunicator::Connect(*store, options);
      ASSERT_TRUE(comm.ok()) << comm.status();
      double value = r + 1;
      ASSERT_TRUE((*comm)->AllReduceSum(&value, 1).ok());
      sums[static_cast<size_t>(r)] = value;
    });
  }
  for (std::thread& t : ranks) t.join();
  EXPECT_EQ(sums, (std::vector<double>{3, 3}));  // 1 + 2 on both ranks
}

}  // namespace
}  // namespace moecap
