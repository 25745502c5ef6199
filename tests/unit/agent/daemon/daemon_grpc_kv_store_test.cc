// GrpcKvStore against an in-process coordinator fake (a real gRPC server on loopback with an
// in-memory store): values, server-side waits, timeouts that name the keys, counters, a deleted
// scope, a coordinator that comes up late (UNAVAILABLE retried), scopes that keep attempts apart,
// and two Gloo ranks meeting through it.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include <thread>

#include "agent/comm/gloo_communicator.h"
#include "agent/comm/grpc_kv_store.h"
#include "tests/integration/agent/fake_coordinator.h"

namespace moecap {
namespace {

using testing::FakeCoordinator;
using testing::FakeCoordinatorOptions;

class GrpcKvStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<FakeCoordinator>> fake =
        FakeCoordinator::Start(FakeCoordinatorOptions());
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = *std::move(fake);
  }

  std::unique_ptr<GrpcKvStore> Store(const std::string& scope, int port = 0) {
    GrpcKvStoreOptions options;
    options.agent_id = "agent-1";
    options.scope = scope;
    options.call_timeout = absl::Seconds(5);
    const std::string target = absl::StrCat("127.0.0.1:", port > 0 ? port : fake_->port());
    return std::make_unique<GrpcKvStore>(
        grpc::CreateChannel(target, grpc::InsecureChannelCredentials()), options);
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
  std::thread late([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_TRUE(writer->Set("k", "v").ok());
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> value = reader->Get("k", absl::Seconds(10));
  late.join();
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, "v");
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
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

TEST_F(GrpcKvStoreTest, RetriesWhileTheCoordinatorIsNotUpYet) {
  const int port = fake_->port();
  fake_.reset();  // nothing listens there now
  auto store = Store("s", port);
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    FakeCoordinatorOptions options;
    options.port = port;
    for (int i = 0; i < 50 && fake_ == nullptr; ++i) {
      absl::StatusOr<std::unique_ptr<FakeCoordinator>> fake = FakeCoordinator::Start(options);
      if (fake.ok()) {
        fake_ = *std::move(fake);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  });
  const absl::Status set = store->Set("k", "v");  // UNAVAILABLE until the server is up
  later.join();
  ASSERT_NE(fake_, nullptr);
  EXPECT_TRUE(set.ok()) << set;
  EXPECT_EQ(*store->Get("k", absl::Seconds(1)), "v");
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
