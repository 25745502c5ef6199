// The A of MoE-CAP: accuracy scores of a model served at a precision, kept beside the catalogs as
// small JSON entries in a catalog directory's accuracy/ folder (docs/cap.md). This module holds
// the entry type, its JSON form, the folder's loading and writing, and the look-up by model and
// precision. It counts nothing: the metric code (common/metrics.h) never sees an accuracy, and the
// readers of what evaluators write live apart (common/accuracy_readers.h).
#ifndef MOECAP_COMMON_ACCURACY_H_
#define MOECAP_COMMON_ACCURACY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/catalog.h"
#include "common/dtype.h"
#include "common/model.h"
#include "nlohmann/json.hpp"

namespace moecap {

// One figure of one task, with where it came from.
struct AccuracyScore {
  std::string task;    // lm-eval's task or group ("gsm8k", "mmlu_pro"); MoE-CAP's dataset
  std::string metric;  // "exact_match", "acc", ...
  std::string filter;  // lm-eval's filter ("strict-match", "none"); "" where the producer has none
  double value = 0;
  std::optional<double> std_error;  // "stderr"
  std::optional<int64_t> samples;   // "n": the documents scored
  std::optional<bool> higher_is_better;
  std::string group;        // the lm-eval group the task is a subtask of ("mmlu_pro"); "" if none
  std::string source;       // the producer: "lm-eval" or "moe-cap"
  std::string source_file;  // the file it was imported from
  std::string date;         // ISO 8601 as the producer dates the run ("...Z" when UTC); "" unknown
};

// The scores of one model at one precision: one file DIR/accuracy/<model>-<precision>.json.
struct AccuracyEntry {
  std::string model;         // the catalog name once resolved, else the producer's name
  std::string source_model;  // the name the producer wrote ("Qwen/Qwen3-30B-A3B"); "" if none
  Dtype precision = Dtype::kBf16;
  std::vector<AccuracyScore> scores;
  std::string origin;  // the file it was read from; "" for an entry not read from the store
};

// "exact_match,strict-match", or the metric alone when there is no filter: how --accuracy-metric
// and the labels name a score's metric.
std::string MetricName(const AccuracyScore& score);

// The entry as the store keeps it (docs/cap.md, "The store"): {"model", "source_model"?,
// "precision", "scores": [{"task", "metric", "filter"?, "value", "stderr"?, "n"?,
// "higher_is_better"?, "group"?, "source", "source_file", "date"?}]}.
nlohmann::ordered_json AccuracyEntryJson(const AccuracyEntry& entry);
// Parses a store file strictly: an unknown key, a wrong type or a missing field is an error that
// names `origin` and the field ("x.json: field 'scores[2].value': expected a number").
absl::StatusOr<AccuracyEntry> ParseAccuracyEntry(absl::string_view text, absl::string_view origin);

// "qwen3-30b-a3b-bf16.json": the normalised model name ('/' written as "--") and the precision.
std::string AccuracyFileName(const AccuracyEntry& entry);

// Every DIR/accuracy/*.json, in name order; other files are ignored and a missing accuracy/ folder
// holds no entries. A file that is not an entry is an error naming it (and the field).
absl::StatusOr<std::vector<AccuracyEntry>> LoadAccuracyDir(const std::string& dir);

// Adds `update`'s scores to `base` (same model and precision): a score of the same task (names
// compared as NormalizeName does), metric and filter is replaced, the others are kept. Returns one
// line per replaced score ("gsm8k exact_match,strict-match 0.89 from F").
std::vector<std::string> MergeAccuracy(const AccuracyEntry& update, AccuracyEntry* base);

struct AccuracyWrite {
  std::string path;
  bool merged = false;                // the file existed: its other scores were kept
  std::vector<std::string> replaced;  // MergeAccuracy's lines
};
// Writes `entry` to DIR/accuracy/AccuracyFileName(entry), merged into the file already there. A
// file there that is malformed or holds another model or precision is refused, not overwritten.
absl::StatusOr<AccuracyWrite> WriteAccuracyEntry(const std::string& dir,
                                                 const AccuracyEntry& entry);

// Resolves entry->model against the catalog (names, then aliases; a local checkpoint path by its
// last two segments, then its last one) and sets it to the catalog name. Returns false, leaving the
// normalised name, when the catalog has no such model.
bool ResolveAccuracyModel(const Catalog& catalog, AccuracyEntry* entry);

// Whether scores measured at `entry` serve a run at `run`: the same dtype, or plain fp8 (which is
// all the evaluators name) for a run with block-scaled fp8.
bool PrecisionMatches(Dtype entry, Dtype run);

// The entries of `model` (its name or an alias, against the entry's model; not its source_model,
// which --model may have overridden) at a precision that matches, in the order given: later
// entries (later catalog directories) last.
std::vector<const AccuracyEntry*> FindAccuracy(const std::vector<AccuracyEntry>& entries,
                                               const ModelSpec& model, Dtype precision);

// The scores of `entries` together; a later entry's score replaces an earlier one of the same task,
// metric and filter.
std::vector<AccuracyScore> MergedScores(const std::vector<const AccuracyEntry*>& entries);

// The score of `task` (compared as NormalizeName does) and `metric`: "" picks the task's first
// score, "exact_match" the first of that metric, "exact_match,flexible-extract" that filter too.
// nullptr when there is none.
const AccuracyScore* FindScore(const std::vector<AccuracyScore>& scores, absl::string_view task,
                               absl::string_view metric);

}  // namespace moecap

#endif  // MOECAP_COMMON_ACCURACY_H_
