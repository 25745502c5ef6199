// ParseYamlTree: libyaml's events assembled into YamlNodes.
#include "common/plan/yaml_tree.h"

#include <yaml.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace moecap {
namespace {

// Owns a parser or an event for the scope (libyaml is C: nothing frees itself).
class Parser {
 public:
  explicit Parser(absl::string_view text) {
    ok_ = yaml_parser_initialize(&parser_) != 0;
    if (ok_) {
      yaml_parser_set_input_string(&parser_, reinterpret_cast<const unsigned char*>(text.data()),
                                   text.size());
    }
  }
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;
  ~Parser() {
    if (ok_) yaml_parser_delete(&parser_);
  }
  bool ok() const { return ok_; }
  yaml_parser_t* get() { return &parser_; }

 private:
  yaml_parser_t parser_{};
  bool ok_ = false;
};

class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() { Clear(); }
  // The next event; false on a parse error (the parser says which).
  bool Next(yaml_parser_t* parser) {
    Clear();
    set_ = yaml_parser_parse(parser, &event_) != 0;
    return set_;
  }
  const yaml_event_t& operator*() const { return event_; }
  const yaml_event_t* operator->() const { return &event_; }

 private:
  void Clear() {
    if (set_) yaml_event_delete(&event_);
    set_ = false;
  }
  yaml_event_t event_{};
  bool set_ = false;
};

std::string Text(const yaml_char_t* s) {
  return s == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(s));
}

bool IsPlainNull(const yaml_event_t& e) {
  if (e.data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
  const absl::string_view v(reinterpret_cast<const char*>(e.data.scalar.value),
                            e.data.scalar.length);
  return v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL";
}

size_t CountNodes(const YamlNode& n) {
  size_t count = 1;
  for (const YamlNode& item : n.items) count += CountNodes(item);
  return count;
}

class TreeBuilder {
 public:
  TreeBuilder(absl::string_view text, absl::string_view origin, const YamlTreeLimits& limits)
      : text_(text), origin_(origin), limits_(limits) {}

  absl::StatusOr<YamlNode> Build() {
    Parser parser(text_);
    if (!parser.ok()) return absl::ResourceExhaustedError("libyaml: cannot make a parser");
    Event event;
    while (true) {
      if (!event.Next(parser.get())) return SyntaxError(*parser.get());
      const int line = static_cast<int>(event->start_mark.line) + 1;
      switch (event->type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_NO_EVENT:
          break;
        case YAML_STREAM_END_EVENT:
          return YamlNode{};  // no document
        case YAML_DOCUMENT_END_EVENT:
          // The first document is the text (a second one is not read).
          return root_.has_value() ? *std::move(root_) : YamlNode{};
        case YAML_SCALAR_EVENT: {
          YamlNode node;
          node.line = line;
          if (!IsPlainNull(*event)) {
            node.kind = YamlNode::Kind::kScalar;
            node.scalar.assign(reinterpret_cast<const char*>(event->data.scalar.value),
                               event->data.scalar.length);
          }
          if (absl::Status s = Add(std::move(node), Text(event->data.scalar.anchor), line);
              !s.ok()) {
            return s;
          }
          break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
          if (static_cast<int>(open_.size()) >= limits_.max_depth) {
            return Error(line, absl::StrCat("nested deeper than ", limits_.max_depth, " levels"));
          }
          const bool sequence = event->type == YAML_SEQUENCE_START_EVENT;
          Open open;
          open.node.kind = sequence ? YamlNode::Kind::kSequence : YamlNode::Kind::kMapping;
          open.node.line = line;
          open.anchor =
              Text(sequence ? event->data.sequence_start.anchor : event->data.mapping_start.anchor);
          open_.push_back(std::move(open));
          break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
          Open done = std::move(open_.back());
          open_.pop_back();
          if (absl::Status s = Add(std::move(done.node), done.anchor, line); !s.ok()) return s;
          break;
        }
        case YAML_ALIAS_EVENT: {
          const std::string name = Text(event->data.alias.anchor);
          auto it = anchors_.find(name);
          if (it == anchors_.end()) {
            return Error(line, absl::StrCat("alias '*", name, "' names no anchor before it"));
          }
          if (absl::Status s = Add(it->second.node, "", line, it->second.nodes - 1); !s.ok()) {
            return s;
          }
          break;
        }
      }
    }
  }

 private:
  struct Open {
    YamlNode node;
    std::string anchor;
  };
  struct Anchored {
    YamlNode node;
    size_t nodes = 0;  // in the subtree
  };

  // Adds a finished node to the open collection (or makes it the document); `extra` nodes
  // beyond the one come with it (an alias's copy).
  absl::Status Add(YamlNode node, const std::string& anchor, int line, size_t extra = 0) {
    nodes_ += 1 + extra;
    if (nodes_ > limits_.max_nodes) {
      return Error(line, absl::StrCat("more than ", limits_.max_nodes,
                                      " nodes (aliases count as the copies they make)"));
    }
    if (!anchor.empty()) anchors_[anchor] = Anchored{node, CountNodes(node)};
    if (open_.empty()) {
      root_ = std::move(node);
    } else {
      open_.back().node.items.push_back(std::move(node));
    }
    return absl::OkStatus();
  }

  absl::Status Error(int line, absl::string_view problem) const {
    return absl::InvalidArgumentError(
        absl::StrCat(origin_, ":", line, ": YAML syntax error: ", problem));
  }

  absl::Status SyntaxError(const yaml_parser_t& p) const {
    if (p.error == YAML_MEMORY_ERROR) return absl::ResourceExhaustedError("libyaml: out of memory");
    std::string problem = p.problem != nullptr ? p.problem : "malformed YAML";
    int line = static_cast<int>(p.problem_mark.line) + 1;
    if (p.error == YAML_READER_ERROR) {
      // The reader's marks are not set: the line is the one holding the offending byte.
      const size_t offset = std::min(p.problem_offset, text_.size());
      line = 1 + static_cast<int>(std::count(text_.begin(), text_.begin() + offset, '\n'));
      problem += " (the text must be UTF-8)";
    } else if (p.context != nullptr) {
      absl::StrAppend(&problem, " (", p.context, " at line ", p.context_mark.line + 1, ")");
    }
    return Error(line, problem);
  }

  const absl::string_view text_;
  const absl::string_view origin_;
  const YamlTreeLimits& limits_;
  std::vector<Open> open_;
  std::optional<YamlNode> root_;
  std::map<std::string, Anchored> anchors_;
  size_t nodes_ = 0;
};

}  // namespace

absl::StatusOr<YamlNode> ParseYamlTree(absl::string_view text, absl::string_view origin,
                                       const YamlTreeLimits& limits) {
  return TreeBuilder(text, origin, limits).Build();
}

}  // namespace moecap
