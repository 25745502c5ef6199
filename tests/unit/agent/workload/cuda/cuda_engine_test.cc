// The expert-parallel MoE layer on a GPU (agent/workload/cuda). Host-side pieces (the
// expert-major reordering, the one-rank device communicator's host calls, the memory estimate,
// refusing a host communicator, the no-device error) run everywhere; the rest needs a CUDA device
// and skips without one: device weights bit-identical to the host's, one-rank runs checked
// against the host reference in fp32 and bf16 (softmax and sigmoid routers, shared experts,
// chunked expert GEMMs), the GPU tally equal to the CPU engine's on the same routing, and two or
// four ranks on one GPU through a host-staged exchange (the reordering path NCCL runs take).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/comm/local_communicator.h"
#include "agent/compute/cuda/cuda_backend.h"
#include "agent/compute/cuda/cuda_device.h"
#include "agent/compute/widening_backend.h"
#include "agent/workload/cuda/cuda_moe_engine.h"
#include "agent/workload/cuda/cuda_moe_weights.h"
#include "agent/workload/cuda/cuda_rank.h"
#include "agent/workload/cuda/device_local_communicator.h"
#include "agent/workload/harness.h"
#include "agent/workload/reference.h"
#include "agent/workload/report.h"
#include "agent/workload/weights.h"
#include "common/status_macros.h"
#include "tests/unit/agent/test_util.h"
#include "tests/unit/agent/workload/aggregated_run.h"

