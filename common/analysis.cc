// The step-level MoE-CAP calculator.
#include "common/analysis.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

absl::Status RangeError(absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", reason));
}

absl::Status RequirePositiveTime(absl::string_view field, const std::optional<double>& t) {
  if (t.has_value() && !(*t > 0)) {
    return RangeError(field, absl::StrCat("must be a positive number of seconds, got ", *t));
  }
  return absl::OkStatus();
}

Utilizations UtilizationsAt(const Counts& sparse, const Counts& dense, double seconds,
                            double devices, double bw, double flops) {
  return Utilizations{Utilization(sparse.bytes(), seconds, devices, bw),
                      Utilization(sparse.flops(), seconds, devices, flops),
                      Utilization(dense.bytes(), seconds, devices, bw),
                      Utilization(dense.flops(), seconds, devices, flops)};
}

PhaseAnalysis FinishPhase(absl::string_view phase_name, Counts sparse, Counts dense, double tokens,
                          double activated_per_layer, std::optional<double> time_s, double devices,
                          double bw, double flops) {
  PhaseAnalysis phase;
  phase.counts = sparse;
  phase.dense_counts = dense;
  phase.tokens = tokens;
  phase.activated_experts_per_layer = activated_per_layer;
  phase.roofline_s = RooflineSeconds(sparse.bytes(), sparse.flops(), devices, bw, flops);
  phase.memory_bound = sparse.bytes() / bw >= sparse.flops() / flops;
  phase.at_roofline = UtilizationsAt(sparse, dense, phase.roofline_s, devices, bw, flops);
  if (time_s.has_value()) {
    phase.time_s = time_s;
    phase.measured = UtilizationsAt(sparse, dense, *time_s, devices, bw, flops);
    CheckUtilization(absl::StrCat(phase_name, " S-MBU"), phase.measured->s_mbu, &phase.validity);
    CheckUtilization(absl::StrCat(phase_name, " S-MFU"), phase.measured->s_mfu, &phase.validity);
  }
  return phase;
}

}  // namespace

absl::Status ValidateAnalysisInput(const AnalysisInput& in) {
  if (in.devices < 1)
    return RangeError("gpus", absl::StrCat("must be at least 1, got ", in.devices));
  if (in.batch < 1) return RangeError("batch", absl::StrCat("must be at least 1, got ", in.batch));
  if (in.prompt_len < 1) {
    return RangeError("prompt-len", absl::StrCat("must be at least 1, got ", in.prompt_len));
  }
  if (in.output_len < 1) {
    return RangeError("output-len", absl::StrCat("must be at least 1, got ", in.output_len));
  }
  if (in.layout.has_value()) {
    absl::Status layout = ValidateLayout(*in.layout, in.devices);
    if (!layout.ok()) return layout;
  }
  MOECAP_RETURN_IF_ERROR(RequirePositiveTime("ttft-s", in.ttft_s));
  MOECAP_RETURN_IF_ERROR(RequirePositiveTime("tpot-s", in.tpot_s));
  if (in.tpot_s.has_value() && in.output_len == 1) {
    return RangeError("tpot-s", "given, but output-len 1 has no decode step");
  }
  for (const auto& [field, value] :
       {std::pair{"prefill-activated", in.prefill_activated_per_layer},
        std::pair{"decode-activated", in.decode_activated_per_layer}}) {
    if (value.has_value() && (*value < 0 || *value > static_cast<double>(in.model.experts))) {
      return RangeError(field, absl::StrCat("must be between 0 and the model's ", in.model.experts,
                                            " experts, got ", *value));
    }
  }
  if (in.peak_bandwidth_bytes_s.has_value() && !(*in.peak_bandwidth_bytes_s > 0)) {
    return RangeError("peak-bandwidth-gb-s", "must be positive");
  }
  if (in.peak_flops.has_value() && !(*in.peak_flops > 0)) {
    return RangeError("peak-tflops", "must be positive");
  }
  if (in.price.usd_per_device_hour.has_value() && *in.price.usd_per_device_hour < 0) {
    return RangeError("usd-per-hour", "must not be negative");
  }
  if (in.price.amortize_hours.has_value() && !(*in.price.amortize_hours > 0)) {
    return RangeError("amortize-hours", "must be positive");
  }
  return absl::OkStatus();
}

