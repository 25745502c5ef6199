// Serving-benchmark summaries: the JSON formats are syntax-checked by the records' JSON scanner
// (so errors carry a line and column) after JSON's non-standard Infinity/NaN tokens are rewritten,
// then read through nlohmann::json; the console blocks are read row by row.
#include "common/records/serving_result.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/catalog.h"
#include "common/cost.h"
#include "common/metrics.h"
#include "common/records/json_scanner.h"
#include "common/status_macros.h"
#include "common/validity.h"

namespace moecap::records {
namespace {

using nlohmann::json;

constexpr double kInf = std::numeric_limits<double>::infinity();

constexpr absl::string_view kFormatsRead =
    "moecap reads vLLM `bench serve --save-result` JSON (vllm-json), the 'Serving Benchmark "
    "Result' block vLLM or SGLang print (vllm-console, sglang-console), SGLang `bench_serving` "
    "JSON lines (sglang-json) and AIPerf's profile_export_aiperf.json (aiperf)";

std::string Number(double v) { return absl::StrFormat("%.6g", v); }

absl::Status FieldError(absl::string_view origin, absl::string_view field,
                        absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(origin, ": field '", field, "': ", problem));
}

// --- JSON's non-standard tokens ---------------------------------------------------------------

// Python's json.dumps writes float('inf') and nan as the bare tokens Infinity, -Infinity and NaN
// (FORMATS.md §0), which strict JSON readers refuse. Outside strings they are rewritten to a
// string no producer writes, so that the field still says what it held once parsed.
constexpr absl::string_view kNonFinitePrefix = "\x1fmoecap-non-finite:";

struct Rewrite {
  size_t new_at, new_len, old_at, old_len;
};

struct Sanitized {
  std::string text;
  std::vector<Rewrite> rewrites;  // in order

  // The offset in the original text of `offset` in `text`.
  size_t OriginalOffset(size_t offset) const {
    size_t shift_from_new = 0, shift_from_old = 0;
    for (const Rewrite& r : rewrites) {
      if (offset < r.new_at) break;
      if (offset < r.new_at + r.new_len) return r.old_at;
      shift_from_new = r.new_at + r.new_len;
      shift_from_old = r.old_at + r.old_len;
    }
    return shift_from_old + (offset - shift_from_new);
  }
};

Sanitized RewriteNonFiniteTokens(absl::string_view text) {
  Sanitized out;
  out.text.reserve(text.size());
  bool in_string = false;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (in_string) {
      out.text.push_back(c);
      if (c == '\\' && i + 1 < text.size()) {
        out.text.push_back(text[i + 1]);
        i += 2;
        continue;
      }
      if (c == '"') in_string = false;
      ++i;
      continue;
    }
    if (c == '"') {
      in_string = true;
      out.text.push_back(c);
      ++i;
      continue;
    }
    absl::string_view token;
    for (absl::string_view t : {"-Infinity", "Infinity", "NaN"}) {
      if (absl::StartsWith(text.substr(i), t)) {
        token = t;
        break;
      }
    }
    if (token.empty()) {
      out.text.push_back(c);
      ++i;
      continue;
    }
    const std::string replacement = absl::StrCat("\"\\u001fmoecap-non-finite:", token, "\"");
    out.rewrites.push_back({out.text.size(), replacement.size(), i, token.size()});
    out.text += replacement;
    i += token.size();
  }
  return out;
}

// The value a rewritten token stood for, or nullopt for any other JSON value.
std::optional<double> NonFinite(const json& v) {
  if (!v.is_string()) return std::nullopt;
  const std::string& s = v.get_ref<const std::string&>();
  if (!absl::StartsWith(s, kNonFinitePrefix)) return std::nullopt;
  const absl::string_view token = absl::string_view(s).substr(kNonFinitePrefix.size());
  if (token == "Infinity") return kInf;
  if (token == "-Infinity") return -kInf;
  return std::numeric_limits<double>::quiet_NaN();
}

void CollectNonFinite(const json& v, const std::string& path, int depth,
                      std::vector<std::string>* out) {
  if (depth > 4) return;
  if (const std::optional<double> d = NonFinite(v)) {
    out->push_back(
        absl::StrCat(path, ": ", std::isnan(*d) ? "NaN" : (*d > 0 ? "Infinity" : "-Infinity")));
    return;
  }
  if (!v.is_object()) return;
  for (const auto& [key, value] : v.items()) {
    CollectNonFinite(value, path.empty() ? key : absl::StrCat(path, ".", key), depth + 1, out);
  }
}