namespace moecap {
namespace {

using ::moecap::testing::CatalogModel;
using ::moecap::testing::RunOnRanks;
using ::moecap::testing::RunWorkloadOnThreads;

#define SKIP_WITHOUT_GPU()                                                 \
  do {                                                                     \
    if (absl::Status present = cuda::CudaDevicePresent(); !present.ok()) { \
      GTEST_SKIP() << "needs a CUDA device (" << present.message() << ")"; \
    }                                                                      \
  } while (false)

// mixtral-8x7b at 1/64: d = 64, f_e = 224, E = 8, k = 2, softmax router, no shared expert.
WorkloadConfig SmallPlan(Dtype dtype) {
  WorkloadConfig c;
  c.model = CatalogModel("mixtral-8x7b");
  c.scale = 64;
  c.layers = 2;
  c.dtype = dtype;
  c.batches = {1, 5};
  c.phases = {ServingPhase::kPrefill, ServingPhase::kDecode};
  c.prompt_len = 3;
  c.iterations = 3;
  c.warmup = 1;
  c.check = true;
  c.threads_per_rank = 1;
  c.comm_timeout_s = 30;
  return c;
}

// deepseek-v3 at 1/64: d = 112, f_e = f_s = 32, E = 256, k = 8, sigmoid router, one shared expert.
WorkloadConfig SharedExpertPlan(Dtype dtype) {
  WorkloadConfig c = SmallPlan(dtype);
  c.model = CatalogModel("deepseek-v3");
  c.layers = 1;
  c.batches = {2, 6};
  return c;
}

// Several GPU ranks on one GPU, for tests (NCCL refuses two ranks on one device): the bulk
// exchange goes device -> host -> Gloo -> host -> device, everything else straight to Gloo. The
// engine synchronises before each AllToAllV (not on its stream); this returns once the rows are
// on the device.
class StagedDeviceCommunicator : public Communicator {
 public:
  explicit StagedDeviceCommunicator(Communicator& host) : host_(host) {}
  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  std::string name() const override { return "staged-test"; }
  CommMemory memory() const override { return CommMemory::kDevice; }
  absl::Status AllToAll(const int64_t* send, int64_t* recv, size_t count) override {
    return host_.AllToAll(send, recv, count);
  }
  absl::Status AllToAllV(const void* send, absl::Span<const int64_t> send_bytes, void* recv,
                         absl::Span<const int64_t> recv_bytes) override {
    const int64_t sent = std::accumulate(send_bytes.begin(), send_bytes.end(), int64_t{0});
    const int64_t received = std::accumulate(recv_bytes.begin(), recv_bytes.end(), int64_t{0});
    std::vector<char> host_send(static_cast<size_t>(sent) + 1);
    std::vector<char> host_recv(static_cast<size_t>(received) + 1);
    if (sent > 0) {
      MOECAP_RETURN_IF_ERROR(cuda::CudaCheck(
          cudaMemcpy(host_send.data(), send, static_cast<size_t>(sent), cudaMemcpyDefault),
          "staging the rows sent"));
    }
    if (absl::Status s =
            host_.AllToAllV(host_send.data(), send_bytes, host_recv.data(), recv_bytes);
        !s.ok()) {
      return s;
    }
    if (received > 0) {
      MOECAP_RETURN_IF_ERROR(cuda::CudaCheck(
          cudaMemcpy(recv, host_recv.data(), static_cast<size_t>(received), cudaMemcpyDefault),
          "unstaging the rows received"));
    }
    // A pageable host-to-device cudaMemcpy may return before the DMA lands: wait for it.
    return cuda::CudaCheck(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  }
  absl::Status Barrier() override { return host_.Barrier(); }
  absl::Status AllReduceSum(int64_t* data, size_t count) override {
    return host_.AllReduceSum(data, count);
  }
  absl::Status AllReduceSum(double* data, size_t count) override {
    return host_.AllReduceSum(data, count);
  }
  absl::Status AllGather(const void* send, size_t bytes, void* recv) override {
    return host_.AllGather(send, bytes, recv);
  }
  void Abort() override { host_.Abort(); }

 private:
  Communicator& host_;
};

std::vector<RankResult> RunCudaOnThreads(const WorkloadConfig& config, int world) {
  std::vector<RankResult> results(static_cast<size_t>(world));
  RunOnRanks(world, [&](int rank, Communicator& gloo) {
    StagedDeviceCommunicator comm(gloo);
    RankContext context;
    context.ranks_on_host = world;
    absl::StatusOr<RankResult> result = RunCudaRank(config, context, comm, 0);
    ASSERT_TRUE(result.ok()) << result.status();
    results[static_cast<size_t>(rank)] = *std::move(result);
  });
  return results;
}

absl::StatusOr<RankResult> RunOneGpuRank(const WorkloadConfig& config) {
  DeviceLocalCommunicator comm;
  return RunCudaRank(config, RankContext{}, comm, 0);
}

void ExpectConsistent(const WorkloadConfig& c, const std::vector<RankResult>& ranks) {
  testing::ExpectAggregatedConsistent(c, ranks, /*checked=*/c.check);
}

void ExpectSameTally(const StepTally& a, const StepTally& b) {
  EXPECT_EQ(a.own_tokens, b.own_tokens);
  EXPECT_EQ(a.pairs_computed, b.pairs_computed);
  EXPECT_EQ(a.local_activated_sum, b.local_activated_sum);
  EXPECT_EQ(a.dispatch_rows_sent, b.dispatch_rows_sent);
  EXPECT_EQ(a.dispatch_rows_to_self, b.dispatch_rows_to_self);
  EXPECT_EQ(a.combine_rows_sent, b.combine_rows_sent);
  EXPECT_EQ(a.combine_rows_to_self, b.combine_rows_to_self);
  EXPECT_EQ(a.count_exchange_bytes, b.count_exchange_bytes);
  EXPECT_EQ(a.histogram, b.histogram);
}

void ExpectSameCounts(const RankCounts& a, const RankCounts& b) {
  for (Term t : kAllTerms) {
    EXPECT_EQ(a.counted[t].bytes, b.counted[t].bytes) << TermName(t);
    EXPECT_EQ(a.counted[t].flops, b.counted[t].flops) << TermName(t);
    EXPECT_EQ(a.physical[t].bytes, b.physical[t].bytes) << TermName(t);
  }
  EXPECT_EQ(a.comm.dispatch_logical, b.comm.dispatch_logical);
  EXPECT_EQ(a.comm.dispatch_remote, b.comm.dispatch_remote);
  EXPECT_EQ(a.comm.combine_logical, b.comm.combine_logical);
  EXPECT_EQ(a.comm.combine_remote, b.comm.combine_remote);
  EXPECT_EQ(a.comm.count_exchange, b.comm.count_exchange);
}

// ---- Host-side pieces: run everywhere ----------------------------------------------------------

TEST(ExpertMajorOrderTest, GroupsTheReceivedRowsByExpertAndBack) {
  // Two ranks, two local experts. recv_counts[q·2 + j]: rank 0 sent 2 rows to expert 0 and 1 to
  // expert 1; rank 1 sent 0 and 3. Received (source-major) rows: 0,1 (q0 e0), 2 (q0 e1),
  // 3,4,5 (q1 e1). Expert-major: e0 = rows 0,1; e1 = rows 2,3,4,5.
  const std::vector<int64_t> recv_counts = {2, 1, 0, 3};
  std::vector<int64_t> begin;
  std::vector<int64_t> to_expert(6, -1), to_source(6, -1);
  ExpertMajorOrder(recv_counts, 2, begin, to_expert.data(), to_source.data());
  EXPECT_EQ(begin, (std::vector<int64_t>{0, 2, 6}));
  EXPECT_EQ(to_expert, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(to_source, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));

  // Rank 0 sent 1 row to e0 and 2 to e1; rank 1 sent 2 to e0, 1 to e1. Source-major rows: 0 (q0
  // e0), 1,2 (q0 e1), 3,4 (q1 e0), 5 (q1 e1). Expert-major: e0 = 0,3,4; e1 = 1,2,5.
  const std::vector<int64_t> mixed = {1, 2, 2, 1};
  ExpertMajorOrder(mixed, 2, begin, to_expert.data(), to_source.data());
  EXPECT_EQ(begin, (std::vector<int64_t>{0, 3, 6}));
  EXPECT_EQ(to_expert, (std::vector<int64_t>{0, 3, 4, 1, 2, 5}));
  // The inverse: source row s sits at expert-major row to_source[s].
  EXPECT_EQ(to_source, (std::vector<int64_t>{0, 3, 4, 1, 2, 5}));
  for (int64_t r = 0; r < 6; ++r) EXPECT_EQ(to_source[to_expert[r]], r);

  // One rank: the received rows already are expert-major; only the block starts are needed.
  ExpertMajorOrder(std::vector<int64_t>{0, 4, 1}, 1, begin, nullptr, nullptr);
  EXPECT_EQ(begin, (std::vector<int64_t>{0, 0, 4, 5}));
}

TEST(TallyLayerTest, CountsOneLayerOfTwoRanksAsTheHostEngineDid) {
  // Rank 1 of 2, E = 4 (local 2: experts 2, 3), 3 own tokens, k = 2: its 6 pairs go to experts
  // 0:1, 1:2, 2:0, 3:3. It receives from rank 0 {e2: 1, e3: 0} and from itself {e2: 0, e3: 3}.
  StepTally tally = StartTally(3, 2, 4);
  const std::vector<int64_t> send = {1, 2, 0, 3};
  const std::vector<int64_t> recv = {1, 0, 0, 3};
  TallyLayer(1, 1, 2, 3, 2, send, recv, tally);
  EXPECT_EQ(tally.histogram[1], send);
  EXPECT_EQ(tally.histogram[0], (std::vector<int64_t>{0, 0, 0, 0}));
  EXPECT_EQ(tally.pairs_computed, 4);         // 1 + 3 received
  EXPECT_EQ(tally.local_activated_sum, 2);    // e2 (1 row) and e3 (3 rows)
  EXPECT_EQ(tally.dispatch_rows_sent, 6);     // 3 tokens × k
  EXPECT_EQ(tally.dispatch_rows_to_self, 3);  // its pairs for e2, e3
  EXPECT_EQ(tally.combine_rows_sent, 4);
  EXPECT_EQ(tally.combine_rows_to_self, 3);
  EXPECT_EQ(tally.count_exchange_bytes, 4 * 8);
  std::vector<int64_t> send_bytes, recv_bytes;
  // Rows of 10 bytes: to rank 0 3 rows, to itself 3; from rank 0 1 row, from itself 3.
  EXPECT_EQ(PeerBytes(send, recv, 2, 10, send_bytes, recv_bytes), 4);
  EXPECT_EQ(send_bytes, (std::vector<int64_t>{30, 30}));
  EXPECT_EQ(recv_bytes, (std::vector<int64_t>{10, 30}));
}

TEST(DeviceLocalCommunicatorTest, HostCallsAreLocalCopies) {
  DeviceLocalCommunicator comm;
  EXPECT_EQ(comm.name(), "cuda-local");
  EXPECT_EQ(comm.size(), 1);
  const int64_t send[3] = {4, 5, 6};
  int64_t recv[3] = {};
  ASSERT_TRUE(comm.AllToAll(send, recv, 3).ok());
  EXPECT_EQ(recv[2], 6);
  ASSERT_TRUE(comm.Barrier().ok());
  // Zero bytes touch no device; unequal counts are refused before any copy.
  const std::vector<int64_t> zero = {0};
  EXPECT_TRUE(comm.AllToAllV(nullptr, zero, nullptr, zero).ok());
  const std::vector<int64_t> a = {8}, b = {16};
  EXPECT_EQ(comm.AllToAllV(nullptr, a, nullptr, b).code(), absl::StatusCode::kInvalidArgument);
  comm.Abort();
  EXPECT_EQ(comm.Barrier().code(), absl::StatusCode::kCancelled);
}

TEST(CudaRankTest, TheDeviceMemoryEstimateNamesTheFigures) {
  WorkloadConfig c = SmallPlan(Dtype::kBf16);
  const ModelSpec scaled = ScaledModel(c.model, c.scale);
  const int64_t weights = MoeWeights::BytesPerRank(scaled, c.layers, c.dtype, scaled.experts);
  const int64_t needed = CudaRankDeviceBytes(c, 1);
  EXPECT_GT(needed, weights);  // plus the work buffers
  EXPECT_TRUE(CheckDeviceMemoryFits(c, 0, needed, needed * 2).ok());
  const absl::Status s = CheckDeviceMemoryFits(c, 3, needed, needed);  // 90% usable
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("does not fit in GPU memory"), std::string::npos) << s;
  EXPECT_NE(s.message().find("device 3"), std::string::npos) << s;
  EXPECT_NE(s.message().find(absl::StrCat(needed, " bytes")), std::string::npos) << s;
  // A full-size Mixtral stack of 32 layers in bf16 (about 93 GB of weights) cannot fit 80 GB.
  c.scale = 1;
  c.layers = 32;
  EXPECT_GT(CudaRankDeviceBytes(c, 1), 90'000'000'000);
  EXPECT_FALSE(CheckDeviceMemoryFits(c, 0, CudaRankDeviceBytes(c, 1), 80LL << 30).ok());
}

TEST(CudaRankTest, RefusesAHostMemoryCommunicator) {
  LocalCommunicator comm;
  absl::StatusOr<RankResult> result = RunCudaRank(SmallPlan(Dtype::kFp32), RankContext{}, comm, 0);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("device memory"), std::string::npos) << result.status();
}

TEST(CudaRankTest, WithoutADeviceFailsWithTheReason) {
  if (cuda::CudaDevicePresent().ok()) GTEST_SKIP() << "a CUDA device is present";
  absl::StatusOr<RankResult> result = RunOneGpuRank(SmallPlan(Dtype::kFp32));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition) << result.status();
  EXPECT_NE(result.status().message().find("rank 0 of 1"), std::string::npos) << result.status();
}

// ---- On a GPU -----------------------------------------------------------------------------------

std::vector<char> Download(const void* device, size_t bytes) {
  std::vector<char> host(bytes);
  EXPECT_EQ(cudaMemcpy(host.data(), device, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  return host;
}

void ExpectSameBytes(const void* device, const void* host, size_t bytes, absl::string_view what) {
  const std::vector<char> copy = Download(device, bytes);
  EXPECT_EQ(std::memcmp(copy.data(), host, bytes), 0) << what;
}

TEST(CudaMoeWeightsTest, DeviceWeightsAreBitIdenticalToTheHostGenerator) {
  SKIP_WITHOUT_GPU();
  absl::StatusOr<std::unique_ptr<cuda::CudaBackend>> backend = cuda::CudaBackend::Create(0);
  ASSERT_TRUE(backend.ok()) << backend.status();
  WideningBackend host(1);
  for (const char* name : {"mixtral-8x7b", "deepseek-v3"}) {
    const ModelSpec scaled = ScaledModel(CatalogModel(name), 64);
    const Range local{scaled.experts / 2, scaled.experts / 4};  // a block not at expert 0
    for (Dtype dtype : {Dtype::kFp32, Dtype::kBf16}) {
      SCOPED_TRACE(absl::StrCat(name, " ", DtypeName(dtype)));
      absl::StatusOr<CudaMoeWeights> device =
          CudaMoeWeights::Generate(**backend, scaled, 2, dtype, 7, local);
      ASSERT_TRUE(device.ok()) << device.status();
      absl::StatusOr<MoeWeights> ref = MoeWeights::Generate(host, scaled, 2, dtype, 7, local);
      ASSERT_TRUE(ref.ok()) << ref.status();
      const LayerShape s = ref->shape();
      const size_t eb = static_cast<size_t>(DtypeBytes(dtype));
      for (int64_t l = 0; l < 2; ++l) {
        ExpectSameBytes(device->router(l), ref->router(l), eb * s.hidden * s.experts, "router");
        for (int64_t j = 0; j < local.count; ++j) {
          ExpectSameBytes(device->gate_up(l, j), ref->gate_up(l, j), eb * s.GateUpElements(),
                          "gate_up");
          ExpectSameBytes(device->down(l, j), ref->down(l, j), eb * s.DownElements(), "down");
        }
        if (s.shared_ffn > 0) {
          ExpectSameBytes(device->shared_gate_up(l), ref->shared_gate_up(l),
                          eb * 2 * s.shared_ffn * s.hidden, "shared gate_up");
          ExpectSameBytes(device->shared_down(l), ref->shared_down(l), eb * s.shared_ffn * s.hidden,
                          "shared down");
        }
      }
    }
  }
}

TEST(CudaRankTest, OneGpuFp32MatchesTheReferenceAndTheMetricCore) {
  SKIP_WITHOUT_GPU();
  const WorkloadConfig c = SmallPlan(Dtype::kFp32);
  absl::StatusOr<RankResult> result = RunOneGpuRank(c);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->backend, "cuda-cublas");
  EXPECT_EQ(result->communicator, "cuda-local");
  ExpectConsistent(c, {*result});
  for (const RankPointResult& p : result->points) {
    SCOPED_TRACE(absl::StrCat(ServingPhaseName(p.phase), " batch ", p.batch));
    ASSERT_EQ(p.samples.step.size(), static_cast<size_t>(c.iterations));
    for (size_t i = 0; i < p.samples.step.size(); ++i) {
      EXPECT_GT(p.samples.step[i], 0);
      EXPECT_GT(p.samples.gate[i], 0);
      EXPECT_GT(p.samples.dispatch[i], 0);
      EXPECT_GT(p.samples.experts[i], 0);
      EXPECT_GT(p.samples.combine[i], 0);
      // The events lie inside the step's wall-clock window.
      const double phases =
          p.samples.gate[i] + p.samples.dispatch[i] + p.samples.experts[i] + p.samples.combine[i];
      EXPECT_LE(phases, p.samples.step[i] * 1.05 + 1e-5);
    }
    // One rank sends everything to itself.
    EXPECT_EQ(p.counts.comm.dispatch_remote, 0);
    EXPECT_GT(p.counts.comm.dispatch_logical, 0);
  }
}

TEST(CudaRankTest, OneGpuBf16MatchesTheReferenceWithinBf16Tolerance) {
  SKIP_WITHOUT_GPU();
  const WorkloadConfig c = SmallPlan(Dtype::kBf16);
  absl::StatusOr<RankResult> result = RunOneGpuRank(c);
  ASSERT_TRUE(result.ok()) << result.status();
  ExpectConsistent(c, {*result});
  // Rows travel in bf16: d·2 = 128 bytes. Decode batch 5 sends 5·k·layers = 20 rows.
  EXPECT_EQ(result->points[3].counts.comm.dispatch_logical, 20 * 128);
}

TEST(CudaRankTest, SigmoidRouterAndSharedExpertInBothDtypes) {
  SKIP_WITHOUT_GPU();
  for (Dtype dtype : {Dtype::kFp32, Dtype::kBf16}) {
    SCOPED_TRACE(DtypeName(dtype));
    const WorkloadConfig c = SharedExpertPlan(dtype);
    absl::StatusOr<RankResult> result = RunOneGpuRank(c);
    ASSERT_TRUE(result.ok()) << result.status();
    ExpectConsistent(c, {*result});
  }
}

TEST(CudaRankTest, TheGpuTallyEqualsTheCpuEnginesOnTheSameRouting) {
  SKIP_WITHOUT_GPU();
  for (Dtype dtype : {Dtype::kFp32, Dtype::kBf16}) {
    SCOPED_TRACE(DtypeName(dtype));
    WorkloadConfig c = SmallPlan(dtype);
    c.routing.mode = RoutingMode::kUniform;  // the same choices whatever computes the logits
    absl::StatusOr<RankResult> gpu = RunOneGpuRank(c);
    ASSERT_TRUE(gpu.ok()) << gpu.status();
    LocalCommunicator comm;
    WideningBackend host(1);
    absl::StatusOr<RankResult> cpu = RunRank(c, RankContext{}, comm, host);
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    ASSERT_EQ(gpu->points.size(), cpu->points.size());
    for (size_t i = 0; i < gpu->points.size(); ++i) {
      SCOPED_TRACE(absl::StrCat("point ", i));
      ExpectSameTally(gpu->points[i].tally, cpu->points[i].tally);
      ExpectSameCounts(gpu->points[i].counts, cpu->points[i].counts);
      EXPECT_EQ(gpu->points[i].global_histogram, cpu->points[i].global_histogram);
    }
  }
}

TEST(CudaEngineTest, ChunkedExpertGemmsGiveTheSameOutput) {
  SKIP_WITHOUT_GPU();
  const ModelSpec scaled = ScaledModel(CatalogModel("deepseek-v3"), 64);
  absl::StatusOr<std::unique_ptr<cuda::CudaBackend>> backend = cuda::CudaBackend::Create(0);
  ASSERT_TRUE(backend.ok()) << backend.status();
  absl::StatusOr<CudaMoeWeights> weights =
      CudaMoeWeights::Generate(**backend, scaled, 2, Dtype::kFp32, 3, Range{0, scaled.experts});
  ASSERT_TRUE(weights.ok()) << weights.status();
  const int64_t tokens = 40;  // 320 pairs over 256 experts: some experts get several rows
  std::vector<float> input(static_cast<size_t>(tokens * scaled.hidden_size));
  FillInputRows(3, tokens, 0, tokens, scaled.hidden_size, input.data());
  std::vector<std::vector<float>> outputs;
  for (int64_t chunk : {int64_t{0}, int64_t{2}}) {
    DeviceLocalCommunicator comm((*backend)->stream());
    CudaEngineOptions options;
    options.comm_on_engine_stream = true;
    options.chunk_rows = chunk;  // 2: the shared expert's 40 rows take 20 chunks
    CudaExpertParallelMoe engine(scaled, *weights, **backend, comm, options);
    ASSERT_TRUE(engine.Prepare(tokens, tokens, {}, input.data()).ok());
    std::vector<float> out(input.size());
    EXPECT_EQ(engine.ReadOutput(out.data()).code(), absl::StatusCode::kFailedPrecondition);
    RoutingRecord record;
    ASSERT_TRUE(engine.Step(nullptr, nullptr, &record).ok());
    ASSERT_TRUE(engine.ReadOutput(out.data()).ok());
    WideningBackend host(1);
    absl::StatusOr<MoeWeights> host_weights =
        MoeWeights::Generate(host, scaled, 2, Dtype::kFp32, 3, Range{0, scaled.experts});
    ASSERT_TRUE(host_weights.ok());
    absl::StatusOr<CheckResult> check = CheckAgainstReference(
        host, scaled, *host_weights, 3, input.data(), tokens, {}, record, out.data(), 1e-4);
    ASSERT_TRUE(check.ok()) << check.status();
    EXPECT_TRUE(check->passed) << "chunk " << chunk << ": max rel " << check->max_rel_error;
    outputs.push_back(std::move(out));
  }
  double max_diff = 0;
  for (size_t i = 0; i < outputs[0].size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(outputs[0][i] - outputs[1][i])));
  }
  EXPECT_LT(max_diff, 1e-4);
}

