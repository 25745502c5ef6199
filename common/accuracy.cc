// The accuracy store: entries as JSON, the accuracy/ folder, merging and look-up.
#include "common/accuracy.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

using Json = nlohmann::ordered_json;

// Reads one JSON object's keys, remembering which were read so that an unknown (mistyped) key is
// reported; every error names the file and the field path.
class FieldReader {
 public:
  FieldReader(const Json& object, std::string origin, std::string path)
      : object_(object), origin_(std::move(origin)), path_(std::move(path)) {}

  absl::Status Error(absl::string_view key, absl::string_view reason) const {
    return absl::InvalidArgumentError(
        absl::StrCat(origin_, ": field '", Path(key), "': ", reason, "; see docs/cap.md"));
  }
  std::string Path(absl::string_view key) const {
    return path_.empty() ? std::string(key) : absl::StrCat(path_, ".", key);
  }

  absl::Status String(absl::string_view key, bool required, std::string* out) {
    const Json* v = Get(key);
    if (v == nullptr) return required ? Error(key, "required but missing") : absl::OkStatus();
    if (!v->is_string()) return Error(key, absl::StrCat("expected a string, got ", v->dump()));
    *out = v->get<std::string>();
    if (required && out->empty()) return Error(key, "must not be empty");
    return absl::OkStatus();
  }
  absl::Status Number(absl::string_view key, bool required, std::optional<double>* out) {
    const Json* v = Get(key);
    if (v == nullptr) return required ? Error(key, "required but missing") : absl::OkStatus();
    if (!v->is_number()) return Error(key, absl::StrCat("expected a number, got ", v->dump()));
    const double d = v->get<double>();
    if (!std::isfinite(d)) return Error(key, "expected a finite number");
    *out = d;
    return absl::OkStatus();
  }
  absl::Status Integer(absl::string_view key, std::optional<int64_t>* out) {
    const Json* v = Get(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_number_integer() || v->get<int64_t>() < 0) {
      return Error(key, absl::StrCat("expected a count (a non-negative integer), got ", v->dump()));
    }
    *out = v->get<int64_t>();
    return absl::OkStatus();
  }
  absl::Status Bool(absl::string_view key, std::optional<bool>* out) {
    const Json* v = Get(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_boolean())
      return Error(key, absl::StrCat("expected true or false, got ", v->dump()));
    *out = v->get<bool>();
    return absl::OkStatus();
  }
  const Json* Array(absl::string_view key) {
    const Json* v = Get(key);
    return v != nullptr && v->is_array() ? v : nullptr;
  }
  absl::Status RejectUnknown() const {
    for (const auto& [key, value] : object_.items()) {
      if (!read_.contains(key)) {
        return UnknownFieldError(origin_, path_, key, {read_.begin(), read_.end()}, "docs/cap.md");
      }
    }
    return absl::OkStatus();
  }

 private:
  // nullptr when the key is absent or null.
  const Json* Get(absl::string_view key) {
    read_.insert(std::string(key));
    auto it = object_.find(std::string(key));
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  const Json& object_;
  std::string origin_;
  std::string path_;
  std::set<std::string> read_;
};

absl::StatusOr<AccuracyScore> ParseScore(const Json& j, const std::string& origin,
                                         const std::string& path) {
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": field '", path, "': expected an object; see docs/cap.md"));
  }
  FieldReader r(j, origin, path);
  AccuracyScore s;
  std::optional<double> value;
  MOECAP_RETURN_IF_ERROR(r.String("task", true, &s.task));
  MOECAP_RETURN_IF_ERROR(r.String("metric", true, &s.metric));
  MOECAP_RETURN_IF_ERROR(r.String("filter", false, &s.filter));
  MOECAP_RETURN_IF_ERROR(r.Number("value", true, &value));
  MOECAP_RETURN_IF_ERROR(r.Number("stderr", false, &s.std_error));
  MOECAP_RETURN_IF_ERROR(r.Integer("n", &s.samples));
  MOECAP_RETURN_IF_ERROR(r.Bool("higher_is_better", &s.higher_is_better));
  MOECAP_RETURN_IF_ERROR(r.String("group", false, &s.group));
  MOECAP_RETURN_IF_ERROR(r.String("source", true, &s.source));
  MOECAP_RETURN_IF_ERROR(r.String("source_file", true, &s.source_file));
  MOECAP_RETURN_IF_ERROR(r.String("date", false, &s.date));
  MOECAP_RETURN_IF_ERROR(r.RejectUnknown());
  s.value = *value;
  return s;
}

// Task, metric and filter: two scores with the same key measure the same thing.
std::tuple<std::string, std::string, std::string> ScoreKey(const AccuracyScore& s) {
  return {NormalizeName(s.task), s.metric, s.filter};
}

