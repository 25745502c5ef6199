// The evaluators' accuracy files, read as their code writes them (accuracy_readers.h).
#include "common/accuracy_readers.h"

#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

using Json = nlohmann::ordered_json;

constexpr char kLmEval[] = "lm-eval";
constexpr char kMoeCap[] = "moe-cap";
constexpr double kYear10000 = 253402300800.0;  // 10000-01-01T00:00:00Z in Unix seconds

absl::Status FieldError(absl::string_view origin, absl::string_view field,
                        absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(origin, ": field '", field, "': ", reason));
}

// Python's json.dump writes float('nan') and infinities as bare NaN / Infinity / -Infinity,
// which strict JSON parsers refuse. Quoted, they read as strings: a metric that is one is then
// refused as "not a number" by name, and a stderr that is one is read like lm-eval's "N/A".
std::string QuoteNonFinite(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size()) {
        out += text[++i];
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      out += c;
      continue;
    }
    bool quoted = false;
    for (absl::string_view token : {"NaN", "Infinity", "-Infinity"}) {
      if (text.substr(i, token.size()) == token) {
        absl::StrAppend(&out, "\"", token, "\"");
        i += token.size() - 1;
        quoted = true;
        break;
      }
    }
    if (!quoted) out += c;
  }
  return out;
}

// The member `key` of an object; nullptr when `j` is no object or lacks it. (A const json's
// operator[] must not be asked for a key it lacks.)
const Json* Member(const Json& j, const std::string& key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view origin) {
  try {
    const std::string clean = QuoteNonFinite(text);
    return Json::parse(clean);
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": not JSON: ", e.what()));
  }
}

std::string Basename(absl::string_view path) {
  const size_t slash = path.find_last_of('/');
  return std::string(slash == absl::string_view::npos ? path : path.substr(slash + 1));
}

// "metrics_<dataset>_<YYYYmmdd>_<HHMMSS>.json" -> (dataset, "YYYY-mm-ddTHH:MM:SS"); the runner's
// strftime("%Y%m%d_%H%M%S") is local time, so the date carries no zone.
std::optional<std::pair<std::string, std::string>> MoeCapNameParts(absl::string_view path) {
  const std::string name = Basename(path);
  constexpr absl::string_view kPrefix = "metrics_", kSuffix = ".json";
  if (!absl::StartsWith(name, kPrefix) || !absl::EndsWith(name, kSuffix)) return std::nullopt;
  const std::string stem =
      name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  // "_YYYYmmdd_HHMMSS": 16 characters after the dataset.
  if (stem.size() < 17) return std::nullopt;
  const std::string stamp = stem.substr(stem.size() - 16);
  for (size_t i = 0; i < stamp.size(); ++i) {
    const bool underscore = i == 0 || i == 9;
    if (underscore ? stamp[i] != '_' : !std::isdigit(static_cast<unsigned char>(stamp[i]))) {
      return std::nullopt;
    }
  }
  const std::string date =
      absl::StrCat(stamp.substr(1, 4), "-", stamp.substr(5, 2), "-", stamp.substr(7, 2), "T",
                   stamp.substr(10, 2), ":", stamp.substr(12, 2), ":", stamp.substr(14, 2));
  return std::pair{stem.substr(0, stem.size() - 16), date};
}

// lm-eval's model_args as a map: its "k=v,k=v" string (simple_parse_args_string) or the JSON
// object --model_args also takes.
std::map<std::string, std::string> ModelArgs(const Json& args) {
  std::map<std::string, std::string> out;
  if (args.is_string()) {
    for (absl::string_view item : absl::StrSplit(args.get<std::string>(), ',', absl::SkipEmpty())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
      out[std::string(absl::StripAsciiWhitespace(kv.first))] =
          std::string(absl::StripAsciiWhitespace(kv.second));
    }
  } else if (args.is_object()) {
    for (const auto& [key, value] : args.items()) {
      out[key] = value.is_string() ? value.get<std::string>() : value.dump();
    }
  }
  return out;
}

// A count of documents: a non-negative integer that fits int64 (the store keeps nothing else);
// nullopt for anything else, which the readers then leave unknown.
std::optional<int64_t> Count(const Json* j) {
  if (j == nullptr) return std::nullopt;
  if (j->is_number_unsigned()) {
    const uint64_t n = j->get<uint64_t>();
    if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(n);
  }
  if (j->is_number_integer() && j->get<int64_t>() >= 0) return j->get<int64_t>();
  return std::nullopt;
}

