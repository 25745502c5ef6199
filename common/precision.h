// METRICS.md v2 "Precisions": each part of a model has its own bytes per parameter (experts p_e,
// attention/router/dense FFN p_a, LM head p_lm, KV cache p_kv), and the compute precision, which
// picks the peak FLOP/s, is apart from the weights'. This module resolves them once — run dtype,
// the catalog's native precisions, the user's overrides — so every tool counts with the same ones.
#ifndef MOECAP_COMMON_PRECISION_H_
#define MOECAP_COMMON_PRECISION_H_

#include <optional>

#include "common/dtype.h"
#include "common/hardware.h"
#include "common/model.h"
#include "nlohmann/json.hpp"

namespace moecap {

// The dtype of each part.
struct PartDtypes {
  Dtype experts = Dtype::kBf16;    // routed and shared expert weights
  Dtype attention = Dtype::kBf16;  // attention, router and dense-FFN weights
  Dtype lm_head = Dtype::kBf16;
  Dtype kv_cache = Dtype::kBf16;
  Dtype compute = Dtype::kBf16;  // the activations' type at the matrix units: the peak's dtype
};

// What a run or a record names explicitly; unset parts fall back (see ResolvePrecisions).
struct PrecisionOverrides {
  std::optional<Dtype> experts;
  std::optional<Dtype> attention;
  std::optional<Dtype> lm_head;
  std::optional<Dtype> kv_cache;
  std::optional<Dtype> compute;
};

// Each weight part: the override, else the model's native precision, else `run_dtype`. KV: the
// override, else DefaultKvDtype(run_dtype). Compute: the override, else DefaultComputeDtype of the
// experts' dtype (the bulk of an MoE's weights: mxfp4 experts compute in bf16, fp8 ones in fp8).
PartDtypes ResolvePrecisions(const ModelSpec& model, Dtype run_dtype,
                             const PrecisionOverrides& overrides = {});

// On a device without matrix units for the defaulted compute dtype (fp8 on Ampere), engines
// dequantise the weights and compute in bf16 (vLLM's w8a16 Marlin kernels): the compute dtype
// becomes bf16 there. An explicit --compute-dtype is left as given.
void FitComputeToHardware(const HardwareSpec& hardware, const PrecisionOverrides& overrides,
                          PartDtypes* dtypes);

// Bytes per element of each part (p_e, p_a, p_lm, p_kv).
struct Precision {
  double expert_bytes = 2;
  double attention_bytes = 2;
  double lm_head_bytes = 2;
  double kv_bytes = 2;
};
Precision BytesOf(const PartDtypes& dtypes);

// Every weight in `weights` and the KV cache in `kv_cache` (defaulting to `weights`, not to
// DefaultKvDtype: the workload's MoE blocks and tests that fix one dtype use this).
Precision MakePrecision(Dtype weights, std::optional<Dtype> kv_cache = std::nullopt);

// {"experts": "mxfp4", "attention": "bf16", "lm_head": "bf16", "kv_cache": "bf16",
//  "compute": "bf16"}.
nlohmann::json PartDtypesJson(const PartDtypes& dtypes);

}  // namespace moecap

#endif  // MOECAP_COMMON_PRECISION_H_
