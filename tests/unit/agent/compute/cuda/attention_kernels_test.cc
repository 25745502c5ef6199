// The GPU attention kernels (attention_kernels.h) against double-precision host references on
// small shapes: GQA split-KV decode (contexts 1, 37, 300; heads 8 on 2 KV heads; with and without
// a 16-key window; the planned split, hand-made ones and one that falls short of the context),
// MLA absorbed decode (512 + 64, partial head blocks) and causal prefill (2 sequences of 70 new
// tokens after 0 and 33 cached, GQA and MLA's expanded 192/128 shape), bf16 and fp8 caches. The
// references read the same quantised cache values, so what is left is the kernels' fp32 rounding;
// the bounds are the relative errors the brief allows (1e-2 bf16, 5e-2 fp8). Skipped without a
// GPU, except the argument checks, which fail before any launch.
#include "agent/compute/cuda/attention_kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/compute/cpu_backend.h"
#include "agent/workload/random.h"
#include "tests/unit/agent/compute/cuda/cuda_test_util.h"

namespace moecap::cuda {
namespace {

constexpr int64_t kSms = 132;

// ---- Host codecs ----------------------------------------------------------------------------

// e4m3 (the OCP fp8 format nvcc's __NV_E4M3 is): bias 7, subnormals, 0x7f/0xff NaN, max 448.
double Fp8E4m3ToDouble(uint8_t code) {
  const int sign = code >> 7;
  const int exponent = (code >> 3) & 0xf;
  const int mantissa = code & 0x7;
  if (exponent == 0xf && mantissa == 0x7) return std::nan("");
  const double magnitude = exponent == 0 ? std::ldexp(mantissa / 8.0, -6)
                                         : std::ldexp(1.0 + mantissa / 8.0, exponent - 7);
  return sign ? -magnitude : magnitude;
}

// The nearest e4m3 code (values beyond 448 saturate). The positive codes 0..0x7e increase with
// their value, so a binary search over them finds it; ties are irrelevant here, the reference
// decodes whichever code was chosen.
uint8_t DoubleToFp8E4m3(double value) {
  static const std::vector<double>* const kPositive = [] {
    auto* table = new std::vector<double>;
    for (int code = 0; code < 0x7f; ++code) {
      table->push_back(Fp8E4m3ToDouble(static_cast<uint8_t>(code)));
    }
    return table;
  }();
  const double magnitude = std::fabs(value);
  const auto above = std::lower_bound(kPositive->begin(), kPositive->end(), magnitude);
  size_t code = static_cast<size_t>(above - kPositive->begin());
  if (code == kPositive->size() ||
      (code > 0 && magnitude - (*kPositive)[code - 1] <= (*kPositive)[code] - magnitude)) {
    --code;
  }
  return static_cast<uint8_t>(value < 0 ? code | 0x80 : code);
}

// A cache tensor in kBf16 or kFp8 (with its scale): the bytes the device gets, and the values they
// stand for, which the reference uses.
struct QuantisedCache {
  std::vector<uint8_t> bytes;
  std::vector<double> values;
  float scale = 1.0f;
};

QuantisedCache Quantise(const std::vector<float>& real, Dtype dtype, float fp8_scale) {
  QuantisedCache cache;
  if (dtype == Dtype::kBf16) {
    cache.bytes.resize(real.size() * 2);
    cache.values.resize(real.size());
    for (size_t i = 0; i < real.size(); ++i) {
      const uint16_t bits = FloatToBf16(real[i]);
      std::memcpy(cache.bytes.data() + 2 * i, &bits, 2);
      cache.values[i] = Bf16ToFloat(bits);
    }
    return cache;
  }
  cache.scale = fp8_scale;
  cache.bytes.resize(real.size());
  cache.values.resize(real.size());
  for (size_t i = 0; i < real.size(); ++i) {
    cache.bytes[i] = DoubleToFp8E4m3(static_cast<double>(real[i]) / fp8_scale);
    cache.values[i] = Fp8E4m3ToDouble(cache.bytes[i]) * fp8_scale;
  }
  return cache;
}

std::vector<float> Uniform(uint64_t key, size_t count, float lo, float hi) {
  std::vector<float> out(count);
  for (size_t i = 0; i < count; ++i) out[i] = lo + (hi - lo) * Uniform01(key, i);
  return out;
}

// softmax(scale · q·k_j) · v_j over keys [first, last] of one query; k_at(j) and v_at(j) point to
// key j's row.
template <typename KAt, typename VAt>
std::vector<double> AttendOne(const double* q, int64_t dqk, int64_t dv, int64_t first, int64_t last,
                              double scale, KAt k_at, VAt v_at) {
  std::vector<double> out(static_cast<size_t>(dv), 0.0);
  if (last < first) return out;
  std::vector<double> scores;
  double max = -INFINITY;
  for (int64_t j = first; j <= last; ++j) {
    const double* k = k_at(j);
    double dot = 0;
    for (int64_t d = 0; d < dqk; ++d) dot += q[d] * k[d];
    scores.push_back(dot * scale);
    max = std::max(max, scores.back());
  }
  double sum = 0;
  for (double& s : scores) sum += (s = std::exp(s - max));
  for (int64_t j = first; j <= last; ++j) {
    const double p = scores[static_cast<size_t>(j - first)] / sum;
    const double* v = v_at(j);
    for (int64_t d = 0; d < dv; ++d) out[static_cast<size_t>(d)] += p * v[d];
  }
  return out;
}

// max |actual − expected| over max |expected|: the relative error of a whole output.
double RelativeError(const std::vector<float>& actual, const std::vector<double>& expected) {
  double worst = 0, norm = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    if (!std::isfinite(actual[i])) return INFINITY;
    worst = std::max(worst, std::fabs(actual[i] - expected[i]));
    norm = std::max(norm, std::fabs(expected[i]));
  }
  return worst / std::max(norm, 1e-30);
}

double Tolerance(Dtype dtype) { return dtype == Dtype::kFp8 ? 5e-2 : 1e-2; }

// The test's own fp8 codec (no GPU needed): every code round-trips, and the format's landmarks.
TEST(AttentionTestCodec, Fp8E4m3RoundTrips) {
  for (int code = 0; code < 256; ++code) {
    if ((code & 0x7f) == 0x7f) continue;  // NaN
    const double value = Fp8E4m3ToDouble(static_cast<uint8_t>(code));
    if (code == 0x80) continue;  // −0 encodes as +0
    EXPECT_EQ(DoubleToFp8E4m3(value), code) << value;
  }
  EXPECT_EQ(Fp8E4m3ToDouble(0x38), 1.0);
  EXPECT_EQ(Fp8E4m3ToDouble(0x7e), 448.0);
  EXPECT_EQ(Fp8E4m3ToDouble(0x01), std::ldexp(1.0, -9));  // the smallest subnormal
  EXPECT_EQ(DoubleToFp8E4m3(1000.0), 0x7e);               // saturates
  EXPECT_EQ(DoubleToFp8E4m3(-1.06), 0xb8);                // nearest to −1 (steps of 1/8)
}

// ---- Argument checks (no GPU needed: they fail before launching) ----------------------------

// Non-null, 16-byte aligned host memory standing in for device pointers the checks never follow.
alignas(16) float g_fake[64];

GqaDecodeArgs ValidGqaArgs() {
  GqaDecodeArgs a;
  a.q = g_fake;
  a.seqs = 2;
  a.heads = 8;
  a.kv_heads = 2;
  a.head_dim = 128;
  a.k_cache = g_fake;
  a.v_cache = g_fake;
  a.kv_dtype = Dtype::kBf16;
  a.capacity = 16;
  a.context_lens = reinterpret_cast<const int32_t*>(g_fake);
  a.out = g_fake;
  return a;
}

void ExpectInvalid(const absl::Status& status, absl::string_view needle) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find(needle), absl::string_view::npos) << status;
}

