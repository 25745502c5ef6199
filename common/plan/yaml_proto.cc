// YAML <-> protobuf by reflection (see yaml_proto.h for the YAML form).
#include "common/plan/yaml_proto.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/catalog.h"
#include "common/plan/yaml_tree.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// "AttentionKind" -> "ATTENTION_KIND": the prefix protobuf style gives an enum's values.
std::string UpperSnake(absl::string_view camel) {
  std::string out;
  for (size_t i = 0; i < camel.size(); ++i) {
    const char c = camel[i];
    if (i > 0 && absl::ascii_isupper(c) &&
        (absl::ascii_islower(camel[i - 1]) || absl::ascii_isdigit(camel[i - 1]))) {
      out.push_back('_');
    }
    out.push_back(absl::ascii_toupper(c));
  }
  return out;
}

std::string EnumPrefix(const EnumDescriptor& e) { return UpperSnake(e.name()) + "_"; }

bool IsUnspecified(const EnumValueDescriptor& v) {
  return absl::EndsWith(v.name(), "_UNSPECIFIED");
}

// A message whose only field is a list may be written as that list.
const FieldDescriptor* ListShorthandField(const Descriptor& d) {
  if (d.field_count() != 1) return nullptr;
  const FieldDescriptor* f = d.field(0);
  return f->is_repeated() && !f->is_map() ? f : nullptr;
}

std::string Describe(const YamlNode& v) {
  if (v.IsNull()) return "nothing";
  if (v.IsSequence()) return "a list";
  if (v.IsMap()) return "a mapping";
  return absl::StrCat("'", v.scalar, "'");
}

std::string EnumChoices(const EnumDescriptor& e) {
  std::vector<std::string> names;
  for (int i = 0; i < e.value_count(); ++i) {
    if (!IsUnspecified(*e.value(i))) names.push_back(EnumValueShortName(*e.value(i)));
  }
  return absl::StrJoin(names, ", ");
}

// "80GiB", "1.5 GB", "512 MiB": bytes. nullopt when the text is not a size.
std::optional<double> ParseByteSize(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  size_t unit_start = text.size();
  while (unit_start > 0 && absl::ascii_isalpha(text[unit_start - 1])) --unit_start;
  const absl::string_view number = absl::StripAsciiWhitespace(text.substr(0, unit_start));
  const std::string unit = absl::AsciiStrToLower(text.substr(unit_start));
  static constexpr std::pair<absl::string_view, double> kUnits[] = {
      {"b", 1},           {"kb", 1e3},           {"mb", 1e6},
      {"gb", 1e9},        {"tb", 1e12},          {"kib", 1024.0},
      {"mib", 1048576.0}, {"gib", 1073741824.0}, {"tib", 1099511627776.0}};
  double scale = 0;
  for (const auto& [name, factor] : kUnits) {
    if (unit == name) scale = factor;
  }
  double value = 0;
  if (scale == 0 || number.empty() || !absl::SimpleAtod(number, &value) || !std::isfinite(value) ||
      value < 0) {
    return std::nullopt;
  }
  return std::round(value * scale);
}

class YamlToProto {
 public:
  YamlToProto(absl::string_view origin, const YamlProtoOptions& options)
      : origin_(origin), options_(options) {}

  absl::Status ParseMessage(const YamlNode& node, const std::string& path, Message* msg) {
    const Descriptor& d = *msg->GetDescriptor();
    if (node.IsNull()) return absl::OkStatus();  // present and empty
    if (const FieldDescriptor* list = ListShorthandField(d); list != nullptr && !node.IsMap()) {
      return ParseField(node, path, msg, list);
    }
    if (node.IsScalar()) return OneofShorthand(node, path, msg);
    if (!node.IsMap()) return Error(path, absl::StrCat("expected a mapping, got ", Describe(node)));

    std::set<int> seen;
    std::map<const google::protobuf::OneofDescriptor*, const FieldDescriptor*> oneof_members;
    for (size_t i = 0; i < node.entries(); ++i) {
      if (!node.key(i).IsScalar()) {
        return Error(path,
                     absl::StrCat("expected field names as keys, got ", Describe(node.key(i))));
      }
      const std::string& key = node.key(i).scalar;
      const std::string child = Child(path, key);
      const FieldDescriptor* f = FindField(d, key);
      if (f == nullptr) return Error(child, UnknownFieldReason(d, key));
      if (!seen.insert(f->number()).second) return Error(child, "given twice");
      if (const auto* oneof = f->real_containing_oneof(); oneof != nullptr) {
        auto [it, inserted] = oneof_members.emplace(oneof, f);
        if (!inserted) {
          return Error(child,
                       absl::StrCat("'", it->second->name(), "' and '", f->name(),
                                    "' are alternatives (", oneof->name(), "); give only one"));
        }
      }
      MOECAP_RETURN_IF_ERROR(ParseField(node.value(i), Child(path, f->name()), msg, f));
    }
    return absl::OkStatus();
  }

