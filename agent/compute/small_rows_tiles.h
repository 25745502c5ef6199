// The tiles of small_rows_matmul.h over a vector type V, included by the one source file per
// instruction set that is compiled for it (V: a type in that file's anonymous namespace, so each
// instantiation stays in its file). V gives T (the register), kLanes, Zero, Load, Fma, Sum (of a
// register's lanes) and Sum4 (of four registers' lanes each, into out[0..3]: one transposing
// reduction, cheaper than four, which matters when k is short, as a 128-wide KV cache is).
#ifndef MOECAP_AGENT_COMPUTE_SMALL_ROWS_TILES_H_
#define MOECAP_AGENT_COMPUTE_SMALL_ROWS_TILES_H_

#include <cstdint>

namespace moecap::small_rows {

// A tile of C: `Cols` outputs (weight rows `step` rows apart) × `Rows` activation rows over `k`
// inputs. Each vector load of a weight row feeds every activation row and each activation load
// every weight row.
template <class V, int Cols, int Rows>
inline void Tile(int64_t k, const float* a, int64_t lda, const float* w, int64_t ldw, int64_t step,
                 float* c, int64_t ldc, bool accumulate) {
  typename V::T acc[Cols][Rows];
  for (int q = 0; q < Cols; ++q) {
    for (int r = 0; r < Rows; ++r) acc[q][r] = V::Zero();
  }
  int64_t p = 0;
  for (; p + V::kLanes <= k; p += V::kLanes) {
    typename V::T wv[Cols];
    for (int q = 0; q < Cols; ++q) wv[q] = V::Load(w + q * step * ldw + p);
    for (int r = 0; r < Rows; ++r) {
      const typename V::T xv = V::Load(a + r * lda + p);
      for (int q = 0; q < Cols; ++q) acc[q][r] = V::Fma(wv[q], xv, acc[q][r]);
    }
  }
  for (int r = 0; r < Rows; ++r) {
    float sums[Cols];
    if constexpr (Cols == 4) {
      V::Sum4(acc[0][r], acc[1][r], acc[2][r], acc[3][r], sums);
    } else {
      for (int q = 0; q < Cols; ++q) sums[q] = V::Sum(acc[q][r]);
    }
    for (int q = 0; q < Cols; ++q) {
      float sum = sums[q];
      for (int64_t i = p; i < k; ++i) sum += a[r * lda + i] * w[q * step * ldw + i];
      float& out = c[r * ldc + q * step];
      out = accumulate ? out + sum : sum;
    }
  }
}

// All `rows` activation rows against `Cols` weight rows: tiles of `Rows` rows, the remainder in
// smaller ones.
template <class V, int Cols, int Rows>
inline void TileRows(int64_t rows, int64_t k, const float* a, int64_t lda, const float* w,
                     int64_t ldw, int64_t step, float* c, int64_t ldc, bool accumulate) {
  int64_t i = 0;
  for (; i + Rows <= rows; i += Rows) {
    Tile<V, Cols, Rows>(k, a + i * lda, lda, w, ldw, step, c + i * ldc, ldc, accumulate);
  }
  if constexpr (Rows > 1) {
    if (i < rows) {
      TileRows<V, Cols, Rows - 1>(rows - i, k, a + i * lda, lda, w, ldw, step, c + i * ldc, ldc,
                                  accumulate);
    }
  }
}

// Weight rows shorter than this many floats (a 4 KiB page) are taken `Cols` segments apart: the
// tile's rows are then several sequential streams in different pages, which the memory system
// serves in parallel, where adjacent short rows would be one stream (a 128-wide K cache: about
// half the bandwidth).
inline constexpr int64_t kSpreadBelowK = 1024;

// C (m×n) = A·Wᵀ: `Cols` weight rows at a time (adjacent, or spread over the matrix when rows
// are short), then the last few one by one.
template <class V, int Cols, int Rows>
inline void ColumnTiles(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                        const float* w, int64_t ldw, float* c, int64_t ldc, bool accumulate) {
  int64_t done = 0;
  if (k < kSpreadBelowK && Cols > 1) {
    const int64_t segment = n / Cols;  // tile j: rows j, j + segment, ...
    for (int64_t j = 0; j < segment; ++j) {
      TileRows<V, Cols, Rows>(m, k, a, lda, w + j * ldw, ldw, segment, c + j, ldc, accumulate);
    }
    done = segment * Cols;
  } else {
    for (; done + Cols <= n; done += Cols) {
      TileRows<V, Cols, Rows>(m, k, a, lda, w + done * ldw, ldw, 1, c + done, ldc, accumulate);
    }
  }
  for (int64_t j = done; j < n; ++j) {
    TileRows<V, 1, Rows>(m, k, a, lda, w + j * ldw, ldw, 1, c + j, ldc, accumulate);
  }
}

}  // namespace moecap::small_rows

#endif  // MOECAP_AGENT_COMPUTE_SMALL_ROWS_TILES_H_