TEST(CudaRankTest, TwoRanksOnOneGpuMatchTheReferenceAndTheCpuTally) {
  SKIP_WITHOUT_GPU();
  WorkloadConfig c = SmallPlan(Dtype::kBf16);
  const std::vector<RankResult> gpu = RunCudaOnThreads(c, 2);
  ExpectConsistent(c, gpu);
  // Decode batch 1 over 2 ranks: rank 1 owns no token but still computes the pairs sent to it.
  EXPECT_EQ(gpu[1].points[2].tally.own_tokens, 0);
  c.routing.mode = RoutingMode::kUniform;
  const std::vector<RankResult> gpu_uniform = RunCudaOnThreads(c, 2);
  const std::vector<RankResult> cpu_uniform = RunWorkloadOnThreads<WideningBackend>(c, 2);
  for (int r = 0; r < 2; ++r) {
    for (size_t i = 0; i < gpu_uniform[r].points.size(); ++i) {
      SCOPED_TRACE(absl::StrCat("rank ", r, " point ", i));
      ExpectSameTally(gpu_uniform[r].points[i].tally, cpu_uniform[r].points[i].tally);
      ExpectSameCounts(gpu_uniform[r].points[i].counts, cpu_uniform[r].points[i].counts);
    }
  }
}

TEST(CudaRankTest, FourRanksOnOneGpuWithSharedExperts) {
  SKIP_WITHOUT_GPU();
  const WorkloadConfig c = SharedExpertPlan(Dtype::kFp32);
  ExpectConsistent(c, RunCudaOnThreads(c, 4));
}

}  // namespace
}  // namespace moecap
