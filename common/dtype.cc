// Dtype names and sizes.
#include "common/dtype.h"

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
      return 1.0;
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
  }
  return "unknown";
}

absl::StatusOr<Dtype> ParseDtype(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "fp32" || lower == "float32" || lower == "f32") return Dtype::kFp32;
  if (lower == "bf16" || lower == "bfloat16") return Dtype::kBf16;
  if (lower == "fp16" || lower == "float16" || lower == "half" || lower == "f16") {
    return Dtype::kFp16;
  }
  if (lower == "fp8" || lower == "fp8_e4m3" || lower == "fp8_e5m2" || lower == "float8") {
    return Dtype::kFp8;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype '", name, "': expected one of fp32, bf16, fp16, fp8"));
}

}  // namespace moecap
