// The model and hardware catalogs: built-in entries (YAML files under common/catalog/, compiled
// into the binary) plus entries users add as YAML files without recompiling.
#ifndef MOECAP_COMMON_CATALOG_H_
#define MOECAP_COMMON_CATALOG_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/hardware.h"
#include "common/model.h"

namespace moecap {

// Parses one model entry. `origin` names the file in error messages, which also name the field
// path ("my.yaml: field 'moe.experts': expected an integer, got 'eight'"). Unknown keys are errors.
absl::StatusOr<ModelSpec> ParseModelYaml(absl::string_view yaml, absl::string_view origin);
// Parses one hardware entry; same conventions.
absl::StatusOr<HardwareSpec> ParseHardwareYaml(absl::string_view yaml, absl::string_view origin);

// Names are compared after NormalizeName: lower case, with ' ' and '_' read as '-'.
std::string NormalizeName(absl::string_view name);

// Not thread-safe for writes; concurrent const lookups are safe.
class Catalog {
 public:
  // The entries compiled into the binary.
  static absl::StatusOr<Catalog> Builtin();
  // Builtin() plus every directory in `extra_dirs` (see AddDirectory) and in the environment
  // variable MOECAP_CATALOG (directories separated by ':').
  static absl::StatusOr<Catalog> Load(const std::vector<std::string>& extra_dirs);

  // Adds DIR/models/*.yaml, DIR/models/*.json (Hugging Face config.json files, hf_config.h) and
  // DIR/hardware/*.yaml. An entry whose name is already in the catalog replaces it, so a user can
  // correct a built-in entry; notes() says so.
  absl::Status AddDirectory(const std::string& dir);
  absl::Status AddModelFile(const std::string& path);
  absl::Status AddHardwareFile(const std::string& path);
  void AddModel(ModelSpec model);
  void AddHardware(HardwareSpec hardware);

  // Finds by name or alias. NotFound lists the nearest names ("did you mean ...").
  absl::StatusOr<const ModelSpec*> FindModel(absl::string_view name) const;
  absl::StatusOr<const HardwareSpec*> FindHardware(absl::string_view name) const;

  // One line per user entry that replaced a built-in or earlier one ("models/x.yaml: model
  // 'mixtral-8x7b' replaces the built-in entry").
  const std::vector<std::string>& notes() const { return notes_; }

  const std::vector<ModelSpec>& models() const { return models_; }
  const std::vector<HardwareSpec>& hardware() const { return hardware_; }

 private:
  std::vector<ModelSpec> models_;
  std::vector<HardwareSpec> hardware_;
  std::vector<std::string> notes_;
  // "model:<name>" / "hardware:<name>" -> the file it came from ("" for built-in entries).
  std::map<std::string, std::string> origins_;

  void NoteReplacement(absl::string_view kind, const std::string& name, const std::string& path);
};

// The directories Catalog::Load reads, in its order: those of $MOECAP_CATALOG (separated by ':'),
// then `extra_dirs`. What else a catalog directory holds (accuracy/, common/accuracy.h) is read
// from the same list.
std::vector<std::string> CatalogDirectories(const std::vector<std::string>& extra_dirs);

// The closest names to `query` among `candidates` (edit distance on normalised names, prefix and
// substring matches first), at most `limit` of them.
std::vector<std::string> NearestNames(absl::string_view query,
                                      const std::vector<std::string>& candidates, size_t limit);

// A file's field nobody reads, refused with the nearest known one: InvalidArgument
// "ORIGIN: unknown field 'PREFIX.KEY' (did you mean 'PREFIX.NEAR'?); see DOC". `known` are the
// keys of the same mapping that are read; `prefix` the mapping's path ("" at the top).
absl::Status UnknownFieldError(absl::string_view origin, absl::string_view prefix,
                               absl::string_view key, const std::vector<std::string>& known,
                               absl::string_view doc);

}  // namespace moecap

#endif  // MOECAP_COMMON_CATALOG_H_