std::string ScoreLine(const AccuracyScore& s) {
  return absl::StrCat(s.task, " ", MetricName(s), " ", s.value, " from ", s.source_file);
}

bool NameMatches(const ModelSpec& model, const std::string& name) {
  if (name.empty()) return false;
  const std::string n = NormalizeName(name);
  if (n == NormalizeName(model.name)) return true;
  return std::any_of(model.aliases.begin(), model.aliases.end(),
                     [&](const std::string& alias) { return NormalizeName(alias) == n; });
}

}  // namespace

std::string MetricName(const AccuracyScore& score) {
  return score.filter.empty() ? score.metric : absl::StrCat(score.metric, ",", score.filter);
}

nlohmann::ordered_json AccuracyEntryJson(const AccuracyEntry& e) {
  Json j;
  j["model"] = e.model;
  if (!e.source_model.empty()) j["source_model"] = e.source_model;
  j["precision"] = std::string(DtypeName(e.precision));
  Json scores = Json::array();
  for (const AccuracyScore& s : e.scores) {
    Json score;
    score["task"] = s.task;
    score["metric"] = s.metric;
    if (!s.filter.empty()) score["filter"] = s.filter;
    score["value"] = s.value;
    if (s.std_error.has_value()) score["stderr"] = *s.std_error;
    if (s.samples.has_value()) score["n"] = *s.samples;
    if (s.higher_is_better.has_value()) score["higher_is_better"] = *s.higher_is_better;
    if (!s.group.empty()) score["group"] = s.group;
    score["source"] = s.source;
    score["source_file"] = s.source_file;
    if (!s.date.empty()) score["date"] = s.date;
    scores.push_back(std::move(score));
  }
  j["scores"] = std::move(scores);
  return j;
}

absl::StatusOr<AccuracyEntry> ParseAccuracyEntry(absl::string_view text, absl::string_view origin) {
  Json root;
  try {
    root = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": not JSON: ", e.what()));
  }
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": expected a JSON object (an accuracy entry); see docs/cap.md"));
  }
  // A producer's file dropped into accuracy/ as it is: say how to turn it into an entry.
  if (!root.contains("scores") && (root.contains("results") || root.contains("quality"))) {
    return absl::InvalidArgumentError(absl::StrCat(
        origin,
        ": an evaluator's file, not an accuracy entry: import it with `moecapctl accuracy "
        "import FILE --write DIR`"));
  }
  const std::string where(origin);
  FieldReader r(root, where, "");
  AccuracyEntry e;
  std::string precision;
  MOECAP_RETURN_IF_ERROR(r.String("model", true, &e.model));
  MOECAP_RETURN_IF_ERROR(r.String("source_model", false, &e.source_model));
  MOECAP_RETURN_IF_ERROR(r.String("precision", true, &precision));
  absl::StatusOr<Dtype> dtype = ParseDtype(precision);
  if (!dtype.ok()) return r.Error("precision", dtype.status().message());
  e.precision = *dtype;
  const Json* scores = r.Array("scores");
  if (scores == nullptr) return r.Error("scores", "required: a list of scores");
  for (size_t i = 0; i < scores->size(); ++i) {
    MOECAP_ASSIGN_OR_RETURN(AccuracyScore s,
                            ParseScore((*scores)[i], where, absl::StrCat("scores[", i, "]")));
    e.scores.push_back(std::move(s));
  }
  if (e.scores.empty()) return r.Error("scores", "an entry holds at least one score");
  MOECAP_RETURN_IF_ERROR(r.RejectUnknown());
  e.origin = where;
  return e;
}

std::string AccuracyFileName(const AccuracyEntry& entry) {
  return absl::StrCat(absl::StrReplaceAll(NormalizeName(entry.model), {{"/", "--"}}), "-",
                      DtypeName(entry.precision), ".json");
}

