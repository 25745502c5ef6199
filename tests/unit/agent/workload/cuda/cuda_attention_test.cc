// The decoder layer's attention on a GPU (agent/workload/cuda/cuda_attention.h). The refusals
// (MLA, fp32, head dims the kernels lack) and the memory figures run everywhere; the rest needs a
// CUDA device and skips without one: CudaAttentionStack::Forward against the CPU's double
// ReferenceAttention for a decode step at context 37, a fresh prefill of 20 tokens and a prefill
// chunk after cached entries, on mixtral-8x7b at 1/64 (one head) and on a GQA model with a sliding
// window in its first layer, both layers in a row (the second reading the first's output); and a
// one-rank decoder run through RunCudaRank checked against the host reference.
#include "agent/workload/cuda/cuda_attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/comm/local_communicator.h"
#include "agent/compute/cpu_backend.h"
#include "agent/compute/cuda/cuda_backend.h"
#include "agent/compute/cuda/cuda_device.h"
#include "agent/workload/attention.h"
#include "agent/workload/cuda/cuda_rank.h"
#include "agent/workload/cuda/device_local_communicator.h"
#include "agent/workload/harness.h"
#include "agent/workload/weights.h"
#include "tests/unit/agent/test_util.h"

namespace moecap {
namespace {

using ::moecap::testing::CatalogModel;

// bf16 weights, activations and caches against a double reference.
constexpr double kTolerance = 3e-2;

// Eight query heads on two KV heads of 64, the first of the two layers sliding over 16 keys (as
// gpt-oss alternates windowed and full layers).
ModelSpec SlidingGqa() {
  ModelSpec m;
  m.name = "sliding-gqa";
  m.layers = 2;
  m.hidden_size = 128;
  m.vocab_size = 10;
  m.gqa = {.heads = 8, .kv_heads = 2, .head_dim = 64};
  m.experts = 4;
  m.experts_per_token = 2;
  m.expert_ffn_size = 16;
  m.sliding_window = 16;
  m.sliding_window_layers = 1;
  return m;
}

TEST(CudaAttentionSupportedTest, RefusesMlaNamingTheCpuBackend) {
  const ModelSpec m = ScaledModel(CatalogModel("deepseek-v3"), 64);
  const absl::Status s = CudaAttentionSupported(m, Dtype::kBf16);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("MLA"), absl::string_view::npos) << s;
  EXPECT_NE(s.message().find("cpu backend"), absl::string_view::npos) << s;
}

TEST(CudaAttentionSupportedTest, RefusesFp32NamingTheField) {
  const ModelSpec m = ScaledModel(CatalogModel("mixtral-8x7b"), 64);
  const absl::Status s = CudaAttentionSupported(m, Dtype::kFp32);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("workload.dtype"), absl::string_view::npos) << s;
  EXPECT_NE(s.message().find("bf16"), absl::string_view::npos) << s;
}

TEST(CudaAttentionSupportedTest, RefusesHeadDimsTheKernelsLack) {
  ModelSpec m = SlidingGqa();
  m.gqa.head_dim = 96;
  const absl::Status s = CudaAttentionSupported(m, Dtype::kBf16);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("head dim 96"), absl::string_view::npos) << s;
}

TEST(CudaAttentionSupportedTest, AcceptsGqaAndMhaInBf16) {
  EXPECT_TRUE(
      CudaAttentionSupported(ScaledModel(CatalogModel("mixtral-8x7b"), 64), Dtype::kBf16).ok());
  EXPECT_TRUE(CudaAttentionSupported(SlidingGqa(), Dtype::kBf16).ok());
}