TEST(AttentionKernelArguments, GqaDecodeRejectedBeforeAnyLaunch) {
  const DecodeAttentionPlan one{1, 16, 0};
  GqaDecodeArgs a = ValidGqaArgs();
  a.head_dim = 96;
  ExpectInvalid(GqaDecodeAttention(a, one, nullptr, 0, nullptr), "head_dim is 96");
  a = ValidGqaArgs();
  a.heads = 6;
  a.kv_heads = 4;
  ExpectInvalid(GqaDecodeAttention(a, one, nullptr, 0, nullptr), "kv_heads 4");
  a = ValidGqaArgs();
  a.kv_dtype = Dtype::kFp32;
  ExpectInvalid(GqaDecodeAttention(a, one, nullptr, 0, nullptr), "fp32");
  a = ValidGqaArgs();
  a.q = nullptr;
  ExpectInvalid(GqaDecodeAttention(a, one, nullptr, 0, nullptr), "q is null");
  a = ValidGqaArgs();
  a.context_lens = nullptr;
  ExpectInvalid(GqaDecodeAttention(a, one, nullptr, 0, nullptr), "context_lens is null");
  a = ValidGqaArgs();
  a.k_cache = reinterpret_cast<const char*>(g_fake) + 2;
  ExpectInvalid(GqaDecodeAttention(a, one, nullptr, 0, nullptr), "k_cache is not 16-byte");
  // Three splits of 2 sequences · 8 heads need 2 · 8 · 3 · (128 + 2) · 4 = 24960 bytes.
  const DecodeAttentionPlan three{3, 8, 24960};
  ExpectInvalid(GqaDecodeAttention(ValidGqaArgs(), three, g_fake, 24959, nullptr),
                "workspace_bytes is 24959, the plan's 3 splits need 24960");
  ExpectInvalid(GqaDecodeAttention(ValidGqaArgs(), three, nullptr, 24960, nullptr),
                "workspace is null");
  ExpectInvalid(
      GqaDecodeAttention(ValidGqaArgs(), DecodeAttentionPlan{0, 8, 0}, nullptr, 0, nullptr),
      "plan.splits is 0");
  // No sequences: nothing to launch.
  a = ValidGqaArgs();
  a.seqs = 0;
  a.q = nullptr;
  EXPECT_TRUE(GqaDecodeAttention(a, one, nullptr, 0, nullptr).ok());
}