absl::Status SyntaxError(absl::string_view origin, absl::string_view original,
                         const Sanitized& sanitized, size_t column, absl::string_view what) {
  // The scanner's column counts bytes from the start of the (rewritten) text.
  const size_t offset =
      std::min(sanitized.OriginalOffset(column > 0 ? column - 1 : 0), original.size());
  size_t line = 1, line_start = 0;
  for (size_t i = 0; i < offset; ++i) {
    if (original[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(origin, ":", line, ": invalid JSON at column ",
                                                 offset - line_start + 1, ": ", what));
}

// --- reading fields ---------------------------------------------------------------------------

bool IsWholeNumber(const json& v) {
  if (v.is_number_integer()) return true;
  if (!v.is_number_float()) return false;
  const double d = v.get<double>();
  return std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9007199254740992.0;
}

int64_t AsInt(const json& v) {
  if (v.is_number_float()) return static_cast<int64_t>(v.get<double>());
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    return u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
               ? std::numeric_limits<int64_t>::max()
               : static_cast<int64_t>(u);
  }
  return v.get<int64_t>();
}

std::string NonFiniteName(double d) {
  return std::isnan(d) ? "NaN" : (d > 0 ? "Infinity" : "-Infinity");
}

// Fields of one JSON object; `prefix` names where the object sits ("input_config.loadgen.").
class FieldReader {
 public:
  FieldReader(const json& object, absl::string_view origin, std::string prefix = "")
      : j_(object), origin_(origin), prefix_(std::move(prefix)) {}

  bool Has(const char* field) const {
    return j_.is_object() && j_.contains(field) && !j_.at(field).is_null();
  }
  const json& Get(const char* field) const { return j_.at(field); }
  std::string Name(const char* field) const { return absl::StrCat(prefix_, field); }
  absl::Status Error(const char* field, absl::string_view problem) const {
    return FieldError(origin_, Name(field), problem);
  }

  // Required integer >= minimum.
  absl::Status Int(const char* field, int64_t minimum, int64_t* out) const {
    if (!j_.is_object() || !j_.contains(field)) return Error(field, "missing");
    const json& v = j_.at(field);
    if (!IsWholeNumber(v)) return Error(field, "expected an integer");
    *out = AsInt(v);
    if (*out < minimum) {
      return Error(field, absl::StrCat("must be at least ", minimum, ", got ", *out));
    }
    return absl::OkStatus();
  }

  // Integer >= minimum, or null / missing.
  absl::Status OptionalInt(const char* field, int64_t minimum, std::optional<int64_t>* out) const {
    if (!Has(field)) return absl::OkStatus();
    int64_t value = 0;
    MOECAP_RETURN_IF_ERROR(Int(field, minimum, &value));
    *out = value;
    return absl::OkStatus();
  }

  // Required finite number; `positive` demands > 0, otherwise >= 0.
  absl::Status Number(const char* field, bool positive, double* out) const {
    if (!j_.is_object() || !j_.contains(field)) return Error(field, "missing");
    return NumberValue(field, j_.at(field), positive, out);
  }

  // A finite number, or absent (missing, null, or NaN: numpy's mean of no values).
  absl::Status OptionalNumber(const char* field, bool positive, std::optional<double>* out) const {
    if (!Has(field)) return absl::OkStatus();
    if (const std::optional<double> d = NonFinite(j_.at(field)); d && std::isnan(*d)) {
      return absl::OkStatus();
    }
    double value = 0;
    MOECAP_RETURN_IF_ERROR(Number(field, positive, &value));
    *out = value;
    return absl::OkStatus();
  }

  absl::Status NumberValue(const char* field, const json& v, bool positive, double* out) const {
    if (const std::optional<double> d = NonFinite(v)) {
      return Error(field, absl::StrCat("expected a finite number, found ", NonFiniteName(*d)));
    }
    if (!v.is_number()) return Error(field, "expected a number");
    *out = v.get<double>();
    if (!std::isfinite(*out)) return Error(field, "expected a finite number");
    if (positive ? !(*out > 0) : !(*out >= 0)) {
      return Error(field, absl::StrCat(positive ? "must be positive" : "must not be negative",
                                       ", got ", moecap::records::Number(*out)));
    }
    return absl::OkStatus();
  }

  void StringIfPresent(const char* field, std::string* out) const {
    if (Has(field) && j_.at(field).is_string()) *out = j_.at(field).get<std::string>();
  }

 private:
  const json& j_;
  absl::string_view origin_;
  std::string prefix_;
};

// "median_ttft_ms" -> ("ttft", "p50"); "p99_tpot_ms" -> ("tpot", "p99"); "p99_e2el_ms" and
// SGLang's "p99_e2e_latency_ms" -> ("e2e", "p99"); others -> false.
bool PercentileKey(absl::string_view key, std::string* metric, std::string* name) {
  for (const auto& [word, m] : {std::pair{"ttft", "ttft"}, std::pair{"tpot", "tpot"},
                                std::pair{"e2el", "e2e"}, std::pair{"e2e_latency", "e2e"}}) {
    const std::string suffix = absl::StrCat("_", word, "_ms");
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
    *metric = m;
    return true;
  }
  return false;
}

std::map<std::string, double>* PercentileMap(ServingResult* r, absl::string_view metric) {
  if (metric == "ttft") return &r->ttft_percentiles_ms;
  if (metric == "tpot") return &r->tpot_percentiles_ms;
  return &r->e2e_percentiles_ms;
}

absl::Status ReadFlatPercentiles(const json& j, absl::string_view origin, ServingResult* r) {
  for (const auto& [key, value] : j.items()) {
    std::string metric, name;
    if (!PercentileKey(key, &metric, &name)) continue;
    if (const std::optional<double> d = NonFinite(value); d && std::isnan(*d)) continue;
    if (!value.is_number() || !std::isfinite(value.get<double>())) {
      return FieldError(origin, key, "expected a number");
    }
    (*PercentileMap(r, metric))[name] = value.get<double>();
  }
  return absl::OkStatus();
}

// When the file has no request_throughput it is completed / duration, as every producer
// computes it.
void ThroughputOrDerived(const FieldReader& f, ServingResult* r) {
  if (f.Has("request_throughput") && f.Get("request_throughput").is_number() &&
      f.Get("request_throughput").get<double>() > 0 &&
      std::isfinite(f.Get("request_throughput").get<double>())) {
    r->request_throughput = f.Get("request_throughput").get<double>();
    return;
  }
  r->request_throughput = static_cast<double>(r->completed) / r->duration_s;
  r->notes.push_back(
      absl::StrCat("request_throughput = completed / duration = ", Number(r->request_throughput),
                   " req/s: the file has no usable request_throughput"));
}

// The fields vLLM's and SGLang's JSON share (SGLang's bench_serving took vLLM's as its model);
// only the mean end-to-end latency is spelt differently.
absl::Status ReadSharedJsonFields(const FieldReader& f, const char* mean_e2e_key,
                                  ServingResult* r) {
  MOECAP_RETURN_IF_ERROR(f.Int("completed", 1, &r->completed));
  MOECAP_RETURN_IF_ERROR(f.Int("total_input_tokens", 0, &r->total_input_tokens));
  MOECAP_RETURN_IF_ERROR(f.Int("total_output_tokens", 0, &r->total_output_tokens));
  MOECAP_RETURN_IF_ERROR(f.OptionalInt("max_concurrency", 1, &r->max_concurrency));
  MOECAP_RETURN_IF_ERROR(f.Number("duration", true, &r->duration_s));
  MOECAP_RETURN_IF_ERROR(f.Number("mean_ttft_ms", true, &r->mean_ttft_ms));
  MOECAP_RETURN_IF_ERROR(f.Number("mean_tpot_ms", false, &r->mean_tpot_ms));
  return f.OptionalNumber(mean_e2e_key, true, &r->mean_e2e_ms);
}

absl::Status ReadPeakInFlight(const FieldReader& f, ServingResult* r) {
  if (!f.Has("max_concurrent_requests")) return absl::OkStatus();
  int64_t peak = 0;
  MOECAP_RETURN_IF_ERROR(f.Int("max_concurrent_requests", 0, &peak));
  r->max_concurrent_requests = static_cast<double>(peak);
  return absl::OkStatus();
}

absl::Status ParseVllmJson(const json& j, absl::string_view origin, ServingResult* r) {
  r->format = ServingFormat::kVllmJson;
  const FieldReader f(j, origin);
  MOECAP_RETURN_IF_ERROR(ReadSharedJsonFields(f, "mean_e2el_ms", r));
  ThroughputOrDerived(f, r);
  if (f.Has("request_rate")) {
    const json& rate = f.Get("request_rate");
    const std::optional<double> non_finite = NonFinite(rate);
    if (rate.is_string() && rate.get<std::string>() == "inf") {
      r->request_rate = kInf;  // serve.py writes float("inf") as the string "inf"
    } else if (non_finite && *non_finite > 0) {
      r->request_rate = kInf;
    } else if (rate.is_number() && rate.get<double>() > 0) {
      r->request_rate = rate.get<double>();  // 1e999 reads as inf, which is what it says
    } else {
      return f.Error("request_rate", "expected a positive number or \"inf\"");
    }
  }
  MOECAP_RETURN_IF_ERROR(ReadPeakInFlight(f, r));
  MOECAP_RETURN_IF_ERROR(ReadFlatPercentiles(j, origin, r));
  f.StringIfPresent("model_id", &r->model_id);
  f.StringIfPresent("backend", &r->backend);
  f.StringIfPresent("date", &r->date);
  return absl::OkStatus();
}

absl::Status ParseSglangJson(const json& j, absl::string_view origin, ServingResult* r) {
  r->format = ServingFormat::kSglangJson;
  const FieldReader f(j, origin);
  MOECAP_RETURN_IF_ERROR(ReadSharedJsonFields(f, "mean_e2e_latency_ms", r));
  if (!r->mean_e2e_ms.has_value() && f.Has("mean_e2e_latency_ms")) {
    r->notes.push_back(
        "mean_e2e_latency_ms is NaN (bench_serving's mean of no latencies): read "
        "as absent");
  }
  ThroughputOrDerived(f, r);
  if (f.Has("request_rate")) {
    const json& rate = f.Get("request_rate");
    const std::optional<double> non_finite = NonFinite(rate);
    if (non_finite && *non_finite > 0) {
      r->request_rate = kInf;  // the default: every request sent at once
    } else if (rate.is_string() && rate.get<std::string>() == "trace") {
      r->notes.push_back("request_rate \"trace\": the requests replayed a trace's timestamps");
    } else if (rate.is_number() && rate.get<double>() > 0) {
      r->request_rate = rate.get<double>();
    } else {
      return f.Error("request_rate", "expected a positive number, Infinity or \"trace\"");
    }
  }
  MOECAP_RETURN_IF_ERROR(ReadPeakInFlight(f, r));
  MOECAP_RETURN_IF_ERROR(ReadFlatPercentiles(j, origin, r));
  if (f.Has("server_info") && f.Get("server_info").is_object()) {
    FieldReader(f.Get("server_info"), origin, "server_info.")
        .StringIfPresent("model_path", &r->model_id);
  }
  f.StringIfPresent("backend", &r->backend);
  return absl::OkStatus();
}

// --- AIPerf -----------------------------------------------------------------------------------

// A unit's factor to milliseconds (times) or seconds (the duration), as AIPerf's MetricTimeUnit
// tags them; 0 when the tag is not a time unit.
double TimeUnitSeconds(absl::string_view unit) {
  if (unit == "ns") return 1e-9;
  if (unit == "us") return 1e-6;
  if (unit == "ms") return 1e-3;
  if (unit == "sec") return 1;
  return 0;
}

// One statistic of one AIPerf metric ({"unit": .., "avg": .., "p50": .., ...}), converted by
// `scale` from the unit to the one wanted. Absent: the metric or the statistic is missing or null.
class AiperfMetrics {
 public:
  AiperfMetrics(const json& j, absl::string_view origin) : j_(j), origin_(origin) {}

  // `want_unit` "time" (to ms), "duration" (to s), or a literal unit tag that must match.
  absl::StatusOr<std::optional<double>> Stat(const char* tag, const char* stat,
                                             absl::string_view want_unit) const {
    if (!j_.contains(tag) || j_.at(tag).is_null()) return std::optional<double>();
    const json& m = j_.at(tag);
    const std::string field = absl::StrCat(tag, ".", stat);
    if (!m.is_object()) return FieldError(origin_, tag, "expected an object {unit, avg, ...}");
    if (!m.contains("unit") || !m.at("unit").is_string()) {
      return FieldError(origin_, absl::StrCat(tag, ".unit"), "missing or not a string");
    }
    const std::string unit = m.at("unit").get<std::string>();
    double scale = 1;
    if (want_unit == "time" || want_unit == "duration") {
      const double seconds = TimeUnitSeconds(unit);
      if (seconds == 0) {
        return FieldError(origin_, absl::StrCat(tag, ".unit"),
                          absl::StrCat("expected a time unit (ns, us, ms, sec), got '", unit, "'"));
      }
      scale = want_unit == "time" ? seconds * 1e3 : seconds;
    } else if (unit != want_unit) {
      return FieldError(origin_, absl::StrCat(tag, ".unit"),
                        absl::StrCat("expected '", want_unit, "', got '", unit, "'"));
    }
    if (!m.contains(stat) || m.at(stat).is_null()) return std::optional<double>();
    const json& v = m.at(stat);
    if (const std::optional<double> d = NonFinite(v)) {
      if (std::isnan(*d)) return std::optional<double>();
      return FieldError(origin_, field,
                        absl::StrCat("expected a finite number, found ", NonFiniteName(*d)));
    }
    if (!v.is_number() || !std::isfinite(v.get<double>())) {
      return FieldError(origin_, field, "expected a finite number");
    }
    return std::optional<double>(v.get<double>() * scale);
  }

  absl::Status Required(const char* tag, absl::string_view want_unit, bool positive,
                        absl::string_view hint, double* out) const {
    MOECAP_ASSIGN_OR_RETURN(std::optional<double> v, Stat(tag, "avg", want_unit));
    if (!v.has_value()) {
      return FieldError(origin_, absl::StrCat(tag, ".avg"), absl::StrCat("missing", hint));
    }
    if (positive ? !(*v > 0) : !(*v >= 0)) {
      return FieldError(origin_, absl::StrCat(tag, ".avg"),
                        absl::StrCat(positive ? "must be positive" : "must not be negative",
                                     ", got ", Number(*v)));
    }
    *out = *v;
    return absl::OkStatus();
  }

  absl::Status Count(const char* tag, absl::string_view want_unit, int64_t minimum,
                     int64_t* out) const {
    double v = 0;
    MOECAP_RETURN_IF_ERROR(Required(tag, want_unit, false, "", &v));
    if (v != std::floor(v) || v > 9007199254740992.0) {
      return FieldError(origin_, absl::StrCat(tag, ".avg"), "expected a whole number");
    }
    *out = static_cast<int64_t>(v);
    if (*out < minimum) {
      return FieldError(origin_, absl::StrCat(tag, ".avg"),
                        absl::StrCat("must be at least ", minimum, ", got ", *out));
    }
    return absl::OkStatus();
  }

  absl::Status Percentiles(const char* tag, std::map<std::string, double>* out) const {
    for (const char* p : {"p1", "p5", "p10", "p25", "p50", "p75", "p90", "p95", "p99"}) {
      MOECAP_ASSIGN_OR_RETURN(std::optional<double> v, Stat(tag, p, "time"));
      if (v.has_value()) (*out)[p] = *v;
    }
    return absl::OkStatus();
  }

 private:
  const json& j_;
  absl::string_view origin_;
};

absl::Status ParseAiperf(const json& j, absl::string_view origin, ServingResult* r) {
  r->format = ServingFormat::kAiperf;
  const AiperfMetrics m(j, origin);
  MOECAP_RETURN_IF_ERROR(m.Count("request_count", "requests", 1, &r->completed));
  MOECAP_RETURN_IF_ERROR(m.Count("total_isl", "tokens", 0, &r->total_input_tokens));
  // total_osl counts output and reasoning tokens (OutputSequenceLengthMetric): all were decoded.
  MOECAP_RETURN_IF_ERROR(m.Count("total_osl", "tokens", 0, &r->total_output_tokens));
  MOECAP_RETURN_IF_ERROR(m.Required("benchmark_duration", "duration", true, "", &r->duration_s));
  MOECAP_RETURN_IF_ERROR(
      m.Required("request_throughput", "requests/sec", true, "", &r->request_throughput));
  constexpr absl::string_view kStreaming =
      " (AIPerf measures it only for streaming runs: profile with --streaming)";
  MOECAP_RETURN_IF_ERROR(
      m.Required("time_to_first_token", "time", true, kStreaming, &r->mean_ttft_ms));
  // AIPerf's inter_token_latency is (request_latency − TTFT) / (OSL − 1) per request: vLLM's TPOT.
  MOECAP_RETURN_IF_ERROR(
      m.Required("inter_token_latency", "time", false, kStreaming, &r->mean_tpot_ms));
  MOECAP_ASSIGN_OR_RETURN(r->mean_e2e_ms, m.Stat("request_latency", "avg", "time"));
  MOECAP_RETURN_IF_ERROR(m.Percentiles("time_to_first_token", &r->ttft_percentiles_ms));
  MOECAP_RETURN_IF_ERROR(m.Percentiles("inter_token_latency", &r->tpot_percentiles_ms));
  MOECAP_RETURN_IF_ERROR(m.Percentiles("request_latency", &r->e2e_percentiles_ms));

  if (j.contains("input_config") && j.at("input_config").is_object()) {
    const json& config = j.at("input_config");
    if (config.contains("loadgen") && config.at("loadgen").is_object()) {
      const FieldReader loadgen(config.at("loadgen"), origin, "input_config.loadgen.");
      MOECAP_RETURN_IF_ERROR(loadgen.OptionalInt("concurrency", 1, &r->max_concurrency));
      std::optional<double> rate;
      MOECAP_RETURN_IF_ERROR(loadgen.OptionalNumber("request_rate", true, &rate));
      r->request_rate = rate;
    }
    if (config.contains("endpoint") && config.at("endpoint").is_object()) {
      const json& endpoint = config.at("endpoint");
      if (endpoint.contains("model_names") && endpoint.at("model_names").is_array() &&
          !endpoint.at("model_names").empty() && endpoint.at("model_names")[0].is_string()) {
        r->model_id = endpoint.at("model_names")[0].get<std::string>();
        if (endpoint.at("model_names").size() > 1) {
          r->notes.push_back(absl::StrCat("input_config.endpoint.model_names has ",
                                          endpoint.at("model_names").size(), " models: the first, ",
                                          r->model_id, ", is checked"));
        }
      }
      FieldReader(endpoint, origin).StringIfPresent("type", &r->backend);
    }
  }
  FieldReader(j, origin).StringIfPresent("start_time", &r->date);
  if (j.contains("was_cancelled") && j.at("was_cancelled").is_boolean() &&
      j.at("was_cancelled").get<bool>()) {
    r->notes.push_back("was_cancelled is true: the run was stopped before its end");
  }
  return absl::OkStatus();
}

bool LooksLikeAiperf(const json& j) {
  if (j.contains("input_config")) return true;
  for (const char* tag : {"request_throughput", "time_to_first_token", "request_latency"}) {
    if (j.contains(tag) && j.at(tag).is_object() && j.at(tag).contains("unit")) return true;
  }
  return false;
}

bool LooksLikeSglang(const json& j) {
  for (const char* key :
       {"server_info", "mean_e2e_latency_ms", "total_output_tokens_retokenized", "dataset_name"}) {
    if (j.contains(key)) return true;
  }
  return false;
}

bool LooksLikeVllm(const json& j) {
  for (const char* key : {"completed", "mean_ttft_ms", "duration", "model_id", "endpoint_type",
                          "total_input_tokens"}) {
    if (j.contains(key)) return true;
  }
  return false;
}

absl::StatusOr<ServingResult> ParseJsonText(absl::string_view text, absl::string_view origin) {
  const Sanitized sanitized = RewriteNonFiniteTokens(text);
  // Several values: vLLM's --append-result writes "\n" between objects, SGLang appends a line
  // per run; either way the values follow each other with only whitespace between.
  JsonScanner scanner(sanitized.text);
  std::vector<std::pair<size_t, size_t>> values;  // [begin, end) in sanitized.text
  std::vector<JsonType> types;
  do {
    JsonType type;
    if (!scanner.PeekType(&type)) {
      return SyntaxError(origin, text, sanitized, scanner.error_column(), scanner.error_what());
    }
    const size_t begin = scanner.column() - 1;
    if (!scanner.SkipValue()) {
      return SyntaxError(origin, text, sanitized, scanner.error_column(), scanner.error_what());
    }
    values.emplace_back(begin, scanner.column() - 1);
    types.push_back(type);
  } while (!scanner.AtEnd());
  for (size_t i = 0; i < types.size(); ++i) {
    if (types[i] == JsonType::kObject) continue;
    return absl::InvalidArgumentError(absl::StrCat(
        origin, ": expected JSON objects (a serving benchmark's summary), found ",
        JsonTypeName(types[i]), values.size() > 1 ? absl::StrCat(" as value ", i + 1) : ""));
  }
  const auto [begin, end] = values.back();
  json j;
  try {
    j = json::parse(sanitized.text.begin() + static_cast<ptrdiff_t>(begin),
                    sanitized.text.begin() + static_cast<ptrdiff_t>(end));
  } catch (const json::exception& e) {
    // The scanner accepted the syntax; nlohmann also checks UTF-8 inside strings.
    return absl::InvalidArgumentError(absl::StrCat(origin, ": invalid JSON: ", e.what()));
  }
  ServingResult r;
  if (values.size() > 1) {
    r.notes.push_back(absl::StrCat("the file holds ", values.size(),
                                   " runs (appended results): the last is read"));
  }
  const std::string which = values.size() > 1
                                ? absl::StrCat("the last of its ", values.size(), " objects")
                                : "its object";
  if (LooksLikeAiperf(j)) {
    MOECAP_RETURN_IF_ERROR(ParseAiperf(j, origin, &r));
  } else if (LooksLikeSglang(j)) {
    MOECAP_RETURN_IF_ERROR(ParseSglangJson(j, origin, &r));
  } else if (LooksLikeVllm(j)) {
    MOECAP_RETURN_IF_ERROR(ParseVllmJson(j, origin, &r));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": ", which,
                     " is not a serving benchmark's summary (none of completed, "
                     "mean_ttft_ms, request_count, ...): ",
                     kFormatsRead));
  }
  CollectNonFinite(j, "", 0, &r.non_finite_fields);
  return r;
}

