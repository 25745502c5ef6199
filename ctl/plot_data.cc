// Reading plot inputs: every accepted shape becomes a list of PlotPoint.
#include "ctl/plot_data.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace moecap::ctl {
namespace {

using nlohmann::json;

std::optional<double> Number(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j.at(key).is_number()) return std::nullopt;
  return j.at(key).get<double>();
}

// `valid`/`estimated` of an output (a row, a phase, a point); absent keys leave the defaults.
void ReadValidity(const json& j, PlotPoint& p) {
  if (!j.is_object()) return;
  if (j.contains("valid") && j["valid"].is_boolean()) p.valid = j["valid"].get<bool>();
  if (j.contains("estimated") && j["estimated"].is_boolean()) {
    p.estimated = j["estimated"].get<bool>();
  }
}

template <typename T>
void AddDistinct(std::vector<T>& values, const T& value) {
  if (std::find(values.begin(), values.end(), value) == values.end()) values.push_back(value);
}

void AddRun(const json& j, PlotData& data) {
  if (j.contains("model") && j["model"].is_string())
    AddDistinct(data.models, j["model"].get<std::string>());
  if (j.contains("hardware") && j["hardware"].is_string()) {
    AddDistinct(data.hardware, j["hardware"].get<std::string>());
  }
  if (j.contains("gpus") && j["gpus"].is_number_integer()) {
    AddDistinct(data.gpus, j["gpus"].get<int64_t>());
  }
}

std::string String(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j.at(key).is_string()) return "";
  return j.at(key).get<std::string>();
}

// The run's dtype and the experts' precision of an analyze or records output: "dtype" and
// "precisions": {"experts": ...} in `j`.
void ReadPrecision(const json& j, PlotPoint& p) {
  p.dtype = String(j, "dtype");
  p.precision = j.is_object() && j.contains("precisions") ? String(j["precisions"], "experts") : "";
  if (p.precision.empty()) p.precision = p.dtype;
}

void AddPassRow(const json& row, PlotData& data) {
  AddRun(row, data);
  PlotPoint p;
  p.model = String(row, "model");
  p.phase = row["phase"].is_string() ? row["phase"].get<std::string>() : "";
  p.start_s = Number(row, "start_s");
  p.batch = Number(row, "batch");
  p.s_mbu = Number(row, "s_mbu");
  p.s_mfu = Number(row, "s_mfu");
  p.roofline_s_mbu = Number(row, "roofline_s_mbu");
  p.roofline_s_mfu = Number(row, "roofline_s_mfu");
  ReadValidity(row, p);
  // A decode pass emits one token per request: a user sees 1 / latency tokens per second, and
  // the pass's price per token is its price per output token.
  const std::optional<double> latency = Number(row, "latency_s");
  if (p.phase == "decode" && latency.has_value() && *latency > 0) {
    p.tokens_per_s_per_request = 1.0 / *latency;
    p.usd_per_million_output_tokens = Number(row, "usd_per_million_tokens");
  }
  data.points.push_back(p);
}

void AddSweep(const json& sweep, PlotData& data) {
  for (const json& point : sweep["points"]) {
    if (!point.is_object()) continue;
    json run = {{"model", sweep.value("model", json())},
                {"hardware", sweep.value("hardware", json())},
                {"gpus", sweep.value("gpus", json())}};
    for (const char* key : {"model", "hardware", "gpus"}) {
      if (point.contains(key)) run[key] = point[key];
    }
    AddRun(run, data);
    PlotPoint p;
    p.model = String(run, "model");
    // A sweep may name its dtype and its experts' precision ("dtype", "precision"), for all its
    // points or per point.
    for (const json* level : {&sweep, &point}) {
      if (const std::string d = String(*level, "dtype"); !d.empty()) p.dtype = d;
      if (const std::string e = String(*level, "precision"); !e.empty()) p.precision = e;
    }
    if (p.precision.empty()) p.precision = p.dtype;
    p.phase = point.contains("phase") && point["phase"].is_string()
                  ? point["phase"].get<std::string>()
                  : "";
    p.batch = Number(point, "batch");
    p.s_mbu = Number(point, "s_mbu");
    p.s_mfu = Number(point, "s_mfu");
    p.roofline_s_mbu = Number(point, "roofline_s_mbu");
    p.roofline_s_mfu = Number(point, "roofline_s_mfu");
    p.tokens_per_s_per_request = Number(point, "tokens_per_s_per_request");
    ReadValidity(point, p);
    const std::optional<double> tokens_per_s = Number(point, "tokens_per_s");
    if (!p.tokens_per_s_per_request.has_value() && tokens_per_s.has_value() &&
        p.batch.value_or(0) > 0) {
      p.tokens_per_s_per_request = *tokens_per_s / *p.batch;
    }
    p.usd_per_million_output_tokens = Number(point, "usd_per_million_output_tokens");
    data.points.push_back(p);
  }
}