// A model name that says nothing once the catalog's normalisation strips it (NormalizeName):
// the store could not file it, so the readers ask for --model instead.
bool IsBlank(absl::string_view name) { return absl::StripAsciiWhitespace(name).empty(); }

bool IsUnset(absl::string_view value) {
  const std::string v = absl::AsciiStrToLower(value);
  return v.empty() || v == "none" || v == "null";
}

bool IsTrue(absl::string_view value) { return absl::AsciiStrToLower(value) == "true"; }

// The precision of an lm-eval run: vLLM's quantization=, else dtype= (unless "auto"), else the
// dtype HFLM's get_model_info() reports for the loaded weights ("torch.bfloat16").
absl::StatusOr<Dtype> LmEvalPrecision(const Json& root,
                                      const std::map<std::string, std::string>& args,
                                      const std::string& origin, std::vector<std::string>* notes) {
  auto parse = [&](absl::string_view field, absl::string_view text) -> absl::StatusOr<Dtype> {
    absl::StatusOr<Dtype> d = ParseDtype(text);
    if (!d.ok()) {
      return FieldError(origin, field,
                        absl::StrCat("'", text, "' is not a precision moecap knows (",
                                     d.status().message(), "): pass --precision"));
    }
    return d;
  };
  for (const char* flag : {"load_in_4bit", "load_in_8bit"}) {
    auto it = args.find(flag);
    if (it != args.end() && IsTrue(it->second)) {
      return FieldError(origin, "config.model_args",
                        absl::StrCat(flag,
                                     "=True: bitsandbytes quantization, which moecap does not "
                                     "count: pass --precision to file it under a dtype"));
    }
  }
  if (auto it = args.find("quantization"); it != args.end() && !IsUnset(it->second)) {
    return parse("config.model_args", it->second);
  }
  if (auto it = args.find("dtype");
      it != args.end() && !IsUnset(it->second) && absl::AsciiStrToLower(it->second) != "auto") {
    return parse("config.model_args", it->second);
  }
  const Json* config = Member(root, "config");
  const Json* model_dtype = config != nullptr ? Member(*config, "model_dtype") : nullptr;
  if (model_dtype != nullptr && model_dtype->is_string()) {
    const std::string reported = model_dtype->get<std::string>();
    absl::string_view text = reported;
    absl::ConsumePrefix(&text, "torch.");
    MOECAP_ASSIGN_OR_RETURN(Dtype d, parse("config.model_dtype", text));
    if (notes != nullptr) {
      notes->push_back(absl::StrCat(
          origin, ": precision ", DtypeName(d), " from config.model_dtype '", reported,
          "', the dtype torch reports for the loaded weights; a quantized checkpoint may report "
          "its compute dtype instead: pass --precision if it was quantized"));
    }
    return d;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      origin,
      ": names no precision (config.model_args has no quantization= and dtype=auto or no dtype=): "
      "pass --precision (bf16, fp8, int4_g128, mxfp4, ...)"));
}

