// The JSON scanner: RFC 8259 syntax, read in place.
#include "common/records/json_scanner.h"

#include <charconv>
#include <cmath>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace moecap::records {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// 2^53: above it not every integer is a double, so a fractional literal stops being "integral".
constexpr double kExactIntegerLimit = 9007199254740992.0;

}  // namespace

absl::string_view JsonTypeName(JsonType type) {
  switch (type) {
    case JsonType::kObject:
      return "an object";
    case JsonType::kArray:
      return "an array";
    case JsonType::kString:
      return "a string";
    case JsonType::kNumber:
      return "a number";
    case JsonType::kTrue:
    case JsonType::kFalse:
      return "a boolean";
    case JsonType::kNull:
      return "null";
  }
  return "a value";
}

bool JsonScanner::FailAt(const char* where, absl::string_view what) {
  if (error_column_ == 0) {
    error_column_ = static_cast<size_t>(where - begin_) + 1;
    error_what_ = std::string(what);
  }
  return false;
}

bool JsonScanner::Fail(absl::string_view what) { return FailAt(p_, what); }

void JsonScanner::SkipSpace() {
  while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
}

bool JsonScanner::AtEnd() {
  SkipSpace();
  return p_ == end_;
}

bool JsonScanner::PeekType(JsonType* type) {
  SkipSpace();
  if (p_ == end_) return Fail("expected a value, found the end of the line");
  switch (*p_) {
    case '{':
      *type = JsonType::kObject;
      return true;
    case '[':
      *type = JsonType::kArray;
      return true;
    case '"':
      *type = JsonType::kString;
      return true;
    case 't':
      *type = JsonType::kTrue;
      return true;
    case 'f':
      *type = JsonType::kFalse;
      return true;
    case 'n':
      *type = JsonType::kNull;
      return true;
    default:
      if (*p_ == '-' || IsDigit(*p_)) {
        *type = JsonType::kNumber;
        return true;
      }
      return Fail("expected a value");
  }
}

bool JsonScanner::Expect(char c) {
  SkipSpace();
  if (p_ < end_ && *p_ == c) {
    ++p_;
    return true;
  }
  return Fail(absl::StrCat("expected '", absl::string_view(&c, 1), "'"));
}

bool JsonScanner::TryConsume(char c) {
  SkipSpace();
  if (p_ < end_ && *p_ == c) {
    ++p_;
    return true;
  }
  return false;
}

