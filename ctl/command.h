// What every moecapctl subcommand shares: the output streams, the catalog flags, exit codes and
// the distinction between usage errors (exit 2), jobs that cannot be placed (exit 3) and other
// failures (exit 1).
#ifndef MOECAP_CTL_COMMAND_H_
#define MOECAP_CTL_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/catalog.h"

namespace moecap::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
// The job can never start as the cluster stands: fewer registered agents match than it needs.
inline constexpr int kExitUnplaceable = 3;

// A bad command line (a flag's value out of range, an unknown name): exit code 2.
absl::Status UsageError(absl::string_view message);
bool IsUsageError(const absl::Status& status);
// Marks an existing error (e.g. the catalog's NotFound for an unknown model) as a usage error,
// prefixing the flag that carried the bad value: "--model: unknown model 'x'; did you mean ...".
absl::Status AsUsageError(absl::string_view flag, const absl::Status& status);

// A job no registered agent set could run (submit --wait, watch, run): exit code 3.
absl::Status UnplaceableError(absl::string_view message);
bool IsUnplaceable(const absl::Status& status);

enum class OutputFormat { kTable, kJson, kCsv };
absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name);

// Options every command may read, parsed from the top-level flags.
struct GlobalOptions {
  std::vector<std::string> catalog_dirs;  // --catalog DIR (repeatable)
  // --check-args: parse the command line and stop before the command runs, so a deployment
  // (the helm chart's test Pod) can check its arguments against this binary's flags.
  bool check_args = false;
};

// The streams a command writes to; tests pass string streams.
struct CommandIo {
  std::ostream& out;
  std::ostream& err;
};

// Loads the built-in catalog plus --catalog directories and $MOECAP_CATALOG.
absl::StatusOr<Catalog> LoadCatalog(const GlobalOptions& options);

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_COMMAND_H_
