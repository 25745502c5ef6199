// small_rows_matmul.h with AVX-512F (this file alone is compiled with -mavx512f -mavx2 -mfma).
#include <immintrin.h>

#include "agent/compute/small_rows_matmul.h"
#include "agent/compute/small_rows_tiles.h"

namespace moecap::small_rows {
namespace {

struct Avx512 {
  using T = __m512;
  static constexpr int kLanes = 16;
  static T Zero() { return _mm512_setzero_ps(); }
  static T Load(const float* p) { return _mm512_loadu_ps(p); }
  static T Fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static float Sum(T v) { return _mm512_reduce_add_ps(v); }
  // Each register's halves added, then the AVX2 transposing reduction of the four.
  static void Sum4(T a, T b, T c, T d, float* out) {
    const auto half = [](T v) {
      return _mm256_add_ps(_mm512_castps512_ps256(v),
                           _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    };
    const __m256 h =
        _mm256_hadd_ps(_mm256_hadd_ps(half(a), half(b)), _mm256_hadd_ps(half(c), half(d)));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  }
};

}  // namespace

// 32 registers: 4 weight rows × 4 activation rows (16 accumulators), or 2 × 8.
void MatMulAvx512(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* w,
                  int64_t ldw, float* c, int64_t ldc, bool accumulate) {
  if (m <= 4) {
    ColumnTiles<Avx512, 4, 4>(m, n, k, a, lda, w, ldw, c, ldc, accumulate);
  } else {
    ColumnTiles<Avx512, 2, 8>(m, n, k, a, lda, w, ldw, c, ldc, accumulate);
  }
}

}  // namespace moecap::small_rows
