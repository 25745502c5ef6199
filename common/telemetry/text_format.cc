// Prometheus text format 0.0.4: value formatting, escaping and name validation.
#include "common/telemetry/text_format.h"

#include <charconv>
#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace moecap::telemetry {
namespace {

bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

// A printable rendering of an offending byte for error messages.
std::string DescribeChar(char c) {
  const auto byte = static_cast<unsigned char>(c);
  if (byte >= 0x20 && byte < 0x7f) return absl::StrCat("'", std::string(1, c), "'");
  return absl::StrCat("byte 0x", absl::Hex(byte, absl::kZeroPad2));
}

}  // namespace

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Every integer of magnitude below 2^53 is exactly representable, so it prints as digits.
  constexpr double kExactIntegerLimit = 9007199254740992.0;  // 2^53
  if (std::fabs(value) < kExactIntegerLimit && value == std::trunc(value)) {
    return absl::StrCat(static_cast<int64_t>(value));  // also turns -0 into "0"
  }
  char buffer[64];
  const std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string EscapeHelp(absl::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

absl::Status ValidateMetricName(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("metric name: must not be empty");
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = IsAsciiLetter(c) || c == '_' || c == ':' || (i > 0 && IsAsciiDigit(c));
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metric name \"", EscapeLabelValue(name), "\": invalid character ", DescribeChar(c),
          " at position ", i, " (must match [a-zA-Z_:][a-zA-Z0-9_:]*)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateLabelName(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("label name: must not be empty");
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = IsAsciiLetter(c) || c == '_' || (i > 0 && IsAsciiDigit(c));
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "label name \"", EscapeLabelValue(name), "\": invalid character ", DescribeChar(c),
          " at position ", i, " (must match [a-zA-Z_][a-zA-Z0-9_]*)"));
    }
  }
  if (name.size() >= 2 && name[0] == '_' && name[1] == '_') {
    return absl::InvalidArgumentError(absl::StrCat(
        "label name \"", name, "\": names starting with \"__\" are reserved for Prometheus"));
  }
  return absl::OkStatus();
}

absl::Status ValidateUtf8(absl::string_view what, absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    int length = 0;
    uint32_t code_point = 0;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if ((lead & 0xe0) == 0xc0) {
      length = 2;
      code_point = lead & 0x1f;
    } else if ((lead & 0xf0) == 0xe0) {
      length = 3;
      code_point = lead & 0x0f;
    } else if ((lead & 0xf8) == 0xf0) {
      length = 4;
      code_point = lead & 0x07;
    }
    bool ok = length > 0 && i + length <= text.size();
    for (int k = 1; ok && k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      ok = (next & 0xc0) == 0x80;
      code_point = (code_point << 6) | (next & 0x3f);
    }
    // Reject overlong encodings, UTF-16 surrogates and code points past U+10FFFF.
    constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    ok = ok && code_point >= kMinForLength[length] && code_point <= 0x10ffff &&
         !(code_point >= 0xd800 && code_point <= 0xdfff);
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": not valid UTF-8 (at byte ", i, ")"));
    }
    i += length;
  }
  return absl::OkStatus();
}

}  // namespace moecap::telemetry
