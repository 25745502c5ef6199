// Dtype names and sizes.
#include "common/dtype.h"

#include <array>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace moecap {

double DtypeBytes(Dtype dtype) {
  switch (dtype) {
    case Dtype::kFp32:
      return 4.0;
    case Dtype::kBf16:
    case Dtype::kFp16:
      return 2.0;
    case Dtype::kFp8:
    case Dtype::kInt8:
      return 1.0;
    case Dtype::kFp8Block128:
      return 1.0 + 4.0 / (128.0 * 128.0);
    case Dtype::kInt4Group128:
      return 0.5 + 4.0 / 128.0;  // an fp16 scale and an fp16 zero per 128 values
    case Dtype::kMxfp4:
      return 0.5 + 1.0 / 32.0;
    case Dtype::kNvfp4:
      return 0.5 + 1.0 / 16.0;
  }
  return 0.0;
}

absl::string_view DtypeName(Dtype dtype) {
  switch (dtype) {
    case Dtype::kFp32:
      return "fp32";
    case Dtype::kBf16:
      return "bf16";
    case Dtype::kFp16:
      return "fp16";
    case Dtype::kFp8:
      return "fp8";
    case Dtype::kFp8Block128:
      return "fp8_block128";
    case Dtype::kInt8:
      return "int8";
    case Dtype::kInt4Group128:
      return "int4_g128";
    case Dtype::kMxfp4:
      return "mxfp4";
    case Dtype::kNvfp4:
      return "nvfp4";
  }
  return "unknown";
}

absl::StatusOr<Dtype> ParseDtype(absl::string_view name) {
  std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
  for (char& c : lower) {
    if (c == '-') c = '_';
  }
  static constexpr std::array<std::pair<absl::string_view, Dtype>, 25> kNames = {{
      {"fp32", Dtype::kFp32},
      {"float32", Dtype::kFp32},
      {"f32", Dtype::kFp32},
      {"bf16", Dtype::kBf16},
      {"bfloat16", Dtype::kBf16},
      {"fp16", Dtype::kFp16},
      {"float16", Dtype::kFp16},
      {"half", Dtype::kFp16},
      {"f16", Dtype::kFp16},
      {"fp8", Dtype::kFp8},
      {"fp8_e4m3", Dtype::kFp8},
      {"fp8_e5m2", Dtype::kFp8},
      {"float8", Dtype::kFp8},
      {"fp8_block128", Dtype::kFp8Block128},
      {"fp8_block", Dtype::kFp8Block128},
      {"int8", Dtype::kInt8},
      {"w8a16", Dtype::kInt8},
      {"int4_g128", Dtype::kInt4Group128},
      {"int4", Dtype::kInt4Group128},
      {"w4a16", Dtype::kInt4Group128},
      {"gptq", Dtype::kInt4Group128},
      {"awq", Dtype::kInt4Group128},
      {"mxfp4", Dtype::kMxfp4},
      {"fp4", Dtype::kMxfp4},
      {"nvfp4", Dtype::kNvfp4},
  }};
  for (const auto& [spelling, dtype] : kNames) {
    if (lower == spelling) return dtype;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype '", name,
                   "': expected one of fp32, bf16, fp16, fp8, fp8_block128, int8, int4_g128, "
                   "mxfp4, nvfp4"));
}

Dtype DefaultComputeDtype(Dtype weights) {
  switch (weights) {
    case Dtype::kFp8:
    case Dtype::kFp8Block128:
      return Dtype::kFp8;
    case Dtype::kInt8:
    case Dtype::kInt4Group128:
    case Dtype::kMxfp4:
    case Dtype::kNvfp4:
      return Dtype::kBf16;
    case Dtype::kFp32:
    case Dtype::kBf16:
    case Dtype::kFp16:
      return weights;
  }
  return Dtype::kBf16;
}

Dtype DefaultKvDtype(Dtype run_dtype) {
  return DtypeBytes(run_dtype) < 2.0 ? Dtype::kBf16 : run_dtype;
}

}  // namespace moecap