// --- console blocks ---------------------------------------------------------------------------

constexpr absl::string_view kConsoleHeader = "============ Serving Benchmark Result ============";

struct ConsoleRow {
  std::string value;
  size_t line = 0;
};

struct ConsoleBlock {
  size_t header_line = 0;  // 1-based
  size_t last_line = 0;
  bool closed = false;                     // ended by its line of '='
  std::map<std::string, ConsoleRow> rows;  // by label, the ':' kept ("Mean TTFT (ms):")
};

// A printed line as the terminal shows it: what follows the last carriage return (a progress
// bar redraws itself with \r), without trailing spaces (the {:<10} padding).
absl::string_view ShownLine(absl::string_view line) {
  line = absl::StripTrailingAsciiWhitespace(line);
  const size_t cr = line.rfind('\r');
  if (cr != absl::string_view::npos) line = line.substr(cr + 1);
  return absl::StripAsciiWhitespace(line);
}

bool AllOf(absl::string_view s, char c) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [c](char x) { return x == c; });
}

// The blocks of a log; empty when it has none.
std::vector<ConsoleBlock> FindConsoleBlocks(absl::string_view text) {
  const std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  std::vector<ConsoleBlock> blocks;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (ShownLine(lines[i]) != kConsoleHeader) continue;
    ConsoleBlock block;
    block.header_line = i + 1;
    block.last_line = i + 1;
    size_t k = i + 1;
    for (; k < lines.size(); ++k) {
      const absl::string_view line = ShownLine(lines[k]);
      if (line.size() >= 10 && AllOf(line, '=')) {
        block.closed = true;
        block.last_line = k + 1;
        break;
      }
      // A section header: its title centred in '-' ("---------------Time to First Token------").
      if (line.size() >= 10 && line.front() == '-' && line.back() == '-') {
        block.last_line = k + 1;
        continue;
      }
      const size_t colon = line.find(':');
      if (line == kConsoleHeader || colon == absl::string_view::npos) break;  // the block ended
      block.rows[std::string(line.substr(0, colon + 1))] = {
          std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))), k + 1};
      block.last_line = k + 1;
    }
    blocks.push_back(std::move(block));
    i = k > i ? k - 1 : i;
  }
  return blocks;
}