bool JsonScanner::ReadString(std::string* out) {
  if (!Expect('"')) return false;
  out->clear();
  while (true) {
    const char* run = p_;
    while (p_ < end_ && *p_ != '"' && *p_ != '\\' && static_cast<unsigned char>(*p_) >= 0x20) ++p_;
    out->append(run, static_cast<size_t>(p_ - run));
    if (p_ == end_) return Fail("unterminated string");
    if (*p_ == '"') {
      ++p_;
      return true;
    }
    if (*p_ != '\\') return Fail("control character in a string");
    const char* escape = p_;
    ++p_;
    if (p_ == end_) return Fail("unterminated string");
    const char e = *p_++;
    switch (e) {
      case '"':
      case '\\':
      case '/':
        out->push_back(e);
        break;
      case 'b':
        out->push_back('\b');
        break;
      case 'f':
        out->push_back('\f');
        break;
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'u': {
        auto read_hex4 = [&](uint32_t* v) {
          if (end_ - p_ < 4) return false;
          *v = 0;
          for (int i = 0; i < 4; ++i) {
            const int h = HexValue(p_[i]);
            if (h < 0) return false;
            *v = *v * 16 + static_cast<uint32_t>(h);
          }
          p_ += 4;
          return true;
        };
        uint32_t cp = 0;
        if (!read_hex4(&cp)) return FailAt(escape, "invalid \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t low = 0;
          if (end_ - p_ >= 2 && p_[0] == '\\' && p_[1] == 'u') {
            p_ += 2;
            if (!read_hex4(&low) || low < 0xDC00 || low > 0xDFFF) {
              return FailAt(escape, "invalid \\u surrogate pair");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else {
            return FailAt(escape, "unpaired \\u surrogate");
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return FailAt(escape, "unpaired \\u surrogate");
        }
        AppendUtf8(cp, out);
        break;
      }
      default:
        return FailAt(escape, "invalid escape in a string");
    }
  }
}

bool JsonScanner::SkipString() {
  SkipSpace();
  const char* start = p_;
  if (!Expect('"')) return false;
  while (p_ < end_ && *p_ != '"' && *p_ != '\\' && static_cast<unsigned char>(*p_) >= 0x20) ++p_;
  if (p_ < end_ && *p_ == '"') {
    ++p_;
    return true;
  }
  // Escapes (or an error): decode the slow way, so that one function says what is legal.
  p_ = start;
  std::string ignored;
  return ReadString(&ignored);
}

bool JsonScanner::ReadKey(absl::string_view* key, std::string* scratch) {
  SkipSpace();
  if (p_ == end_ || *p_ != '"') return Fail("expected a member name in double quotes");
  const char* start = p_ + 1;
  const char* q = start;
  while (q < end_ && *q != '"' && *q != '\\' && static_cast<unsigned char>(*q) >= 0x20) ++q;
  if (q < end_ && *q == '"') {
    *key = absl::string_view(start, static_cast<size_t>(q - start));
    p_ = q + 1;
  } else {
    if (!ReadString(scratch)) return false;
    *key = *scratch;
  }
  return Expect(':');
}

bool JsonScanner::ReadNumber(JsonNumber* out) {
  SkipSpace();
  const char* start = p_;
  const char* q = p_;
  const bool negative = q < end_ && *q == '-';
  if (negative) ++q;
  if (q == end_ || !IsDigit(*q)) return FailAt(start, "invalid number");
  // Whole numbers are most of a record's values: accumulate them here, and leave the general
  // case (fractions, exponents, more than 18 digits) to from_chars.
  uint64_t magnitude = 0;
  int digits = 0;
  if (*q == '0') {
    ++q;
    digits = 1;
  } else {
    while (q < end_ && IsDigit(*q)) {
      magnitude = magnitude * 10 + static_cast<uint64_t>(*q - '0');
      ++digits;
      ++q;
    }
  }
  bool plain_integer = true;
  if (q < end_ && *q == '.') {
    plain_integer = false;
    ++q;
    if (q == end_ || !IsDigit(*q)) return FailAt(start, "invalid number");
    while (q < end_ && IsDigit(*q)) ++q;
  }
  if (q < end_ && (*q == 'e' || *q == 'E')) {
    plain_integer = false;
    ++q;
    if (q < end_ && (*q == '+' || *q == '-')) ++q;
    if (q == end_ || !IsDigit(*q)) return FailAt(start, "invalid number");
    while (q < end_ && IsDigit(*q)) ++q;
  }
  if (plain_integer && digits <= 18) {
    out->integer = negative ? -static_cast<int64_t>(magnitude) : static_cast<int64_t>(magnitude);
    out->value = static_cast<double>(out->integer);
    out->is_integer = true;
    p_ = q;
    return true;
  }
  const auto [ptr, ec] = std::from_chars(start, q, out->value);
  if (ec != std::errc() || ptr != q || !std::isfinite(out->value)) {
    return FailAt(start, "number out of range");
  }
  out->is_integer = false;
  if (plain_integer) {
    const auto [iptr, iec] = std::from_chars(start, q, out->integer);
    out->is_integer = iec == std::errc() && iptr == q;
  }
  if (!out->is_integer && out->value == std::floor(out->value) &&
      std::fabs(out->value) < kExactIntegerLimit) {
    out->is_integer = true;
    out->integer = static_cast<int64_t>(out->value);
  }
  p_ = q;
  return true;
}

bool JsonScanner::ReadLiteral(absl::string_view literal) {
  SkipSpace();
  if (static_cast<size_t>(end_ - p_) < literal.size() ||
      absl::string_view(p_, literal.size()) != literal) {
    return Fail("expected a value");
  }
  p_ += literal.size();
  return true;
}

bool JsonScanner::ReadNull() { return ReadLiteral("null"); }

bool JsonScanner::ReadBool(bool* value) {
  SkipSpace();
  *value = p_ < end_ && *p_ == 't';
  return ReadLiteral(*value ? "true" : "false");
}

bool JsonScanner::BeginObject(bool* empty) {
  if (!Expect('{')) return false;
  *empty = TryConsume('}');
  return true;
}

bool JsonScanner::NextMember(bool* done) {
  SkipSpace();
  if (p_ < end_ && *p_ == ',') {
    ++p_;
    *done = false;
    return true;
  }
  if (p_ < end_ && *p_ == '}') {
    ++p_;
    *done = true;
    return true;
  }
  return Fail("expected ',' or '}'");
}

bool JsonScanner::BeginArray(bool* empty) {
  if (!Expect('[')) return false;
  *empty = TryConsume(']');
  return true;
}

bool JsonScanner::NextElement(bool* done) {
  SkipSpace();
  if (p_ < end_ && *p_ == ',') {
    ++p_;
    *done = false;
    return true;
  }
  if (p_ < end_ && *p_ == ']') {
    ++p_;
    *done = true;
    return true;
  }
  return Fail("expected ',' or ']'");
}

bool JsonScanner::SkipValue(int depth) {
  if (depth > kMaxDepth) return Fail("values nested too deeply");
  JsonType type;
  if (!PeekType(&type)) return false;
  switch (type) {
    case JsonType::kString:
      return SkipString();
    case JsonType::kNumber: {
      JsonNumber ignored;
      return ReadNumber(&ignored);
    }
    case JsonType::kTrue:
      return ReadLiteral("true");
    case JsonType::kFalse:
      return ReadLiteral("false");
    case JsonType::kNull:
      return ReadLiteral("null");
    case JsonType::kObject: {
      bool done = false;
      if (!BeginObject(&done)) return false;
      std::string scratch;
      while (!done) {
        absl::string_view key;
        if (!ReadKey(&key, &scratch) || !SkipValue(depth + 1) || !NextMember(&done)) return false;
      }
      return true;
    }
    case JsonType::kArray: {
      bool done = false;
      if (!BeginArray(&done)) return false;
      while (!done) {
        if (!SkipValue(depth + 1) || !NextElement(&done)) return false;
      }
      return true;
    }
  }
  return Fail("expected a value");
}

}  // namespace moecap::records
