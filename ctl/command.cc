// Shared command plumbing.
#include "ctl/command.h"

#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace moecap::ctl {
namespace {
constexpr char kUsagePayload[] = "moecap.dev/usage";
constexpr char kUnplaceablePayload[] = "moecap.dev/unplaceable";
}  // namespace

absl::Status UsageError(absl::string_view message) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kUsagePayload, absl::Cord("1"));
  return status;
}

bool IsUsageError(const absl::Status& status) {
  return status.GetPayload(kUsagePayload).has_value();
}

absl::Status UnplaceableError(absl::string_view message) {
  absl::Status status = absl::FailedPreconditionError(message);
  status.SetPayload(kUnplaceablePayload, absl::Cord("1"));
  return status;
}

bool IsUnplaceable(const absl::Status& status) {
  return status.GetPayload(kUnplaceablePayload).has_value();
}

absl::Status AsUsageError(absl::string_view flag, const absl::Status& status) {
  return UsageError(absl::StrCat(flag, ": ", status.message()));
}

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "table") return OutputFormat::kTable;
  if (lower == "json") return OutputFormat::kJson;
  if (lower == "csv") return OutputFormat::kCsv;
  return UsageError(
      absl::StrCat("-o/--output: unknown format '", name, "': expected table, json or csv"));
}

absl::StatusOr<Catalog> LoadCatalog(const GlobalOptions& options) {
  absl::StatusOr<Catalog> catalog = Catalog::Load(options.catalog_dirs);
  // A user entry that replaces a built-in one changes every figure of that name: say so.
  if (catalog.ok()) {
    for (const std::string& note : catalog->notes())
      std::cerr << "moecapctl: note: " << note << "\n";
  }
  return catalog;
}

}  // namespace moecap::ctl
