// The in-place JSON scanner: values, escapes, numbers, and the column of the first syntax error.
#include "common/records/json_scanner.h"

#include <gtest/gtest.h>

#include <string>

namespace moecap::records {
namespace {

TEST(JsonScannerTest, ReadsAnObjectMemberByMember) {
  JsonScanner s(R"( {"a": 1, "b\u00e9": "x\ny", "c": [true, null, {"d": -2.5e1}]} )");
  bool done = false;
  ASSERT_TRUE(s.BeginObject(&done));
  ASSERT_FALSE(done);
  absl::string_view key;
  std::string scratch, value;
  ASSERT_TRUE(s.ReadKey(&key, &scratch));
  EXPECT_EQ(key, "a");
  JsonNumber n;
  ASSERT_TRUE(s.ReadNumber(&n));
  EXPECT_TRUE(n.is_integer);
  EXPECT_EQ(n.integer, 1);
  ASSERT_TRUE(s.NextMember(&done));
  ASSERT_TRUE(s.ReadKey(&key, &scratch));
  EXPECT_EQ(key, "b\xc3\xa9");  // \u00e9 decoded to UTF-8
  ASSERT_TRUE(s.ReadString(&value));
  EXPECT_EQ(value, "x\ny");
  ASSERT_TRUE(s.NextMember(&done));
  ASSERT_TRUE(s.ReadKey(&key, &scratch));
  EXPECT_EQ(key, "c");
  ASSERT_TRUE(s.SkipValue());
  ASSERT_TRUE(s.NextMember(&done));
  EXPECT_TRUE(done);
  EXPECT_TRUE(s.AtEnd());
}

TEST(JsonScannerTest, NumbersKnowWhetherTheyAreWhole) {
  struct Case {
    const char* text;
    bool is_integer;
    double value;
  };
  for (const Case& c : {Case{"32", true, 32}, Case{"32.0", true, 32}, Case{"3.2e1", true, 32},
                        Case{"2.5", false, 2.5}, Case{"-0", true, 0}, Case{"1e300", false, 1e300},
                        Case{"-7", true, -7}}) {
    JsonScanner s(c.text);
    JsonNumber n;
    ASSERT_TRUE(s.ReadNumber(&n)) << c.text;
    EXPECT_EQ(n.is_integer, c.is_integer) << c.text;
    EXPECT_DOUBLE_EQ(n.value, c.value) << c.text;
  }
}

TEST(JsonScannerTest, SurrogatePairsBecomeOneCodePoint) {
  JsonScanner s(R"("\ud83d\ude00")");
  std::string value;
  ASSERT_TRUE(s.ReadString(&value));
  EXPECT_EQ(value, "\xf0\x9f\x98\x80");  // U+1F600
}

TEST(JsonScannerTest, ReportsTheColumnOfTheFirstError) {
  struct Case {
    const char* text;
    size_t column;
    const char* what;
  };
  for (const Case& c : {
           Case{R"({"a" 1})", 6, "expected ':'"},
           Case{R"({"a": 01})", 8, "expected ',' or '}'"},  // a leading zero ends the number
           Case{R"({"a": [1, 2})", 12, "expected ',' or ']'"},
           Case{R"({"a": "x)", 9, "unterminated string"},
           Case{R"({"a": "\q"})", 8, "invalid escape in a string"},
           Case{R"({"a": NaN})", 7, "expected a value"},
           Case{R"({"a": 1.})", 7, "invalid number"},
           Case{R"({"a": "\ud800"})", 8, "unpaired \\u surrogate"},
           Case{R"({a: 1})", 2, "expected a member name in double quotes"},
       }) {
    JsonScanner s(c.text);
    EXPECT_FALSE(s.SkipValue()) << c.text;
    EXPECT_EQ(s.error_column(), c.column) << c.text;
    EXPECT_EQ(s.error_what(), c.what) << c.text;
  }
}

TEST(JsonScannerTest, RejectsControlCharactersAndDeepNesting) {
  JsonScanner raw_newline("\"a\nb\"");
  EXPECT_FALSE(raw_newline.SkipValue());
  EXPECT_EQ(raw_newline.error_what(), "control character in a string");

  const std::string deep =
      std::string(JsonScanner::kMaxDepth + 2, '[') + std::string(JsonScanner::kMaxDepth + 2, ']');
  JsonScanner nested(deep);
  EXPECT_FALSE(nested.SkipValue());
  EXPECT_EQ(nested.error_what(), "values nested too deeply");

  const std::string ok =
      std::string(JsonScanner::kMaxDepth, '[') + std::string(JsonScanner::kMaxDepth, ']');
  JsonScanner shallow(ok);
  EXPECT_TRUE(shallow.SkipValue());
}

}  // namespace
}  // namespace moecap::records