absl::StatusOr<AccuracyEntry> ReadLmEval(const Json& root, const std::string& origin,
                                         const AccuracyOverrides& o,
                                         std::vector<std::string>* notes) {
  AccuracyEntry entry;
  const Json* config = Member(root, "config");
  const Json* model_args = config != nullptr ? Member(*config, "model_args") : nullptr;
  const std::map<std::string, std::string> args =
      model_args != nullptr ? ModelArgs(*model_args) : std::map<std::string, std::string>{};
  // The checkpoint, as GeneralConfigTracker._get_model_name finds it, leaving out its adapter
  // keys (peft=, delta=): the catalog holds the base model's shape.
  for (const char* key : {"pretrained", "model", "path", "engine"}) {
    auto it = args.find(key);
    if (it != args.end() && !it->second.empty()) {
      entry.source_model = it->second;
      break;
    }
  }
  if (const Json* name = Member(root, "model_name");
      entry.source_model.empty() && name != nullptr && name->is_string()) {
    entry.source_model = name->get<std::string>();
  }
  entry.model = o.model.empty() ? entry.source_model : o.model;
  if (IsBlank(entry.model)) {
    return absl::InvalidArgumentError(absl::StrCat(
        origin,
        ": names no model (config.model_args has no pretrained=, and no model_name): pass "
        "--model (a catalog name, `moecapctl models` lists them)"));
  }
  if (o.precision.has_value()) {
    entry.precision = *o.precision;
  } else {
    MOECAP_ASSIGN_OR_RETURN(entry.precision, LmEvalPrecision(root, args, origin, notes));
  }

  std::string date;
  const Json* when = Member(root, "date");
  if (when != nullptr && when->is_number()) {
    // evaluator.py: results["date"] = time.time() at the start of simple_evaluate.
    // Formatted only within the years 1970-9999: outside, it is no time.time() of a run (and
    // would not fit the int64 seconds it is converted to).
    const double seconds = when->get<double>();
    if (seconds >= 0 && seconds < kYear10000) {
      date = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                              absl::FromUnixSeconds(static_cast<int64_t>(seconds)),
                              absl::UTCTimeZone());
    }
  } else if (when != nullptr && when->is_string()) {
    date = when->get<std::string>();
  }
  std::map<std::string, std::string> group_of;
  if (const Json* subtasks = Member(root, "group_subtasks"); subtasks != nullptr) {
    for (const auto& [group, tasks] : subtasks->items()) {
      if (!tasks.is_array()) continue;
      for (const Json& task : tasks) {
        if (task.is_string()) group_of[task.get<std::string>()] = group;
      }
    }
  }
  const Json& results = *Member(root, "results");
  const Json* n_samples = Member(root, "n-samples");
  const Json* higher_is_better = Member(root, "higher_is_better");
  std::map<std::tuple<std::string, std::string, std::string>, double> stderrs;
  for (const auto& [task, metrics] : results.items()) {
    if (task.empty()) return FieldError(origin, "results", "a task with an empty name");
    if (!metrics.is_object()) {
      return FieldError(origin, absl::StrCat("results.", task), "expected an object of scores");
    }
    const Json* task_samples = n_samples != nullptr ? Member(*n_samples, task) : nullptr;
    const Json* effective = task_samples != nullptr ? Member(*task_samples, "effective") : nullptr;
    // lm-eval 0.5 keeps the count in the results; 0.4 as {"original": N, "effective": N or
    // --limit}.
    std::optional<int64_t> samples = Count(Member(metrics, "sample_len"));
    if (!samples.has_value()) samples = Count(effective);
    const Json* task_hib = higher_is_better != nullptr ? Member(*higher_is_better, task) : nullptr;
    for (const auto& [key, value] : metrics.items()) {
      // "alias", "name", "sample_len", a group's " " placeholder: not "<metric>,<filter>".
      const size_t comma = key.find(',');
      if (comma == std::string::npos) continue;
      absl::string_view metric_view = absl::string_view(key).substr(0, comma);
      const bool is_stderr = absl::ConsumeSuffix(&metric_view, "_stderr");
      const std::string metric(metric_view);
      if (metric.empty()) continue;  // ",none": no metric to file the value under
      const std::string filter = key.substr(comma + 1);
      const std::string field = absl::StrCat("results.", task, ".", key);
      if (is_stderr) {
        // "N/A" when a stderr could not be computed (one document, bootstrap off).
        if (value.is_number() && std::isfinite(value.get<double>())) {
          stderrs[{task, metric, filter}] = value.get<double>();
        } else if (!value.is_string() && !value.is_null()) {
          return FieldError(origin, field,
                            absl::StrCat("expected a number or \"N/A\", got ", value.dump()));
        }
        continue;
      }
      if (!value.is_number() || !std::isfinite(value.get<double>())) {
        return FieldError(origin, field, absl::StrCat("expected a number, got ", value.dump()));
      }
      AccuracyScore s;
      s.task = task;
      s.metric = metric;
      s.filter = filter;
      s.value = value.get<double>();
      s.samples = samples;
      if (const Json* hib = task_hib != nullptr ? Member(*task_hib, metric) : nullptr;
          hib != nullptr && hib->is_boolean()) {
        s.higher_is_better = hib->get<bool>();
      }
      if (auto g = group_of.find(task); g != group_of.end()) s.group = g->second;
      s.source = kLmEval;
      s.source_file = origin;
      s.date = date;
      entry.scores.push_back(std::move(s));
    }
  }
  // A group's documents are its subtasks' (aggregate_subtask_metrics weighs by their counts);
  // 0.4 pops the group's own count before writing. Unknown when a subtask's count is.
  std::map<std::string, std::optional<int64_t>> group_samples;
  for (const auto& [task, group] : group_of) {
    const Json* task_samples = n_samples != nullptr ? Member(*n_samples, task) : nullptr;
    const Json* effective = task_samples != nullptr ? Member(*task_samples, "effective") : nullptr;
    auto [it, inserted] = group_samples.try_emplace(group, int64_t{0});
    const std::optional<int64_t> count = Count(effective);
    if (count.has_value() && it->second.has_value() &&
        *count <= std::numeric_limits<int64_t>::max() - *it->second) {
      *it->second += *count;
    } else {
      it->second.reset();
    }
  }
  for (AccuracyScore& s : entry.scores) {
    auto it = stderrs.find({s.task, s.metric, s.filter});
    if (it != stderrs.end()) s.std_error = it->second;
    auto group = group_samples.find(s.task);
    if (!s.samples.has_value() && group != group_samples.end()) s.samples = group->second;
  }
  if (entry.scores.empty()) {
    return FieldError(origin, "results",
                      "no scores: no task has a \"<metric>,<filter>\" key (a --predict_only run "
                      "scores nothing)");
  }
  return entry;
}

