// `moecapctl accuracy import FILE [--model M] [--precision P] [--task T] [--write DIR]` and
// `moecapctl accuracy list`: the accuracy axis's store in the catalog directories
// (common/accuracy.h, common/accuracy_readers.h); and the scores `analyze` shows beside its
// figures, looked up there by model and precision.
#ifndef MOECAP_CTL_ACCURACY_COMMANDS_H_
#define MOECAP_CTL_ACCURACY_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/accuracy.h"
#include "common/dtype.h"
#include "common/model.h"
#include "ctl/command.h"
#include "nlohmann/json.hpp"

namespace moecap::ctl {

struct AccuracyOptions {
  CLI::App* import_command = nullptr;
  CLI::App* list_command = nullptr;
  std::string file;              // import: the evaluator's file
  std::string model;             // --model
  std::string precision;         // --precision
  std::string task;              // --task
  std::string write_dir;         // --write DIR
  std::string output = "table";  // list: -o table|json|csv
};

CLI::App* RegisterAccuracyCommand(CLI::App& app, AccuracyOptions& options);
absl::Status RunAccuracyCommand(const AccuracyOptions& options, const GlobalOptions& global,
                                const CommandIo& io);

// Every accuracy entry of the catalog directories, in CatalogDirectories' order (later
// directories last, so their scores win in MergedScores).
absl::StatusOr<std::vector<AccuracyEntry>> LoadAccuracyEntries(const GlobalOptions& global);

// What to run when the catalog directories hold no score of a model and precision: the hint of
// `analyze`, `results` and `plot --kind cap|radar`.
inline constexpr char kAccuracyImportHint[] =
    "import scores with `moecapctl accuracy import FILE --write DIR` and pass --catalog DIR "
    "(`moecapctl accuracy list` shows what the catalog directories hold)";

// The scores `analyze` and `results` show: those of its model at the experts' precision, else at
// the run's dtype (the experts hold most of an MoE's weights, and their precision is what the
// evaluators' runs name: fp8, int4 and mxfp4 checkpoints quantise them). A cluster result's
// experts are at its workload's dtype (the benchmark generates every weight in it).
struct RunAccuracy {
  std::string model;
  std::vector<std::string> tried;  // the precisions looked up, in order
  std::string precision;           // the one whose entries matched; "" when none did
  std::vector<AccuracyScore> scores;
  size_t store_entries = 0;  // entries the catalog directories hold at all
};
absl::StatusOr<RunAccuracy> AccuracyOfRun(const GlobalOptions& global, const ModelSpec& model,
                                          Dtype experts, Dtype run_dtype);

// analyze's and results' JSON key "accuracy": [{"task", "metric", "filter"?, "value", "stderr"?,
// "n"?, "higher_is_better"?, "group"?, "precision", "source", "source_file", "date"?}], or null.
nlohmann::json AccuracyJson(const RunAccuracy& accuracy);
// The lines under analyze's and results' tables, one per top-level task score ("accuracy: gsm8k
// exact_match,strict-match 0.8901 ± 0.0086 (n 1319; lm-eval, 2025-07-14; bf16)"); one line saying
// there is none, and kAccuracyImportHint, when the catalog directories hold entries but none of
// this run; "" when they hold none at all (the table is then as it was before the accuracy axis).
std::string AccuracyLines(const RunAccuracy& accuracy);

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_ACCURACY_COMMANDS_H_
