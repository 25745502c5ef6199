// The lexical rules of the Prometheus text exposition format 0.0.4: how sample values are written,
// how label values and HELP text are escaped, and which metric and label names are valid.
// Reference: https://prometheus.io/docs/instrumenting/exposition_formats/ (text format 0.0.4).
#ifndef MOECAP_COMMON_TELEMETRY_TEXT_FORMAT_H_
#define MOECAP_COMMON_TELEMETRY_TEXT_FORMAT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace moecap::telemetry {

// The Content-Type of a /metrics response in this format.
inline constexpr char kTextFormatContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// "+Inf", "-Inf", "NaN"; integral values below 2^53 in magnitude as plain integers ("42", not
// "4.2e+01"); anything else as the shortest text that parses back to the same double ("0.1",
// "1.5e-07"). Prometheus parses all of these exactly.
std::string FormatValue(double value);

// Label values escape backslash, double quote and line feed (\\, \", \n).
std::string EscapeLabelValue(absl::string_view value);
// HELP text escapes backslash and line feed only (a quote is literal there).
std::string EscapeHelp(absl::string_view help);

// [a-zA-Z_:][a-zA-Z0-9_:]*; InvalidArgument naming the metric and the offending character.
absl::Status ValidateMetricName(absl::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved for Prometheus' own use).
absl::Status ValidateLabelName(absl::string_view name);
// Prometheus rejects a whole scrape that holds invalid UTF-8, so label values and HELP text are
// checked when they enter the registry. `what` names the field in the error.
absl::Status ValidateUtf8(absl::string_view what, absl::string_view text);

}  // namespace moecap::telemetry

#endif  // MOECAP_COMMON_TELEMETRY_TEXT_FORMAT_H_
