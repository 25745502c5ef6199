// ParseYamlTree: node kinds, text and lines as YAML has them; nulls plain only; keys kept in
// order (twice if given twice); aliases copied; the first document only; errors with the line;
// limits on depth and on alias expansion.
#include "common/plan/yaml_tree.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace moecap {
namespace {

using ::testing::HasSubstr;

YamlNode Parse(const std::string& text) {
  absl::StatusOr<YamlNode> tree = ParseYamlTree(text, "t.yaml");
  EXPECT_TRUE(tree.ok()) << tree.status();
  return tree.ok() ? *tree : YamlNode{};
}

std::string Error(const std::string& text, const YamlTreeLimits& limits = {}) {
  absl::StatusOr<YamlNode> tree = ParseYamlTree(text, "t.yaml", limits);
  EXPECT_FALSE(tree.ok());
  EXPECT_EQ(tree.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(tree.status().message());
}

TEST(YamlTreeTest, KindsTextAndLines) {
  const YamlNode root = Parse(
      "a: 1\n"
      "b: [x, 'y z']\n"
      "c:\n"
      "  - ~\n"
      "  - \"null\"\n"
      "  -\n"
      "d: NULL\n"
      "e: \"tab\\there\"\n"
      "f: |\n"
      "  one\n"
      "  two\n");
  ASSERT_TRUE(root.IsMap());
  ASSERT_EQ(root.entries(), 6u);
  EXPECT_EQ(root.key(0).scalar, "a");
  EXPECT_TRUE(root.value(0).IsScalar());
  EXPECT_EQ(root.value(0).scalar, "1");
  EXPECT_EQ(root.value(0).line, 1);
  const YamlNode& b = root.value(1);
  ASSERT_TRUE(b.IsSequence());
  EXPECT_EQ(b.line, 2);
  ASSERT_EQ(b.items.size(), 2u);
  EXPECT_EQ(b.items[1].scalar, "y z");
  const YamlNode& c = root.value(2);
  ASSERT_TRUE(c.IsSequence());
  EXPECT_EQ(c.line, 4);
  ASSERT_EQ(c.items.size(), 3u);
  EXPECT_TRUE(c.items[0].IsNull());    // ~
  EXPECT_TRUE(c.items[1].IsScalar());  // "null" quoted is text
  EXPECT_EQ(c.items[1].scalar, "null");
  EXPECT_TRUE(c.items[2].IsNull());     // nothing
  EXPECT_TRUE(root.value(3).IsNull());  // NULL
  EXPECT_EQ(root.value(4).scalar, "tab\there");
  EXPECT_EQ(root.value(5).scalar, "one\ntwo\n");
  EXPECT_EQ(root.key(5).line, 9);
}

TEST(YamlTreeTest, KeysStayInOrderAndTwiceWhenGivenTwice) {
  const YamlNode root = Parse("z: 1\na: 2\nz: 3\n");
  ASSERT_EQ(root.entries(), 3u);
  EXPECT_EQ(root.key(0).scalar, "z");
  EXPECT_EQ(root.key(1).scalar, "a");
  EXPECT_EQ(root.key(2).scalar, "z");
  EXPECT_EQ(root.value(2).scalar, "3");
}

TEST(YamlTreeTest, AliasesAreCopiesOfTheirAnchors) {
  const YamlNode root = Parse("base: &b {x: 1, y: [2, 3]}\ncopy: *b\nword: &w hi\nagain: *w\n");
  ASSERT_EQ(root.entries(), 4u);
  const YamlNode& copy = root.value(1);
  ASSERT_TRUE(copy.IsMap());
  ASSERT_EQ(copy.entries(), 2u);
  EXPECT_EQ(copy.key(1).scalar, "y");
  EXPECT_EQ(copy.value(1).items[1].scalar, "3");
  EXPECT_EQ(root.value(3).scalar, "hi");
  EXPECT_EQ(Error("a: *nope\n"),
            "t.yaml:1: YAML syntax error: alias '*nope' names no anchor "
            "before it");
}

TEST(YamlTreeTest, NoDocumentIsNullAndOnlyTheFirstDocumentIsRead) {
  EXPECT_TRUE(Parse("").IsNull());
  EXPECT_TRUE(Parse("# only a comment\n").IsNull());
  const YamlNode first = Parse("a: 1\n---\nb: [unclosed\n");
  ASSERT_TRUE(first.IsMap());
  ASSERT_EQ(first.entries(), 1u);
  EXPECT_EQ(first.key(0).scalar, "a");
  EXPECT_TRUE(Parse("just text\n").IsScalar());
}

TEST(YamlTreeTest, SyntaxErrorsNameTheLineAndTheProblem) {
  // The badly indented key is on line 4; the mapping it breaks began on line 1.
  EXPECT_EQ(Error("name: a\nworkload:\n  prompt_len: 5\n iterations: 3\n"),
            "t.yaml:4: YAML syntax error: did not find expected key (while parsing a block "
            "mapping at line 1)");
  EXPECT_THAT(Error("a: [1, 2\nb: 3\n"), HasSubstr("t.yaml:"));
  EXPECT_THAT(Error("a: \"\\ud800\"\n"), HasSubstr("t.yaml:1: YAML syntax error: "));
  EXPECT_EQ(Error("a: b\xff\n"),
            "t.yaml:1: YAML syntax error: invalid leading UTF-8 octet (the text must be UTF-8)");
}

TEST(YamlTreeTest, DepthAndAliasExpansionAreBounded) {
  const std::string deep = std::string(200, '[') + std::string(200, ']');
  EXPECT_EQ(Error(deep), "t.yaml:1: YAML syntax error: nested deeper than 128 levels");
  EXPECT_TRUE(ParseYamlTree(deep, "t.yaml", YamlTreeLimits{.max_depth = 256}).ok());
  // Nine levels of ten aliases each: 10^9 nodes from a few hundred bytes.
  std::string laughs = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    const std::string prev = "*l" + std::to_string(i - 1);
    laughs += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) laughs += (k > 0 ? ", " : "") + prev;
    laughs += "]\n";
  }
  EXPECT_THAT(Error(laughs), HasSubstr("YAML syntax error: more than 1000000 nodes (aliases "
                                       "count as the copies they make)"));
  EXPECT_THAT(Error("a: &a [x, x]\nb: [*a, *a]\n", YamlTreeLimits{.max_nodes = 8}),
              HasSubstr("t.yaml:2: YAML syntax error: more than 8 nodes"));
  EXPECT_TRUE(
      ParseYamlTree("a: &a [x, x]\nb: [*a, *a]\n", "t.yaml", YamlTreeLimits{.max_nodes = 13}).ok());
}

}  // namespace
}  // namespace moecap
