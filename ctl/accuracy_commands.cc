// `moecapctl accuracy`: import and list; the analyze view of the store.
#include "ctl/accuracy_commands.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/accuracy_readers.h"
#include "common/catalog.h"
#include "common/status_macros.h"
#include "ctl/format.h"

namespace moecap::ctl {
namespace {

nlohmann::json ScoreJson(const AccuracyScore& s, absl::string_view precision) {
  nlohmann::json j;
  j["task"] = s.task;
  j["metric"] = s.metric;
  if (!s.filter.empty()) j["filter"] = s.filter;
  j["value"] = s.value;
  if (s.std_error.has_value()) j["stderr"] = *s.std_error;
  if (s.samples.has_value()) j["n"] = *s.samples;
  if (s.higher_is_better.has_value()) j["higher_is_better"] = *s.higher_is_better;
  if (!s.group.empty()) j["group"] = s.group;
  j["precision"] = std::string(precision);
  j["source"] = s.source;
  j["source_file"] = s.source_file;
  if (!s.date.empty()) j["date"] = s.date;
  return j;
}

// Whether the entry's model is in the catalog, that is whether an analysis can find it.
bool InCatalog(const Catalog& catalog, const AccuracyEntry& e) {
  return catalog.FindModel(e.model).ok();
}

// "gsm8k, mmlu_pro (+14 subtasks)": the entry's top-level tasks, each once.
std::string TaskSummary(const AccuracyEntry& e) {
  std::vector<std::string> tasks;
  std::set<std::string> subtasks;
  for (const AccuracyScore& s : e.scores) {
    if (!s.group.empty()) {
      subtasks.insert(s.task);
    } else if (std::find(tasks.begin(), tasks.end(), s.task) == tasks.end()) {
      tasks.push_back(s.task);
    }
  }
  std::string out = absl::StrJoin(tasks, ", ");
  if (!subtasks.empty()) absl::StrAppend(&out, " (+", subtasks.size(), " subtasks)");
  return out;
}

absl::Status RunImport(const AccuracyOptions& o, const GlobalOptions& global, const CommandIo& io) {
  AccuracyOverrides overrides;
  overrides.model = o.model;
  overrides.task = o.task;
  if (!o.precision.empty()) {
    absl::StatusOr<Dtype> precision = ParseDtype(o.precision);
    if (!precision.ok()) return AsUsageError("--precision", precision.status());
    overrides.precision = *precision;
  }
  std::vector<std::string> notes;
  MOECAP_ASSIGN_OR_RETURN(AccuracyEntry entry, ReadAccuracyFile(o.file, overrides, &notes));
  MOECAP_ASSIGN_OR_RETURN(const Catalog catalog, LoadCatalog(global));
  const std::string named = entry.model;
  if (!ResolveAccuracyModel(catalog, &entry)) {
    notes.push_back(absl::StrCat(
        "model '", named,
        "' is not in the catalog: the entry is kept under that name (`moecapctl accuracy list` "
        "marks it); add a model entry or an alias for it (docs/catalog.md), or pass --model"));
  }
  for (const std::string& note : notes) io.err << "moecapctl accuracy: note: " << note << "\n";
  if (o.write_dir.empty()) {
    io.out << AccuracyEntryJson(entry).dump(2) << "\n";
    return absl::OkStatus();
  }
  MOECAP_ASSIGN_OR_RETURN(const AccuracyWrite written, WriteAccuracyEntry(o.write_dir, entry));
  io.out << "wrote " << written.path << ": " << entry.model << " at " << DtypeName(entry.precision)
         << ", " << entry.scores.size() << " score(s) from " << o.file
         << (written.merged ? " (merged with the scores already there)" : "") << "\n";
  for (const std::string& line : written.replaced) io.out << "  replaced " << line << "\n";
  return absl::OkStatus();
}

absl::Status RunList(const AccuracyOptions& o, const GlobalOptions& global, const CommandIo& io) {
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(o.output);
  if (!format.ok()) return format.status();
  MOECAP_ASSIGN_OR_RETURN(const Catalog catalog, LoadCatalog(global));
  MOECAP_ASSIGN_OR_RETURN(const std::vector<AccuracyEntry> entries, LoadAccuracyEntries(global));
  if (*format == OutputFormat::kJson) {
    nlohmann::json list = nlohmann::json::array();
    for (const AccuracyEntry& e : entries) {
      nlohmann::json scores = nlohmann::json::array();
      for (const AccuracyScore& s : e.scores)
        scores.push_back(ScoreJson(s, DtypeName(e.precision)));
      list.push_back({{"model", e.model},
                      {"source_model", e.source_model},
                      {"precision", std::string(DtypeName(e.precision))},
                      {"in_catalog", InCatalog(catalog, e)},
                      {"file", e.origin},
                      {"scores", scores}});
    }
    io.out << list.dump(2) << "\n";
    return absl::OkStatus();
  }
  if (*format == OutputFormat::kCsv) {
    io.out << CsvLine({"model", "precision", "in_catalog", "task", "metric", "filter", "value",
                       "stderr", "n", "group", "source", "date", "source_file", "file"});
    for (const AccuracyEntry& e : entries) {
      for (const AccuracyScore& s : e.scores) {
        io.out << CsvLine({e.model, std::string(DtypeName(e.precision)),
                           InCatalog(catalog, e) ? "true" : "false", s.task, s.metric, s.filter,
                           ExactNumber(s.value), s.std_error ? ExactNumber(*s.std_error) : "",
                           s.samples ? absl::StrCat(*s.samples) : "", s.group, s.source, s.date,
                           s.source_file, e.origin});
      }
    }
    return absl::OkStatus();
  }
  if (entries.empty()) {
    const std::vector<std::string> dirs = CatalogDirectories(global.catalog_dirs);
    io.out << "no accuracy entries in the catalog directories ("
           << (dirs.empty() ? std::string("none given: --catalog DIR or $MOECAP_CATALOG")
                            : absl::StrJoin(dirs, ", "))
           << "); add some with `moecapctl accuracy import FILE --write DIR`\n";
    return absl::OkStatus();
  }
  TextTable table({"model", "precision", "catalog", "scores", "tasks", "file"});
  size_t unknown = 0;
  for (const AccuracyEntry& e : entries) {
    const bool known = InCatalog(catalog, e);
    if (!known) ++unknown;
    table.AddRow({e.model, std::string(DtypeName(e.precision)), known ? "yes" : "NOT IN CATALOG",
                  absl::StrCat(e.scores.size()), TaskSummary(e), e.origin});
  }
  io.out << table.Render();
  if (unknown > 0) {
    io.out << unknown << (unknown == 1 ? " entry names a model" : " entries name models")
           << " not in the catalog: kept and listed, but no analysis finds them until a model "
              "entry or an alias names the model (docs/catalog.md)\n";
  }
  return absl::OkStatus();
}

}  // namespace

CLI::App* RegisterAccuracyCommand(CLI::App& app, AccuracyOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "accuracy",
      "the accuracy axis: import evaluators' scores into a catalog directory, list them");
  cmd->require_subcommand(1);
  o.import_command = cmd->add_subcommand(
      "import",
      "read an lm-evaluation-harness results_*.json or a MoE-CAP metrics_*.json; print the entry, "
      "or --write it");
  o.import_command->add_option("FILE", o.file, "the evaluator's file")->required();
  o.import_command->add_option("--model", o.model,
                               "the model (catalog name or alias), when the file names none or "
                               "another");
  o.import_command->add_option("--precision", o.precision,
                               "the precision it was served at (bf16, fp8, int4_g128, mxfp4, ...), "
                               "when the file names none or another");
  o.import_command->add_option(
      "--task", o.task,
      "the dataset of a MoE-CAP metrics file whose name is not metrics_<dataset>_<ts>.json");
  o.import_command->add_option("--write", o.write_dir,
                               "a catalog directory: writes DIR/accuracy/<model>-<precision>.json, "
                               "merged with the scores already there");
  o.list_command = cmd->add_subcommand("list",
                                       "every accuracy entry of the catalog directories, marking "
                                       "those whose model is not in the catalog");
  o.list_command->add_option("-o,--output", o.output, "table, json or csv")->capture_default_str();
  return cmd;
}

