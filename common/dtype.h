// Numeric formats of weights, KV cache and compute, and the bytes each element takes.
#ifndef MOECAP_COMMON_DTYPE_H_
#define MOECAP_COMMON_DTYPE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace moecap {

enum class Dtype { kFp32, kBf16, kFp16, kFp8 };

// Bytes one element takes in memory: fp32 4, bf16/fp16 2, fp8 1 (METRICS.md `p_w`, `p_kv`).
double DtypeBytes(Dtype dtype);

// Canonical lower-case name: "fp32", "bf16", "fp16", "fp8".
absl::string_view DtypeName(Dtype dtype);

// Parses a name case-insensitively; also accepts "float32", "bfloat16", "float16", "half",
// "fp8_e4m3" and "fp8_e5m2". Unknown names give InvalidArgument listing the accepted ones.
absl::StatusOr<Dtype> ParseDtype(absl::string_view name);

}  // namespace moecap

#endif  // MOECAP_COMMON_DTYPE_H_
