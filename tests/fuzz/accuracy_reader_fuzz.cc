// Fuzzes the accuracy readers (common/accuracy_readers.h: lm-evaluation-harness results, MoE-CAP
// metrics and metadata) and the store's own reader (ParseAccuracyEntry, common/accuracy.h). Each
// input is read as `accuracy import` would read it under three names: an lm-eval results file, a
// MoE-CAP metrics file with its metadata beside it, and an unknown file with every override given.
// Besides crashes and sanitizer findings it checks:
//   - errors are an InvalidArgument Status naming the file (never an exception);
//   - every score read is finite (its value and standard error), with a task, a metric, a count
//     that is not negative, the producer named, and the file it came from;
//   - the overrides win over the file;
//   - what import would write the store reads back, to the same scores and the same text again,
//     under a file name that stays in the accuracy/ folder (the store refuses what it cannot
//     read, so an entry it refuses would stop every command that reads it);
//   - an entry the store itself accepts holds only finite scores and reads back the same.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/accuracy.h"
#include "common/accuracy_readers.h"
#include "common/catalog.h"

namespace {

using namespace moecap;  // NOLINT: a fuzz target, not a library

void Check(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "accuracy_reader_fuzz: invariant broken: %s\n", what);
  std::abort();
}

void CheckError(const absl::Status& status, const std::string& origin,
                const std::string& other_origin) {
  Check(status.code() == absl::StatusCode::kInvalidArgument, "an error is InvalidArgument");
  Check(absl::StartsWith(status.message(), origin + ":") ||
            (!other_origin.empty() && absl::StartsWith(status.message(), other_origin + ":")),
        "an error names the file");
}

bool Finite(const std::optional<double>& v) { return !v.has_value() || std::isfinite(*v); }

// What the store keeps of a score: every field but none beside them.
void CheckSameScore(const AccuracyScore& a, const AccuracyScore& b) {
  Check(a.task == b.task && a.metric == b.metric && a.filter == b.filter, "score names kept");
  Check(a.value == b.value && a.std_error == b.std_error, "score value and stderr kept");
  Check(a.samples == b.samples && a.higher_is_better == b.higher_is_better, "score n kept");
  Check(a.group == b.group && a.source == b.source && a.source_file == b.source_file &&
            a.date == b.date,
        "score provenance kept");
}

// An entry the store accepts: finite scores, the required fields, and its JSON reads back to the
// same entry and the same text.
void CheckStoreEntry(const AccuracyEntry& entry) {
  Check(!entry.model.empty() && !entry.scores.empty(), "an entry has a model and scores");
  for (const AccuracyScore& s : entry.scores) {
    Check(std::isfinite(s.value) && Finite(s.std_error), "a stored score is finite");
    Check(!s.samples.has_value() || *s.samples >= 0, "a stored count is not negative");
    Check(!s.task.empty() && !s.metric.empty() && !s.source.empty() && !s.source_file.empty(),
          "a stored score names its task, metric and source");
  }
  const std::string text = AccuracyEntryJson(entry).dump(2);
  absl::StatusOr<AccuracyEntry> back = ParseAccuracyEntry(text, "store.json");
  if (!back.ok()) std::fprintf(stderr, "%s\n", std::string(back.status().message()).c_str());
  Check(back.ok(), "the store reads back what it writes");
  Check(back->model == entry.model && back->source_model == entry.source_model &&
            back->precision == entry.precision && back->scores.size() == entry.scores.size(),
        "the entry reads back whole");
  for (size_t i = 0; i < entry.scores.size(); ++i) CheckSameScore(back->scores[i], entry.scores[i]);
  Check(AccuracyEntryJson(*back).dump(2) == text, "the entry writes the same text again");
}

const Catalog& BuiltinCatalog() {
  static const Catalog* catalog = [] {
    absl::StatusOr<Catalog> c = Catalog::Builtin();
    Check(c.ok(), "the built-in catalog loads");
    return new Catalog(*std::move(c));
  }();
  return *catalog;
}

struct Reading {
  std::string origin;
  AccuracyOverrides overrides;
  std::optional<MoeCapRunMetadata> metadata;
};

void ReadAs(const std::string& text, const Reading& r) {
  const MoeCapRunMetadata* metadata = r.metadata.has_value() ? &*r.metadata : nullptr;
  std::vector<std::string> notes;
  absl::StatusOr<AccuracyEntry> entry =
      ParseAccuracyFile(text, r.origin, r.overrides, metadata, &notes);
  if (!entry.ok()) {
    CheckError(entry.status(), r.origin, metadata != nullptr ? metadata->origin : "");
    return;
  }
  Check(!entry->scores.empty(), "an imported entry has scores");
  Check(!entry->model.empty(), "an imported entry has a model");
  for (const AccuracyScore& s : entry->scores) {
    Check(std::isfinite(s.value), "every score read is finite");
    Check(Finite(s.std_error), "every standard error read is finite");
    Check(!s.samples.has_value() || *s.samples >= 0, "a count read is not negative");
    Check(!s.task.empty() && !s.metric.empty(), "a score read has a task and a metric");
    Check(s.source == "lm-eval" || s.source == "moe-cap", "a score names its producer");
    Check(s.source_file == r.origin, "a score names the file it came from");
  }
  if (!r.overrides.model.empty()) Check(entry->model == r.overrides.model, "--model wins");
  if (r.overrides.precision.has_value()) {
    Check(entry->precision == *r.overrides.precision, "--precision wins");
  }
  // As `accuracy import --write` files it.
  ResolveAccuracyModel(BuiltinCatalog(), &*entry);
  const std::string file = AccuracyFileName(*entry);
  Check(file.find('/') == std::string::npos && file != ".json", "the file stays in accuracy/");
  CheckStoreEntry(*entry);
}

void FuzzOne(const std::string& text) {
  // The store's reader on the input itself.
  absl::StatusOr<AccuracyEntry> stored = ParseAccuracyEntry(text, "fuzz-entry.json");
  if (stored.ok()) {
    Check(stored->origin == "fuzz-entry.json", "an entry names its file");
    CheckStoreEntry(*stored);
  } else {
    CheckError(stored.status(), "fuzz-entry.json", "");
  }

  absl::StatusOr<MoeCapRunMetadata> own_metadata = ParseMoeCapMetadata(text, "fuzz-metadata.json");
  if (!own_metadata.ok()) CheckError(own_metadata.status(), "fuzz-metadata.json", "");

  Reading lm_eval;
  lm_eval.origin = "out/Qwen__Qwen3-30B-A3B/results_2025-07-14T09-31-05.482913.json";
  ReadAs(text, lm_eval);

  Reading moe_cap;
  moe_cap.origin = "run/metrics_gsm8k_20250715_101522.json";
  moe_cap.metadata =
      MoeCapRunMetadata{"Qwen/Qwen3-30B-A3B-FP8", "fp8", "run/metadata_gsm8k_20250715_101522.json"};
  ReadAs(text, moe_cap);

  Reading overridden;
  overridden.origin = "fuzz.json";
  overridden.overrides.model = "acme/secret-moe";
  overridden.overrides.precision = Dtype::kInt4Group128;
  overridden.overrides.task = "gsm8k";
  if (own_metadata.ok()) overridden.metadata = *own_metadata;
  ReadAs(text, overridden);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    FuzzOne(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "accuracy_reader_fuzz: exception escaped: %s\n", e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "accuracy_reader_fuzz: exception escaped\n");
    std::abort();
  }
  return 0;
}