class ConsoleReader {
 public:
  ConsoleReader(const ConsoleBlock& block, absl::string_view origin) : b_(block), origin_(origin) {}

  bool Has(const std::string& label) const { return b_.rows.count(label) > 0; }
  const ConsoleRow& Row(const std::string& label) const { return b_.rows.at(label); }

  absl::Status Missing(const std::string& label) const {
    return absl::InvalidArgumentError(absl::StrCat(
        origin_, ":", b_.header_line, ": the 'Serving Benchmark Result' block (lines ",
        b_.header_line, "-", b_.last_line, ") has no row '", label, "'",
        b_.closed ? "" : " and no closing line of '=': was it cut short?",
        "; pass the whole block as the benchmark printed it, or its saved JSON result"));
  }

  absl::Status RowError(const std::string& label, absl::string_view problem) const {
    const ConsoleRow& row = Row(label);
    return absl::InvalidArgumentError(absl::StrCat(origin_, ":", row.line, ": row '", label,
                                                   "': ", problem, ", found '", row.value, "'"));
  }

  absl::Status Int(const std::string& label, int64_t minimum, int64_t* out) const {
    if (!Has(label)) return Missing(label);
    if (!absl::SimpleAtoi(Row(label).value, out)) return RowError(label, "expected an integer");
    if (*out < minimum) return RowError(label, absl::StrCat("must be at least ", minimum));
    return absl::OkStatus();
  }

