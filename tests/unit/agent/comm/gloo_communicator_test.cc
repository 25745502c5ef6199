// GlooCommunicator on threads of one process: collectives move the right bytes, and a missing or
// failed peer turns into a prompt error rather than a hang.
#include "agent/comm/gloo_communicator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <numeric>
#include <thread>
#include <vector>

#include "agent/comm/file_kv_store.h"
#include "agent/comm/local_communicator.h"
#include "tests/unit/agent/test_util.h"

namespace moecap {
namespace {

using ::moecap::testing::RunOnRanks;
using ::moecap::testing::TempDir;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(GlooCommunicatorTest, AllToAllVDeliversUnevenChunks) {
  constexpr int kWorld = 3;
  RunOnRanks(kWorld, [](int rank, Communicator& comm) {
    // Rank r sends (r + 1)·(q + 1) bytes to rank q, each byte 10·r + q; so rank q receives
    // (r + 1)·(q + 1) bytes of value 10·r + q from every r (rank 2 gets 3, 6 and 9 bytes).
    std::vector<int64_t> send_bytes, recv_bytes;
    std::vector<char> send;
    for (int q = 0; q < kWorld; ++q) {
      send_bytes.push_back((rank + 1) * (q + 1));
      recv_bytes.push_back((q + 1) * (rank + 1));
      send.insert(send.end(), static_cast<size_t>(send_bytes.back()),
                  static_cast<char>(10 * rank + q));
    }
    std::vector<char> recv(
        static_cast<size_t>(std::accumulate(recv_bytes.begin(), recv_bytes.end(), int64_t{0})));
    ASSERT_TRUE(comm.AllToAllV(send.data(), send_bytes, recv.data(), recv_bytes).ok());
    size_t offset = 0;
    for (int r = 0; r < kWorld; ++r) {
      for (int64_t i = 0; i < recv_bytes[r]; ++i) {
        EXPECT_EQ(recv[offset++], static_cast<char>(10 * r + rank)) << "from rank " << r;
      }
    }
  });
}

TEST(GlooCommunicatorTest, CountsSumsAndGathers) {
  constexpr int kWorld = 2;
  RunOnRanks(kWorld, [](int rank, Communicator& comm) {
    // AllToAll, 2 per peer: rank r sends {100r + 10q, 100r + 10q + 1} to q.
    std::vector<int64_t> send, recv(4);
    for (int q = 0; q < kWorld; ++q) {
      send.push_back(100 * rank + 10 * q);
      send.push_back(100 * rank + 10 * q + 1);
    }
    ASSERT_TRUE(comm.AllToAll(send.data(), recv.data(), 2).ok());
    EXPECT_EQ(recv, (std::vector<int64_t>{10 * rank, 10 * rank + 1, 100 + 10 * rank,
                                          100 + 10 * rank + 1}));
    std::vector<int64_t> sums = {rank + 1, 7};
    ASSERT_TRUE(comm.AllReduceSum(sums.data(), sums.size()).ok());
    EXPECT_EQ(sums, (std::vector<int64_t>{3, 14}));  // 1 + 2, 7 + 7
    double x = 0.5 * rank;
    ASSERT_TRUE(comm.AllReduceSum(&x, 1).ok());
    EXPECT_DOUBLE_EQ(x, 0.5);
    const int32_t mine = 40 + rank;
    std::vector<int32_t> all(kWorld);
    ASSERT_TRUE(comm.AllGather(&mine, sizeof(mine), all.data()).ok());
    EXPECT_EQ(all, (std::vector<int32_t>{40, 41}));
    EXPECT_TRUE(comm.Barrier().ok());
  });
}

TEST(GlooCommunicatorTest, AMissingPeerFailsTheRendezvousWithinTheTimeout) {
  TempDir dir;
  FileKvStore store(dir.path());
  GlooOptions options;
  options.rank = 0;
  options.size = 2;  // rank 1 never comes
  options.timeout = absl::Milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<GlooCommunicator>> comm =
      GlooCommunicator::Connect(store, options);
  EXPECT_FALSE(comm.ok());
  EXPECT_EQ(comm.status().code(), absl::StatusCode::kDeadlineExceeded) << comm.status();
  EXPECT_NE(comm.status().message().find("rank 0 of 2"), absl::string_view::npos);
  EXPECT_LT(SecondsSince(start), 10.0);
}

TEST(GlooCommunicatorTest, AnAbortedPeerMakesTheOtherRankFailFast) {
  // The collective timeout is 30 s; rank 1 aborting must fail rank 0's barrier long before.
  double seconds = 0;
  RunOnRanks(
      2,
      [&](int rank, Communicator& comm) {
        ASSERT_TRUE(comm.Barrier().ok());
        if (rank == 1) {
          comm.Abort();
          EXPECT_EQ(comm.Barrier().code(), absl::StatusCode::kCancelled);
          return;
        }
        const auto start = std::chrono::steady_clock::now();
        std::vector<int64_t> data(4, 1);
        absl::Status s = comm.AllReduceSum(data.data(), data.size());
        if (s.ok()) s = comm.Barrier();  // whichever collective sees the closed connection
        seconds = SecondsSince(start);
        EXPECT_FALSE(s.ok());
      },
      absl::Seconds(30));
  EXPECT_LT(seconds, 10.0);
}

TEST(LocalCommunicatorTest, IsAOneRankWorld) {
  LocalCommunicator comm;
  const char send[3] = {1, 2, 3};
  char recv[3] = {};
  const std::vector<int64_t> bytes = {3};
  ASSERT_TRUE(comm.AllToAllV(send, bytes, recv, bytes).ok());
  EXPECT_EQ(recv[2], 3);
  EXPECT_FALSE(comm.AllToAllV(send, bytes, recv, std::vector<int64_t>{2}).ok());
  comm.Abort();
  EXPECT_EQ(comm.Barrier().code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace moecap