absl::Status RunAccuracyCommand(const AccuracyOptions& o, const GlobalOptions& global,
                                const CommandIo& io) {
  if (o.import_command != nullptr && o.import_command->parsed()) return RunImport(o, global, io);
  return RunList(o, global, io);
}

absl::StatusOr<std::vector<AccuracyEntry>> LoadAccuracyEntries(const GlobalOptions& global) {
  std::vector<AccuracyEntry> all;
  for (const std::string& dir : CatalogDirectories(global.catalog_dirs)) {
    MOECAP_ASSIGN_OR_RETURN(std::vector<AccuracyEntry> entries, LoadAccuracyDir(dir));
    for (AccuracyEntry& e : entries) all.push_back(std::move(e));
  }
  return all;
}

absl::StatusOr<RunAccuracy> AccuracyOfRun(const GlobalOptions& global, const ModelSpec& model,
                                          Dtype experts, Dtype run_dtype) {
  RunAccuracy out;
  out.model = model.name;
  MOECAP_ASSIGN_OR_RETURN(const std::vector<AccuracyEntry> entries, LoadAccuracyEntries(global));
  out.store_entries = entries.size();
  for (Dtype precision : {experts, run_dtype}) {
    const std::string name(DtypeName(precision));
    if (std::find(out.tried.begin(), out.tried.end(), name) != out.tried.end()) continue;
    out.tried.push_back(name);
    const std::vector<const AccuracyEntry*> found = FindAccuracy(entries, model, precision);
    if (found.empty()) continue;
    out.precision = name;
    out.scores = MergedScores(found);
    break;
  }
  return out;
}

nlohmann::json AccuracyJson(const RunAccuracy& a) {
  if (a.scores.empty()) return nullptr;
  nlohmann::json list = nlohmann::json::array();
  for (const AccuracyScore& s : a.scores) list.push_back(ScoreJson(s, a.precision));
  return list;
}

std::string AccuracyLines(const RunAccuracy& a) {
  if (a.store_entries == 0) return "";
  if (a.scores.empty()) {
    return absl::StrCat("\naccuracy: none for ", a.model, " at ", absl::StrJoin(a.tried, " or "),
                        " in the catalog directories: ", kAccuracyImportHint, "\n");
  }
  std::string out = "\n";
  size_t subtasks = 0;
  for (const AccuracyScore& s : a.scores) {
    if (!s.group.empty()) {
      ++subtasks;
      continue;
    }
    std::vector<std::string> about;
    if (s.samples.has_value()) about.push_back(absl::StrCat("n ", *s.samples));
    about.push_back(s.date.empty() ? s.source : absl::StrCat(s.source, ", ", s.date.substr(0, 10)));
    about.push_back(a.precision);
    absl::StrAppend(&out, "accuracy: ", s.task, " ", MetricName(s), " ", Fixed(s.value, 4),
                    s.std_error.has_value() ? absl::StrCat(" ± ", Fixed(*s.std_error, 4)) : "",
                    " (", absl::StrJoin(about, "; "), ")\n");
  }
  if (subtasks > 0) {
    absl::StrAppend(&out, "accuracy: and ", subtasks, " subtask score(s) (-o json lists them)\n");
  }
  return out;
}

}  // namespace moecap::ctl