  absl::Status Double(const std::string& label, bool positive, double* out) const {
    if (!Has(label)) return Missing(label);
    if (!absl::SimpleAtod(Row(label).value, out) || !std::isfinite(*out)) {
      return RowError(label, "expected a number");
    }
    if (positive ? !(*out > 0) : !(*out >= 0)) {
      return RowError(label, positive ? "must be positive" : "must not be negative");
    }
    return absl::OkStatus();
  }

  absl::Status OptionalDouble(const std::string& label, std::optional<double>* out) const {
    if (!Has(label)) return absl::OkStatus();
    double v = 0;
    MOECAP_RETURN_IF_ERROR(Double(label, false, &v));
    *out = v;
    return absl::OkStatus();
  }

 private:
  const ConsoleBlock& b_;
  absl::string_view origin_;
};

// "Median TTFT (ms):" -> ("ttft", "p50"); "P99 E2E Latency (ms):" -> ("e2e", "p99").
bool ConsolePercentile(absl::string_view label, std::string* metric, std::string* name) {
  if (!absl::ConsumeSuffix(&label, " (ms):")) return false;
  const size_t space = label.find(' ');
  if (space == absl::string_view::npos) return false;
  const absl::string_view which = label.substr(0, space);
  const absl::string_view what = label.substr(space + 1);
  if (what == "TTFT") {
    *metric = "ttft";
  } else if (what == "TPOT") {
    *metric = "tpot";
  } else if (what == "E2EL" || what == "E2E Latency") {
    *metric = "e2e";
  } else {
    return false;  // ITL: not used
  }
  if (which == "Median") {
    *name = "p50";
  } else if (which.size() > 1 && which[0] == 'P' &&
             std::all_of(which.begin() + 1, which.end(),
                         [](char c) { return (c >= '0' && c <= '9') || c == '.'; })) {
    *name = absl::StrCat("p", which.substr(1));
  } else {
    return false;  // Mean, Max
  }
  return true;
}

