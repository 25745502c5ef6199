// vLLM `bench serve --save-result` files: syntax checked by the records' JSON scanner (so errors
// carry a line and column), fields read through nlohmann::json.
#include "common/records/vllm_result.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/records/json_scanner.h"
#include "common/status_macros.h"

namespace moecap::records {
namespace {

using nlohmann::json;

absl::Status FieldError(absl::string_view origin, absl::string_view field,
                        absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(origin, ": field '", field, "': ", problem));
}

absl::Status SyntaxError(absl::string_view origin, absl::string_view text, size_t column,
                         absl::string_view what) {
  // The scanner's column counts bytes from the start of the text; report line and column.
  const size_t offset = std::min(column > 0 ? column - 1 : 0, text.size());
  size_t line = 1, line_start = 0;
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(origin, ":", line, ": invalid JSON at column ",
                                                 offset - line_start + 1, ": ", what));
}

bool IsWholeNumber(const json& v) {
  if (v.is_number_integer()) return true;
  if (!v.is_number_float()) return false;
  const double d = v.get<double>();
  return std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9007199254740992.0;
}

int64_t AsInt(const json& v) {
  return v.is_number_float() ? static_cast<int64_t>(v.get<double>()) : v.get<int64_t>();
}

class FieldReader {
 public:
  FieldReader(const json& object, absl::string_view origin) : j_(object), origin_(origin) {}

  // Required integer >= minimum.
  absl::Status Int(const char* field, int64_t minimum, int64_t* out) const {
    if (!j_.contains(field)) return FieldError(origin_, field, "missing");
    const json& v = j_.at(field);
    if (!IsWholeNumber(v)) return FieldError(origin_, field, "expected an integer");
    *out = AsInt(v);
    if (*out < minimum) {
      return FieldError(origin_, field, absl::StrCat("must be at least ", minimum, ", got ", *out));
    }
    return absl::OkStatus();
  }

  // Integer >= 1 or null / missing.
  absl::Status OptionalInt(const char* field, std::optional<int64_t>* out) const {
    if (!j_.contains(field) || j_.at(field).is_null()) return absl::OkStatus();
    int64_t value = 0;
    MOECAP_RETURN_IF_ERROR(Int(field, 1, &value));
    *out = value;
    return absl::OkStatus();
  }

  // Required number; `positive` demands > 0, otherwise >= 0.
  absl::Status Number(const char* field, bool positive, double* out) const {
    if (!j_.contains(field)) return FieldError(origin_, field, "missing");
    const json& v = j_.at(field);
    if (!v.is_number()) return FieldError(origin_, field, "expected a number");
    *out = v.get<double>();
    if (positive ? !(*out > 0) : !(*out >= 0)) {
      return FieldError(
          origin_, field,
          absl::StrCat(positive ? "must be positive" : "must not be negative", ", got ", *out));
    }
    return absl::OkStatus();
  }

  void StringIfPresent(const char* field, std::string* out) const {
    if (j_.contains(field) && j_.at(field).is_string()) *out = j_.at(field).get<std::string>();
  }

 private:
  const json& j_;
  absl::string_view origin_;
};

// "median_ttft_ms" -> ("ttft", "p50"); "p99_tpot_ms" -> ("tpot", "p99"); others -> false.
bool PercentileKey(absl::string_view key, std::string* metric, std::string* name) {
  for (absl::string_view m : {"ttft", "tpot"}) {
    const std::string suffix = absl::StrCat("_", m, "_ms");
    if (!absl::EndsWith(key, suffix)) continue;
    const absl::string_view prefix = key.substr(0, key.size() - suffix.size());
    if (prefix == "median") {
      *name = "p50";
    } else if (prefix.size() > 1 && prefix[0] == 'p' &&
               std::all_of(prefix.begin() + 1, prefix.end(),
                           [](char c) { return (c >= '0' && c <= '9') || c == '.'; })) {
      *name = std::string(prefix);
    } else {
      return false;
    }
    *metric = std::string(m);
    return true;
  }
  return false;
}

std::string Number(double v) { return absl::StrFormat("%.6g", v); }

}  // namespace

