// absl::Time <-> google.protobuf.Timestamp, and status conversions between absl and gRPC: the
// small glue every coordinator file needs.
#ifndef MOECAP_COORDINATOR_PROTO_UTIL_H_
#define MOECAP_COORDINATOR_PROTO_UTIL_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/support/status.h"

namespace moecap::coordinator {

inline google::protobuf::Timestamp ToProtoTime(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

inline absl::Time FromProtoTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(google::protobuf::util::TimeUtil::TimestampToNanoseconds(t));
}

// absl and gRPC share the canonical code numbers.
inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_PROTO_UTIL_H_
