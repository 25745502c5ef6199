// The CUDA kernels against the host code they mirror (weights.cc, layer_math.cc, router.cc,
// moe_layer.cc, CpuBackend) on small shapes. Skipped without a GPU, except the argument checks,
// which fail before any launch.
#include "agent/compute/cuda/cuda_kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "agent/compute/cpu_backend.h"
#include "agent/workload/layer_math.h"
#include "agent/workload/random.h"
#include "agent/workload/router.h"
#include "agent/workload/weights.h"
#include "tests/unit/agent/compute/cuda/cuda_test_util.h"

namespace moecap::cuda {
namespace {

// count values uniform in [lo, hi), from stream `key`.
std::vector<float> Uniform(uint64_t key, size_t count, float lo, float hi) {
  std::vector<float> out(count);
  for (size_t i = 0; i < count; ++i) out[i] = lo + (hi - lo) * Uniform01(key, i);
  return out;
}

std::vector<uint16_t> ToBf16(const std::vector<float>& values) {
  std::vector<uint16_t> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = FloatToBf16(values[i]);
  return out;
}

void ExpectRelNear(const std::vector<float>& actual, const std::vector<float>& expected, double rel,
                   const char* what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double tolerance = rel * std::max(1e-3, std::fabs(static_cast<double>(expected[i])));
    ASSERT_NEAR(actual[i], expected[i], tolerance) << what << " element " << i;
  }
}

// ---- Argument checks (no GPU needed: they fail before launching) ----------------------------

TEST(CudaKernelArguments, RejectedBeforeAnyLaunch) {
  int32_t chosen = 0;
  float value = 0;
  // E = 0 and k = 33 are out of range; fp16 is not a kernel dtype.
  EXPECT_EQ(
      RouteTopK(&value, 1, 0, 1, RouterScoring::kSoftmax, true, nullptr, &chosen, &value, nullptr)
          .code(),
      absl::StatusCode::kInvalidArgument);
  const absl::Status big_k = RouteTopK(&value, 1, 64, 33, RouterScoring::kSoftmax, true, nullptr,
                                       &chosen, &value, nullptr);
  EXPECT_EQ(big_k.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(big_k.message().find("k is 33"), absl::string_view::npos) << big_k;
  const absl::Status fp16 = FillUniform(1, 10, 1.0f, Dtype::kFp16, &value, nullptr);
  EXPECT_EQ(fp16.code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(fp16.message().find("fp16"), absl::string_view::npos) << fp16;
  EXPECT_EQ(ScatterRows(&value, 1, 1, nullptr, 4, &value, nullptr).code(),
            absl::StatusCode::kInvalidArgument);  // slot is null
  const int64_t slot = 0;
  EXPECT_EQ(ScatterRows(&value, 1, 1, &slot, 3, &value, nullptr).code(),
            absl::StatusCode::kInvalidArgument);  // odd row_bytes
  EXPECT_EQ(RmsNorm(&value, -1, 4, &value, Dtype::kFp32, nullptr, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CountAndSlot(&chosen, 1, 0, nullptr, nullptr, nullptr, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  // Empty work returns at once.
  EXPECT_TRUE(FillUniform(1, 0, 1.0f, Dtype::kBf16, nullptr, nullptr).ok());
  EXPECT_TRUE(SwiGlu(nullptr, 0, 8, Dtype::kFp32, nullptr, nullptr).ok());
  // 32 warps' per-expert counters of 8 bytes: 8 experts → 32·8·8 = 2048 bytes.
  EXPECT_EQ(CountAndSlotScratchBytes(8), 2048u);
}

// ---- FillUniform ----------------------------------------------------------------------------

using CudaKernelsTest = CudaTest;

TEST_F(CudaKernelsTest, FillUniformIsBitIdenticalToFillWeights) {
  CpuBackend cpu(1);
  // 40'003 elements: more than two of FillWeights' 16384-element chunks, and odd.
  const int64_t count = 40003;
  const int64_t fan_in = 1000;
  const uint64_t key = StreamKey({7, 2, 0, 3});
  const float bound = static_cast<float>(std::sqrt(3.0 / static_cast<double>(fan_in)));
  {
    std::vector<float> host(count);
    FillWeights(cpu, key, count, fan_in, Dtype::kFp32, host.data());
    Buffer device = Zeros<float>(count);
    ASSERT_TRUE(FillUniform(key, count, bound, Dtype::kFp32, device.data(), stream()).ok());
    const std::vector<float> got = Get<float>(device.data(), count);
    ASSERT_EQ(std::memcmp(got.data(), host.data(), sizeof(float) * count), 0);
  }
  {
    std::vector<uint16_t> host(count);
    FillWeights(cpu, key, count, fan_in, Dtype::kBf16, host.data());
    Buffer device = Zeros<uint16_t>(count);
    ASSERT_TRUE(FillUniform(key, count, bound, Dtype::kBf16, device.data(), stream()).ok());
    EXPECT_EQ(Get<uint16_t>(device.data(), count), host);
  }
}

// ---- RmsNorm --------------------------------------------------------------------------------

TEST_F(CudaKernelsTest, RmsNormMatchesHostRows) {
  for (const int64_t hidden : {1, 7, 1000, 4096}) {
    const int64_t rows = 5;
    const std::vector<float> x = Uniform(11 + hidden, rows * hidden, -3.0f, 3.0f);
    std::vector<float> expected(x.size());
    RmsNormRows(x.data(), rows, hidden, expected.data());
    Buffer dx = Put(x);
    Buffer normed = Zeros<float>(x.size());
    Buffer act = Zeros<uint16_t>(x.size());
    ASSERT_TRUE(RmsNorm(dx.as<float>(), rows, hidden, normed.as<float>(), Dtype::kBf16, act.data(),
                        stream())
                    .ok());
    const std::vector<float> got = Get<float>(normed.data(), x.size());
    ExpectRelNear(got, expected, 1e-6, "normed");
    // The bf16 activations are exactly the rounding of the fp32 result.
    EXPECT_EQ(Get<uint16_t>(act.data(), x.size()), ToBf16(got)) << "hidden " << hidden;

    // fp32 activations written in place of `normed`.
    Buffer in_place = Zeros<float>(x.size());
    ASSERT_TRUE(RmsNorm(dx.as<float>(), rows, hidden, in_place.as<float>(), Dtype::kFp32,
                        in_place.data(), stream())
                    .ok());
    EXPECT_EQ(Get<float>(in_place.data(), x.size()), got);
  }
}

// ---- RouteTopK ------------------------------------------------------------------------------

struct RouteCase {
  int64_t experts;
  int64_t k;
};

// Host reference: RouteTokens' loop after the router GEMM.
void HostRoute(const std::vector<float>& logits, int64_t rows, int64_t experts, int64_t k,
               RouterScoring scoring, bool normalize, const int32_t* override_choices,
               std::vector<int32_t>& chosen, std::vector<float>& weights) {
  chosen.assign(rows * k, 0);
  weights.assign(rows * k, 0);
  std::vector<float> scores(experts);
  for (int64_t t = 0; t < rows; ++t) {
    if (override_choices != nullptr) {
      std::copy(override_choices + t * k, override_choices + (t + 1) * k, &chosen[t * k]);
    } else {
      TopK(&logits[t * experts], experts, k, &chosen[t * k]);
    }
    RouterScores(scoring, &logits[t * experts], experts, scores.data());
    ChosenWeights(scores.data(), &chosen[t * k], k, normalize, &weights[t * k]);
  }
}

TEST_F(CudaKernelsTest, RouteTopKMatchesHostIncludingTies) {
  const int64_t rows = 67;
  for (const RouteCase c : {RouteCase{8, 2}, RouteCase{64, 6}, RouteCase{256, 8},
                            RouteCase{1024, 32}, RouteCase{5, 5}}) {
    // Logits on a coarse grid of 9 values (−2, −1.5, ..., 2): every token has many ties.
    std::vector<float> logits(rows * c.experts);
    for (size_t i = 0; i < logits.size(); ++i) {
      logits[i] = -2.0f + 0.5f * std::floor(9.0f * Uniform01(c.experts * 100 + c.k, i));
    }
    // Token 0: all equal, so the top k are experts 0..k−1 in order.
    std::fill(logits.begin(), logits.begin() + c.experts, 0.25f);
    Buffer dlogits = Put(logits);
    Buffer chosen = Zeros<int32_t>(rows * c.k);
    Buffer weights = Zeros<float>(rows * c.k);
    for (const RouterScoring scoring : {RouterScoring::kSoftmax, RouterScoring::kSigmoid}) {
      for (const bool normalize : {false, true}) {
        SCOPED_TRACE(testing::Message() << "E=" << c.experts << " k=" << c.k
                                        << " sigmoid=" << (scoring == RouterScoring::kSigmoid)
                                        << " normalize=" << normalize);
        std::vector<int32_t> want_chosen;
        std::vector<float> want_weights;
        HostRoute(logits, rows, c.experts, c.k, scoring, normalize, nullptr, want_chosen,
                  want_weights);
        for (int64_t j = 0; j < c.k; ++j) ASSERT_EQ(want_chosen[j], j);
        ASSERT_TRUE(RouteTopK(dlogits.as<float>(), rows, c.experts, c.k, scoring, normalize,
                              nullptr, chosen.as<int32_t>(), weights.as<float>(), stream())
                        .ok());
        EXPECT_EQ(Get<int32_t>(chosen.data(), rows * c.k), want_chosen);
        // expf on the device and glibc's differ by an ulp or two; sums of up to 1024 of them.
        ExpectRelNear(Get<float>(weights.data(), rows * c.k), want_weights, 5e-6, "weights");
      }
    }
  }
}

TEST_F(CudaKernelsTest, RouteTopKHandPickedTiesAndOverride) {
  // E = 8, k = 2: logits {1, 3, 3, 0, 3, −1, 2, 3}: the 3s at 1, 2, 4, 7 tie; the lower indices
  // win, so the choice is {1, 2}.
  const std::vector<float> logits = {1, 3, 3, 0, 3, -1, 2, 3};
  Buffer dlogits = Put(logits);
  Buffer chosen = Zeros<int32_t>(2);
  Buffer weights = Zeros<float>(2);
  ASSERT_TRUE(RouteTopK(dlogits.as<float>(), 1, 8, 2, RouterScoring::kSoftmax, true, nullptr,
                        chosen.as<int32_t>(), weights.as<float>(), stream())
                  .ok());
  EXPECT_EQ(Get<int32_t>(chosen.data(), 2), (std::vector<int32_t>{1, 2}));
  // Equal scores normalised: 0.5 each.
  ExpectRelNear(Get<float>(weights.data(), 2), {0.5f, 0.5f}, 1e-6, "tied weights");

  // Override: experts {6, 0} whatever the logits; weights are their sigmoid scores, not
  // normalised: σ(2) = 0.880797, σ(1) = 0.731059.
  const std::vector<int32_t> override_choices = {6, 0};
  Buffer doverride = Put(override_choices);
  ASSERT_TRUE(RouteTopK(dlogits.as<float>(), 1, 8, 2, RouterScoring::kSigmoid, false,
                        doverride.as<int32_t>(), chosen.as<int32_t>(), weights.as<float>(),
                        stream())
                  .ok());
  EXPECT_EQ(Get<int32_t>(chosen.data(), 2), override_choices);
  ExpectRelNear(Get<float>(weights.data(), 2), {0.880797f, 0.731059f}, 1e-5, "override");
}

TEST_F(CudaKernelsTest, RouteTopKOverrideMatchesHostOnManyTokens) {
  const int64_t rows = 40;
  const int64_t experts = 64;
  const int64_t k = 6;
  const std::vector<float> logits = Uniform(5, rows * experts, -4.0f, 4.0f);
  // k distinct experts per token: a rotation of (t + 7j) mod 64.
  std::vector<int32_t> override_choices(rows * k);
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t j = 0; j < k; ++j) override_choices[t * k + j] = (t + 7 * j) % experts;
  }
  Buffer dlogits = Put(logits);
  Buffer doverride = Put(override_choices);
  Buffer chosen = Zeros<int32_t>(rows * k);
  Buffer weights = Zeros<float>(rows * k);
  for (const RouterScoring scoring : {RouterScoring::kSoftmax, RouterScoring::kSigmoid}) {
    std::vector<int32_t> want_chosen;
    std::vector<float> want_weights;
    HostRoute(logits, rows, experts, k, scoring, true, override_choices.data(), want_chosen,
              want_weights);
    ASSERT_TRUE(RouteTopK(dlogits.as<float>(), rows, experts, k, scoring, true,
                          doverride.as<int32_t>(), chosen.as<int32_t>(), weights.as<float>(),
                          stream())
                    .ok());
    EXPECT_EQ(Get<int32_t>(chosen.data(), rows * k), want_chosen);
    ExpectRelNear(Get<float>(weights.data(), rows * k), want_weights, 5e-6, "override weights");
  }
}

// ---- CountAndSlot ---------------------------------------------------------------------------

TEST_F(CudaKernelsTest, CountAndSlotMatchesTheHostStableOrder) {
  struct Case {
    int64_t pairs;
    int64_t experts;
  };
  // Pair counts around the warp (32) and 32-warp segment sizes; E past one 1024-wide scan chunk.
  for (const Case c : {Case{0, 8}, Case{1, 1}, Case{31, 8}, Case{33, 8}, Case{1000, 300},
                       Case{100003, 64}, Case{5000, 1500}, Case{70000, 1}}) {
    SCOPED_TRACE(testing::Message() << "pairs=" << c.pairs << " experts=" << c.experts);
    // Skewed: half the pairs pick from the first few experts, so groups within a warp repeat.
    std::vector<int32_t> chosen(c.pairs);
    for (int64_t i = 0; i < c.pairs; ++i) {
      const float u = Uniform01(99, i);
      const int64_t range = u < 0.5f ? std::min<int64_t>(3, c.experts) : c.experts;
      chosen[i] = static_cast<int32_t>(Uniform01(98, i) * range);
    }
    // The host loop of ExpertParallelMoe::Layer.
    std::vector<int64_t> want_counts(c.experts, 0);
    std::vector<int64_t> want_slot(c.pairs);
    for (int64_t i = 0; i < c.pairs; ++i) ++want_counts[chosen[i]];
    std::vector<int64_t> next(c.experts, 0);
    for (int64_t e = 1; e < c.experts; ++e) next[e] = next[e - 1] + want_counts[e - 1];
    for (int64_t i = 0; i < c.pairs; ++i) want_slot[i] = next[chosen[i]]++;

    Buffer dchosen = Put(chosen);
    Buffer counts = Put(std::vector<int64_t>(c.experts, -7));  // must be overwritten
    Buffer slot = Zeros<int64_t>(c.pairs);
    Buffer scratch = Zeros<char>(CountAndSlotScratchBytes(c.experts));
    ASSERT_TRUE(CountAndSlot(dchosen.as<int32_t>(), c.pairs, c.experts, counts.as<int64_t>(),
                             slot.as<int64_t>(), scratch.data(), stream())
                    .ok());
    EXPECT_EQ(Get<int64_t>(counts.data(), c.experts), want_counts);
    EXPECT_EQ(Get<int64_t>(slot.data(), c.pairs), want_slot);
  }
}

// ---- ScatterRows / GatherRows ---------------------------------------------------------------

TEST_F(CudaKernelsTest, ScatterAndGatherRowsMatchMemcpy) {
  const int64_t tokens = 9;
  const int64_t k = 3;
  const int64_t pairs = tokens * k;
  // A permutation of the pairs: slot[i] = (5i + 2) mod 27 (5 is prime to 27).
  std::vector<int64_t> slot(pairs);
  for (int64_t i = 0; i < pairs; ++i) slot[i] = (5 * i + 2) % pairs;
  Buffer dslot = Put(slot);
  // Row sizes taking the 16-byte (128), 4-byte (24) and 2-byte (6) paths.
  for (const int64_t row_bytes : {128, 24, 6}) {
    SCOPED_TRACE(testing::Message() << "row_bytes=" << row_bytes);
    std::vector<uint8_t> src(tokens * row_bytes);
    for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(Mix64(i) & 0xff);
    std::vector<uint8_t> want(pairs * row_bytes);
    for (int64_t i = 0; i < pairs; ++i) {
      std::memcpy(&want[slot[i] * row_bytes], &src[(i / k) * row_bytes], row_bytes);
    }
    Buffer dsrc = Put(src);
    Buffer ddst = Zeros<uint8_t>(want.size());
    ASSERT_TRUE(
        ScatterRows(dsrc.data(), pairs, k, dslot.as<int64_t>(), row_bytes, ddst.data(), stream())
            .ok());
    EXPECT_EQ(Get<uint8_t>(ddst.data(), want.size()), want);

    // Gathering by the slots undoes the scatter: row i of the result is token i / k's row.
    Buffer back = Zeros<uint8_t>(want.size());
    ASSERT_TRUE(
        GatherRows(ddst.data(), dslot.as<int64_t>(), pairs, row_bytes, back.data(), stream()).ok());
    const std::vector<uint8_t> got = Get<uint8_t>(back.data(), want.size());
    for (int64_t i = 0; i < pairs; ++i) {
      ASSERT_EQ(std::memcmp(&got[i * row_bytes], &src[(i / k) * row_bytes], row_bytes), 0)
          << "row " << i;
    }
  }
}

// ---- SwiGlu, conversions --------------------------------------------------------------------

TEST_F(CudaKernelsTest, SwiGluMatchesCpuBackend) {
  CpuBackend cpu(1);
  const int64_t rows = 7;
  const int64_t f = 300;
  std::vector<float> gate_up = Uniform(3, rows * 2 * f, -10.0f, 10.0f);
  gate_up[0] = -100.0f;  // past FastExp's clamps on both sides
  gate_up[1] = 100.0f;
  gate_up[2] = 0.0f;
  std::vector<float> want(rows * f);
  cpu.SwiGlu(rows, f, gate_up.data(), Dtype::kFp32, want.data());
  Buffer dgate_up = Put(gate_up);
  Buffer out32 = Zeros<float>(rows * f);
  Buffer out16 = Zeros<uint16_t>(rows * f);
  ASSERT_TRUE(SwiGlu(dgate_up.as<float>(), rows, f, Dtype::kFp32, out32.data(), stream()).ok());
  ASSERT_TRUE(SwiGlu(dgate_up.as<float>(), rows, f, Dtype::kBf16, out16.data(), stream()).ok());
  const std::vector<float> got = Get<float>(out32.data(), rows * f);
  ExpectRelNear(got, want, 1e-6, "swiglu fp32");
  // bf16: exactly the rounding of the same float.
  EXPECT_EQ(Get<uint16_t>(out16.data(), rows * f), ToBf16(got));
}

TEST_F(CudaKernelsTest, ConversionsRoundToNearestEvenLikeTheHost) {
  // 1 + 2^-8 is a tie between bf16 1.0 and 1 + 2^-7: it rounds to even (1.0); 1 + 3·2^-8 rounds
  // up to 1 + 2^-6; the rest cover signs, infinities, NaN, a subnormal and the largest float.
  std::vector<float> values = {1.0f + 0x1.0p-8f,
                               1.0f + 3 * 0x1.0p-8f,
                               -2.5f,
                               0.0f,
                               -0.0f,
                               std::numeric_limits<float>::infinity(),
                               -std::numeric_limits<float>::infinity(),
                               std::numeric_limits<float>::quiet_NaN(),
                               1e-40f,
                               std::numeric_limits<float>::max()};
  const std::vector<float> more = Uniform(4, 1000, -1e4f, 1e4f);
  values.insert(values.end(), more.begin(), more.end());
  const int64_t count = static_cast<int64_t>(values.size());
  Buffer in = Put(values);
  Buffer bf16 = Zeros<uint16_t>(count);
  Buffer back = Zeros<float>(count);
  ASSERT_TRUE(FromFloat(in.as<float>(), count, Dtype::kBf16, bf16.data(), stream()).ok());
  ASSERT_TRUE(ToFloat(bf16.data(), count, Dtype::kBf16, back.as<float>(), stream()).ok());
  const std::vector<uint16_t> got = Get<uint16_t>(bf16.data(), count);
  EXPECT_EQ(got, ToBf16(values));
  EXPECT_EQ(got[0], 0x3f80);  // 1.0
  EXPECT_EQ(got[1], 0x3f82);  // 1 + 2^-6
  const std::vector<float> widened = Get<float>(back.data(), count);
  for (int64_t i = 0; i < count; ++i) {
    if (std::isnan(values[i])) {
      EXPECT_TRUE(std::isnan(widened[i]));
    } else {
      EXPECT_EQ(widened[i], Bf16ToFloat(got[i])) << i;
    }
  }
  // fp32 is a copy.
  Buffer copy = Zeros<float>(count);
  ASSERT_TRUE(FromFloat(in.as<float>(), count, Dtype::kFp32, copy.data(), stream()).ok());
  const std::vector<float> copied = Get<float>(copy.data(), count);
  EXPECT_EQ(std::memcmp(copied.data(), values.data(), sizeof(float) * count), 0);
}

// ---- Combine --------------------------------------------------------------------------------

TEST_F(CudaKernelsTest, CombineMatchesTheHostLoop) {
  const int64_t rows = 5;
  const int64_t k = 3;
  for (const Dtype dtype : {Dtype::kFp32, Dtype::kBf16}) {
    // 64 takes the 16-byte path for both types, 10 the scalar one for both.
    for (const int64_t hidden : {64, 10}) {
      for (const bool with_shared : {false, true}) {
        SCOPED_TRACE(testing::Message()
                     << DtypeName(dtype) << " hidden=" << hidden << " shared=" << with_shared);
        const std::vector<float> residual = Uniform(21, rows * hidden, -1.0f, 1.0f);
        const std::vector<float> shared = Uniform(22, rows * hidden, -1.0f, 1.0f);
        const std::vector<float> results = Uniform(23, rows * k * hidden, -2.0f, 2.0f);
        const std::vector<float> weights = Uniform(24, rows * k, 0.0f, 1.0f);
        std::vector<int64_t> slot(rows * k);
        for (int64_t i = 0; i < rows * k; ++i) slot[i] = (4 * i + 1) % (rows * k);
        // Results as the combine sees them: in `dtype`, widened for the host loop.
        std::vector<float> widened = results;
        std::vector<uint16_t> results16 = ToBf16(results);
        if (dtype == Dtype::kBf16) {
          for (size_t i = 0; i < widened.size(); ++i) widened[i] = Bf16ToFloat(results16[i]);
        }
        std::vector<float> want(rows * hidden);
        for (int64_t t = 0; t < rows; ++t) {
          for (int64_t i = 0; i < hidden; ++i) {
            float o = residual[t * hidden + i];
            if (with_shared) o = o + shared[t * hidden + i];
            for (int64_t s = 0; s < k; ++s) {
              o += weights[t * k + s] * widened[slot[t * k + s] * hidden + i];
            }
            want[t * hidden + i] = o;
          }
        }
        Buffer dresidual = Put(residual);
        Buffer dshared = Put(shared);
        Buffer dresults = dtype == Dtype::kFp32 ? Put(results) : Put(results16);
        Buffer dslot = Put(slot);
        Buffer dweights = Put(weights);
        Buffer out = Zeros<float>(rows * hidden);
        ASSERT_TRUE(Combine(dresidual.as<float>(), with_shared ? dshared.as<float>() : nullptr,
                            dresults.data(), dtype, dslot.as<int64_t>(), dweights.as<float>(), rows,
                            k, hidden, out.as<float>(), stream())
                        .ok());
        ExpectRelNear(Get<float>(out.data(), rows * hidden), want, 1e-6, "combine");
      }
    }
  }
}

}  // namespace
}  // namespace moecap::cuda
