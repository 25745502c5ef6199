// `moecapctl analyze --serving-result FILE`: flags -> the summary's estimate
// (common/records/serving_result.h) -> table, JSON or CSV.
#include "ctl/analyze_serving.h"

#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/records/input_file.h"
#include "common/records/serving_result.h"
#include "common/status_macros.h"
#include "ctl/analyze_records.h"
#include "ctl/format.h"

namespace moecap::ctl {
namespace {

using records::ServingResult;

absl::StatusOr<std::string> ReadSummary(const std::string& path) {
  if (path != "-") return records::ReadInputFile(path);
  std::ostringstream text;
  text << std::cin.rdbuf();
  return text.str();
}

// The summary's model against --model. A served model name ("qwen3-30b") that is neither the
// catalog name nor an alias warns rather than fails: the figures are --model's, and a user may
// have served it under any name; --strict makes it an error.
absl::Status CheckModelId(const AnalyzeOptions& o, const Catalog& catalog,
                          const ServingResult& result, const ModelSpec& model,
                          const std::string& origin, std::vector<std::string>* notes,
                          std::ostream& err) {
  if (result.model_id.empty()) {
    notes->push_back(absl::StrCat("the summary (", records::ServingFormatName(result.format),
                                  ") names no model: --model ", o.model,
                                  " is taken as the one served"));
    return absl::OkStatus();
  }
  // A config.json without _name_or_path names only its architecture: nothing to compare.
  const bool comparable =
      catalog.FindModel(o.model).ok() || model.display_name.find('/') != std::string::npos;
  if (!comparable) {
    notes->push_back(absl::StrCat("model_id '", result.model_id, "' not compared: --model ",
                                  o.model, " names no model id"));
    return absl::OkStatus();
  }
  if (records::ModelIdMatches(result.model_id, model)) return absl::OkStatus();
  const std::string names =
      model.aliases.empty() ? model.name
                            : absl::StrCat(model.name, ", ", absl::StrJoin(model.aliases, ", "));
  if (o.strict) {
    return absl::FailedPreconditionError(
        absl::StrCat("--strict: ", origin, ": model_id '", result.model_id, "' is not --model ",
                     o.model, " (", names, "); pass the --model that served the run"));
  }
  err << "moecapctl analyze: warning: " << origin << ": model_id '" << result.model_id
      << "' is not --model " << o.model << " (" << names
      << "): the figures are for --model's weights; check that it served the run\n";
  return absl::OkStatus();
}

void PrintServingTable(const ServingResult& r, const records::ServingEstimate& e,
                       const records::ServingAnalysis& s, const nlohmann::json& j,
                       const std::string& origin, const std::vector<std::string>& notes,
                       bool explain, std::ostream& out) {
  for (const std::string& note : notes) out << "note: " << note << "\n";
  out << "ESTIMATED from the serving-benchmark summary " << origin << " ("
      << records::ServingFormatName(r.format)
      << ") with the step formulas, not measured pass by pass.\n";
  out << absl::StrFormat(
      "prefill: batch 1, lower bounds; decode: batch %d (%s)\n", e.batch.value,
      e.batch.basis == "max_concurrency" ? "the saturated max_concurrency" : "Little's law");
  PrintAnalysisTable(e.decode, s.analysis, explain, out);
  for (const auto& [phase, key] : {std::pair{"prefill", "TTFT"}, std::pair{"decode", "TPOT"}}) {
    if (j[phase].is_null()) continue;
    for (const auto& [name, at] : j[phase]["at_latency_percentiles"].items()) {
      out << absl::StrFormat("%s at %s %s (%s): S-MBU %s, S-MFU %s%s\n", phase, name, key,
                             HumanSeconds(at["time_s"].get<double>()),
                             Percent(at["s_mbu"].get<double>()), Percent(at["s_mfu"].get<double>()),
                             at.contains("bound") ? " (lower bounds)" : "");
    }
  }
  if (j.contains("run_cost")) {
    const nlohmann::json& c = j["run_cost"];
    out << absl::StrFormat(
        "whole run as the benchmark measured it: %.1f output tokens/s, %s per 1M output tokens "
        "over its %s\n",
        c["output_tokens_per_s"].get<double>(),
        Usd(c["usd_per_million_output_tokens"].get<double>(), 4),
        HumanSeconds(c["duration_s"].get<double>()));
  }
}

}  // namespace

absl::Status RunServingAnalysis(const AnalyzeOptions& o, const GlobalOptions& global,
                                const CommandIo& io) {
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(o.output);
  if (!format.ok()) return format.status();
  if (o.per_pass) return UsageError("--per-pass: only with --records FILE");
  if (o.skip_bad) return UsageError("--skip-bad: only with --records FILE");
  if (o.uniform_activation) return UsageError("--uniform-activation: only with --records FILE");
  if (!o.convention.empty()) return UsageError("--convention: only with --records FILE");
  MOECAP_RETURN_IF_ERROR(
      RejectShapeFlags(o, "--serving-result", "the summary gives the batch shape and times"));
  if (o.hardware.empty()) {
    return UsageError(
        "--hardware: required with --serving-result (the summary does not name the device; "
        "`moecapctl hardware` lists them)");
  }
  if (o.gpus_flag == nullptr || o.gpus_flag->count() == 0) {
    return UsageError(
        "--gpus: required with --serving-result (the summary does not say how many devices "
        "served it: give the tensor × pipeline × data-parallel size)");
  }
  absl::StatusOr<Catalog> catalog = LoadCatalog(global);
  if (!catalog.ok()) return catalog.status();
  absl::StatusOr<AnalysisInput> common = BuildCommonInput(o, *catalog, /*need_hardware=*/true);
  if (!common.ok()) return common.status();

  const std::string origin = o.serving_result == "-" ? "stdin" : o.serving_result;
  absl::StatusOr<std::string> text = ReadSummary(o.serving_result);
  if (!text.ok()) return text.status();
  absl::StatusOr<ServingResult> result = records::ParseServingResult(*text, origin);
  if (!result.ok()) return result.status();
  std::vector<std::string> notes = result->notes;
  MOECAP_RETURN_IF_ERROR(CheckModelId(o, *catalog, *result, common->model, origin, &notes, io.err));
  absl::StatusOr<records::ServingEstimate> estimate =
      records::EstimateServing(*result, *std::move(common));
  if (!estimate.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": ", estimate.status().message()));
  }
  absl::StatusOr<records::ServingAnalysis> analysis = records::AnalyzeServing(*result, *estimate);
  if (absl::IsFailedPrecondition(analysis.status())) {
    return UsageError(analysis.status().message());  // a peak the catalog lacks: a flag gives it
  }
  if (!analysis.ok()) return analysis.status();
  nlohmann::json j = records::ServingAnalysisJson(*result, *estimate, *analysis);
  j["notes"] = notes;
  const Validity validity = AnalysisValidity(analysis->analysis);
  if (*format != OutputFormat::kTable) {
    // Table mode prints these above the table; the machine formats keep stdout clean.
    for (const std::string& note : notes) io.err << "note: " << note << "\n";
    io.err << ValidityWarnings(validity);
  }
  switch (*format) {
    case OutputFormat::kJson:
      io.out << j.dump(2) << "\n";
      break;
    case OutputFormat::kCsv:
      PrintAnalysisCsv(j,
                       {{"format", std::string(records::ServingFormatName(result->format))},
                        {"decode.batch_basis", estimate->batch.basis},
                        {"prefill.bound", "lower"},
                        {"estimated", "true"}},
                       io.out);
      break;
    case OutputFormat::kTable:
      PrintServingTable(*result, *estimate, *analysis, j, origin, notes, o.explain, io.out);
      break;
  }
  return StrictCheck(o, validity);
}

}  // namespace moecap::ctl