// An `analyze` output of the step or vLLM mode: one point per phase at its batch.
void AddStepAnalysis(const json& j, PlotData& data) {
  const json& in = j["inputs"];
  AddRun(in, data);
  const std::optional<double> batch = Number(in, "batch");
  const std::optional<double> output_len = Number(in, "output_len");
  for (const char* phase : {"prefill", "decode"}) {
    if (!j.contains(phase) || !j[phase].is_object()) continue;
    const json& ph = j[phase];
    PlotPoint p;
    p.phase = phase;
    p.model = String(in, "model");
    ReadPrecision(in, p);
    p.batch = batch;
    p.s_mbu = Number(ph, "s_mbu");
    p.s_mfu = Number(ph, "s_mfu");
    ReadValidity(ph, p);
    if (ph.contains("roofline")) {
      p.roofline_s_mbu = Number(ph["roofline"], "s_mbu");
      p.roofline_s_mfu = Number(ph["roofline"], "s_mfu");
    }
    if (std::string(phase) == "decode" && j.contains("cost") && j["cost"].is_object()) {
      const std::optional<double> seconds = Number(j["cost"], "batch_seconds");
      if (seconds.has_value() && *seconds > 0 && output_len.has_value()) {
        p.tokens_per_s_per_request = *output_len / *seconds;
      }
      p.usd_per_million_output_tokens = Number(j["cost"], "usd_per_million_output_tokens");
    }
    data.points.push_back(p);
  }
}

// An `analyze --records` summary: one point per phase at its mean batch.
void AddRecordsSummary(const json& j, PlotData& data) {
  AddRun(j, data);
  for (const char* phase : {"prefill", "decode"}) {
    if (!j.contains(phase) || !j[phase].is_object()) continue;
    PlotPoint p;
    p.phase = phase;
    p.model = String(j, "model");
    ReadPrecision(j, p);
    p.batch = Number(j[phase], "mean_batch");
    p.s_mbu = Number(j[phase], "s_mbu");
    p.s_mfu = Number(j[phase], "s_mfu");
    ReadValidity(j[phase], p);
    data.points.push_back(p);
  }
}