absl::StatusOr<ServingResult> ParseConsole(const std::vector<ConsoleBlock>& blocks,
                                           absl::string_view origin) {
  const ConsoleBlock& block = blocks.back();
  const ConsoleReader c(block, origin);
  ServingResult r;
  // SGLang's block opens with its Backend and Traffic request rate rows (FORMATS.md §9).
  const bool sglang = c.Has("Backend:") || c.Has("Traffic request rate:");
  r.format = sglang ? ServingFormat::kSglangConsole : ServingFormat::kVllmConsole;
  if (blocks.size() > 1) {
    r.notes.push_back(absl::StrCat("the text holds ", blocks.size(),
                                   " result blocks: the last, at line ", block.header_line,
                                   ", is read"));
  }
  MOECAP_RETURN_IF_ERROR(c.Int("Successful requests:", 1, &r.completed));
  MOECAP_RETURN_IF_ERROR(c.Double("Benchmark duration (s):", true, &r.duration_s));
  MOECAP_RETURN_IF_ERROR(c.Int("Total input tokens:", 0, &r.total_input_tokens));
  MOECAP_RETURN_IF_ERROR(c.Int("Total generated tokens:", 0, &r.total_output_tokens));
  MOECAP_RETURN_IF_ERROR(c.Double("Request throughput (req/s):", true, &r.request_throughput));
  MOECAP_RETURN_IF_ERROR(c.Double("Mean TTFT (ms):", true, &r.mean_ttft_ms));
  if (sglang) {
    MOECAP_RETURN_IF_ERROR(c.OptionalDouble("Mean E2E Latency (ms):", &r.mean_e2e_ms));
    if (c.Has("Mean TPOT (ms):") || !r.mean_e2e_ms.has_value()) {
      MOECAP_RETURN_IF_ERROR(c.Double("Mean TPOT (ms):", false, &r.mean_tpot_ms));
    } else {
      // Some bench_serving versions print no TPOT section; its TPOT is (E2E − TTFT)/(O − 1).
      const double mean_output =
          static_cast<double>(r.total_output_tokens) / static_cast<double>(r.completed);
      r.mean_tpot_ms = mean_output > 1
                           ? std::max(0.0, (*r.mean_e2e_ms - r.mean_ttft_ms) / (mean_output - 1))
                           : 0.0;
      r.notes.push_back(absl::StrCat("mean TPOT ", Number(r.mean_tpot_ms),
                                     " ms = (mean E2E − mean TTFT) / (Ō − 1): the block prints no "
                                     "TPOT"));
    }
    if (c.Has("Traffic request rate:")) {
      const std::string& rate = c.Row("Traffic request rate:").value;
      double v = 0;
      if (rate == "inf") {
        r.request_rate = kInf;
      } else if (absl::SimpleAtod(rate, &v) && v > 0) {
        r.request_rate = v;
      }  // "trace", "N/A": not a rate
    }
    if (c.Has("Max request concurrency:") && c.Row("Max request concurrency:").value != "not set") {
      int64_t limit = 0;
      MOECAP_RETURN_IF_ERROR(c.Int("Max request concurrency:", 1, &limit));
      r.max_concurrency = limit;
    }
    if (c.Has("Backend:")) {
      // Console text is not checked as UTF-8 as JSON is: keep the name printable for the JSON.
      for (const char ch : c.Row("Backend:").value) {
        r.backend.push_back(ch >= 0x20 && ch < 0x7f ? ch : '?');
      }
    }
  } else {
    MOECAP_RETURN_IF_ERROR(c.Double("Mean TPOT (ms):", false, &r.mean_tpot_ms));
    MOECAP_RETURN_IF_ERROR(c.OptionalDouble("Mean E2EL (ms):", &r.mean_e2e_ms));
    if (c.Has("Maximum request concurrency:")) {
      int64_t limit = 0;
      MOECAP_RETURN_IF_ERROR(c.Int("Maximum request concurrency:", 1, &limit));
      r.max_concurrency = limit;
    }
    // vLLM prints the configured rate only when it is finite.
    std::optional<double> rate;
    MOECAP_RETURN_IF_ERROR(c.OptionalDouble("Request rate configured (RPS):", &rate));
    r.request_rate = rate.has_value() ? *rate : kInf;
    MOECAP_RETURN_IF_ERROR(
        c.OptionalDouble("Peak concurrent requests:", &r.max_concurrent_requests));
  }
  for (const auto& [label, row] : block.rows) {
    std::string metric, name;
    if (!ConsolePercentile(label, &metric, &name)) continue;
    double v = 0;
    MOECAP_RETURN_IF_ERROR(c.Double(label, false, &v));
    (*PercentileMap(&r, metric))[name] = v;
  }
  if (!block.closed) {
    r.notes.push_back(absl::StrCat("the block at line ", block.header_line,
                                   " has no closing line of '=': read up to line ",
                                   block.last_line));
  }
  r.notes.push_back("the console prints two decimals: the figures carry that rounding");
  return r;
}

}  // namespace

absl::string_view ServingFormatName(ServingFormat format) {
  switch (format) {
    case ServingFormat::kVllmJson:
      return "vllm-json";
    case ServingFormat::kVllmConsole:
      return "vllm-console";
    case ServingFormat::kSglangJson:
      return "sglang-json";
    case ServingFormat::kSglangConsole:
      return "sglang-console";
    case ServingFormat::kAiperf:
      return "aiperf";
  }
  return "unknown";
}

absl::StatusOr<ServingResult> ParseServingResult(absl::string_view text, absl::string_view origin) {
  absl::string_view body = text;
  absl::ConsumePrefix(&body, "\xEF\xBB\xBF");  // a UTF-8 byte-order mark from an editor
  const absl::string_view start = absl::StripLeadingAsciiWhitespace(body);
  if (start.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": empty: ", kFormatsRead));
  }
  if (start.front() == '{' || start.front() == '[') return ParseJsonText(body, origin);
  const std::vector<ConsoleBlock> blocks = FindConsoleBlocks(body);
  if (!blocks.empty()) return ParseConsole(blocks, origin);
  return absl::InvalidArgumentError(absl::StrCat(
      origin, ": not a serving benchmark's summary: neither JSON nor a text holding the line '",
      kConsoleHeader, "'; ", kFormatsRead));
}

