// Numeric formats of weights, KV cache and compute, and the bytes each element takes
// (METRICS.md v2, "Precisions": block scales included).
#ifndef MOECAP_COMMON_DTYPE_H_
#define MOECAP_COMMON_DTYPE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace moecap {

enum class Dtype {
  kFp32,
  kBf16,
  kFp16,
  kFp8,           // e4m3/e5m2 with a per-tensor or per-channel scale
  kFp8Block128,   // fp8 with 128×128 fp32 block scales (DeepSeek-V3's checkpoint)
  kInt8,          // int8 with a per-channel scale
  kInt4Group128,  // int4, group-128 fp16 scale and zero (GPTQ/AWQ, w4a16)
  kMxfp4,         // OCP MX fp4: 32-value blocks, one 8-bit scale (gpt-oss's experts)
  kNvfp4,         // NVIDIA fp4: 16-value blocks, one fp8 scale
};

// Bytes one element takes in memory, its block scale included: fp32 4, bf16/fp16 2, fp8 1,
// fp8-block128 1 + 4/16384, int8 1, int4-g128 0.5 + 4/128, mxfp4 0.5 + 1/32, nvfp4 0.5 + 1/16.
double DtypeBytes(Dtype dtype);

// Canonical lower-case name: "fp32", "bf16", "fp16", "fp8", "fp8_block128", "int8", "int4_g128",
// "mxfp4", "nvfp4".
absl::string_view DtypeName(Dtype dtype);

// Parses a name case-insensitively; also accepts "float32", "bfloat16", "float16", "half",
// "fp8_e4m3", "fp8_e5m2", "fp8-block128", "int4", "w4a16", "gptq", "awq" and "fp4" (mxfp4).
// Unknown names give InvalidArgument listing the accepted ones.
absl::StatusOr<Dtype> ParseDtype(absl::string_view name);

// The precision the matrix units compute in when weights are stored as `weights`: the
// activations' type (METRICS.md: bf16 for w4a16 and mxfp4 with bf16 activations, fp8 for w8a8
// fp8). fp8 kinds compute in fp8; int8 and the 4-bit formats in bf16; the rest in themselves.
Dtype DefaultComputeDtype(Dtype weights);

// The KV cache's precision when a run in `run_dtype` does not name one: bf16 when the run's dtype
// is fp8 or narrower (what vLLM and SGLang do unless told otherwise), else the run's dtype.
Dtype DefaultKvDtype(Dtype run_dtype);

}  // namespace moecap

#endif  // MOECAP_COMMON_DTYPE_H_