TEST(AttentionKernelArguments, MlaDecodeRejectedBeforeAnyLaunch) {
  MlaDecodeArgs a;
  a.q_latent = g_fake;
  a.seqs = 1;
  a.heads = 16;
  a.kv_lora_rank = 256;
  a.rope_dim = 64;
  a.cache = g_fake;
  a.capacity = 4;
  a.context_lens = reinterpret_cast<const int32_t*>(g_fake);
  a.out = g_fake;
  const DecodeAttentionPlan one{1, 64, 0};
  ExpectInvalid(MlaDecodeAttention(a, one, nullptr, 0, nullptr), "256 + 64 (supported: 512 + 64)");
  a.kv_lora_rank = 512;
  a.heads = 129;
  ExpectInvalid(MlaDecodeAttention(a, one, nullptr, 0, nullptr), "heads is 129");
  a.heads = 16;
  a.out = nullptr;
  ExpectInvalid(MlaDecodeAttention(a, one, nullptr, 0, nullptr), "out is null");
  a.out = g_fake;
  ExpectInvalid(MlaDecodeAttention(a, DecodeAttentionPlan{2, 64, 0}, nullptr, 0, nullptr),
                "workspace_bytes is 0");
}

TEST(AttentionKernelArguments, PrefillRejectedBeforeAnyLaunch) {
  PrefillAttentionArgs a;
  a.q = g_fake;
  a.seqs = 1;
  a.new_tokens = 4;
  a.heads = 4;
  a.kv_heads = 4;
  a.head_dim_qk = 192;
  a.head_dim_v = 192;
  a.k_cache = g_fake;
  a.v_cache = g_fake;
  a.capacity = 4;
  a.out = g_fake;
  ExpectInvalid(PrefillAttention(a, nullptr), "head_dim_v is 192 (supported: 64, 128)");
  a.head_dim_v = 128;
  a.head_dim_qk = 256;
  ExpectInvalid(PrefillAttention(a, nullptr), "head_dim_qk is 256");
  a.head_dim_qk = 192;
  a.q_dtype = Dtype::kFp8;
  ExpectInvalid(PrefillAttention(a, nullptr), "q dtype fp8");
  a.q_dtype = Dtype::kBf16;
  a.capacity = 3;
  ExpectInvalid(PrefillAttention(a, nullptr), "capacity is 3");
  a.capacity = 4;
  a.v_cache = nullptr;
  ExpectInvalid(PrefillAttention(a, nullptr), "v_cache is null");
  a.new_tokens = 0;
  EXPECT_TRUE(PrefillAttention(a, nullptr).ok());
}

