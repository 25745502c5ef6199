// CpuBackend: OpenBLAS GEMMs, plus the element-wise parts (SwiGLU, conversions) written as plain
// loops the compiler vectorises.
#include "agent/compute/cpu_backend.h"

#include <cblas.h>
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/compute/small_rows_matmul.h"

namespace moecap {
namespace {

using SbgemmFn = decltype(&cblas_sbgemm);

// cblas_sbgemm is resolved at run time: the header declares it whether or not the library was
// built with BUILD_BFLOAT16, so a direct call would fail to link on builds without it.
SbgemmFn LookUpSbgemm() {
  static const SbgemmFn fn = reinterpret_cast<SbgemmFn>(dlsym(RTLD_DEFAULT, "cblas_sbgemm"));
  return fn;
}

// exp(x) for the SiLU, branch-free so the loop vectorises: 2^n · p(r) with r = x − n·ln2 and a
// degree-6 polynomial (relative error below 2e-7 over the clamped range). Inputs below −87 give
// about 1e-38, above 88 about 1.6e38: SiLU's limits come out right either way.
inline float FastExp(float x) {
  x = std::fmin(std::fmax(x, -87.0f), 88.0f);
  const float kLog2e = 1.44269504f;
  const float kRound = 12582912.0f;  // 1.5·2^23: adding and subtracting it rounds to an integer
  const float n = (x * kLog2e + kRound) - kRound;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

// The small-rows kernel over `threads` threads: each takes a block of the weight rows (outputs)
// when W is large enough (16 MiB and more) that starting threads costs little next to reading it.
void SmallRowsMatMul(small_rows::Isa isa, int threads, int64_t m, int64_t n, int64_t k,
                     const float* a, int64_t lda, const float* w, int64_t ldw, float* c,
                     int64_t ldc, bool accumulate) {
  const auto run = [&](int64_t first, int64_t count) {
    if (count <= 0) return;
    (isa == small_rows::Isa::kAvx512 ? small_rows::MatMulAvx512 : small_rows::MatMulAvx2)(
        m, count, k, a, lda, w + first * ldw, ldw, c + first, ldc, accumulate);
  };
  constexpr int64_t kThreadedElements = int64_t{1} << 22;
  const int64_t parts =
      n * k >= kThreadedElements ? std::min<int64_t>(std::max(threads, 1), n / 64) : 1;
  if (parts <= 1) {
    run(0, n);
    return;
  }
  const int64_t block = (n + parts - 1) / parts;
  std::vector<std::thread> helpers;
  for (int64_t p = 1; p < parts; ++p) {
    helpers.emplace_back(run, p * block, std::min(block, n - p * block));
  }
  run(0, block);
  for (std::thread& t : helpers) t.join();
}

}  // namespace

uint16_t FloatToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) {
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // quiet NaN, sign kept
  }
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float Bf16ToFloat(uint16_t value) {
  const uint32_t bits = static_cast<uint32_t>(value) << 16;
  float out;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
}

CpuBackend::CpuBackend(int threads) {
  if (threads > 0) SetThreads(threads);
  threads_ = openblas_get_num_threads();
}

std::string CpuBackend::LibraryConfig() const {
  return absl::StrCat(openblas_get_config(), " (core ", openblas_get_corename(), ")");
}

bool CpuBackend::HasBf16Gemm() { return LookUpSbgemm() != nullptr; }

absl::Status CpuBackend::CheckDtype(Dtype dtype) const {
  switch (dtype) {
    case Dtype::kFp32:
      return absl::OkStatus();
    case Dtype::kBf16:
      if (HasBf16Gemm()) return absl::OkStatus();
      return absl::UnimplementedError(absl::StrCat(
          "dtype bf16 is unsupported on this build: the CPU backend needs cblas_sbgemm, which this "
          "OpenBLAS (",
          openblas_get_config(),
          ") does not export (it must be built with BUILD_BFLOAT16=1); use --dtype fp32"));
    default:
      return absl::UnimplementedError(absl::StrCat(
          "dtype ", DtypeName(dtype), " is unsupported by the CPU backend (fp32, bf16)"));
  }
}

absl::StatusOr<Buffer> CpuBackend::Allocate(size_t bytes) {
  constexpr size_t kAlign = 64;
  const size_t rounded = std::max<size_t>(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
  void* data = std::aligned_alloc(kAlign, rounded);
  if (data == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate ", rounded, " bytes of host memory"));
  }
  std::memset(data, 0, rounded);  // zero and fault every page in now, not in a timed step
  return Buffer(data, rounded, [](void* p) { std::free(p); });
}

absl::Status CpuBackend::MatMul(Dtype dtype, int64_t m, int64_t n, int64_t k, const void* a,
                                int64_t lda, const void* w, int64_t ldw, float* c, int64_t ldc,
                                bool accumulate) {
  if (m == 0 || n == 0) return absl::OkStatus();
  if (k == 0) {
    if (!accumulate) {
      for (int64_t i = 0; i < m; ++i) std::memset(c + i * ldc, 0, sizeof(float) * n);
    }
    return absl::OkStatus();
  }
  const float beta = accumulate ? 1.0f : 0.0f;
  switch (dtype) {
    case Dtype::kFp32: {
      const float* af = static_cast<const float*>(a);
      const float* wf = static_cast<const float*>(w);
      const small_rows::Isa isa =
          m <= small_rows::kMaxRows ? small_rows::BestIsa() : small_rows::Isa::kNone;
      if (isa != small_rows::Isa::kNone) {
        SmallRowsMatMul(isa, threads_, m, n, k, af, lda, wf, ldw, c, ldc, accumulate);
      } else if (m == 1) {
        // One row without the kernel: c = W·a streams W once, without sgemm's packing copy.
        cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(n), static_cast<blasint>(k),
                    1.0f, wf, static_cast<blasint>(ldw), af, 1, beta, c, 1);
      } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(m),
                    static_cast<blasint>(n), static_cast<blasint>(k), 1.0f, af,
                    static_cast<blasint>(lda), wf, static_cast<blasint>(ldw), beta, c,
                    static_cast<blasint>(ldc));
      }
      return absl::OkStatus();
    }
    case Dtype::kBf16: {
      const SbgemmFn sbgemm = LookUpSbgemm();
      if (sbgemm == nullptr) return CheckDtype(dtype);
      sbgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(m),
             static_cast<blasint>(n), static_cast<blasint>(k), 1.0f,
             static_cast<const bfloat16*>(a), static_cast<blasint>(lda),
             static_cast<const bfloat16*>(w), static_cast<blasint>(ldw), beta, c,
             static_cast<blasint>(ldc));
      return absl::OkStatus();
    }
    default:
      return CheckDtype(dtype);
  }
}

