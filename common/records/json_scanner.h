// A small, strict JSON scanner for the one-object-per-line files serving systems write. It reads
// values in place (no document tree), so a records file is parsed at several hundred MB/s, and it
// reports the column of the first syntax error. The record and vLLM-result parsers build on it.
#ifndef MOECAP_COMMON_RECORDS_JSON_SCANNER_H_
#define MOECAP_COMMON_RECORDS_JSON_SCANNER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace moecap::records {

enum class JsonType { kObject, kArray, kString, kNumber, kTrue, kFalse, kNull };

// "an object", "a string", ...: how error messages name what they found.
absl::string_view JsonTypeName(JsonType type);

struct JsonNumber {
  double value = 0;
  // The value is a whole number that an int64 holds exactly (written "32", "32.0" or "3.2e1").
  bool is_integer = false;
  int64_t integer = 0;
};

// Reads one JSON text from a buffer. Every Read/Skip function returns false on a syntax error and
// records the first one (error_column(), error_what()); after a failure the scanner's position is
// unspecified. Not thread-safe; cheap to construct.
class JsonScanner {
 public:
  // Values nested deeper than this are rejected rather than recursed into.
  static constexpr int kMaxDepth = 64;

  explicit JsonScanner(absl::string_view text)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()) {}

  void SkipSpace();
  // True when only whitespace is left.
  bool AtEnd();
  // The type of the next value, after whitespace; false (a syntax error) when no value starts
  // there.
  bool PeekType(JsonType* type);
  // Consumes `c` after whitespace; false (a syntax error naming `c`) when the next byte differs.
  bool Expect(char c);
  // Consumes `c` after whitespace when it is next; never an error.
  bool TryConsume(char c);

  // Reads a string (the next value must be one) into `out`, escapes decoded (\uXXXX to UTF-8).
  bool ReadString(std::string* out);
  // Reads an object key and the ':' after it. `key` points into the text when the key has no
  // escapes, else into `scratch`.
  bool ReadKey(absl::string_view* key, std::string* scratch);
  bool ReadNumber(JsonNumber* out);
  bool ReadNull();
  bool ReadBool(bool* value);
  // Skips any value, checking its syntax.
  bool SkipValue() { return SkipValue(0); }

  // Iterating an object: call BeginObject, then NextMember until it sets `done`; after each key
  // the caller reads or skips the value. Arrays likewise with BeginArray / NextElement.
  bool BeginObject(bool* empty);
  bool NextMember(bool* done);  // after a member's value: ',' (more) or '}' (done)
  bool BeginArray(bool* empty);
  bool NextElement(bool* done);

  // 1-based byte column of the next byte to read.
  size_t column() const { return static_cast<size_t>(p_ - begin_) + 1; }
  size_t error_column() const { return error_column_; }
  const std::string& error_what() const { return error_what_; }

 private:
  bool SkipValue(int depth);
  bool SkipString();
  bool ReadLiteral(absl::string_view literal);
  bool Fail(absl::string_view what);
  bool FailAt(const char* where, absl::string_view what);

  const char* begin_;
  const char* p_;
  const char* end_;
  size_t error_column_ = 0;
  std::string error_what_;
};

}  // namespace moecap::records

#endif  // MOECAP_COMMON_RECORDS_JSON_SCANNER_H_
