// Reading the accuracy files evaluators write, as their code writes them
// (tests/fixtures/real/README.md, "accuracy/"):
//   - lm-evaluation-harness `results_<date>.json` (`lm_eval ... --output_path DIR`): "results"
//     {task: {"<metric>,<filter>": value, "<metric>_stderr,<filter>": value or "N/A", "alias"}},
//     "group_subtasks", "higher_is_better", "n-samples", "config" {"model_args", ...}, "date";
//   - MoE-CAP's runner `metrics_<dataset>_<YYYYmmdd_HHMMSS>.json`, whose "quality" {"acc",
//     "total"} is the score; its dataset is only in the file name, and its model and precision
//     only in the `metadata_<dataset>_<ts>.json` written beside it.
// The format is told by the content. Errors name the file, the field and what to pass instead.
#ifndef MOECAP_COMMON_ACCURACY_READERS_H_
#define MOECAP_COMMON_ACCURACY_READERS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/accuracy.h"
#include "common/dtype.h"

namespace moecap {

// What the command line says instead of the file (`accuracy import --model/--precision/--task`).
struct AccuracyOverrides {
  std::string model;               // wins over the file's model
  std::optional<Dtype> precision;  // wins over the file's precision
  std::string task;                // a MoE-CAP metrics file's dataset, when it was renamed
};

// MoE-CAP's metadata_<dataset>_<ts>.json: "model_config" {"model_name", "precision"}.
struct MoeCapRunMetadata {
  std::string model_name;  // the Hugging Face id the runner served ("Qwen/Qwen3-30B-A3B-FP8")
  std::string precision;   // as the runner resolved it ("bfloat16", "fp8", "mxfp4", ...)
  std::string origin;
};
absl::StatusOr<MoeCapRunMetadata> ParseMoeCapMetadata(absl::string_view text,
                                                      absl::string_view origin);
// The metadata file beside a MoE-CAP metrics file ("metrics_gsm8k_<ts>.json" ->
// "metadata_gsm8k_<ts>.json" in the same folder); "" when the name is not a metrics file's.
std::string MoeCapMetadataPath(const std::string& metrics_path);

// An accuracy file's scores as one entry. `origin` is the file's path: a MoE-CAP metrics file's
// dataset and date are read from its name. `metadata` is the MoE-CAP metadata beside it, if any.
// The entry's model is the producer's name (ResolveAccuracyModel maps it to the catalog).
// `notes` (may be null) gets a line for each thing the caller should tell the user (where the
// precision came from when it is a guess).
absl::StatusOr<AccuracyEntry> ParseAccuracyFile(absl::string_view text, absl::string_view origin,
                                                const AccuracyOverrides& overrides,
                                                const MoeCapRunMetadata* metadata = nullptr,
                                                std::vector<std::string>* notes = nullptr);

// Reads `path` and, for a MoE-CAP metrics file, the metadata file beside it when there is one.
absl::StatusOr<AccuracyEntry> ReadAccuracyFile(const std::string& path,
                                               const AccuracyOverrides& overrides,
                                               std::vector<std::string>* notes = nullptr);

}  // namespace moecap

#endif  // MOECAP_COMMON_ACCURACY_READERS_H_
