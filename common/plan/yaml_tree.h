// A YAML document read into a plain tree, with libyaml's event parser: node kinds, scalar text,
// items in order and the line of each node, which is all the YAML -> protobuf walker
// (yaml_proto.h) needs. yaml-cpp's document graph cost about three quarters of a SubmitPlan's
// instructions (docs/load.md); libyaml's parser and this tree a fraction of that
// (common/plan/bench/plan_parse_bench.cc). yaml-cpp still writes YAML (MessageToYaml) and reads
// the catalog, which is read once at startup.
#ifndef MOECAP_COMMON_PLAN_YAML_TREE_H_
#define MOECAP_COMMON_PLAN_YAML_TREE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace moecap {

struct YamlNode {
  enum class Kind { kNull, kScalar, kSequence, kMapping };
  Kind kind = Kind::kNull;
  // kScalar: the text as written, quotes and escapes resolved. A plain (unquoted) "", "~",
  // "null", "Null" or "NULL" is kNull, as YAML's core schema has it; quoted it is a string.
  std::string scalar;
  // kSequence: the items; kMapping: key, value, key, value, ... in the order written (a key
  // given twice appears twice: the reader decides).
  std::vector<YamlNode> items;
  int line = 0;  // 1-based, where the node starts

  bool IsNull() const { return kind == Kind::kNull; }
  bool IsScalar() const { return kind == Kind::kScalar; }
  bool IsSequence() const { return kind == Kind::kSequence; }
  bool IsMap() const { return kind == Kind::kMapping; }
  // Mapping entries.
  size_t entries() const { return items.size() / 2; }
  const YamlNode& key(size_t i) const { return items[2 * i]; }
  const YamlNode& value(size_t i) const { return items[2 * i + 1]; }
};

struct YamlTreeLimits {
  int max_depth = 128;  // nested sequences and mappings
  // Nodes in all, aliases counted as the copies they make, so that a small text cannot expand
  // into an unbounded tree ("billion laughs").
  size_t max_nodes = 1'000'000;
};

// The first document of `text` (a text without one, e.g. only comments, is one null node).
// Errors are InvalidArgument "ORIGIN:LINE: YAML syntax error: PROBLEM (CONTEXT at line N)", and
// the same for an undefined alias or a limit passed.
absl::StatusOr<YamlNode> ParseYamlTree(absl::string_view text, absl::string_view origin,
                                       const YamlTreeLimits& limits = {});

}  // namespace moecap

#endif  // MOECAP_COMMON_PLAN_YAML_TREE_H_
