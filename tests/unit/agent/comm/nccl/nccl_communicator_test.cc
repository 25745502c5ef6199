// NcclCommunicator: the no-device path (everywhere), a world of one rank on one GPU (device
// pointers for AllToAllV, host pointers for the rest), a missing peer that must time out (on a
// fake clock), and two ranks on two GPUs. GPU cases skip with the reason when the host has no (or
// too few) devices.
#include "agent/comm/nccl/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <stdlib.h>

#include <filesystem>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/comm/file_kv_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"

namespace moecap {
namespace {

using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    char templ[] = "/tmp/moecap-nccl-test-XXXXXX";
    path_ = mkdtemp(templ) != nullptr ? templ : "";
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

#define SKIP_WITHOUT_GPUS(n)                                                        \
  do {                                                                              \
    std::string why;                                                                \
    const int count = CudaDeviceCount(&why);                                        \
    if (count < (n)) {                                                              \
      GTEST_SKIP() << "needs " << (n) << " CUDA device(s), this host has " << count \
                   << (why.empty() ? std::string() : absl::StrCat(" (", why, ")")); \
    }                                                                               \
  } while (0)

TEST(ConnectNcclTest, RankOutsideTheWorldIsRefused) {
  TempDir dir;
  FileKvStore store(dir.path());
  NcclOptions options;
  options.rank = 2;
  options.size = 2;
  absl::StatusOr<std::unique_ptr<Communicator>> comm = ConnectNccl(store, options);
  EXPECT_EQ(comm.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConnectNcclTest, WithoutADeviceFailsFastWithFailedPrecondition) {
  if (CudaDeviceCount() > 0) GTEST_SKIP() << "this host has a CUDA device";
  TempDir dir;
  FakeClock clock;
  FileKvStore store(dir.path(), clock);
  // Rank 1 would otherwise wait the whole timeout for rank 0's id: it must not get that far.
  NcclOptions options;
  options.rank = 1;
  options.size = 2;
  options.timeout = absl::Seconds(60);
  absl::StatusOr<std::unique_ptr<Communicator>> comm = ConnectNccl(store, options, clock);
  ASSERT_EQ(comm.status().code(), absl::StatusCode::kFailedPrecondition) << comm.status();
  EXPECT_THAT(comm.status().message(), HasSubstr("no CUDA device"));
  EXPECT_TRUE(clock.waits().empty());  // not a single wait, for the id or anything else
  // Rank 0 without a device publishes no unique id either.
  options.rank = 0;
  EXPECT_EQ(ConnectNccl(store, options, clock).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(clock.waits().empty());
  EXPECT_EQ(store.Get(NcclUniqueIdKey(options.key_prefix), absl::ZeroDuration()).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

class NcclWorldOfOneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_GPUS(1);
    store_ = std::make_unique<FileKvStore>(dir_.path());
    NcclOptions options;
    options.key_prefix = "test/world1";
    options.timeout = absl::Seconds(30);
    absl::StatusOr<std::unique_ptr<Communicator>> comm = ConnectNccl(*store_, options);
    ASSERT_TRUE(comm.ok()) << comm.status();
    comm_ = *std::move(comm);
  }

  TempDir dir_;
  std::unique_ptr<FileKvStore> store_;
  std::unique_ptr<Communicator> comm_;
};

TEST_F(NcclWorldOfOneTest, PublishesTheUniqueIdAsHex) {
  absl::StatusOr<std::string> id = store_->Get(NcclUniqueIdKey("test/world1"), absl::Seconds(1));
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->size(), 2 * 128u);  // sizeof(ncclUniqueId) = 128 bytes, two hex digits each
  EXPECT_EQ(comm_->name(), "nccl");
  EXPECT_EQ(comm_->rank(), 0);
  EXPECT_EQ(comm_->size(), 1);
}

TEST_F(NcclWorldOfOneTest, AllToAllVCopiesDeviceDataToItself) {
  constexpr size_t kBytes = 1000;
  std::vector<unsigned char> host(kBytes);
  for (size_t i = 0; i < kBytes; ++i) host[i] = static_cast<unsigned char>(i * 7 + 3);
  void* send = nullptr;
  void* recv = nullptr;
  ASSERT_EQ(cudaMalloc(&send, kBytes), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&recv, kBytes), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(send, host.data(), kBytes, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemset(recv, 0, kBytes), cudaSuccess);
  const std::vector<int64_t> counts = {kBytes};
  ASSERT_TRUE(comm_->AllToAllV(send, counts, recv, counts).ok());
  std::vector<unsigned char> back(kBytes);
  ASSERT_EQ(cudaMemcpy(back.data(), recv, kBytes, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(back, host);
  // Zero bytes: nothing to do, still fine.
  const std::vector<int64_t> zero = {0};
  EXPECT_TRUE(comm_->AllToAllV(send, zero, recv, zero).ok());
  // Sending itself more than it expects is the caller's bug.
  const std::vector<int64_t> more = {10}, less = {5};
  EXPECT_EQ(comm_->AllToAllV(send, more, recv, less).code(), absl::StatusCode::kInvalidArgument);
  cudaFree(send);
  cudaFree(recv);
}

TEST_F(NcclWorldOfOneTest, HostCollectivesReturnTheirInput) {
  const std::vector<int64_t> send = {7, -8, 9};
  std::vector<int64_t> recv(3, 0);
  ASSERT_TRUE(comm_->AllToAll(send.data(), recv.data(), 3).ok());
  EXPECT_EQ(recv, send);

  std::vector<int64_t> ints = {1, -2, 3};
  ASSERT_TRUE(comm_->AllReduceSum(ints.data(), ints.size()).ok());
  EXPECT_EQ(ints, (std::vector<int64_t>{1, -2, 3}));
  std::vector<double> doubles = {0.5, -1.25};
  ASSERT_TRUE(comm_->AllReduceSum(doubles.data(), doubles.size()).ok());
  EXPECT_EQ(doubles, (std::vector<double>{0.5, -1.25}));

  const char word[5] = {'m', 'o', 'e', 'c', 'p'};
  char gathered[5] = {};
  ASSERT_TRUE(comm_->AllGather(word, 5, gathered).ok());
  EXPECT_EQ(std::string(gathered, 5), "moecp");
  EXPECT_TRUE(comm_->Barrier().ok());
}

TEST_F(NcclWorldOfOneTest, AbortIsIdempotentAndLaterCallsFail) {
  comm_->Abort();
  comm_->Abort();
  const absl::Status s = comm_->Barrier();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(s.message(), HasSubstr("aborted"));
}

// A world of two where rank 1 never shows up: rank 0's communicator creation must give up at the
// timeout (3 s here, on a fake clock: the test does not wait it out) instead of hanging. One GPU
// is enough, since rank 1 never joins.
TEST(NcclTimeoutTest, MissingPeerTimesOut) {
  SKIP_WITHOUT_GPUS(1);
  TempDir dir;
  FakeClock clock;
  FileKvStore store(dir.path(), clock);
  NcclOptions options;
  options.rank = 0;
  options.size = 2;
  options.key_prefix = "test/missing-peer";
  options.timeout = absl::Seconds(3);
  absl::Time start = clock.Now();
  absl::StatusOr<std::unique_ptr<Communicator>> comm = ConnectNccl(store, options, clock);
  EXPECT_EQ(comm.status().code(), absl::StatusCode::kDeadlineExceeded) << comm.status();
  EXPECT_THAT(comm.status().message(), HasSubstr("did not finish within 3s"));
  EXPECT_EQ(clock.Now() - start, absl::Seconds(3));  // the polls never wait past the deadline
  // Rank 1 alone waits for rank 0's id only as long as its timeout.
  TempDir empty;
  FileKvStore empty_store(empty.path(), clock);
  options.rank = 1;
  options.timeout = absl::Seconds(1);
  start = clock.Now();
  EXPECT_EQ(ConnectNccl(empty_store, options, clock).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(clock.Now() - start, absl::Seconds(1));
}

// Two ranks on two GPUs (threads of this process): uneven all-to-all-v of device data and the
// host collectives. Rank r sends (r + 1)·(p + 1)·100 bytes of value 16·r + p to rank p.
TEST(NcclTwoRanksTest, CollectivesAcrossTwoGpus) {
  SKIP_WITHOUT_GPUS(2);
  TempDir dir;
  std::vector<absl::Status> status(2);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      FileKvStore store(dir.path());
      NcclOptions options;
      options.rank = rank;
      options.size = 2;
      options.device = rank;
      options.key_prefix = "test/two";
      options.timeout = absl::Seconds(60);
      absl::StatusOr<std::unique_ptr<Communicator>> comm = ConnectNccl(store, options);
      if (!comm.ok()) {
        status[rank] = comm.status();
        return;
      }
      std::vector<int64_t> send_bytes(2), recv_bytes(2);
      for (int p = 0; p < 2; ++p) {
        send_bytes[p] = (rank + 1) * (p + 1) * 100;
        recv_bytes[p] = (p + 1) * (rank + 1) * 100;
      }
      std::vector<unsigned char> send_host;
      for (int p = 0; p < 2; ++p) {
        send_host.insert(send_host.end(), static_cast<size_t>(send_bytes[p]),
                         static_cast<unsigned char>(16 * rank + p));
      }
      const size_t recv_total = static_cast<size_t>(recv_bytes[0] + recv_bytes[1]);
      void* send = nullptr;
      void* recv = nullptr;
      cudaSetDevice(rank);
      cudaMalloc(&send, send_host.size());
      cudaMalloc(&recv, recv_total);
      cudaMemcpy(send, send_host.data(), send_host.size(), cudaMemcpyHostToDevice);
      absl::Status s = (*comm)->AllToAllV(send, send_bytes, recv, recv_bytes);
      std::vector<unsigned char> recv_host(recv_total);
      cudaMemcpy(recv_host.data(), recv, recv_total, cudaMemcpyDeviceToHost);
      size_t offset = 0;
      for (int p = 0; p < 2 && s.ok(); ++p) {
        for (int64_t i = 0; i < recv_bytes[p]; ++i) {
          if (recv_host[offset + static_cast<size_t>(i)] != 16 * p + rank) {
            s = absl::InternalError(
                absl::StrCat("rank ", rank, ": byte ", i, " from rank ", p, " is wrong"));
            break;
          }
        }
        offset += static_cast<size_t>(recv_bytes[p]);
      }
      cudaFree(send);
      cudaFree(recv);
      int64_t sum = rank + 1;
      if (s.ok()) s = (*comm)->AllReduceSum(&sum, 1);
      if (s.ok() && sum != 3) s = absl::InternalError(absl::StrCat("sum ", sum, " != 1 + 2"));
      const std::vector<int64_t> a2a_send = {10 * rank, 10 * rank + 1};
      std::vector<int64_t> a2a_recv(2);
      if (s.ok()) s = (*comm)->AllToAll(a2a_send.data(), a2a_recv.data(), 1);
      // recv[p] = what rank p sent to this rank = 10·p + rank.
      if (s.ok() && (a2a_recv[0] != rank || a2a_recv[1] != 10 + rank)) {
        s = absl::InternalError("AllToAll delivered the wrong values");
      }
      const int32_t mine = 100 + rank;
      int32_t all[2] = {};
      if (s.ok()) s = (*comm)->AllGather(&mine, sizeof(mine), all);
      if (s.ok() && (all[0] != 100 || all[1] != 101)) {
        s = absl::InternalError("AllGather delivered the wrong values");
      }
      if (s.ok()) s = (*comm)->Barrier();
      status[rank] = s;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(status[0].ok()) << status[0];
  EXPECT_TRUE(status[1].ok()) << status[1];
}

}  // namespace
}  // namespace moecap
