// Precision resolution (METRICS.md v2 "Precisions", "Defaults").
#include "common/precision.h"

namespace moecap {

PartDtypes ResolvePrecisions(const ModelSpec& model, Dtype run_dtype,
                             const PrecisionOverrides& overrides) {
  PartDtypes d;
  d.experts = overrides.experts.value_or(model.expert_dtype.value_or(run_dtype));
  d.attention = overrides.attention.value_or(model.attention_dtype.value_or(run_dtype));
  d.lm_head = overrides.lm_head.value_or(model.lm_head_dtype.value_or(run_dtype));
  d.kv_cache = overrides.kv_cache.value_or(DefaultKvDtype(run_dtype));
  d.compute = overrides.compute.value_or(DefaultComputeDtype(d.experts));
  return d;
}

void FitComputeToHardware(const HardwareSpec& hw, const PrecisionOverrides& overrides,
                          PartDtypes* d) {
  if (overrides.compute.has_value() || hw.peak_flops.contains(d->compute)) return;
  if (d->compute == Dtype::kFp8 && hw.peak_flops.contains(Dtype::kBf16)) d->compute = Dtype::kBf16;
}

Precision BytesOf(const PartDtypes& d) {
  return Precision{DtypeBytes(d.experts), DtypeBytes(d.attention), DtypeBytes(d.lm_head),
                   DtypeBytes(d.kv_cache)};
}

Precision MakePrecision(Dtype weights, std::optional<Dtype> kv_cache) {
  const double w = DtypeBytes(weights);
  return Precision{w, w, w, DtypeBytes(kv_cache.value_or(weights))};
}

nlohmann::json PartDtypesJson(const PartDtypes& d) {
  return {{"experts", std::string(DtypeName(d.experts))},
          {"attention", std::string(DtypeName(d.attention))},
          {"lm_head", std::string(DtypeName(d.lm_head))},
          {"kv_cache", std::string(DtypeName(d.kv_cache))},
          {"compute", std::string(DtypeName(d.compute))}};
}

}  // namespace moecap