absl::StatusOr<AnalysisResult> Analyze(const AnalysisInput& in) {
  MOECAP_RETURN_IF_ERROR(ValidateAnalysisInput(in));
  AnalysisResult result;
  result.dtypes = ResolvePrecisions(in.model, in.dtype, in.precision);
  FitComputeToHardware(in.hardware, in.precision, &result.dtypes);
  if (in.peak_bandwidth_bytes_s.has_value()) {
    result.peak_bandwidth_bytes_s = *in.peak_bandwidth_bytes_s;
  } else {
    absl::StatusOr<double> bw = PeakBandwidth(in.hardware);
    if (!bw.ok()) return bw.status();
    result.peak_bandwidth_bytes_s = *bw;
  }
  if (in.peak_flops.has_value()) {
    result.peak_flops = *in.peak_flops;
  } else {
    absl::StatusOr<double> flops = PeakFlops(in.hardware, result.dtypes.compute);
    if (!flops.ok()) return flops.status();
    result.peak_flops = *flops;
  }
  const ModelSpec& m = in.model;
  const Precision precision = BytesOf(result.dtypes);
  const double devices = static_cast<double>(in.devices);
  const double moe_layers = static_cast<double>(m.MoeLayers());
  const double bw = result.peak_bandwidth_bytes_s;
  const double peak = result.peak_flops;

  // Prefill: T = B·P tokens.
  const double prefill_tokens = static_cast<double>(in.batch * in.prompt_len);
  const double prefill_activated =
      in.prefill_activated_per_layer.value_or(ExpectedActivatedExperts(m, prefill_tokens));
  result.prefill = FinishPhase(
      "prefill",
      CountPrefillStep(m, precision, in.batch, in.prompt_len, prefill_activated * moe_layers),
      CountPrefillStep(m, precision, in.batch, in.prompt_len, 0, Counting::kDense), prefill_tokens,
      prefill_activated, in.ttft_s, devices, bw, peak);

  // Decode: the mean step, T = B tokens.
  result.decode_mean_context =
      static_cast<double>(in.prompt_len) + static_cast<double>(in.output_len) / 2;
  if (in.output_len > 1) {
    const double decode_tokens = static_cast<double>(in.batch);
    const double decode_activated =
        in.decode_activated_per_layer.value_or(ExpectedActivatedExperts(m, decode_tokens));
    result.decode = FinishPhase("decode",
                                CountMeanDecodeStep(m, precision, in.batch, in.prompt_len,
                                                    in.output_len, decode_activated * moe_layers),
                                CountMeanDecodeStep(m, precision, in.batch, in.prompt_len,
                                                    in.output_len, 0, Counting::kDense),
                                decode_tokens, decode_activated, in.tpot_s, devices, bw, peak);
  }
  if (in.layout.has_value()) {
    result.prefill.hbm = PhysicalTraffic(m, result.prefill.counts, *in.layout, in.devices,
                                         in.ttft_s, bw, "prefill", &result.prefill.validity);
    if (result.decode.has_value()) {
      result.decode->hbm = PhysicalTraffic(m, result.decode->counts, *in.layout, in.devices,
                                           in.tpot_s, bw, "decode", &result.decode->validity);
    }
  }

  absl::StatusOr<HourlyPrice> price = DeviceHourlyPrice(in.hardware, in.price);
  if (!price.ok()) {
    result.cost_unavailable_reason = std::string(price.status().message());
    return result;
  }
  CostAnalysis cost;
  cost.price = *price;
  const bool have_decode_time = in.output_len == 1 || in.tpot_s.has_value();
  cost.at_roofline = !in.ttft_s.has_value() || !have_decode_time;
  const double ttft = in.ttft_s.value_or(result.prefill.roofline_s);
  const double tpot =
      result.decode.has_value() ? in.tpot_s.value_or(result.decode->roofline_s) : 0.0;
  if (cost.at_roofline) {
    // Mixing a measured phase with a roofline one would flatter the figure: use both rooflines.
    cost.batch_seconds = BatchSeconds(
        result.prefill.roofline_s, result.decode ? result.decode->roofline_s : 0.0, in.output_len);
  } else {
    cost.batch_seconds = BatchSeconds(ttft, tpot, in.output_len);
  }
  const double batch = static_cast<double>(in.batch);
  cost.usd_per_million_output_tokens =
      UsdPerMillionTokens(price->usd_per_device_hour, devices, cost.batch_seconds,
                          batch * static_cast<double>(in.output_len));
  cost.usd_per_million_total_tokens =
      UsdPerMillionTokens(price->usd_per_device_hour, devices, cost.batch_seconds,
                          batch * static_cast<double>(in.prompt_len + in.output_len));
  cost.system_purchase_usd = in.hardware.purchase_usd * devices;
  cost.moecap_system_cost_usd =
      MoeCapSystemCostUsd(in.hardware, devices, cost.batch_seconds / 3600.0);
  result.cost = cost;
  return result;
}

Validity AnalysisValidity(const AnalysisResult& r) {
  Validity v = r.prefill.validity;
  if (r.decode.has_value()) v.Merge(r.decode->validity);
  return v;
}