void CpuBackend::SwiGlu(int64_t rows, int64_t f, const float* gate_up, Dtype out_dtype, void* out) {
  for (int64_t i = 0; i < rows; ++i) {
    const float* gate = gate_up + i * 2 * f;
    const float* up = gate + f;
    if (out_dtype == Dtype::kFp32) {
      float* o = static_cast<float*>(out) + i * f;
      for (int64_t j = 0; j < f; ++j) o[j] = gate[j] / (1.0f + FastExp(-gate[j])) * up[j];
    } else {
      uint16_t* o = static_cast<uint16_t*>(out) + i * f;
      for (int64_t j = 0; j < f; ++j) {
        o[j] = FloatToBf16(gate[j] / (1.0f + FastExp(-gate[j])) * up[j]);
      }
    }
  }
}

void CpuBackend::FromFloat(const float* in, int64_t count, Dtype dtype, void* out) {
  if (dtype == Dtype::kFp32) {
    if (out != in) std::memcpy(out, in, sizeof(float) * count);
    return;
  }
  uint16_t* o = static_cast<uint16_t*>(out);
  for (int64_t i = 0; i < count; ++i) o[i] = FloatToBf16(in[i]);
}

void CpuBackend::ToFloat(const void* in, int64_t count, Dtype dtype, float* out) {
  if (dtype == Dtype::kFp32) {
    if (out != in) std::memcpy(out, in, sizeof(float) * count);
    return;
  }
  const uint16_t* i16 = static_cast<const uint16_t*>(in);
  for (int64_t i = 0; i < count; ++i) out[i] = Bf16ToFloat(i16[i]);
}

void CpuBackend::SetThreads(int threads) {
  if (threads < 1) threads = 1;
  openblas_set_num_threads(threads);
  threads_ = threads;
}

}  // namespace moecap