absl::StatusOr<std::vector<AccuracyEntry>> LoadAccuracyDir(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("catalog directory '", dir, "' does not exist"));
  }
  const std::filesystem::path folder = std::filesystem::path(dir) / "accuracy";
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(folder, ec)) {
    for (const auto& item : std::filesystem::directory_iterator(folder, ec)) {
      if (item.is_regular_file() && item.path().extension() == ".json") {
        files.push_back(item.path());
      }
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<AccuracyEntry> entries;
  for (const std::filesystem::path& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", file.string(), "'"));
    std::stringstream text;
    text << in.rdbuf();
    MOECAP_ASSIGN_OR_RETURN(AccuracyEntry entry, ParseAccuracyEntry(text.str(), file.string()));
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::vector<std::string> MergeAccuracy(const AccuracyEntry& update, AccuracyEntry* base) {
  std::vector<std::string> replaced;
  for (const AccuracyScore& s : update.scores) {
    auto same = std::find_if(base->scores.begin(), base->scores.end(),
                             [&](const AccuracyScore& b) { return ScoreKey(b) == ScoreKey(s); });
    if (same == base->scores.end()) {
      base->scores.push_back(s);
      continue;
    }
    replaced.push_back(ScoreLine(*same));
    *same = s;
  }
  if (!update.source_model.empty()) base->source_model = update.source_model;
  return replaced;
}

absl::StatusOr<AccuracyWrite> WriteAccuracyEntry(const std::string& dir,
                                                 const AccuracyEntry& entry) {
  const std::filesystem::path folder = std::filesystem::path(dir) / "accuracy";
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) return absl::InternalError(absl::StrCat(folder.string(), ": ", ec.message()));
  const std::filesystem::path file = folder / AccuracyFileName(entry);
  AccuracyWrite result;
  result.path = file.string();
  AccuracyEntry merged = entry;
  if (std::filesystem::exists(file, ec)) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<AccuracyEntry> existing = ParseAccuracyEntry(text.str(), file.string());
    if (!existing.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          existing.status().message(), " (not overwritten: fix or remove it, then import again)"));
    }
    if (NormalizeName(existing->model) != NormalizeName(entry.model) ||
        existing->precision != entry.precision) {
      return absl::FailedPreconditionError(
          absl::StrCat(file.string(), ": holds model '", existing->model, "' at ",
                       DtypeName(existing->precision), ", not '", entry.model, "' at ",
                       DtypeName(entry.precision), " (not overwritten)"));
    }
    merged = *std::move(existing);
    result.replaced = MergeAccuracy(entry, &merged);
    result.merged = true;
  }
  // Written beside the target and renamed over it, so that a failed write leaves the old file.
  const std::filesystem::path temp = folder / absl::StrCat(".", file.filename().string(), ".tmp");
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << AccuracyEntryJson(merged).dump(2) << "\n";
    if (!out.flush()) return absl::InternalError(absl::StrCat(temp.string(), ": cannot write"));
  }
  std::filesystem::rename(temp, file, ec);
  if (ec) return absl::InternalError(absl::StrCat(file.string(), ": ", ec.message()));
  return result;
}

bool ResolveAccuracyModel(const Catalog& catalog, AccuracyEntry* entry) {
  const std::string name = entry->model;
  std::vector<std::string> candidates = {name};
  // A local checkpoint ("/models/Qwen/Qwen3-30B-A3B/"): its org/model, then its folder.
  std::vector<std::string> parts = absl::StrSplit(name, '/', absl::SkipEmpty());
  if (parts.size() >= 2) {
    candidates.push_back(absl::StrCat(parts[parts.size() - 2], "/", parts.back()));
  }
  if (!parts.empty()) candidates.push_back(parts.back());
  for (const std::string& candidate : candidates) {
    absl::StatusOr<const ModelSpec*> model = catalog.FindModel(candidate);
    if (model.ok()) {
      entry->model = (*model)->name;
      return true;
    }
  }
  entry->model = NormalizeName(name);
  return false;
}

bool PrecisionMatches(Dtype entry, Dtype run) {
  return entry == run || (entry == Dtype::kFp8 && run == Dtype::kFp8Block128);
}

std::vector<const AccuracyEntry*> FindAccuracy(const std::vector<AccuracyEntry>& entries,
                                               const ModelSpec& model, Dtype precision) {
  std::vector<const AccuracyEntry*> found;
  for (const AccuracyEntry& e : entries) {
    if (!PrecisionMatches(e.precision, precision)) continue;
    // Not by source_model: an entry imported with --model is of that model (a fine-tune, say),
    // whatever checkpoint name its file carries.
    if (NameMatches(model, e.model)) found.push_back(&e);
  }
  return found;
}

std::vector<AccuracyScore> MergedScores(const std::vector<const AccuracyEntry*>& entries) {
  AccuracyEntry merged;
  for (const AccuracyEntry* e : entries) MergeAccuracy(*e, &merged);
  return merged.scores;
}

const AccuracyScore* FindScore(const std::vector<AccuracyScore>& scores, absl::string_view task,
                               absl::string_view metric) {
  const std::string wanted_task = NormalizeName(task);
  for (const AccuracyScore& s : scores) {
    if (NormalizeName(s.task) != wanted_task) continue;
    if (metric.empty() || s.metric == metric || MetricName(s) == metric) return &s;
  }
  return nullptr;
}

}  // namespace moecap
