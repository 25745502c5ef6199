// Conversions between the API messages (moecap.v1) and the metric core's C++ types (model.h,
// dtype.h, metrics.h), so that the agent, the coordinator and moecapctl convert one way.
#ifndef MOECAP_COMMON_PLAN_CONVERT_H_
#define MOECAP_COMMON_PLAN_CONVERT_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/dtype.h"
#include "common/metrics.h"
#include "common/model.h"
#include "google/protobuf/message.h"
#include "moecap/v1/common.pb.h"
#include "moecap/v1/plan.pb.h"

namespace moecap {

// nullopt for DTYPE_UNSPECIFIED (or an unknown number).
std::optional<Dtype> DtypeFromProto(v1::Dtype dtype);
v1::Dtype DtypeToProto(Dtype dtype);

// The model of a v1::ModelSpec, checked with ValidateModel. UNSPECIFIED attention kind and router
// read as GQA and softmax; an absent normalize_topk as true; an empty display_name as the name.
absl::StatusOr<ModelSpec> ModelSpecFromProto(const v1::ModelSpec& proto);
v1::ModelSpec ModelSpecToProto(const ModelSpec& model);

// Counts by term, with total_bytes and total_flops filled.
v1::TermCounts TermCountsToProto(const Counts& counts);
Counts TermCountsFromProto(const v1::TermCounts& proto);

// Protobuf message -> JSON text with the .proto field names (snake_case), every field printed,
// 2-space indent: what `moecapctl results -o json` and `moecap-bench -o json` print.
absl::StatusOr<std::string> ProtoToJson(const google::protobuf::Message& message);

}  // namespace moecap

#endif  // MOECAP_COMMON_PLAN_CONVERT_H_
