// Results rendering.
#include "ctl/results_view.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/aggregate/aggregator.h"
#include "common/metrics.h"
#include "common/plan/convert.h"
#include "common/plan/plan.h"
#include "common/status_macros.h"
#include "ctl/analyze_command.h"
#include "ctl/format.h"

namespace moecap::ctl {
namespace {

// "JOB_STATE_SUCCEEDED" -> "succeeded" given the prefix "JOB_STATE_".
std::string EnumSuffix(const std::string& full, absl::string_view prefix) {
  std::string name = full;
  if (absl::StartsWith(name, prefix)) name = name.substr(prefix.size());
  return absl::AsciiStrToLower(name);
}

std::string Parameters(const v1::PointResult& point) {
  std::vector<std::string> parts;
  for (const v1::PointParameter& p : point.parameters()) {
    parts.push_back(absl::StrCat(p.name(), "=", p.value()));
  }
  return absl::StrJoin(parts, " ");
}

std::string CheckText(const v1::CheckResult& check) {
  if (!check.checked()) return "-";
  return check.passed() ? "ok" : "FAILED";
}

struct Row {
  std::vector<std::string> table;
  std::vector<std::string> csv;
};

const std::vector<std::string>& CsvHeader() {
  static const auto* header = new std::vector<std::string>{"point",
                                                           "parameters",
                                                           "phase",
                                                           "devices",
                                                           "step_p50_s",
                                                           "step_p90_s",
                                                           "step_p99_s",
                                                           "step_max_s",
                                                           "tokens_per_s",
                                                           "bytes_per_step",
                                                           "flops_per_step",
                                                           "achieved_bytes_per_s",
                                                           "achieved_flops_per_s",
                                                           "s_mbu",
                                                           "s_mfu",
                                                           "dense_mbu",
                                                           "dense_mfu",
                                                           "imbalance",
                                                           "check",
                                                           "usd_per_million_output_tokens",
                                                           "joules_per_token",
                                                           "power_watts",
                                                           "energy",
                                                           "attention_mean_s",
                                                           "moe_mean_s"};
  return *header;
}

Row MakeRow(const v1::PointResult& point, const v1::PhaseResult& phase) {
  const v1::Percentiles& t = phase.step_time();
  const v1::PhaseTimes& sub = phase.sub_times();
  const std::string cost = point.has_cost() && point.cost().usd_per_million_output_tokens() > 0
                               ? Usd(point.cost().usd_per_million_output_tokens(), 4)
                               : "-";
  Row row;
  row.table = {absl::StrCat(point.point_index()),
               Parameters(point),
               PhaseName(phase.phase()),
               HumanSeconds(t.p50()),
               HumanSeconds(t.p99()),
               sub.has_attention() ? HumanSeconds(sub.attention().mean()) : "-",
               HumanSeconds(MoeMeanSeconds(sub)),
               Fixed(phase.tokens_per_s(), 1),
               absl::StrCat(HumanBytes(phase.achieved_bandwidth_bytes_per_s()), "/s"),
               absl::StrCat(HumanFlops(phase.achieved_flops_per_s()), "/s"),
               Percent(phase.s_mbu()),
               Percent(phase.s_mfu()),
               Fixed(phase.imbalance(), 2),
               CheckText(point.check()),
               cost,
               phase.has_energy_joules_per_step() ? Fixed(phase.joules_per_token(), 3) : "-"};
  row.csv = {absl::StrCat(point.point_index()),
             Parameters(point),
             PhaseName(phase.phase()),
             absl::StrCat(point.devices()),
             ExactNumber(t.p50()),
             ExactNumber(t.p90()),
             ExactNumber(t.p99()),
             ExactNumber(t.max()),
             ExactNumber(phase.tokens_per_s()),
             ExactNumber(phase.bytes()),
             ExactNumber(phase.flops()),
             ExactNumber(phase.achieved_bandwidth_bytes_per_s()),
             ExactNumber(phase.achieved_flops_per_s()),
             ExactNumber(phase.s_mbu()),
             ExactNumber(phase.s_mfu()),
             ExactNumber(phase.dense_mbu()),
             ExactNumber(phase.dense_mfu()),
             ExactNumber(phase.imbalance()),
             CheckText(point.check()),
             point.has_cost() ? ExactNumber(point.cost().usd_per_million_output_tokens()) : "",
             phase.has_energy_joules_per_step() ? ExactNumber(phase.joules_per_token()) : "",
             phase.has_energy_joules_per_step() ? ExactNumber(phase.mean_power_watts()) : "",
             phase.has_energy_joules_per_step()
                 ? phase.energy_source()
                 : absl::StrCat("not measured: ", phase.energy_unavailable()),
             ExactNumber(sub.attention().mean()),
             ExactNumber(MoeMeanSeconds(sub))};
  return row;
}

// Where the J/token column comes from, or why it is empty (then an amortised price's energy is
// the TDP's, an estimate): once per distinct source or reason.
void PrintEnergyNote(const v1::GetResultsResponse& results, std::ostream& out) {
  std::vector<std::string> lines;
  for (const v1::PointResult& point : results.results()) {
    for (const v1::PhaseResult& phase : point.phases()) {
      const std::string line =
          phase.has_energy_joules_per_step()
              ? absl::StrCat("energy measured: ", phase.energy_source())
              : absl::StrCat("energy not measured (", phase.energy_unavailable(),
                             "): an amortised price's energy part is estimated from TDP");
      if (std::find(lines.begin(), lines.end(), line) == lines.end()) lines.push_back(line);
    }
  }
  for (const std::string& line : lines) out << line << "\n";
}

// Each point's terms in analyze --explain's table (BreakdownTable), one column group per phase, so
// that a cluster result and `moecapctl analyze` of the same shape read term by term alike.
void PrintBreakdown(const v1::GetResultsResponse& results, std::ostream& out) {
  for (const v1::PointResult& point : results.results()) {
    std::vector<Counts> counts;
    counts.reserve(static_cast<size_t>(point.phases_size()));
    for (const v1::PhaseResult& phase : point.phases()) {
      counts.push_back(TermCountsFromProto(phase.breakdown()));
    }
    std::vector<std::pair<std::string, const Counts*>> phases;
    for (int i = 0; i < point.phases_size(); ++i) {
      phases.emplace_back(PhaseName(point.phases(i).phase()), &counts[static_cast<size_t>(i)]);
    }
    out << "\npoint " << point.point_index()
        << ": breakdown per step (METRICS.md terms; share of the phase total)\n"
        << BreakdownTable(phases);
  }
}

}  // namespace

std::string JobStateName(v1::JobState state) {
  return EnumSuffix(v1::JobState_Name(state), "JOB_STATE_");
}
std::string PhaseName(v1::Phase phase) { return EnumSuffix(v1::Phase_Name(phase), "PHASE_"); }
std::string AgentStateName(v1::AgentState state) {
  return EnumSuffix(v1::AgentState_Name(state), "AGENT_STATE_");
}

absl::StatusOr<std::vector<Dtype>> ResultPrecisions(const v1::GetResultsResponse& results) {
  std::vector<Dtype> precisions;
  if (results.results().empty()) return precisions;
  absl::StatusOr<std::vector<v1::PlanPoint>> points = ExpandSweeps(results.plan());
  if (!points.ok()) {
    return absl::InternalError(
        absl::StrCat("job ", results.job_id(),
                     ": its plan does not expand into its points: ", points.status().message()));
  }
  std::map<int32_t, v1::Dtype> dtype_of;
  for (const v1::PlanPoint& p : *points) dtype_of[p.index()] = p.workload().dtype();
  for (const v1::PointResult& r : results.results()) {
    auto it = dtype_of.find(r.point_index());
    const std::optional<Dtype> dtype =
        it == dtype_of.end() ? std::nullopt : DtypeFromProto(it->second);
    if (!dtype.has_value()) {
      return absl::InternalError(absl::StrCat("job ", results.job_id(), ": point ", r.point_index(),
                                              " has a result but no dtype in the job's plan"));
    }
    precisions.push_back(*dtype);
  }
  return precisions;
}

absl::StatusOr<std::vector<RunAccuracy>> AccuracyOfResults(const GlobalOptions& global,
                                                           const v1::GetResultsResponse& results) {
  MOECAP_ASSIGN_OR_RETURN(const std::vector<Dtype> precisions, ResultPrecisions(results));
  std::vector<RunAccuracy> out;
  if (precisions.empty()) return out;
  MOECAP_ASSIGN_OR_RETURN(const Catalog catalog, LoadCatalog(global));
  // The model as the plan named it (an inline model_override too), with its aliases; by the
  // results' catalog id alone when the catalog no longer has it.
  absl::StatusOr<ModelSpec> model = ResolvePlanModel(results.plan(), catalog);
  if (!model.ok()) {
    model = ModelSpec();
    model->name = results.model();
  }
  std::vector<Dtype> looked_up;
  for (Dtype precision : precisions) {
    if (std::find(looked_up.begin(), looked_up.end(), precision) != looked_up.end()) continue;
    looked_up.push_back(precision);
    // The benchmark generates every weight in the workload's dtype: the experts' precision too.
    MOECAP_ASSIGN_OR_RETURN(RunAccuracy accuracy,
                            AccuracyOfRun(global, *model, precision, precision));
    out.push_back(std::move(accuracy));
  }
  return out;
}

absl::Status PrintResults(const v1::GetResultsResponse& results,
                          const std::vector<RunAccuracy>& accuracy, OutputFormat format,
                          bool explain, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    absl::StatusOr<std::string> text = ProtoToJson(results);
    if (!text.ok()) return text.status();
    // Parsed in the order the proto printed it, so that "accuracy" only adds a key at the end.
    nlohmann::ordered_json json = nlohmann::ordered_json::parse(*text, nullptr, false);
    if (json.is_discarded() || !json.is_object()) {
      return absl::InternalError("cannot render JSON: the results' JSON does not parse back");
    }
    nlohmann::json scores = nullptr;
    for (const RunAccuracy& a : accuracy) {
      const nlohmann::json found = AccuracyJson(a);
      if (found.is_null()) continue;
      if (scores.is_null()) scores = nlohmann::json::array();
      for (const nlohmann::json& s : found) scores.push_back(s);
    }
    json["accuracy"] = scores;
    out << json.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
    return absl::OkStatus();
  }
  if (format == OutputFormat::kCsv) {
    out << CsvLine(CsvHeader());
    for (const v1::PointResult& point : results.results()) {
      for (const v1::PhaseResult& phase : point.phases()) out << CsvLine(MakeRow(point, phase).csv);
    }
    return absl::OkStatus();
  }
  std::string hardware = "";
  int devices = 0;
  if (!results.results().empty()) {
    hardware = results.results(0).hardware();
    devices = results.results(0).devices();
  }
  out << "job " << results.job_id() << " (" << results.job_name() << "): " << results.model()
      << " on " << devices << " x " << (hardware.empty() ? "?" : hardware) << ", "
      << JobStateName(results.state()) << "\n";
  TextTable table({"point", "parameters", "phase", "step p50", "step p99", "attention", "moe",
                   "tokens/s", "bandwidth", "compute", "S-MBU", "S-MFU", "imbalance", "check",
                   "$/1M out", "J/token"});
  for (const v1::PointResult& point : results.results()) {
    for (const v1::PhaseResult& phase : point.phases()) table.AddRow(MakeRow(point, phase).table);
  }
  out << table.Render();
  if (results.results().empty()) out << "(no point has a result yet)\n";
  PrintEnergyNote(results, out);
  for (const RunAccuracy& a : accuracy) out << AccuracyLines(a);
  if (explain) PrintBreakdown(results, out);
  return absl::OkStatus();
}

absl::Status PrintJobResults(const GlobalOptions& global, const v1::GetResultsResponse& results,
                             OutputFormat format, bool explain, std::ostream& out) {
  absl::StatusOr<std::vector<RunAccuracy>> accuracy = AccuracyOfResults(global, results);
  MOECAP_RETURN_IF_ERROR(PrintResults(
      results, accuracy.ok() ? *accuracy : std::vector<RunAccuracy>{}, format, explain, out));
  return accuracy.status();
}

}  // namespace moecap::ctl