// ---- GQA decode -----------------------------------------------------------------------------

using AttentionKernelsTest = CudaTest;

struct GqaCase {
  int64_t heads = 8;
  int64_t kv_heads = 2;
  int64_t head_dim = 128;
  Dtype dtype = Dtype::kBf16;
  int64_t window = 0;
};

TEST_F(AttentionKernelsTest, GqaDecodeMatchesTheReference) {
  const std::vector<int32_t> contexts = {1, 37, 300};
  const int64_t seqs = 3, capacity = 300;
  std::vector<GqaCase> cases;
  for (const Dtype dtype : {Dtype::kBf16, Dtype::kFp8}) {
    for (const int64_t head_dim : {64, 128}) {
      for (const int64_t window : {0, 16}) cases.push_back({8, 2, head_dim, dtype, window});
    }
    cases.push_back({16, 1, 128, dtype, 0});  // a group larger than one block's heads
    cases.push_back({3, 3, 64, dtype, 0});    // MHA
  }
  for (const GqaCase& c : cases) {
    const std::string what = absl::StrCat(DtypeName(c.dtype), " heads ", c.heads, "/", c.kv_heads,
                                          " d ", c.head_dim, " window ", c.window);
    const int64_t d = c.head_dim, group = c.heads / c.kv_heads;
    const size_t cache_size = static_cast<size_t>(seqs * capacity * c.kv_heads * d);
    const std::vector<float> q = Uniform(1 + d, static_cast<size_t>(seqs * c.heads * d), -1, 1);
    const QuantisedCache k = Quantise(Uniform(2 + d, cache_size, -2, 2), c.dtype, 0.02f);
    const QuantisedCache v = Quantise(Uniform(3 + d, cache_size, -2, 2), c.dtype, 0.03f);
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));

    std::vector<double> expected(q.size());
    for (int64_t s = 0; s < seqs; ++s) {
      const int64_t len = contexts[static_cast<size_t>(s)];
      for (int64_t h = 0; h < c.heads; ++h) {
        const int64_t g = h / group;
        std::vector<double> qd(q.begin() + (s * c.heads + h) * d,
                               q.begin() + (s * c.heads + h + 1) * d);
        const int64_t kv_heads = c.kv_heads;
        const auto row = [=](const QuantisedCache& cache) {
          const double* base = cache.values.data();
          return [=](int64_t j) { return base + ((s * capacity + j) * kv_heads + g) * d; };
        };
        const std::vector<double> o = AttendOne(
            qd.data(), d, d, FirstAttendedKey(len - 1, c.window), len - 1, scale, row(k), row(v));
        std::copy(o.begin(), o.end(), expected.begin() + (s * c.heads + h) * d);
      }
    }

    Buffer dq = Put(q), dk = Put(k.bytes), dv = Put(v.bytes), dlens = Put(contexts);
    absl::StatusOr<DecodeAttentionPlan> planned =
        PlanGqaDecode(seqs, c.heads, c.kv_heads, d, c.dtype, capacity, kSms);
    ASSERT_TRUE(planned.ok()) << planned.status();
    // The planned split, one split, many short ones, and a plan that falls short of the context
    // (the last split takes the rest).
    for (DecodeAttentionPlan plan :
         {*planned, DecodeAttentionPlan{1, 320, 0}, DecodeAttentionPlan{5, 64, 0},
          DecodeAttentionPlan{2, 64, 0}}) {
      plan.workspace_bytes = DecodeWorkspaceBytes(seqs, c.heads, plan.splits, d);
      Buffer workspace = Zeros<uint8_t>(static_cast<size_t>(plan.workspace_bytes));
      Buffer out = Zeros<float>(q.size());
      GqaDecodeArgs a;
      a.q = dq.as<float>();
      a.seqs = seqs;
      a.heads = c.heads;
      a.kv_heads = c.kv_heads;
      a.head_dim = d;
      a.k_cache = dk.data();
      a.v_cache = dv.data();
      a.kv_dtype = c.dtype;
      a.k_scale = k.scale;
      a.v_scale = v.scale;
      a.capacity = capacity;
      a.context_lens = dlens.as<int32_t>();
      a.window = c.window;
      a.softmax_scale = static_cast<float>(scale);
      a.out = out.as<float>();
      ASSERT_TRUE(GqaDecodeAttention(a, plan, workspace.data(),
                                     static_cast<size_t>(plan.workspace_bytes), stream())
                      .ok());
      const std::vector<float> got = Get<float>(out.data(), q.size());
      EXPECT_LE(RelativeError(got, expected), Tolerance(c.dtype))
          << what << ", " << plan.splits << " splits of " << plan.keys_per_split;
    }
  }
}

