// small_rows_matmul.h: which instruction set this CPU runs the kernel with.
#include "agent/compute/small_rows_matmul.h"

namespace moecap::small_rows {

Isa BestIsa() {
  static const Isa isa = [] {
    if (__builtin_cpu_supports("avx512f")) return Isa::kAvx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
    return Isa::kNone;
  }();
  return isa;
}

}  // namespace moecap::small_rows
