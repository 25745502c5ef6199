// Tests of the text format's lexical rules: value formatting, escaping, name validation, UTF-8.
#include "common/telemetry/text_format.h"

#include <cmath>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moecap::telemetry {
namespace {

using ::testing::HasSubstr;

TEST(FormatValueTest, SpecialValuesUsePrometheusSpelling) {
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

TEST(FormatValueTest, IntegersHaveNoExponentNorDecimalPoint) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(-0.0), "0");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(-7), "-7");
  // 1e15 would be "1e+15" as shortest text; written out since it is an exact integer.
  EXPECT_EQ(FormatValue(1e15), "1000000000000000");
  // 2^53 - 1, the largest integer below the exact-integer limit.
  EXPECT_EQ(FormatValue(9007199254740991.0), "9007199254740991");
}

TEST(FormatValueTest, FractionsAndHugeValuesRoundTrip) {
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(0.4375), "0.4375");
  EXPECT_EQ(FormatValue(2.5e-7), "2.5e-07");
  EXPECT_EQ(FormatValue(1e20), "1e+20");
  for (double v : {1.0 / 3.0, 123456.789, 6.02214076e23, -1e-300}) {
    EXPECT_EQ(std::stod(FormatValue(v)), v) << FormatValue(v);
  }
}

TEST(EscapeTest, LabelValuesEscapeBackslashQuoteAndNewline) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue(R"(a\b"c)"
                             "\n"
                             "d"),
            R"(a\\b\"c\nd)");
}

TEST(EscapeTest, HelpEscapesBackslashAndNewlineButNotQuotes) {
  EXPECT_EQ(EscapeHelp("say \"hi\"\\\nbye"), "say \"hi\"\\\\\\nbye");
}

TEST(NameValidationTest, MetricNames) {
  EXPECT_TRUE(ValidateMetricName("moecap_agents").ok());
  EXPECT_TRUE(ValidateMetricName("_x:y_1").ok());
  EXPECT_FALSE(ValidateMetricName("").ok());
  EXPECT_FALSE(ValidateMetricName("1abc").ok());
  const absl::Status status = ValidateMetricName("moecap-agents");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("'-' at position 6"));
}

TEST(NameValidationTest, LabelNames) {
  EXPECT_TRUE(ValidateLabelName("job_id").ok());
  EXPECT_TRUE(ValidateLabelName("_private").ok());
  EXPECT_FALSE(ValidateLabelName("").ok());
  EXPECT_FALSE(ValidateLabelName("a:b").ok());  // colons are for metric names only
  EXPECT_FALSE(ValidateLabelName("9lives").ok());
  EXPECT_THAT(ValidateLabelName("__name__").message(), HasSubstr("reserved"));
}

TEST(Utf8Test, AcceptsValidAndRejectsMalformedText) {
  EXPECT_TRUE(ValidateUtf8("v", "ascii").ok());
  EXPECT_TRUE(ValidateUtf8("v", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80").ok());  // é € 🚀
  EXPECT_FALSE(ValidateUtf8("v", "\xff").ok());
  EXPECT_FALSE(ValidateUtf8("v", "\xc3").ok());              // truncated
  EXPECT_FALSE(ValidateUtf8("v", "\xc0\xaf").ok());          // overlong '/'
  EXPECT_FALSE(ValidateUtf8("v", "\xed\xa0\x80").ok());      // UTF-16 surrogate U+D800
  EXPECT_FALSE(ValidateUtf8("v", "\xf4\x90\x80\x80").ok());  // U+110000
  EXPECT_THAT(ValidateUtf8("model label", "ok\xfe").message(),
              HasSubstr("model label: not valid UTF-8 (at byte 2)"));
}

}  // namespace
}  // namespace moecap::telemetry