absl::StatusOr<ServingEstimate> EstimateServing(const ServingResult& r, AnalysisInput base) {
  ServingEstimate e;
  const double completed = static_cast<double>(r.completed);
  if (!(completed >= 1) || !(r.duration_s > 0) || !(r.request_throughput > 0)) {
    return absl::InvalidArgumentError(
        "field 'completed', 'duration' or 'request_throughput': a run needs at least one "
        "completed request over a positive duration");
  }
  const double mean_input = static_cast<double>(r.total_input_tokens) / completed;
  const double mean_output = static_cast<double>(r.total_output_tokens) / completed;
  // Past these a summary is garbage, and the step formulas' integer products would overflow.
  constexpr double kMaxTokensPerRequest = 1e8, kMaxBatch = 1e7;
  if (mean_input > kMaxTokensPerRequest || mean_output > kMaxTokensPerRequest) {
    return absl::InvalidArgumentError(
        absl::StrCat("field 'total_input_tokens' or 'total_output_tokens': a mean of ",
                     Number(std::max(mean_input, mean_output)),
                     " tokens per request is beyond any model's context (at most 1e8 are read)"));
  }
  const int64_t prompt_len = std::llround(mean_input);
  const int64_t output_len = std::llround(mean_output);
  if (prompt_len < 1) {
    return absl::InvalidArgumentError(absl::StrCat("field 'total_input_tokens': a mean prompt of ",
                                                   Number(mean_input),
                                                   " tokens per request is below one token"));
  }
  if (output_len < 1) {
    return absl::InvalidArgumentError(absl::StrCat("field 'total_output_tokens': a mean output of ",
                                                   Number(mean_output),
                                                   " tokens per request is below one token"));
  }
  std::vector<std::string> common = {
      absl::StrCat("prompt P = ", prompt_len,
                   " tokens: total_input_tokens / completed = ", Number(mean_input), ", rounded"),
      absl::StrCat("output O = ", output_len,
                   " tokens: total_output_tokens / completed = ", Number(mean_output), ", rounded"),
      "activated experts: the uniform-routing expectation A(T) = E·(1 − (1 − k/E)^T); a serving "
      "summary carries no routing measurement"};

  // Prefill: a TTFT holds queueing and the steps of other requests, so one prompt over it is
  // the least the device can have done (METRICS.md).
  e.prefill = base;
  e.prefill.batch = 1;
  e.prefill.prompt_len = prompt_len;
  e.prefill.output_len = 1;
  e.prefill.ttft_s = r.mean_ttft_ms / 1000.0;
  e.prefill.tpot_s.reset();
  e.prefill.prefill_activated_per_layer.reset();
  e.prefill.decode_activated_per_layer.reset();
  e.prefill_assumptions.push_back(absl::StrCat(
      "prefill: batch 1, one prompt of P tokens over the mean TTFT ", Number(r.mean_ttft_ms),
      " ms; a TTFT includes queueing and other requests' steps, so prefill S-MBU/S-MFU are lower "
      "bounds (no upper bound is claimed)"));

  // Decode batch: Little's law on the decode stage, or the fixed limit when the run filled it.
  DecodeBatch& b = e.batch;
  if (r.mean_e2e_ms.has_value()) {
    b.mean_e2e_ms = *r.mean_e2e_ms;
  } else {
    b.mean_e2e_ms = r.mean_ttft_ms + std::max(0.0, mean_output - 1) * r.mean_tpot_ms;
    b.e2e_derived = true;
    e.decode_assumptions.push_back(
        absl::StrCat("mean E2E ", Number(b.mean_e2e_ms), " ms = mean TTFT + (Ō − 1)·mean TPOT = ",
                     Number(r.mean_ttft_ms), " + ", Number(std::max(0.0, mean_output - 1)), " × ",
                     Number(r.mean_tpot_ms), ": the summary has no mean E2E"));
  }
  if (output_len > 1 && b.mean_e2e_ms < r.mean_ttft_ms) {
    return absl::InvalidArgumentError(
        absl::StrCat("mean E2E latency ", Number(b.mean_e2e_ms), " ms is below the mean TTFT ",
                     Number(r.mean_ttft_ms), " ms: the summary is inconsistent"));
  }
  b.littles_law = r.request_throughput * std::max(0.0, b.mean_e2e_ms - r.mean_ttft_ms) / 1000.0;
  b.concurrency = r.request_throughput * b.mean_e2e_ms / 1000.0;
  bool saturated = false;
  if (r.max_concurrency.has_value()) {
    // A limit above the requests there were is never reached.
    const int64_t limit = std::min(*r.max_concurrency, r.completed);
    const double l = static_cast<double>(limit);
    const bool by_peak = r.max_concurrent_requests.has_value() && *r.max_concurrent_requests >= l;
    const bool by_little = b.concurrency >= 0.9 * l;
    if (by_peak || by_little) {
      saturated = true;
      b.value = limit;
      b.basis = "max_concurrency";
      std::vector<std::string> evidence;
      if (by_peak) {
        evidence.push_back(absl::StrCat("peak concurrent requests ",
                                        Number(*r.max_concurrent_requests), " ≥ ", limit));
      }
      if (by_little) {
        evidence.push_back(absl::StrCat("Little's-law concurrency ", Number(b.concurrency),
                                        " = request_throughput × mean E2E is within 10% of ",
                                        limit));
      }
      b.why = absl::StrCat("decode batch B = ", limit, ": the run's max_concurrency ",
                           *r.max_concurrency,
                           limit < *r.max_concurrency ? " (capped at the completed requests)" : "",
                           " was saturated (", absl::StrJoin(evidence, "; "),
                           "), so every decode step is taken to serve ", limit, " requests");
    }
  }
  if (!saturated) {
    b.value = std::max<int64_t>(1, std::llround(std::min(b.littles_law, 1e15)));
    b.basis = "littles_law";
    b.why = absl::StrCat("decode batch B = ", b.value,
                         ": Little's law B̄_dec = request_throughput × (mean E2E − "
                         "mean TTFT) = ",
                         Number(r.request_throughput), " req/s × (", Number(b.mean_e2e_ms), " − ",
                         Number(r.mean_ttft_ms), ") ms = ", Number(b.littles_law),
                         b.littles_law < 0.5 ? ", at least one" : ", rounded",
                         r.max_concurrency.has_value()
                             ? absl::StrCat(" (max_concurrency ", *r.max_concurrency,
                                            " was not saturated: ", "Little's-law concurrency ",
                                            Number(b.concurrency), ")")
                             : "");
  }
  if (static_cast<double>(b.value) > kMaxBatch) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a decode batch of ", b.value, " requests (", b.basis,
        ") is beyond any serving run (at most 1e7 are read): check request_throughput and the "
        "latencies"));
  }
  e.decode_assumptions.insert(e.decode_assumptions.begin(), b.why);

  e.decode = std::move(base);
  e.decode.batch = b.value;
  e.decode.prompt_len = prompt_len;
  e.decode.output_len = output_len;
  e.decode.ttft_s = r.mean_ttft_ms / 1000.0;
  e.decode.tpot_s.reset();
  e.decode.prefill_activated_per_layer.reset();
  e.decode.decode_activated_per_layer.reset();
  if (output_len > 1 && r.mean_tpot_ms > 0) {
    e.decode.tpot_s = r.mean_tpot_ms / 1000.0;
    e.decode_assumptions.push_back(absl::StrCat(
        "decode step time = mean TPOT ", Number(r.mean_tpot_ms),
        " ms, every step serving the B "
        "requests at the mean context P + O/2 = ",
        Number(static_cast<double>(prompt_len) + static_cast<double>(output_len) / 2)));
    e.decode_assumptions.push_back(
        "cost: B requests of P + O tokens over TTFT + (O − 1)·TPOT; run_cost prices the run's "
        "measured duration instead");
  } else if (output_len > 1) {
    e.decode_assumptions.push_back("no decode time: the mean TPOT is 0");
  } else {
    e.decode_assumptions.push_back("no decode figures: the mean output is one token");
  }
  e.assumptions = common;
  for (const std::string& a : e.prefill_assumptions) e.assumptions.push_back(a);
  for (const std::string& a : e.decode_assumptions) e.assumptions.push_back(a);
  std::vector<std::string> prefill_all = common, decode_all = common;
  prefill_all.insert(prefill_all.end(), e.prefill_assumptions.begin(), e.prefill_assumptions.end());
  decode_all.insert(decode_all.end(), e.decode_assumptions.begin(), e.decode_assumptions.end());
  e.prefill_assumptions = std::move(prefill_all);
  e.decode_assumptions = std::move(decode_all);
  return e;
}

