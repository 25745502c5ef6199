// The catalog's YAML files, embedded into the binary at build time (cmake/EmbedFiles.cmake).
#ifndef MOECAP_COMMON_CATALOG_DATA_H_
#define MOECAP_COMMON_CATALOG_DATA_H_

#include <vector>

#include "absl/strings/string_view.h"

namespace moecap {

struct EmbeddedFile {
  absl::string_view path;     // relative to common/catalog/, e.g. "models/mixtral-8x7b.yaml"
  absl::string_view content;  // the file's bytes
};

const std::vector<EmbeddedFile>& BuiltinCatalogFiles();

}  // namespace moecap

#endif  // MOECAP_COMMON_CATALOG_DATA_H_
