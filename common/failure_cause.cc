// FailureCause as a Status payload: the cause's name under one type URL.
#include "common/failure_cause.h"

#include <array>
#include <string>
#include <utility>

#include "absl/strings/cord.h"

namespace moecap {
namespace {

constexpr absl::string_view kPayloadUrl = "type.moecap.dev/moecap.FailureCause";

constexpr std::array<std::pair<FailureCause, absl::string_view>, 4> kNames = {{
    {FailureCause::kRendezvous, "rendezvous"},
    {FailureCause::kCollective, "collective"},
    {FailureCause::kTimeout, "timeout"},
    {FailureCause::kCrash, "crash"},
}};

}  // namespace

absl::string_view FailureCauseName(FailureCause cause) {
  for (const auto& [c, name] : kNames) {
    if (c == cause) return name;
  }
  return "";
}

std::optional<FailureCause> ParseFailureCause(absl::string_view name) {
  for (const auto& [c, n] : kNames) {
    if (n == name) return c;
  }
  return std::nullopt;
}

absl::Status WithFailureCause(absl::Status status, FailureCause cause) {
  if (!status.ok()) status.SetPayload(kPayloadUrl, absl::Cord(FailureCauseName(cause)));
  return status;
}

std::optional<FailureCause> FailureCauseOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kPayloadUrl);  // absl::optional on older Abseils
  if (!payload.has_value()) return std::nullopt;
  return ParseFailureCause(std::string(*payload));
}

}  // namespace moecap