absl::StatusOr<AccuracyEntry> ReadMoeCap(const Json& root, const std::string& origin,
                                         const AccuracyOverrides& o,
                                         const MoeCapRunMetadata* metadata) {
  const Json* quality_member = Member(root, "quality");
  if (quality_member == nullptr || !quality_member->is_object()) {
    return FieldError(origin, "quality",
                      "missing: MoE-CAP writes it for every run (openai_api_profile.py)");
  }
  const Json& quality = *quality_member;
  if (!quality.contains("acc")) {
    return FieldError(origin, "quality.acc",
                      "absent: the run evaluated no accuracy (fixed-length or profiling-only "
                      "mode); there is nothing to import");
  }
  if (!quality["acc"].is_number() || !std::isfinite(quality["acc"].get<double>())) {
    return FieldError(origin, "quality.acc",
                      absl::StrCat("expected a number, got ", quality["acc"].dump()));
  }
  const std::optional<std::pair<std::string, std::string>> name = MoeCapNameParts(origin);
  AccuracyScore s;
  s.task = !o.task.empty() ? o.task : name.has_value() ? name->first : "";
  if (s.task.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        origin,
        ": names no dataset: MoE-CAP puts it only in the file name "
        "(metrics_<dataset>_<YYYYmmdd_HHMMSS>.json): pass --task (gsm8k, mmlu-pro, ...)"));
  }
  s.metric = "acc";
  s.value = quality["acc"].get<double>();
  if (quality.contains("total")) {
    if (!quality["total"].is_number_integer() || quality["total"].get<int64_t>() < 0) {
      return FieldError(origin, "quality.total",
                        absl::StrCat("expected a count, got ", quality["total"].dump()));
    }
    s.samples = quality["total"].get<int64_t>();
  }
  s.higher_is_better = true;
  s.source = kMoeCap;
  s.source_file = origin;
  if (name.has_value()) s.date = name->second;

  AccuracyEntry entry;
  const std::string metadata_name = name.has_value()
                                        ? absl::StrCat("metadata_", Basename(origin).substr(8))
                                        : std::string("metadata_<dataset>_<ts>.json");
  if (metadata != nullptr) entry.source_model = metadata->model_name;
  entry.model = !o.model.empty() ? o.model : entry.source_model;
  if (IsBlank(entry.model)) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": names no model: MoE-CAP writes it in ", metadata_name,
                     " beside it (model_config.model_name), which is not there: pass --model"));
  }
  if (o.precision.has_value()) {
    entry.precision = *o.precision;
  } else if (metadata != nullptr && !metadata->precision.empty()) {
    absl::StatusOr<Dtype> d = ParseDtype(metadata->precision);
    if (!d.ok()) {
      return FieldError(metadata->origin, "model_config.precision",
                        absl::StrCat("'", metadata->precision,
                                     "' is not a precision moecap knows: pass --precision"));
    }
    entry.precision = *d;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": names no precision: MoE-CAP writes it in ", metadata_name,
                     " beside it (model_config.precision), which is not there: pass --precision"));
  }
  entry.scores.push_back(std::move(s));
  return entry;
}

}  // namespace

