// `small_rows_bench`: GB/s of weights read by the few-rows fp32 products of a decode step, OpenBLAS
// (sgemv for one row, sgemm for more) against the small-rows kernel with AVX2 and with AVX-512,
// on one thread. Each round runs the three back to back over the same matrices and the median of
// the rounds is printed, so the ratios come from one run on one machine at one time. The weights
// (`--mib` of them per shape, 512 by default) are well beyond the last-level cache.
//
//   small_rows_bench [--rounds N] [--mib M]
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "agent/compute/small_rows_matmul.h"

namespace {

using Kernel = void (*)(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                        const float* w, int64_t ldw, float* c, int64_t ldc, bool accumulate);

void Blas(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* w, int64_t ldw,
          float* c, int64_t ldc, bool) {
  const auto i = [](int64_t v) { return static_cast<blasint>(v); };
  if (m == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, i(n), i(k), 1.0f, w, i(ldw), a, 1, 0.0f, c, 1);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, i(m), i(n), i(k), 1.0f, a, i(lda), w,
                i(ldw), 0.0f, c, i(ldc));
  }
}

struct Shape {
  const char* name;
  int64_t n, k;
};

}  // namespace

int main(int argc, char** argv) {
  int rounds = 9;
  int64_t mib = 512;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::max(1, std::atoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--mib") == 0) mib = std::max(64, std::atoi(argv[i + 1]));
  }
  openblas_set_num_threads(1);
  using moecap::small_rows::Isa;
  const Isa best = moecap::small_rows::BestIsa();
  std::vector<std::pair<const char*, Kernel>> kernels = {{"blas", Blas}};
  if (best != Isa::kNone) kernels.push_back({"avx2", moecap::small_rows::MatMulAvx2});
  if (best == Isa::kAvx512) kernels.push_back({"avx512", moecap::small_rows::MatMulAvx512});
  // Mixtral-8x7B at 1/4 scale: an expert's gate_up and down; a KV head's 4096-entry K and Vᵀ.
  const Shape shapes[] = {
      {"gate_up 7168x1024", 7168, 1024},
      {"down 1024x3584", 1024, 3584},
      {"K cache 4096x128", 4096, 128},
      {"V^T 128x4096", 128, 4096},
  };
  std::printf("small_rows_bench: GB/s of weights read, one thread, median of %d rounds\n", rounds);
  std::printf("%-18s %4s", "shape", "rows");
  for (const auto& kernel : kernels) std::printf(" %8s", kernel.first);
  std::printf("\n");
  for (const Shape& s : shapes) {
    const int64_t elements = s.n * s.k;
    const int64_t mats = std::max<int64_t>(1, (mib << 20) / (elements * 4));
    std::vector<std::vector<float>> w(static_cast<size_t>(mats),
                                      std::vector<float>(static_cast<size_t>(elements), 0.01f));
    for (int64_t m : {1, 2, 4, 8}) {
      std::vector<float> a(static_cast<size_t>(m * s.k), 1.0f), c(static_cast<size_t>(m * s.n));
      std::vector<std::vector<double>> seconds(kernels.size());
      for (int r = 0; r < rounds; ++r) {
        for (size_t f = 0; f < kernels.size(); ++f) {
          const auto start = std::chrono::steady_clock::now();
          for (const std::vector<float>& mat : w) {
            kernels[f].second(m, s.n, s.k, a.data(), s.k, mat.data(), s.k, c.data(), s.n, false);
          }
          seconds[f].push_back(
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        }
      }
      std::printf("%-18s %4lld", s.name, static_cast<long long>(m));
      for (std::vector<double>& t : seconds) {
        std::sort(t.begin(), t.end());
        std::printf(" %8.2f", static_cast<double>(mats * elements) * 4 / t[t.size() / 2] / 1e9);
      }
      std::printf("\n");
    }
  }
  return 0;
}