// ---- MLA decode -----------------------------------------------------------------------------

TEST_F(AttentionKernelsTest, MlaDecodeMatchesTheReference) {
  const std::vector<int32_t> contexts = {1, 37, 300};
  const int64_t seqs = 3, capacity = 300, lora = 512, rope = 64, width = lora + rope;
  for (const Dtype dtype : {Dtype::kBf16, Dtype::kFp8}) {
    for (const int64_t heads : {4, 20}) {  // one partial head block; 8 + 8 + 4
      const std::vector<float> q =
          Uniform(10 + heads, static_cast<size_t>(seqs * heads * width), -1, 1);
      const QuantisedCache cache =
          Quantise(Uniform(11, static_cast<size_t>(seqs * capacity * width), -2, 2), dtype, 0.02f);
      const double scale = 1.0 / std::sqrt(192.0);  // DeepSeek's 1/sqrt(nope + rope)
      std::vector<double> expected(static_cast<size_t>(seqs * heads * lora));
      for (int64_t s = 0; s < seqs; ++s) {
        const int64_t len = contexts[static_cast<size_t>(s)];
        const auto row = [&, s](int64_t j) {
          return cache.values.data() + (s * capacity + j) * width;
        };
        for (int64_t h = 0; h < heads; ++h) {
          std::vector<double> qd(q.begin() + (s * heads + h) * width,
                                 q.begin() + (s * heads + h + 1) * width);
          const std::vector<double> o =
              AttendOne(qd.data(), width, lora, 0, len - 1, scale, row, row);
          std::copy(o.begin(), o.end(), expected.begin() + (s * heads + h) * lora);
        }
      }
      Buffer dq = Put(q), dc = Put(cache.bytes), dlens = Put(contexts);
      absl::StatusOr<DecodeAttentionPlan> planned =
          PlanMlaDecode(seqs, heads, lora, capacity, kSms);
      ASSERT_TRUE(planned.ok()) << planned.status();
      for (DecodeAttentionPlan plan :
           {*planned, DecodeAttentionPlan{1, 320, 0}, DecodeAttentionPlan{5, 64, 0}}) {
        plan.workspace_bytes = DecodeWorkspaceBytes(seqs, heads, plan.splits, lora);
        Buffer workspace = Zeros<uint8_t>(static_cast<size_t>(plan.workspace_bytes));
        Buffer out = Zeros<float>(expected.size());
        MlaDecodeArgs a;
        a.q_latent = dq.as<float>();
        a.seqs = seqs;
        a.heads = heads;
        a.kv_lora_rank = lora;
        a.rope_dim = rope;
        a.cache = dc.data();
        a.cache_dtype = dtype;
        a.cache_scale = cache.scale;
        a.capacity = capacity;
        a.context_lens = dlens.as<int32_t>();
        a.softmax_scale = static_cast<float>(scale);
        a.out = out.as<float>();
        ASSERT_TRUE(MlaDecodeAttention(a, plan, workspace.data(),
                                       static_cast<size_t>(plan.workspace_bytes), stream())
                        .ok());
        const std::vector<float> got = Get<float>(out.data(), expected.size());
        EXPECT_LE(RelativeError(got, expected), Tolerance(dtype))
            << DtypeName(dtype) << " heads " << heads << ", " << plan.splits << " splits";
      }
    }
  }
}

// ---- Prefill --------------------------------------------------------------------------------

struct PrefillCase {
  int64_t heads, kv_heads, dqk, dv;
  Dtype kv_dtype, q_dtype;
  int64_t window;
};

