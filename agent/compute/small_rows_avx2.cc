// small_rows_matmul.h with AVX2 and FMA (this file alone is compiled with -mavx2 -mfma).
#include <immintrin.h>

#include "agent/compute/small_rows_matmul.h"
#include "agent/compute/small_rows_tiles.h"

namespace moecap::small_rows {
namespace {

struct Avx2 {
  using T = __m256;
  static constexpr int kLanes = 8;
  static T Zero() { return _mm256_setzero_ps(); }
  static T Load(const float* p) { return _mm256_loadu_ps(p); }
  static T Fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static float Sum(T v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_hadd_ps(s, s);
    s = _mm_hadd_ps(s, s);
    return _mm_cvtss_f32(s);
  }
  // hadd(hadd(a, b), hadd(c, d)) holds each one's partial sums in order in both 128-bit halves.
  static void Sum4(T a, T b, T c, T d, float* out) {
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  }
};

}  // namespace

// 16 registers: 4 weight rows × 2 activation rows (8 accumulators, 4 weight vectors), or 2 × 4.
void MatMulAvx2(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* w,
                int64_t ldw, float* c, int64_t ldc, bool accumulate) {
  if (m <= 2) {
    ColumnTiles<Avx2, 4, 2>(m, n, k, a, lda, w, ldw, c, ldc, accumulate);
  } else {
    ColumnTiles<Avx2, 2, 4>(m, n, k, a, lda, w, ldw, c, ldc, accumulate);
  }
}

}  // namespace moecap::small_rows