absl::StatusOr<VllmResult> ParseVllmResult(absl::string_view text, absl::string_view origin) {
  JsonScanner scanner(text);
  JsonType type;
  if (!scanner.PeekType(&type) || !scanner.SkipValue()) {
    return SyntaxError(origin, text, scanner.error_column(), scanner.error_what());
  }
  if (!scanner.AtEnd()) {
    return SyntaxError(origin, text, scanner.column(), "text after the JSON value");
  }
  if (type != JsonType::kObject) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": expected a JSON object (vLLM's --save-result file), found ",
                     JsonTypeName(type)));
  }
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    // The scanner accepted the syntax; nlohmann also checks UTF-8 inside strings.
    return absl::InvalidArgumentError(absl::StrCat(origin, ": invalid JSON: ", e.what()));
  }
  VllmResult r;
  const FieldReader f(j, origin);
  MOECAP_RETURN_IF_ERROR(f.Int("completed", 1, &r.completed));
  MOECAP_RETURN_IF_ERROR(f.Int("total_input_tokens", 0, &r.total_input_tokens));
  MOECAP_RETURN_IF_ERROR(f.Int("total_output_tokens", 0, &r.total_output_tokens));
  MOECAP_RETURN_IF_ERROR(f.OptionalInt("max_concurrency", &r.max_concurrency));
  MOECAP_RETURN_IF_ERROR(f.Number("duration", true, &r.duration_s));
  MOECAP_RETURN_IF_ERROR(f.Number("mean_ttft_ms", true, &r.mean_ttft_ms));
  MOECAP_RETURN_IF_ERROR(f.Number("mean_tpot_ms", false, &r.mean_tpot_ms));
  for (const auto& [key, value] : j.items()) {
    std::string metric, name;
    if (!PercentileKey(key, &metric, &name)) continue;
    if (!value.is_number()) return FieldError(origin, key, "expected a number");
    (metric == "ttft" ? r.ttft_percentiles_ms : r.tpot_percentiles_ms)[name] = value.get<double>();
  }
  f.StringIfPresent("model_id", &r.model_id);
  f.StringIfPresent("backend", &r.backend);
  f.StringIfPresent("date", &r.date);
  return r;
}

absl::StatusOr<VllmEstimate> EstimateFromVllm(const VllmResult& r, AnalysisInput base) {
  VllmEstimate e;
  e.input = std::move(base);
  AnalysisInput& in = e.input;
  const double completed = static_cast<double>(r.completed);
  if (r.max_concurrency.has_value()) {
    in.batch = std::min(*r.max_concurrency, r.completed);
    e.assumptions.push_back(
        absl::StrCat("batch B = ", in.batch, ": max_concurrency (", *r.max_concurrency,
                     in.batch < *r.max_concurrency ? ", capped at the completed requests" : "",
                     ") requests share every pass"));
  } else {
    in.batch = r.completed;
    e.assumptions.push_back(absl::StrCat("batch B = ", in.batch,
                                         ": max_concurrency is null, so all completed requests "
                                         "are taken to run at once"));
  }
  const double mean_input = static_cast<double>(r.total_input_tokens) / completed;
  const double mean_output = static_cast<double>(r.total_output_tokens) / completed;
  in.prompt_len = std::llround(mean_input);
  in.output_len = std::llround(mean_output);
  if (in.prompt_len < 1) {
    return absl::InvalidArgumentError(absl::StrCat("field 'total_input_tokens': a mean prompt of ",
                                                   Number(mean_input),
                                                   " tokens per request is below one token"));
  }
  if (in.output_len < 1) {
    return absl::InvalidArgumentError(absl::StrCat("field 'total_output_tokens': a mean output of ",
                                                   Number(mean_output),
                                                   " tokens per request is below one token"));
  }
  e.assumptions.push_back(
      absl::StrCat("prompt P = ", in.prompt_len,
                   " tokens: total_input_tokens / completed = ", Number(mean_input), ", rounded"));
  e.assumptions.push_back(absl::StrCat(
      "output O = ", in.output_len,
      " tokens: total_output_tokens / completed = ", Number(mean_output), ", rounded"));
  in.ttft_s = r.mean_ttft_ms / 1000.0;
  e.assumptions.push_back(absl::StrCat("prefill time = mean TTFT ", Number(r.mean_ttft_ms),
                                       " ms: one pass prefills the whole batch (queueing "
                                       "included, so S-MBU/S-MFU of prefill are lower bounds)"));
  in.tpot_s.reset();
  if (in.output_len > 1 && r.mean_tpot_ms > 0) {
    in.tpot_s = r.mean_tpot_ms / 1000.0;
    e.assumptions.push_back(absl::StrCat("decode step time = mean TPOT ", Number(r.mean_tpot_ms),
                                         " ms: every step serves the whole batch at the mean "
                                         "context P + O/2"));
  } else {
    e.assumptions.push_back("no decode figures: the mean output is one token or TPOT is 0");
  }
  in.prefill_activated_per_layer.reset();
  in.decode_activated_per_layer.reset();
  e.assumptions.push_back(
      "activated experts: the uniform-routing expectation A(T) = E·(1 − (1 − k/E)^T); a vLLM "
      "result carries no routing measurement");
  return e;
}

