// YAML <-> protobuf messages by reflection: the parser walks the message's Descriptor, so a field
// added to a .proto is accepted in YAML with no change here. Used for plans (common/plan/plan.h)
// and any other API message a user writes by hand.
//
// YAML form of a message (docs/plans.md "YAML form"):
// - keys are the proto field names ('-' reads as '_', case-insensitive);
// - enums by value name, case-insensitive, with or without the enum's prefix ("bf16",
//   "DTYPE_BF16"); *_UNSPECIFIED is refused;
// - integers in decimal; integer fields whose name ends in "_bytes" also take a size with a unit
//   ("80GiB", "1.5 GB": KB/MB/GB/TB powers of 1000, KiB/MiB/GiB/TiB powers of 1024);
// - a single value where a list is expected is a one-element list;
// - a message whose only field is a list may be written as that list (`dtype: [fp32, bf16]` for
//   DtypeValues{values});
// - a message made of one oneof may be written as the name of a member whose type is a message,
//   which is then set empty (`routing: uniform` for Routing{uniform{}}); an empty value
//   (`uniform:`) sets a message field present and empty;
// - two members of one oneof, a key given twice, an unknown key, or a value of the wrong type are
//   errors that name the full field path: "plan.yaml: field 'workload.batch_sizes[2]': expected an
//   integer, got 'x'".
#ifndef MOECAP_COMMON_PLAN_YAML_PROTO_H_
#define MOECAP_COMMON_PLAN_YAML_PROTO_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace moecap {

struct YamlProtoOptions {
  // Extra spellings of enum values: given the enum and the text, the value's number, or nullopt
  // (then the error lists the value names). Consulted after the value names did not match.
  std::function<std::optional<int>(const google::protobuf::EnumDescriptor&, absl::string_view)>
      enum_alias;
};

// Parses `yaml` (one document, a mapping) into `message`, which is cleared first. `origin` names
// the text in errors ("plan.yaml"). Errors are InvalidArgument: "ORIGIN:LINE: YAML syntax error:
// ..." for bad YAML, "ORIGIN: field 'PATH': REASON" for a bad field. Never throws.
absl::Status ParseYamlToMessage(absl::string_view yaml, absl::string_view origin,
                                const YamlProtoOptions& options,
                                google::protobuf::Message* message);

// The YAML form of `message`: only fields that are set, in field-number order; enums by their
// short lower-case name; doubles in the shortest form that reads back exactly. Parsing the output
// gives the same message (bytes fields excepted: they are written as raw strings).
std::string MessageToYaml(const google::protobuf::Message& message);

// The short lower-case name of an enum value: DTYPE_BF16 -> "bf16" (the value's name without the
// enum's UPPER_SNAKE prefix).
std::string EnumValueShortName(const google::protobuf::EnumValueDescriptor& value);

}  // namespace moecap

#endif  // MOECAP_COMMON_PLAN_YAML_PROTO_H_