 private:
  static std::string Child(const std::string& path, absl::string_view name) {
    return path.empty() ? std::string(name) : absl::StrCat(path, ".", name);
  }

  absl::Status Error(const std::string& path, absl::string_view reason) const {
    if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(origin_, ": ", reason));
    return absl::InvalidArgumentError(absl::StrCat(origin_, ": field '", path, "': ", reason));
  }

  static const FieldDescriptor* FindField(const Descriptor& d, absl::string_view key) {
    std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(key));
    std::replace(name.begin(), name.end(), '-', '_');
    return d.FindFieldByName(name);
  }

  static std::string UnknownFieldReason(const Descriptor& d, absl::string_view key) {
    std::vector<std::string> names;
    for (int i = 0; i < d.field_count(); ++i) names.push_back(d.field(i)->name());
    std::vector<std::string> nearest = NearestNames(key, names, 1);
    if (!nearest.empty()) return absl::StrCat("unknown field (did you mean '", nearest[0], "'?)");
    return absl::StrCat("unknown field (known fields: ", absl::StrJoin(names, ", "), ")");
  }

  // `routing: uniform` sets the oneof member `uniform` (a message) present and empty.
  absl::Status OneofShorthand(const YamlNode& node, const std::string& path, Message* msg) {
    const Descriptor& d = *msg->GetDescriptor();
    std::vector<std::string> members;
    for (int i = 0; i < d.field_count(); ++i) {
      const FieldDescriptor* f = d.field(i);
      if (f->real_containing_oneof() != nullptr &&
          f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        members.push_back(f->name());
      }
    }
    if (members.empty()) {
      return Error(path, absl::StrCat("expected a mapping, got ", Describe(node)));
    }
    const FieldDescriptor* f = FindField(d, node.scalar);
    if (f == nullptr || f->real_containing_oneof() == nullptr ||
        f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      return Error(path, absl::StrCat("expected a mapping or one of ", absl::StrJoin(members, ", "),
                                      ", got ", Describe(node)));
    }
    msg->GetReflection()->MutableMessage(msg, f);
    return absl::OkStatus();
  }

  absl::Status ParseField(const YamlNode& node, const std::string& path, Message* msg,
                          const FieldDescriptor* f) {
    if (f->is_map()) return ParseMap(node, path, msg, f);
    if (!f->is_repeated()) return ParseValue(node, path, msg, f, /*add=*/false);
    if (node.IsSequence()) {
      for (size_t i = 0; i < node.items.size(); ++i) {
        MOECAP_RETURN_IF_ERROR(
            ParseValue(node.items[i], absl::StrCat(path, "[", i, "]"), msg, f, true));
      }
      return absl::OkStatus();
    }
    if (node.IsNull()) return Error(path, "expected a list, got nothing");
    return ParseValue(node, path, msg, f, /*add=*/true);  // one value: a one-element list
  }

  absl::Status ParseMap(const YamlNode& node, const std::string& path, Message* msg,
                        const FieldDescriptor* f) {
    if (node.IsNull()) return absl::OkStatus();
    if (!node.IsMap()) return Error(path, absl::StrCat("expected a mapping, got ", Describe(node)));
    const Descriptor& entry_type = *f->message_type();
    const FieldDescriptor* key_field = entry_type.map_key();
    const FieldDescriptor* value_field = entry_type.map_value();
    std::set<std::string> seen;
    for (size_t i = 0; i < node.entries(); ++i) {
      if (!node.key(i).IsScalar()) {
        return Error(path, absl::StrCat("expected scalar keys, got ", Describe(node.key(i))));
      }
      const std::string& key = node.key(i).scalar;
      const std::string child = Child(path, key);
      if (!seen.insert(key).second) return Error(child, "given twice");
      Message* entry = msg->GetReflection()->AddMessage(msg, f);
      MOECAP_RETURN_IF_ERROR(ParseValue(node.key(i), child, entry, key_field, false));
      MOECAP_RETURN_IF_ERROR(ParseValue(node.value(i), child, entry, value_field, false));
    }
    return absl::OkStatus();
  }

  absl::Status ParseValue(const YamlNode& node, const std::string& path, Message* msg,
                          const FieldDescriptor* f, bool add) {
    const Reflection* r = msg->GetReflection();
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      Message* sub = add ? r->AddMessage(msg, f) : r->MutableMessage(msg, f);
      return ParseMessage(node, path, sub);
    }
    const absl::string_view expected = Expected(*f);
    if (!node.IsScalar()) {
      std::string what = f->cpp_type() == FieldDescriptor::CPPTYPE_ENUM
                             ? absl::StrCat("one of ", EnumChoices(*f->enum_type()))
                             : std::string(expected);
      return Error(path, absl::StrCat("expected ", what, ", got ", Describe(node)));
    }
    const std::string& text = node.scalar;
    const auto bad = [&](absl::string_view reason) {
      return Error(path, absl::StrCat(reason, ", got '", text, "'"));
    };
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t v = 0;
        if (!ParseSigned(text, f, &v)) return bad(absl::StrCat("expected ", expected));
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT32 &&
            (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())) {
          return bad("out of range for a 32-bit integer");
        }
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT32) {
          add ? r->AddInt32(msg, f, static_cast<int32_t>(v))
              : r->SetInt32(msg, f, static_cast<int32_t>(v));
        } else {
          add ? r->AddInt64(msg, f, v) : r->SetInt64(msg, f, v);
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_UINT32:
      case FieldDescriptor::CPPTYPE_UINT64: {
        uint64_t v = 0;
        if (!ParseUnsigned(text, f, &v)) return bad(absl::StrCat("expected ", expected));
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_UINT32) {
          if (v > std::numeric_limits<uint32_t>::max()) {
            return bad("out of range for a 32-bit integer");
          }
          add ? r->AddUInt32(msg, f, static_cast<uint32_t>(v))
              : r->SetUInt32(msg, f, static_cast<uint32_t>(v));
        } else {
          add ? r->AddUInt64(msg, f, v) : r->SetUInt64(msg, f, v);
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: {
        double v = 0;
        if (!absl::SimpleAtod(text, &v)) return bad("expected a number");
        if (!std::isfinite(v)) return bad("expected a finite number");
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
          add ? r->AddDouble(msg, f, v) : r->SetDouble(msg, f, v);
        } else {
          if (std::fabs(v) > std::numeric_limits<float>::max()) return bad("out of range");
          add ? r->AddFloat(msg, f, static_cast<float>(v))
              : r->SetFloat(msg, f, static_cast<float>(v));
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_BOOL: {
        const std::string lower = absl::AsciiStrToLower(text);
        bool v;
        if (lower == "true" || lower == "yes" || lower == "on") {
          v = true;
        } else if (lower == "false" || lower == "no" || lower == "off") {
          v = false;
        } else {
          return bad("expected true or false");
        }
        add ? r->AddBool(msg, f, v) : r->SetBool(msg, f, v);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_STRING:
        // UTF-8 always: the reader refuses other bytes, and escapes give valid code points.
        add ? r->AddString(msg, f, text) : r->SetString(msg, f, text);
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_ENUM: {
        const EnumDescriptor& e = *f->enum_type();
        std::optional<int> number = FindEnum(e, text);
        if (!number && options_.enum_alias) number = options_.enum_alias(e, text);
        if (!number) return bad(absl::StrCat("expected one of ", EnumChoices(e)));
        add ? r->AddEnumValue(msg, f, *number) : r->SetEnumValue(msg, f, *number);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;  // handled above
    }
    return Error(path, "unsupported field type");
  }

  static absl::string_view Expected(const FieldDescriptor& f) {
    switch (f.cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64:
        return "an integer";
      case FieldDescriptor::CPPTYPE_UINT32:
      case FieldDescriptor::CPPTYPE_UINT64:
        return IsByteField(f) ? "a non-negative integer or a size like 80GiB"
                              : "a non-negative integer";
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT:
        return "a number";
      case FieldDescriptor::CPPTYPE_BOOL:
        return "true or false";
      case FieldDescriptor::CPPTYPE_STRING:
        return "a string";
      case FieldDescriptor::CPPTYPE_ENUM:
        return "an enum value";
      case FieldDescriptor::CPPTYPE_MESSAGE:
        return "a mapping";
    }
    return "a value";
  }

  static bool IsByteField(const FieldDescriptor& f) { return absl::EndsWith(f.name(), "_bytes"); }

  static bool ParseSigned(const std::string& text, const FieldDescriptor* f, int64_t* out) {
    if (absl::SimpleAtoi(text, out)) return true;
    if (!IsByteField(*f)) return false;
    std::optional<double> bytes = ParseByteSize(text);
    if (!bytes || *bytes > 9.2e18) return false;
    *out = static_cast<int64_t>(*bytes);
    return true;
  }

  static bool ParseUnsigned(const std::string& text, const FieldDescriptor* f, uint64_t* out) {
    if (absl::StrContains(text, '-')) return false;
    if (absl::SimpleAtoi(text, out)) return true;
    if (!IsByteField(*f)) return false;
    std::optional<double> bytes = ParseByteSize(text);
    if (!bytes || *bytes > 1.8e19) return false;
    *out = static_cast<uint64_t>(*bytes);
    return true;
  }

  static std::optional<int> FindEnum(const EnumDescriptor& e, absl::string_view text) {
    std::string name = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(text));
    std::replace(name.begin(), name.end(), '-', '_');
    std::replace(name.begin(), name.end(), ' ', '_');
    const EnumValueDescriptor* v = e.FindValueByName(name);
    if (v == nullptr) v = e.FindValueByName(EnumPrefix(e) + name);
    if (v == nullptr || IsUnspecified(*v)) return std::nullopt;
    return v->number();
  }

  std::string origin_;
  const YamlProtoOptions& options_;
};

// ---- Message -> YAML ----

std::string DoubleText(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return absl::StrCat(v);
  return std::string(buf, end);
}

void EmitMessage(YAML::Emitter& out, const Message& m);

void EmitScalar(YAML::Emitter& out, const Message& m, const FieldDescriptor* f, int index) {
  const Reflection* r = m.GetReflection();
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      out << std::to_string(rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      out << std::to_string(rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      out << std::to_string(rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      out << std::to_string(rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      out << DoubleText(rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      out << DoubleText(rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      out << ((rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false");
      break;
    case FieldDescriptor::CPPTYPE_STRING:
      out << YAML::DoubleQuoted << (rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f));
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      out << EnumValueShortName(rep ? *r->GetRepeatedEnum(m, f, index) : *r->GetEnum(m, f));
      break;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      EmitMessage(out, rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f));
      break;
  }
}

void EmitField(YAML::Emitter& out, const Message& m, const FieldDescriptor* f) {
  const Reflection* r = m.GetReflection();
  if (f->is_map()) {
    // Entries sorted by key text, so the output does not depend on hash order.
    std::vector<std::pair<std::string, const Message*>> entries;
    const FieldDescriptor* key = f->message_type()->map_key();
    for (int i = 0; i < r->FieldSize(m, f); ++i) {
      const Message& entry = r->GetRepeatedMessage(m, f, i);
      YAML::Emitter key_text;
      EmitScalar(key_text, entry, key, -1);
      entries.emplace_back(key_text.c_str(), &entry);
    }
    std::sort(entries.begin(), entries.end());
    out << YAML::BeginMap;
    for (const auto& [text, entry] : entries) {
      out << YAML::Key;
      EmitScalar(out, *entry, key, -1);
      out << YAML::Value;
      EmitScalar(out, *entry, f->message_type()->map_value(), -1);
    }
    out << YAML::EndMap;
    return;
  }
  if (f->is_repeated()) {
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) out << YAML::Flow;
    out << YAML::BeginSeq;
    for (int i = 0; i < r->FieldSize(m, f); ++i) EmitScalar(out, m, f, i);
    out << YAML::EndSeq;
    return;
  }
  EmitScalar(out, m, f, -1);
}

void EmitMessage(YAML::Emitter& out, const Message& m) {
  if (const FieldDescriptor* list = ListShorthandField(*m.GetDescriptor()); list != nullptr) {
    EmitField(out, m, list);
    return;
  }
  std::vector<const FieldDescriptor*> fields;
  m.GetReflection()->ListFields(m, &fields);
  if (fields.empty()) {
    out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
    return;
  }
  out << YAML::BeginMap;
  for (const FieldDescriptor* f : fields) {
    out << YAML::Key << f->name() << YAML::Value;
    EmitField(out, m, f);
  }
  out << YAML::EndMap;
}

}  // namespace

std::string EnumValueShortName(const EnumValueDescriptor& value) {
  absl::string_view name = value.name();
  const std::string prefix = EnumPrefix(*value.type());
  if (absl::StartsWith(name, prefix)) name.remove_prefix(prefix.size());
  return absl::AsciiStrToLower(name);
}

absl::Status ParseYamlToMessage(absl::string_view yaml, absl::string_view origin,
                                const YamlProtoOptions& options,
                                google::protobuf::Message* message) {
  message->Clear();
  MOECAP_ASSIGN_OR_RETURN(const YamlNode root, ParseYamlTree(yaml, origin));
  if (root.IsNull()) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": empty document (expected a mapping)"));
  }
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": expected a mapping at the top level, got ", Describe(root)));
  }
  return YamlToProto(origin, options).ParseMessage(root, "", message);
}

std::string MessageToYaml(const google::protobuf::Message& message) {
  YAML::Emitter out;
  out.SetIndent(2);
  EmitMessage(out, message);
  return std::string(out.c_str()) + "\n";
}

}  // namespace moecap