std::string MoeCapMetadataPath(const std::string& metrics_path) {
  const std::string name = Basename(metrics_path);
  if (!absl::StartsWith(name, "metrics_") || !absl::EndsWith(name, ".json")) return "";
  return absl::StrCat(metrics_path.substr(0, metrics_path.size() - name.size()), "metadata_",
                      name.substr(8));
}

absl::StatusOr<MoeCapRunMetadata> ParseMoeCapMetadata(absl::string_view text,
                                                      absl::string_view origin) {
  MOECAP_ASSIGN_OR_RETURN(const Json root, ParseJson(text, origin));
  const Json* config_member = Member(root, "model_config");
  if (config_member == nullptr || !config_member->is_object()) {
    return FieldError(origin, "model_config", "missing: not a MoE-CAP metadata file");
  }
  const Json& config = *config_member;
  MoeCapRunMetadata m;
  m.origin = std::string(origin);
  for (const auto& [key, slot] :
       {std::pair{"model_name", &m.model_name}, std::pair{"precision", &m.precision}}) {
    if (!config.contains(key) || config[key].is_null()) continue;
    if (!config[key].is_string()) {
      return FieldError(origin, absl::StrCat("model_config.", key),
                        absl::StrCat("expected a string, got ", config[key].dump()));
    }
    *slot = config[key].get<std::string>();
  }
  return m;
}

absl::StatusOr<AccuracyEntry> ParseAccuracyFile(absl::string_view text, absl::string_view origin,
                                                const AccuracyOverrides& overrides,
                                                const MoeCapRunMetadata* metadata,
                                                std::vector<std::string>* notes) {
  const std::string where(origin);
  MOECAP_ASSIGN_OR_RETURN(const Json root, ParseJson(text, origin));
  if (!root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": expected a JSON object"));
  }
  // lm-eval: "results" beside the keys evaluate()/simple_evaluate() add.
  if (root.contains("results") && root["results"].is_object() &&
      (root.contains("versions") || root.contains("n-shot") || root.contains("configs") ||
       root.contains("config"))) {
    return ReadLmEval(root, where, overrides, notes);
  }
  if (root.contains("quality") ||
      (root.contains("performance") && root.contains("batch_token_profile"))) {
    return ReadMoeCap(root, where, overrides, metadata);
  }
  if (root.contains("model_config") && root.contains("hardware")) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": MoE-CAP's metadata file: import the metrics_<dataset>_<ts>.json beside it"));
  }
  if (root.contains("scores") && root.contains("precision")) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": already an accuracy entry: copy it into a catalog directory's accuracy/ folder"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      where,
      ": not an accuracy file moecap reads: expected lm-evaluation-harness results_<date>.json "
      "(\"results\", \"config\") or MoE-CAP's metrics_<dataset>_<ts>.json (\"quality\")"));
}

absl::StatusOr<AccuracyEntry> ReadAccuracyFile(const std::string& path,
                                               const AccuracyOverrides& overrides,
                                               std::vector<std::string>* notes) {
  auto read = [](const std::string& file) -> absl::StatusOr<std::string> {
    std::ifstream in(file, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", file, "'"));
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  };
  MOECAP_ASSIGN_OR_RETURN(const std::string text, read(path));
  std::optional<MoeCapRunMetadata> metadata;
  const std::string metadata_path = MoeCapMetadataPath(path);
  std::error_code ec;
  if (!metadata_path.empty() && std::filesystem::is_regular_file(metadata_path, ec)) {
    MOECAP_ASSIGN_OR_RETURN(const std::string metadata_text, read(metadata_path));
    MOECAP_ASSIGN_OR_RETURN(metadata, ParseMoeCapMetadata(metadata_text, metadata_path));
  }
  return ParseAccuracyFile(text, path, overrides, metadata.has_value() ? &*metadata : nullptr,
                           notes);
}

}  // namespace moecap
