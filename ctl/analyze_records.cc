// `moecapctl analyze --records FILE`: flags -> options -> the analyses of common/records/ ->
// table, JSON or CSV.
#include "ctl/analyze_records.h"

#include <cmath>
#include <iostream>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/records/input_file.h"
#include "common/records/moecap_convention.h"
#include "common/records/records_analysis.h"
#include "common/status_macros.h"
#include "ctl/accuracy_commands.h"
#include "ctl/format.h"

namespace moecap::ctl {

absl::Status RejectShapeFlags(const AnalyzeOptions& o, absl::string_view mode_flag,
                              absl::string_view why, bool allow_lengths) {
  const std::pair<const CLI::Option*, const char*> flags[] = {
      {o.batch_flag, "--batch"},
      {o.prompt_len_flag, "--prompt-len"},
      {o.output_len_flag, "--output-len"},
      {o.ttft_flag, "--ttft-s"},
      {o.tpot_flag, "--tpot-s"},
      {o.prefill_activated_flag, "--prefill-activated"},
      {o.decode_activated_flag, "--decode-activated"}};
  for (const auto& [flag, name] : flags) {
    if (allow_lengths && (flag == o.prompt_len_flag || flag == o.output_len_flag)) continue;
    if (flag != nullptr && flag->count() > 0) {
      return UsageError(absl::StrCat(name, ": not used with ", mode_flag, " (", why, ")"));
    }
  }
  return absl::OkStatus();
}

namespace {

using records::PassResult;
using records::PhaseSummary;
using records::RecordsSummary;

// A FailedPrecondition from the analyses means a flag must supply what the input lacks.
absl::Status MapAnalysisError(const absl::Status& status) {
  if (absl::IsFailedPrecondition(status)) return UsageError(status.message());
  return status;
}

std::string Cell(const nlohmann::json& j) {
  if (j.is_null()) return "";
  if (j.is_number()) return ExactNumber(j.get<double>());
  if (j.is_string()) return j.get<std::string>();
  return j.dump();
}

// The phases in the order every output lists them.
std::vector<std::pair<const char*, const std::optional<PhaseSummary>*>> Phases(
    const RecordsSummary& s) {
  return {{"prefill", &s.prefill}, {"decode", &s.decode}, {"mixed", &s.mixed}};
}

int64_t CountedPasses(const RecordsSummary& s) {
  int64_t n = 0;
  for (const auto& [name, phase] : Phases(s)) n += phase->has_value() ? (*phase)->passes : 0;
  return n;
}

std::string PhaseRowTitle(const RecordsSummary& s) {
  return absl::StrFormat("%s on %d x %s, %s: %d records, %d passes counted, %d skipped\n",
                         s.model.display_name, s.run.devices, s.run.hardware.display_name,
                         DtypeName(s.dtype), s.records, CountedPasses(s), s.skipped);
}

std::string SkippedSummary(const RecordsSummary& s) {
  std::vector<std::string> reasons;
  for (const auto& [reason, count] : s.skipped_reasons) {
    reasons.push_back(absl::StrCat(reason, ": ", count));
  }
  return absl::StrJoin(reasons, "; ");
}

void PrintRecordsTable(const RecordsSummary& s, bool explain, std::ostream& out) {
  out << ValidityWarnings(s.validity);
  for (const std::string& note : s.notes) out << "note: " << note << "\n";
  out << PhaseRowTitle(s);
  out << absl::StrFormat("device from %s, device count from %s\n", s.run.hardware_source,
                         s.run.devices_source);
  out << absl::StrFormat("peaks per device: %s/s memory, %s/s %s\n\n",
                         HumanBytes(s.run.peak_bandwidth_bytes_s), HumanFlops(s.run.peak_flops),
                         DtypeName(s.dtypes.compute));
  TextTable table({"phase", "passes", "tokens", "time", "bytes", "FLOPs", "S-MBU", "p50", "p90",
                   "p99", "S-MFU", "p50", "p90", "p99", "mean batch", "experts/layer"});
  for (const auto& [name, phase] : Phases(s)) {
    if (!phase->has_value()) continue;
    const PhaseSummary& p = **phase;
    table.AddRow({name, absl::StrCat(p.passes), Fixed(p.tokens, 0), HumanSeconds(p.time_s),
                  HumanBytes(p.counts.bytes()), HumanFlops(p.counts.flops()), Percent(p.s_mbu),
                  Percent(p.s_mbu_p50), Percent(p.s_mbu_p90), Percent(p.s_mbu_p99),
                  Percent(p.s_mfu), Percent(p.s_mfu_p50), Percent(p.s_mfu_p90),
                  Percent(p.s_mfu_p99), Fixed(p.mean_batch, 2),
                  Fixed(p.mean_activated_experts, 2)});
  }
  out << table.Render();
  out << "S-MBU and S-MFU: phase totals (sum of bytes or FLOPs over sum of time); p50/p90/p99: "
         "distribution over passes\n";
  if (s.skipped > 0) out << "skipped: " << s.skipped << " (" << SkippedSummary(s) << ")\n";
  if (s.layout.has_value()) {
    TextTable hbm({"phase", "HBM bytes (physical)", "of which replication", "HBM utilisation"});
    for (const auto& [name, phase] : Phases(s)) {
      if (!phase->has_value() || !(*phase)->hbm.has_value()) continue;
      const HbmTraffic& h = *(*phase)->hbm;
      hbm.AddRow({name, HumanBytes(h.bytes()), HumanBytes(h.replication_bytes),
                  h.utilization.has_value() ? Percent(*h.utilization) : "-"});
    }
    out << "\n" << hbm.Render() << LayoutLine(s.model, *s.layout, s.run.devices);
  }
  if (!explain) return;
  std::vector<std::pair<std::string, const Counts*>> phases;
  if (s.prefill.has_value()) phases.emplace_back("prefill", &s.prefill->counts);
  if (s.decode.has_value()) phases.emplace_back("decode", &s.decode->counts);
  if (s.mixed.has_value()) phases.emplace_back("mixed", &s.mixed->counts);
  out << "\nbreakdown (METRICS.md terms, summed over the passes; share of the phase total)\n"
      << BreakdownTable(phases);
}

void PrintRecordsCsv(const RecordsSummary& s, bool explain, std::ostream& out) {
  std::vector<std::string> header = {
      "source",    "model",     "hardware",  "gpus",       "phase",
      "passes",    "tokens",    "bytes",     "flops",      "time_s",
      "s_mbu",     "s_mfu",     "s_mbu_p50", "s_mbu_p90",  "s_mbu_p99",
      "s_mfu_p50", "s_mfu_p90", "s_mfu_p99", "mean_batch", "mean_activated_experts",
      "skipped",   "valid",     "estimated", "reasons"};
  if (explain) {
    for (Term t : kAllTerms) {
      header.push_back(absl::StrCat(TermName(t), ".bytes"));
      header.push_back(absl::StrCat(TermName(t), ".flops"));
    }
  }
  out << CsvLine(header);
  for (const auto& [name, phase] : Phases(s)) {
    if (!phase->has_value()) continue;
    const PhaseSummary& p = **phase;
    std::vector<std::string> row = {s.origin,
                                    s.model.name,
                                    s.run.hardware.name,
                                    absl::StrCat(s.run.devices),
                                    name,
                                    absl::StrCat(p.passes),
                                    ExactNumber(p.tokens),
                                    ExactNumber(p.counts.bytes()),
                                    ExactNumber(p.counts.flops()),
                                    ExactNumber(p.time_s),
                                    ExactNumber(p.s_mbu),
                                    ExactNumber(p.s_mfu),
                                    ExactNumber(p.s_mbu_p50),
                                    ExactNumber(p.s_mbu_p90),
                                    ExactNumber(p.s_mbu_p99),
                                    ExactNumber(p.s_mfu_p50),
                                    ExactNumber(p.s_mfu_p90),
                                    ExactNumber(p.s_mfu_p99),
                                    ExactNumber(p.mean_batch),
                                    ExactNumber(p.mean_activated_experts),
                                    absl::StrCat(s.skipped),
                                    p.validity.valid ? "true" : "false",
                                    p.validity.estimated ? "true" : "false",
                                    absl::StrJoin(p.validity.reasons, "; ")};
    if (explain) {
      for (Term t : kAllTerms) {
        row.push_back(ExactNumber(p.counts[t].bytes));
        row.push_back(ExactNumber(p.counts[t].flops));
      }
    }
    out << CsvLine(row);
  }
}

// Warnings about skipped records go to stderr, so that stdout stays machine-readable.
void WarnSkipped(const RecordsSummary& s, std::ostream& err) {
  if (s.skipped == 0) return;
  err << "moecapctl analyze: warning: skipped " << s.skipped << " of " << s.records << " records ("
      << SkippedSummary(s) << ")\n";
  for (const records::SkippedLine& line : s.first_skipped) {
    err << "  " << s.origin << ":" << line.line << ": " << line.message << "\n";
  }
  if (static_cast<size_t>(s.skipped) > s.first_skipped.size()) {
    err << "  ... and " << s.skipped - static_cast<int64_t>(s.first_skipped.size()) << " more\n";
  }
}

// --convention moecap: the records read again as MoE-CAP reads them, and the comparison.
absl::StatusOr<nlohmann::json> CompareWithMoecap(const AnalyzeOptions& o,
                                                 const records::RecordsOptions& options,
                                                 const RecordsSummary& summary,
                                                 std::istringstream& stdin_copy) {
  records::MoecapOptions m;
  m.origin = options.origin;
  m.model = options.model;
  m.dtype = options.dtype;
  m.precision = options.precision;
  m.counting = options.counting;
  m.hardware = options.hardware;
  m.devices = options.devices;
  m.skip_bad = options.skip_bad;
  absl::StatusOr<records::MoecapFigures> theirs;
  if (o.records == "-") {
    stdin_copy.clear();
    stdin_copy.seekg(0);
    theirs = records::MoecapFromRecords(stdin_copy, m, summary.run);
  } else {
    absl::StatusOr<records::InputFile> again = records::OpenInputFile(o.records);
    if (!again.ok()) return again.status();
    theirs = records::MoecapFromRecords(*again->stream, m, summary.run);
  }
  if (!theirs.ok()) return theirs.status();
  return records::MoecapComparisonJson(*theirs, summary);
}

// A change of a utilisation in percentage points ("+2.9 pt"); under 0.05 pt it is "0.0 pt".
std::string SignedPoints(double fraction) {
  if (std::fabs(fraction) < 5e-4) return "0.0 pt";
  return absl::StrFormat("%+.1f pt", fraction * 100);
}

std::string ShareCell(const nlohmann::json& share) {
  if (share.is_null()) return "-";
  const double v = share.get<double>();
  return Percent(std::fabs(v) < 5e-4 ? 0.0 : v);
}

// The comparison as a table: both figures per phase, then each difference's share of the gap.
void PrintMoecapComparison(const nlohmann::json& c, std::ostream& out) {
  out << "\nMoE-CAP's own figures from the same records (--convention moecap: "
      << c["reference"].get<std::string>() << ")\n";
  out << absl::StrFormat(
      "its inputs: %s x%d (%s), %s at %g bytes/parameter, its '%s' formulas (picked from "
      "'%s'), prefill %s\n",
      c["gpu"].get<std::string>().empty() ? "(no GPU)" : c["gpu"].get<std::string>(),
      c["gpus"].get<int64_t>(), c["gpu_source"].get<std::string>(),
      c["used_dtype"].get<std::string>(), c["bytes_per_parameter"].get<double>(),
      c["formulas"].get<std::string>(), c["model_id"].get<std::string>(),
      c["per_request_prefill"].get<bool>() ? "per request (its per_req_info path)" : "per record");
  for (const auto& a : c["assumptions"]) out << "assumed: " << a.get<std::string>() << "\n";
  TextTable figures({"phase", "points", "moecap S-MBU", "MoE-CAP S-MBU", "gap", "moecap S-MFU",
                     "MoE-CAP S-MFU", "gap"});
  for (const char* phase : {"prefill", "decode"}) {
    const nlohmann::json& p = c[phase];
    if (p.is_null()) continue;
    const bool both = p.contains("moecap");
    figures.AddRow({phase, absl::StrCat(p["moe_cap"]["points"].get<int64_t>()),
                    both ? Percent(p["moecap"]["s_mbu"].get<double>()) : "-",
                    Percent(p["moe_cap"]["s_mbu"].get<double>()),
                    both ? SignedPoints(p["gap"]["s_mbu"].get<double>()) : "-",
                    both ? Percent(p["moecap"]["s_mfu"].get<double>()) : "-",
                    Percent(p["moe_cap"]["s_mfu"].get<double>()),
                    both ? SignedPoints(p["gap"]["s_mfu"].get<double>()) : "-"});
  }
  if (c["prefill"].is_null() && c["decode"].is_null()) {
    out << "MoE-CAP gives no S-MBU/S-MFU for these records (see the notes)\n";
  } else {
    out << figures.Render();
  }
  for (const char* phase : {"prefill", "decode"}) {
    const nlohmann::json& p = c[phase];
    if (p.is_null() || !p.contains("shares_of_gap")) continue;
    TextTable shares({absl::StrCat(phase, ": one difference counted moecap's way"), "S-MBU",
                      "share", "S-MFU", "share"});
    for (const auto& s : p["shares_of_gap"]) {
      shares.AddRow({s["difference"].get<std::string>(),
                     SignedPoints(s["s_mbu_change"].get<double>()), ShareCell(s["s_mbu"]),
                     SignedPoints(s["s_mfu_change"].get<double>()), ShareCell(s["s_mfu"])});
    }
    out << "\n" << shares.Render();
  }
  out << "each row: how MoE-CAP's figure moves when that one difference alone is counted "
         "moecap's way, and its share of the gap (moecap − MoE-CAP; none under 0.1 pt); the rest "
         "is what the single changes leave\n";
  const nlohmann::json& cost = c["cost"];
  if (cost["usd"].is_null()) {
    out << "MoE-CAP cost: none\n";
  } else {
    out << "MoE-CAP cost: " << Usd(cost["usd"].get<double>()) << " ("
        << cost["basis"].get<std::string>() << ")\n";
  }
  for (const auto& n : c["notes"]) out << "note: " << n.get<std::string>() << "\n";
}

}  // namespace

absl::Status RunRecordsAnalysis(const AnalyzeOptions& o, const GlobalOptions& global,
                                const CommandIo& io) {
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(o.output);
  if (!format.ok()) return format.status();
  if (o.per_pass && *format == OutputFormat::kTable) {
    return UsageError("--per-pass: writes CSV or JSON lines: add -o csv or -o json");
  }
  if (!o.convention.empty() && (o.per_pass || *format == OutputFormat::kCsv)) {
    return UsageError(
        "--convention: prints a comparison of phase figures: use the table or -o json, without "
        "--per-pass");
  }
  MOECAP_RETURN_IF_ERROR(RejectShapeFlags(o, "--records", "each record gives its pass's shape",
                                          /*allow_lengths=*/true));
  const bool prompt_given = o.prompt_len_flag != nullptr && o.prompt_len_flag->count() > 0;
  const bool output_given = o.output_len_flag != nullptr && o.output_len_flag->count() > 0;
  if (prompt_given != output_given) {
    return UsageError(
        "--prompt-len, --output-len: give both with --records (they rebuild the decode context "
        "P + O/2 where a recorder wrote the scheduled-token count)");
  }
  absl::StatusOr<Catalog> catalog = LoadCatalog(global);
  if (!catalog.ok()) return catalog.status();
  absl::StatusOr<AnalysisInput> common = BuildCommonInput(o, *catalog, /*need_hardware=*/false);
  if (!common.ok()) return common.status();

  records::RecordsOptions options;
  options.origin = o.records == "-" ? "stdin" : o.records;
  options.model = common->model;
  options.dtype = common->dtype;
  options.precision = common->precision;
  if (!o.hardware.empty()) options.hardware = common->hardware;
  options.catalog = &*catalog;
  if (o.gpus_flag != nullptr && o.gpus_flag->count() > 0) options.devices = o.gpus;
  options.peak_bandwidth_bytes_s = common->peak_bandwidth_bytes_s;
  options.peak_flops = common->peak_flops;
  options.price = common->price;
  options.skip_bad = o.skip_bad;
  if (prompt_given) {
    options.counting.prompt_len = static_cast<double>(o.prompt_len);
    options.counting.output_len = static_cast<double>(o.output_len);
  }
  options.counting.uniform_when_unrecorded = o.uniform_activation;
  options.layout = common->layout;

  records::InputFile file;
  if (o.records != "-") {
    absl::StatusOr<records::InputFile> opened = records::OpenInputFile(o.records);
    if (!opened.ok()) return opened.status();
    file = *std::move(opened);
  }
  // MoE-CAP's figures need a second read: stdin is kept in memory for it.
  std::istringstream stdin_copy;
  if (o.records == "-" && !o.convention.empty()) {
    std::ostringstream all;
    all << std::cin.rdbuf();
    stdin_copy.str(std::move(all).str());
  }
  std::istream& in = o.records != "-"       ? *file.stream
                     : o.convention.empty() ? static_cast<std::istream&>(std::cin)
                                            : stdin_copy;

  records::PassCallback on_pass;
  bool header_written = false;
  if (o.per_pass) {
    on_pass = [&](const PassResult& pass, const RecordsSummary& summary) {
      const nlohmann::json row = records::PassJson(pass, summary);
      if (*format == OutputFormat::kJson) {
        io.out << row.dump() << "\n";
        return;
      }
      if (!header_written) {
        io.out << CsvLine(records::PassJsonKeys());
        header_written = true;
      }
      std::vector<std::string> cells;
      for (const std::string& key : records::PassJsonKeys()) cells.push_back(Cell(row[key]));
      io.out << CsvLine(cells);
    };
  }
  absl::StatusOr<RecordsSummary> summary = records::AnalyzeRecords(in, options, on_pass);
  if (!summary.ok()) return MapAnalysisError(summary.status());
  std::optional<nlohmann::json> convention;
  if (!o.convention.empty()) {
    absl::StatusOr<nlohmann::json> compared = CompareWithMoecap(o, options, *summary, stdin_copy);
    if (!compared.ok()) return compared.status();
    convention = *std::move(compared);
  }
  WarnSkipped(*summary, io.err);
  if (*format != OutputFormat::kTable || o.per_pass) {
    // Table mode prints these above the table; the machine formats keep stdout clean.
    io.err << ValidityWarnings(summary->validity);
    for (const std::string& note : summary->notes) io.err << "note: " << note << "\n";
  }
  if (o.per_pass) return StrictCheck(o, summary->validity);
  // The A of CAP beside the C and P: the scores of this model at its experts' precision.
  MOECAP_ASSIGN_OR_RETURN(
      const RunAccuracy accuracy,
      AccuracyOfRun(global, summary->model, summary->dtypes.experts, summary->dtype));
  switch (*format) {
    case OutputFormat::kJson: {
      nlohmann::json j = records::RecordsJson(*summary);
      if (convention.has_value()) j["moecap_convention"] = *convention;
      j["accuracy"] = AccuracyJson(accuracy);
      io.out << j.dump(2) << "\n";
      break;
    }
    case OutputFormat::kCsv:
      PrintRecordsCsv(*summary, o.explain, io.out);
      break;
    case OutputFormat::kTable:
      PrintRecordsTable(*summary, o.explain, io.out);
      if (convention.has_value()) PrintMoecapComparison(*convention, io.out);
      io.out << AccuracyLines(accuracy);
      break;
  }
  return StrictCheck(o, summary->validity);
}

}  // namespace moecap::ctl