// A phase name of the results' JSON ("PHASE_DECODE") as the other inputs spell it ("decode").
std::string PhaseOfResult(const json& phase) {
  std::string name = phase.is_string() ? phase.get<std::string>() : "";
  if (name.rfind("PHASE_", 0) == 0) name = name.substr(6);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

// A proto enum name of the plan's dtype ("DTYPE_BF16") as the other outputs spell it ("bf16");
// "" for DTYPE_UNSPECIFIED, which leaves the choice to the backend.
std::string DtypeOfPlan(const std::string& name) {
  std::string lower = name;
  if (lower.rfind("DTYPE_", 0) == 0) lower = lower.substr(6);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == "unspecified" ? "" : lower;
}

// `results JOB -o json` and `run --local -o json` (GetResultsResponse): one point per phase of
// each point result, at its batch_size parameter.
void AddJobResults(const json& j, PlotData& data) {
  // The workload generates every weight in the plan's dtype, unless a sweep's dtype axis sets the
  // point's (its "dtype" parameter).
  std::string plan_dtype;
  if (j.contains("plan") && j["plan"].is_object() && j["plan"].contains("workload")) {
    plan_dtype = DtypeOfPlan(String(j["plan"]["workload"], "dtype"));
  }
  for (const json& r : j["results"]) {
    if (!r.is_object()) continue;
    AddRun({{"model", j.value("model", json())},
            {"hardware", r.value("hardware", json())},
            {"gpus", r.value("devices", json())}},
           data);
    std::optional<double> batch;
    std::string dtype = plan_dtype;
    if (r.contains("parameters") && r["parameters"].is_array()) {
      for (const json& param : r["parameters"]) {
        double value = 0;
        if (param.value("name", "") == "batch_size" && param["value"].is_string() &&
            absl::SimpleAtod(param["value"].get<std::string>(), &value)) {
          batch = value;
        }
        if (param.value("name", "") == "dtype" && param["value"].is_string()) {
          dtype = param["value"].get<std::string>();
        }
      }
    }
    const json cost = r.value("cost", json::object());
    if (!r.contains("phases") || !r["phases"].is_array()) continue;
    for (const json& ph : r["phases"]) {
      PlotPoint p;
      p.phase = PhaseOfResult(ph.value("phase", json()));
      p.model = String(j, "model");
      p.dtype = dtype;
      p.precision = dtype;
      p.batch = batch;
      p.s_mbu = Number(ph, "s_mbu");
      p.s_mfu = Number(ph, "s_mfu");
      // The limit: the counts over the roofline time and the summed peaks of the devices used.
      const std::optional<double> roofline = Number(ph, "roofline_seconds");
      const std::optional<double> bytes = Number(ph, "bytes"), flops = Number(ph, "flops");
      const std::optional<double> bw = Number(ph, "peak_bandwidth_bytes_per_s");
      const std::optional<double> peak = Number(ph, "peak_flops_per_s");
      if (roofline.value_or(0) > 0 && bytes && flops && bw.value_or(0) > 0 &&
          peak.value_or(0) > 0) {
        p.roofline_s_mbu = *bytes / (*roofline * *bw);
        p.roofline_s_mfu = *flops / (*roofline * *peak);
      }
      // A decode step gives each request one token: 1 / the mean step time per request.
      const std::optional<double> step =
          ph.contains("step_time") ? Number(ph["step_time"], "mean") : std::nullopt;
      if (p.phase == "decode" && step.value_or(0) > 0) {
        p.tokens_per_s_per_request = 1.0 / *step;
        p.usd_per_million_output_tokens = Number(cost, "usd_per_million_output_tokens");
      }
      data.points.push_back(p);
    }
  }
}

absl::Status AddValue(const json& j, absl::string_view where, PlotData& data) {
  if (j.is_array()) {
    for (const json& element : j) {
      MOECAP_RETURN_IF_ERROR(AddValue(element, where, data));
    }
    return absl::OkStatus();
  }
  std::string kind;
  if (j.is_object() && j.contains("job_id") && j.contains("results") && j["results"].is_array()) {
    AddJobResults(j, data);
    kind = "job results";
  } else if (j.is_object() && j.contains("phase") && j.contains("start_s")) {
    AddPassRow(j, data);
    kind = "per-pass rows";
  } else if (j.is_object() && j.contains("points") && j["points"].is_array()) {
    AddSweep(j, data);
    kind = "sweep points";
  } else if (j.is_object() && j.contains("inputs") && j["inputs"].is_object()) {
    AddStepAnalysis(j, data);
    kind = "analyze outputs";
  } else if (j.is_object() && j.value("mode", "") == "records") {
    AddRecordsSummary(j, data);
    kind = "analyze outputs";
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        where,
        "not a moecap output: expected `results JOB -o json` or `run --local -o json`, per-pass "
        "rows (`analyze --records --per-pass -o json`), an `analyze -o json` output or sweep "
        "points ({\"points\": [...]})"));
  }
  if (!data.kind.empty() && data.kind != kind) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "mixes ", kind, " with ", data.kind, ": plot one kind of input"));
  }
  data.kind = kind;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PlotData> ParsePlotData(absl::string_view text, absl::string_view origin) {
  PlotData data;
  try {
    const json whole = json::parse(text.begin(), text.end());
    MOECAP_RETURN_IF_ERROR(AddValue(whole, absl::StrCat(origin, ": "), data));
  } catch (const json::parse_error&) {
    // Not one JSON value: JSON lines.
    int64_t line_number = 0;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      ++line_number;
      if (line.find_first_not_of(" \t\r") == absl::string_view::npos) continue;
      const std::string where = absl::StrCat(origin, ":", line_number, ": ");
      try {
        const json j = json::parse(line.begin(), line.end());
        MOECAP_RETURN_IF_ERROR(AddValue(j, where, data));
      } catch (const json::exception& e) {
        return absl::InvalidArgumentError(absl::StrCat(where, "invalid JSON: ", e.what()));
      }
    }
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": ", e.what()));
  }
  if (data.points.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": nothing to plot: no points"));
  }
  return data;
}

}  // namespace moecap::ctl