namespace {

std::map<std::string, LatencyPoint> AtPercentiles(const std::map<std::string, double>& ms_by_name,
                                                  const PhaseAnalysis& phase,
                                                  absl::string_view what, const AnalysisInput& in,
                                                  const AnalysisResult& a, Validity* validity) {
  std::map<std::string, LatencyPoint> out;
  const double devices = static_cast<double>(in.devices);
  for (const auto& [name, ms] : ms_by_name) {
    if (!(ms > 0)) continue;
    LatencyPoint p;
    p.time_s = ms / 1000.0;
    p.s_mbu = Utilization(phase.counts.bytes(), p.time_s, devices, a.peak_bandwidth_bytes_s);
    p.s_mfu = Utilization(phase.counts.flops(), p.time_s, devices, a.peak_flops);
    CheckUtilization(absl::StrCat(what, " S-MBU at ", name), p.s_mbu, validity);
    CheckUtilization(absl::StrCat(what, " S-MFU at ", name), p.s_mfu, validity);
    out[name] = p;
  }
  return out;
}

}  // namespace

absl::StatusOr<ServingAnalysis> AnalyzeServing(const ServingResult& r, const ServingEstimate& e) {
  ServingAnalysis s;
  MOECAP_ASSIGN_OR_RETURN(AnalysisResult prefill, Analyze(e.prefill));
  MOECAP_ASSIGN_OR_RETURN(s.analysis, Analyze(e.decode));
  s.analysis.prefill = std::move(prefill.prefill);
  PhaseAnalysis& p = s.analysis.prefill;
  for (const std::string& a : e.prefill_assumptions) p.validity.Estimate(a);
  s.prefill_at_percentiles =
      AtPercentiles(r.ttft_percentiles_ms, p, "prefill", e.prefill, s.analysis, &p.validity);
  if (s.analysis.decode.has_value()) {
    PhaseAnalysis& d = *s.analysis.decode;
    for (const std::string& a : e.decode_assumptions) d.validity.Estimate(a);
    if (d.time_s.has_value()) {
      s.decode_at_percentiles =
          AtPercentiles(r.tpot_percentiles_ms, d, "decode", e.decode, s.analysis, &d.validity);
    }
  } else {
    // No decode phase to carry them: the prefill's validity holds the batch's assumptions.
    for (const std::string& a : e.decode_assumptions) p.validity.Estimate(a);
  }
  return s;
}

nlohmann::json ServingAnalysisJson(const ServingResult& r, const ServingEstimate& e,
                                   const ServingAnalysis& s) {
  const AnalysisResult& a = s.analysis;
  json j = AnalysisJson(e.decode, a);
  j["mode"] = "serving-result";
  j["format"] = std::string(ServingFormatName(r.format));
  j["notes"] = r.notes;
  json rate = nullptr;
  if (r.request_rate.has_value()) {
    rate = std::isinf(*r.request_rate) ? json("inf") : json(*r.request_rate);
  }
  auto optional_number = [](const std::optional<double>& v) {
    return v.has_value() ? json(*v) : json(nullptr);
  };
  json source = {
      {"format", std::string(ServingFormatName(r.format))},
      {"completed", r.completed},
      {"total_input_tokens", r.total_input_tokens},
      {"total_output_tokens", r.total_output_tokens},
      {"duration_s", r.duration_s},
      {"request_throughput", r.request_throughput},
      {"request_rate", rate},
      {"max_concurrency", r.max_concurrency.has_value() ? json(*r.max_concurrency) : json(nullptr)},
      {"max_concurrent_requests", optional_number(r.max_concurrent_requests)},
      {"mean_ttft_ms", r.mean_ttft_ms},
      {"mean_tpot_ms", r.mean_tpot_ms},
      {"mean_e2e_ms", optional_number(r.mean_e2e_ms)},
      {"ttft_percentiles_ms", r.ttft_percentiles_ms},
      {"tpot_percentiles_ms", r.tpot_percentiles_ms},
      {"e2e_percentiles_ms", r.e2e_percentiles_ms},
      {"non_finite_fields", r.non_finite_fields}};
  if (!r.model_id.empty()) source["model_id"] = r.model_id;
  if (!r.backend.empty()) source["backend"] = r.backend;
  if (!r.date.empty()) source["date"] = r.date;
  j["source"] = source;

  j["prefill"]["batch"] = e.prefill.batch;
  j["prefill"]["bound"] = "lower";
  json prefill_at = json::object();
  for (const auto& [name, p] : s.prefill_at_percentiles) {
    prefill_at[name] = {
        {"time_s", p.time_s}, {"s_mbu", p.s_mbu}, {"s_mfu", p.s_mfu}, {"bound", "lower"}};
  }
  j["prefill"]["at_latency_percentiles"] = prefill_at;
  if (a.decode.has_value()) {
    const DecodeBatch& b = e.batch;
    j["decode"]["batch"] = {{"value", b.value},
                            {"basis", b.basis},
                            {"littles_law", b.littles_law},
                            {"littles_law_concurrency", b.concurrency},
                            {"mean_e2e_ms", b.mean_e2e_ms},
                            {"mean_e2e_derived", b.e2e_derived},
                            {"why", b.why}};
    json decode_at = json::object();
    for (const auto& [name, p] : s.decode_at_percentiles) {
      decode_at[name] = {{"time_s", p.time_s}, {"s_mbu", p.s_mbu}, {"s_mfu", p.s_mfu}};
    }
    j["decode"]["at_latency_percentiles"] = decode_at;
  }
  if (a.cost.has_value()) {
    const double devices = static_cast<double>(e.decode.devices);
    const double hourly = a.cost->price.usd_per_device_hour;
    j["run_cost"] = {
        {"basis", "the measured duration of the whole run"},
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

namespace {

std::string ComparableModelName(absl::string_view name) {
  name = absl::StripAsciiWhitespace(name);
  while (absl::ConsumeSuffix(&name, "/")) {
  }
  const size_t slash = name.rfind('/');
  if (slash != absl::string_view::npos) name = name.substr(slash + 1);
  return NormalizeName(name);
}

}  // namespace

bool ModelIdMatches(absl::string_view model_id, const ModelSpec& model) {
  const std::string id = ComparableModelName(model_id);
  if (id.empty()) return false;
  if (id == ComparableModelName(model.name) || id == ComparableModelName(model.display_name)) {
    return true;
  }
  return std::any_of(model.aliases.begin(), model.aliases.end(),
                     [&](const std::string& alias) { return id == ComparableModelName(alias); });
}

}  // namespace moecap::records