TEST(CudaAttentionMemoryTest, CountsTheCachesAndTheDecoderRankCountsThem) {
  const ModelSpec m = SlidingGqa();
  const SequenceBlock decode{.first = 0, .count = 4, .new_tokens = 1, .cached = 99};
  // K and V caches of 2 layers, 4 sequences × 100 entries × 2 KV heads × 64, bf16.
  const int64_t caches = 2 * 2 * 4 * 100 * 2 * 64 * 2;
  EXPECT_GE(CudaAttentionStack::DeviceBytes(m, 2, decode, 132), caches);
  EXPECT_LT(CudaAttentionStack::DeviceBytes(m, 2, decode, 132), caches + (1 << 20));

  WorkloadConfig c;
  c.model = CatalogModel("mixtral-8x7b");
  c.scale = 4;
  c.layers = 2;
  c.dtype = Dtype::kBf16;
  c.batches = {8};
  c.phases = {ServingPhase::kDecode};
  c.prompt_len = 512;
  c.output_len = 32;
  const int64_t moe = CudaRankDeviceBytes(c, 1);
  c.layer = LayerKind::kDecoder;
  const ModelSpec scaled = ScaledModel(c.model, c.scale);
  const int64_t expected_extra =
      AttentionWeights::Bytes(scaled, 2, Dtype::kBf16) +
      CudaAttentionStack::DeviceBytes(scaled, 2, RankSequences(c, ServingPhase::kDecode, 8, 0, 1),
                                      132);
  EXPECT_GE(CudaRankDeviceBytes(c, 1) - moe, expected_extra);
}

// mixtral-8x7b at 1/64 as decoder layers: prefill 2 × 20, decode at context 20 + 16/2.
WorkloadConfig DecoderPlan(Dtype dtype) {
  WorkloadConfig c;
  c.model = CatalogModel("mixtral-8x7b");
  c.scale = 64;
  c.layers = 2;
  c.layer = LayerKind::kDecoder;
  c.dtype = dtype;
  c.batches = {2};
  c.phases = {ServingPhase::kPrefill, ServingPhase::kDecode};
  c.prompt_len = 20;
  c.output_len = 16;
  c.iterations = 2;
  c.warmup = 1;
  c.check = true;
  c.threads_per_rank = 1;
  c.comm_timeout_s = 30;
  return c;
}

// Refused before any device is touched, so these run everywhere.
TEST(CudaRankDecoderTest, RefusesWhatTheGpuDecoderDoesNotRun) {
  struct Case {
    WorkloadConfig config;
    const char* expected;
  };
  std::vector<Case> cases;
  cases.push_back({DecoderPlan(Dtype::kFp32), "workload.dtype"});
  WorkloadConfig mla = DecoderPlan(Dtype::kBf16);
  mla.model = CatalogModel("deepseek-v3");
  mla.layers = 1;
  cases.push_back({mla, "MLA"});
  WorkloadConfig lm_head = DecoderPlan(Dtype::kBf16);
  lm_head.lm_head = true;
  cases.push_back({lm_head, "workload.lm_head"});
  for (const Case& k : cases) {
    SCOPED_TRACE(k.expected);
    LocalCommunicator comm;
    absl::StatusOr<RankResult> result = RunCudaRank(k.config, RankContext{}, comm, 0);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
    EXPECT_NE(result.status().message().find(k.expected), std::string::npos) << result.status();
  }
}

TEST(CudaRankDecoderTest, OneGpuDecoderPassesTheCheck) {
  if (absl::Status s = cuda::CudaDevicePresent(); !s.ok()) {
    GTEST_SKIP() << "needs a CUDA device: " << s.message();
  }
  const WorkloadConfig c = DecoderPlan(Dtype::kBf16);
  DeviceLocalCommunicator comm;
  absl::StatusOr<RankResult> result = RunCudaRank(c, RankContext{}, comm, 0);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->points.size(), 2u);
  for (const RankPointResult& p : result->points) {
    SCOPED_TRACE(ServingPhaseName(p.phase));
    EXPECT_TRUE(p.check.passed) << "max rel " << p.check.max_rel_error;
    ASSERT_EQ(p.samples.attention.size(), static_cast<size_t>(c.iterations));
    for (double t : p.samples.attention) EXPECT_GT(t, 0);
  }
}

class CudaAttentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (absl::Status s = cuda::CudaDevicePresent(); !s.ok()) {
      GTEST_SKIP() << "needs a CUDA device: " << s.message();
    }
    absl::StatusOr<std::unique_ptr<cuda::CudaBackend>> backend = cuda::CudaBackend::Create(0);
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = *std::move(backend);
  }

  // Both layers of `m` over `block` on the GPU against the double reference: the largest error
  // relative to the reference's largest magnitude.
  double RelativeError(const ModelSpec& m, const SequenceBlock& block) {
    constexpr uint64_t kSeed = 11;
    constexpr int64_t kLayers = 2;
    const int64_t d = m.hidden_size, rows = block.rows();
    absl::StatusOr<CudaAttentionStack> stack =
        CudaAttentionStack::Create(m, kLayers, Dtype::kBf16, kSeed, *backend_);
    EXPECT_TRUE(stack.ok()) << stack.status();
    if (!stack.ok()) return 1e9;
    EXPECT_TRUE(stack->Prepare(block).ok());
    std::vector<float> input(static_cast<size_t>(rows * d));
    FillInputRows(kSeed, rows, 0, rows, d, input.data());
    const size_t bytes = input.size() * sizeof(float);
    absl::StatusOr<Buffer> a = backend_->Allocate(bytes);
    absl::StatusOr<Buffer> b = backend_->Allocate(bytes);
    EXPECT_TRUE(a.ok() && b.ok());
    if (!a.ok() || !b.ok()) return 1e9;
    EXPECT_TRUE(backend_->Upload(a->data(), input.data(), bytes).ok());
    Buffer* x = &*a;
    Buffer* out = &*b;
    for (int64_t l = 0; l < kLayers; ++l) {
      const absl::Status s = stack->Forward(l, x->as<float>(), out->as<float>());
      EXPECT_TRUE(s.ok()) << s;
      std::swap(x, out);
    }
    const absl::Status sync = backend_->Synchronize();
    EXPECT_TRUE(sync.ok()) << sync;
    std::vector<float> got(input.size());
    EXPECT_TRUE(backend_->Download(got.data(), x->data(), bytes).ok());

    CpuBackend host(1);
    std::vector<double> ref(input.begin(), input.end()), next(ref.size());
    for (int64_t l = 0; l < kLayers; ++l) {
      ReferenceAttention(host, m, Dtype::kBf16, kSeed, l, block, ref.data(), next.data());
      ref.swap(next);
    }
    double max_ref = 0, max_err = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      max_ref = std::max(max_ref, std::fabs(ref[i]));
      max_err = std::max(max_err, std::fabs(got[i] - ref[i]));
    }
    return max_err / std::max(max_ref, 1e-30);
  }

  std::unique_ptr<cuda::CudaBackend> backend_;
};

TEST_F(CudaAttentionTest, MatchesTheReference) {
  struct Case {
    ModelSpec model;
    SequenceBlock block;
    const char* what;
  };
  const std::vector<Case> cases = {
      {ScaledModel(CatalogModel("mixtral-8x7b"), 64), {0, 3, 1, 36}, "decode at context 37"},
      {ScaledModel(CatalogModel("mixtral-8x7b"), 64), {0, 2, 20, 0}, "prefill of 20"},
      {SlidingGqa(), {0, 3, 1, 36}, "decode at context 37"},
      {SlidingGqa(), {2, 2, 20, 0}, "prefill of 20"},
      {SlidingGqa(), {1, 2, 20, 5}, "prefill chunk of 20 after 5"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(absl::StrCat(k.model.name, ", ", k.what));
    EXPECT_LT(RelativeError(k.model, k.block), kTolerance);
  }
}

TEST_F(CudaAttentionTest, ForwardBeforePrepareFails) {
  absl::StatusOr<CudaAttentionStack> stack =
      CudaAttentionStack::Create(SlidingGqa(), 2, Dtype::kBf16, 1, *backend_);
  ASSERT_TRUE(stack.ok()) << stack.status();
  EXPECT_EQ(stack->Forward(0, nullptr, nullptr).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace moecap