namespace {

json AtPercentiles(const std::map<std::string, double>& percentiles_ms, const PhaseAnalysis& p,
                   const AnalysisInput& in, const AnalysisResult& a) {
  json out = json::object();
  const double devices = static_cast<double>(in.devices);
  for (const auto& [name, ms] : percentiles_ms) {
    if (!(ms > 0)) continue;
    const double t = ms / 1000.0;
    out[name] = {{"time_s", t},
                 {"s_mbu", Utilization(p.counts.bytes(), t, devices, a.peak_bandwidth_bytes_s)},
                 {"s_mfu", Utilization(p.counts.flops(), t, devices, a.peak_flops)}};
  }
  return out;
}

}  // namespace

json VllmAnalysisJson(const VllmResult& r, const VllmEstimate& e, const AnalysisResult& a) {
  json j = AnalysisJson(e.input, a);
  j["mode"] = "vllm-result";
  j["estimated"] = true;
  j["assumptions"] = e.assumptions;
  json source = {
      {"completed", r.completed},
      {"total_input_tokens", r.total_input_tokens},
      {"total_output_tokens", r.total_output_tokens},
      {"max_concurrency", r.max_concurrency.has_value() ? json(*r.max_concurrency) : json(nullptr)},
      {"duration_s", r.duration_s},
      {"mean_ttft_ms", r.mean_ttft_ms},
      {"mean_tpot_ms", r.mean_tpot_ms},
      {"ttft_percentiles_ms", r.ttft_percentiles_ms},
      {"tpot_percentiles_ms", r.tpot_percentiles_ms}};
  if (!r.model_id.empty()) source["model_id"] = r.model_id;
  if (!r.backend.empty()) source["backend"] = r.backend;
  if (!r.date.empty()) source["date"] = r.date;
  j["vllm"] = source;
  j["prefill"]["at_latency_percentiles"] =
      AtPercentiles(r.ttft_percentiles_ms, a.prefill, e.input, a);
  if (a.decode.has_value()) {
    j["decode"]["at_latency_percentiles"] =
        AtPercentiles(r.tpot_percentiles_ms, *a.decode, e.input, a);
  }
  if (a.cost.has_value()) {
    const double devices = static_cast<double>(e.input.devices);
    const double hourly = a.cost->price.usd_per_device_hour;
    j["run_cost"] = {
        {"basis", "the measured duration of the whole vLLM run"},
        {"duration_s", r.duration_s},
        {"output_tokens_per_s", static_cast<double>(r.total_output_tokens) / r.duration_s},
        {"usd_per_million_output_tokens",
         UsdPerMillionTokens(hourly, devices, r.duration_s,
                             static_cast<double>(r.total_output_tokens))},
        {"usd_per_million_total_tokens",
         UsdPerMillionTokens(hourly, devices, r.duration_s,
                             static_cast<double>(r.total_input_tokens + r.total_output_tokens))}};
  }
  return j;
}

}  // namespace moecap::records
