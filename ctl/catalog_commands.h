// `moecapctl models` and `moecapctl hardware`: list the catalogs.
#ifndef MOECAP_CTL_CATALOG_COMMANDS_H_
#define MOECAP_CTL_CATALOG_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <string>

#include "absl/status/status.h"
#include "ctl/command.h"

namespace moecap::ctl {

struct CatalogListOptions {
  std::string output = "table";
  // `models import CONFIG [--write DIR]`: a Hugging Face config.json to the catalog YAML.
  CLI::App* import_command = nullptr;
  std::string import_path;
  std::string import_dir;  // write DIR/models/<name>.yaml instead of printing it
};

CLI::App* RegisterModelsCommand(CLI::App& app, CatalogListOptions& options);
CLI::App* RegisterHardwareCommand(CLI::App& app, CatalogListOptions& options);

absl::Status RunModelsCommand(const CatalogListOptions& options, const GlobalOptions& global,
                              const CommandIo& io);
absl::Status RunHardwareCommand(const CatalogListOptions& options, const GlobalOptions& global,
                                const CommandIo& io);

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_CATALOG_COMMANDS_H_