nlohmann::json BreakdownJson(const Counts& counts) {
  nlohmann::json out = nlohmann::json::object();
  for (Term t : kAllTerms) {
    out[std::string(TermName(t))] = {{"bytes", counts[t].bytes}, {"flops", counts[t].flops}};
  }
  return out;
}

namespace {

nlohmann::json UtilizationsJson(const Utilizations& u) {
  return {{"s_mbu", u.s_mbu},
          {"s_mfu", u.s_mfu},
          {"dense_mbu", u.dense_mbu},
          {"dense_mfu", u.dense_mfu}};
}

// Common fields of a phase; `per_step` names the count fields of a decode step.
nlohmann::json PhaseJson(const PhaseAnalysis& p, bool per_step) {
  const std::string suffix = per_step ? "_per_step" : "";
  nlohmann::json j;
  j["tokens" + suffix] = p.tokens;
  j["activated_experts_per_layer"] = p.activated_experts_per_layer;
  j["bytes" + suffix] = p.counts.bytes();
  j["flops" + suffix] = p.counts.flops();
  j["dense_bytes" + suffix] = p.dense_counts.bytes();
  j["dense_flops" + suffix] = p.dense_counts.flops();
  j["time_s"] = p.time_s.has_value() ? nlohmann::json(*p.time_s) : nlohmann::json(nullptr);
  const nlohmann::json measured =
      p.measured.has_value() ? UtilizationsJson(*p.measured) : nlohmann::json(nullptr);
  for (const char* key : {"s_mbu", "s_mfu", "dense_mbu", "dense_mfu"}) {
    j[key] = measured.is_null() ? nlohmann::json(nullptr) : measured[key];
  }
  nlohmann::json roofline = UtilizationsJson(p.at_roofline);
  roofline["time_s"] = p.roofline_s;
  roofline["bound"] = p.memory_bound ? "memory" : "compute";
  j["roofline"] = roofline;
  j["breakdown"] = BreakdownJson(p.counts);
  if (p.hbm.has_value()) {
    j["hbm"] = HbmTrafficJson(*p.hbm);
    j["breakdown"]["replication"] = {{"bytes", p.hbm->replication_bytes}, {"flops", 0}};
  }
  AddValidityJson(p.validity, j);
  return j;
}

nlohmann::json OptionalJson(const std::optional<double>& v) {
  return v.has_value() ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json AnalysisJson(const AnalysisInput& in, const AnalysisResult& r) {
  nlohmann::json j;
  j["inputs"] = {
      {"model", in.model.name},
      {"hardware", in.hardware.name},
      {"gpus", in.devices},
      {"batch", in.batch},
      {"prompt_len", in.prompt_len},
      {"output_len", in.output_len},
      {"dtype", std::string(DtypeName(in.dtype))},
      {"kv_dtype", std::string(DtypeName(r.dtypes.kv_cache))},
      {"precisions", PartDtypesJson(r.dtypes)},
      {"ttft_s", OptionalJson(in.ttft_s)},
      {"tpot_s", OptionalJson(in.tpot_s)},
      {"prefill_activated", OptionalJson(in.prefill_activated_per_layer)},
      {"decode_activated", OptionalJson(in.decode_activated_per_layer)},
      {"layout", in.layout.has_value() ? LayoutJson(in.model, *in.layout, in.devices)
                                       : nlohmann::json(nullptr)},
  };
  j["peaks"] = {{"bandwidth_bytes_per_s", r.peak_bandwidth_bytes_s},
                {"flops_per_s", r.peak_flops},
                {"dtype", std::string(DtypeName(r.dtypes.compute))}};
  j["prefill"] = PhaseJson(r.prefill, /*per_step=*/false);
  if (r.decode.has_value()) {
    nlohmann::json d = PhaseJson(*r.decode, /*per_step=*/true);
    d["steps"] = in.output_len - 1;
    d["mean_context"] = r.decode_mean_context;
    j["decode"] = d;
  } else {
    j["decode"] = nullptr;
  }
  AddValidityJson(AnalysisValidity(r), j);
  if (r.cost.has_value()) {
    const CostAnalysis& c = *r.cost;
    j["cost"] = {{"usd_per_device_hour", c.price.usd_per_device_hour},
                 {"price_basis", c.price.basis},
                 {"time_basis", c.at_roofline ? "roofline" : "measured"},
                 {"batch_seconds", c.batch_seconds},
                 {"usd_per_million_output_tokens", c.usd_per_million_output_tokens},
                 {"usd_per_million_total_tokens", c.usd_per_million_total_tokens},
                 {"system_purchase_usd", c.system_purchase_usd},
                 {"moecap_system_cost_usd", c.moecap_system_cost_usd}};
  } else {
    j["cost"] = {{"unavailable", r.cost_unavailable_reason}};
  }
  return j;
}

}  // namespace moecap