TEST_F(AttentionKernelsTest, PrefillMatchesTheReference) {
  const std::vector<int32_t> cached = {0, 33};
  const int64_t seqs = 2, fresh = 70, capacity = 33 + 70;
  std::vector<PrefillCase> cases;
  for (const Dtype kv : {Dtype::kBf16, Dtype::kFp8}) {
    cases.push_back({4, 2, 64, 64, kv, Dtype::kFp32, 0});
    cases.push_back({4, 2, 128, 128, kv, Dtype::kBf16, 0});
    cases.push_back({4, 2, 128, 128, kv, Dtype::kFp32, 16});
    cases.push_back({4, 4, 192, 128, kv, Dtype::kFp32, 0});  // MLA expanded prefill
  }
  for (const PrefillCase& c : cases) {
    const std::string what =
        absl::StrCat(DtypeName(c.kv_dtype), " q ", DtypeName(c.q_dtype), " heads ", c.heads, "/",
                     c.kv_heads, " d ", c.dqk, "/", c.dv, " window ", c.window);
    const size_t q_count = static_cast<size_t>(seqs * fresh * c.heads * c.dqk);
    std::vector<float> q = Uniform(20 + c.dqk, q_count, -1, 1);
    std::vector<uint16_t> q_bf16;
    if (c.q_dtype == Dtype::kBf16) {  // the reference reads the rounded queries
      q_bf16.resize(q.size());
      for (size_t i = 0; i < q.size(); ++i) q[i] = Bf16ToFloat(q_bf16[i] = FloatToBf16(q[i]));
    }
    const QuantisedCache k =
        Quantise(Uniform(21, static_cast<size_t>(seqs * capacity * c.kv_heads * c.dqk), -2, 2),
                 c.kv_dtype, 0.02f);
    const QuantisedCache v =
        Quantise(Uniform(22, static_cast<size_t>(seqs * capacity * c.kv_heads * c.dv), -2, 2),
                 c.kv_dtype, 0.03f);
    const double scale = 1.0 / std::sqrt(static_cast<double>(c.dqk));
    const int64_t group = c.heads / c.kv_heads;
    std::vector<double> expected(static_cast<size_t>(seqs * fresh * c.heads * c.dv));
    for (int64_t s = 0; s < seqs; ++s) {
      for (int64_t t = 0; t < fresh; ++t) {
        const int64_t pos = cached[static_cast<size_t>(s)] + t;
        for (int64_t h = 0; h < c.heads; ++h) {
          const int64_t g = h / group;
          const float* qf = q.data() + ((s * fresh + t) * c.heads + h) * c.dqk;
          std::vector<double> qd(qf, qf + c.dqk);
          const auto k_at = [&](int64_t j) {
            return k.values.data() + ((s * capacity + j) * c.kv_heads + g) * c.dqk;
          };
          const auto v_at = [&](int64_t j) {
            return v.values.data() + ((s * capacity + j) * c.kv_heads + g) * c.dv;
          };
          const std::vector<double> o = AttendOne(
              qd.data(), c.dqk, c.dv, FirstAttendedKey(pos, c.window), pos, scale, k_at, v_at);
          std::copy(o.begin(), o.end(), expected.begin() + ((s * fresh + t) * c.heads + h) * c.dv);
        }
      }
    }
    Buffer dq = c.q_dtype == Dtype::kBf16 ? Put(q_bf16) : Put(q);
    Buffer dk = Put(k.bytes), dv = Put(v.bytes), dcached = Put(cached);
    Buffer out = Zeros<float>(expected.size());
    PrefillAttentionArgs a;
    a.q = dq.data();
    a.q_dtype = c.q_dtype;
    a.seqs = seqs;
    a.new_tokens = fresh;
    a.heads = c.heads;
    a.kv_heads = c.kv_heads;
    a.head_dim_qk = c.dqk;
    a.head_dim_v = c.dv;
    a.k_cache = dk.data();
    a.v_cache = dv.data();
    a.kv_dtype = c.kv_dtype;
    a.k_scale = k.scale;
    a.v_scale = v.scale;
    a.capacity = capacity;
    a.cached = dcached.as<int32_t>();
    a.window = c.window;
    a.softmax_scale = static_cast<float>(scale);
    a.out = out.as<float>();
    ASSERT_TRUE(PrefillAttention(a, stream()).ok()) << what;
    const std::vector<float> got = Get<float>(out.data(), expected.size());
    EXPECT_LE(RelativeError(got, expected), Tolerance(c.kv_dtype)) << what;
  }
}

}  // namespace
}  // namespace moecap::cuda
