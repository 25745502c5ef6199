// Job-directory files: whole messages by rename, progress as appended length-delimited records.
#include "agent/workload/rank_files.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/failure_cause.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace moecap {
namespace {

absl::string_view Extension(RankFile file) {
  switch (file) {
    case RankFile::kLaunch:
      return "launch";
    case RankFile::kOutput:
      return "out";
    case RankFile::kProgress:
      return "progress";
    case RankFile::kLog:
      return "log";
  }
  return "";
}

// The largest progress record a reader accepts: a Progress is a few dozen bytes, so anything
// larger means the file is not a progress file.
constexpr uint32_t kMaxRecordBytes = 1 << 16;

}  // namespace

std::string RankFilePath(absl::string_view dir, int rank, RankFile file) {
  return absl::StrCat(dir, "/rank-", rank, ".", Extension(file));
}

absl::Status WriteMessageFile(const std::string& path,
                              const google::protobuf::MessageLite& message) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out || !message.SerializeToOstream(&out)) {
      return absl::InternalError(absl::StrCat("cannot write ", tmp));
    }
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status ReadMessageFile(const std::string& path, google::protobuf::MessageLite& message) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  if (!message.ParseFromIstream(&in)) {
    return absl::DataLossError(
        absl::StrCat(path, " is not a ", message.GetTypeName(), " (truncated or not ours)"));
  }
  return absl::OkStatus();
}

ProgressWriter::ProgressWriter(const std::string& path) : file_(std::fopen(path.c_str(), "ab")) {}

ProgressWriter::~ProgressWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

bool ProgressWriter::Append(const v1::Progress& progress) {
  if (file_ == nullptr) return false;
  std::string record;
  {
    google::protobuf::io::StringOutputStream stream(&record);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.WriteVarint32(static_cast<uint32_t>(progress.ByteSizeLong()));
    if (!progress.SerializeToCodedStream(&coded)) return false;
  }
  return std::fwrite(record.data(), 1, record.size(), file_) == record.size() &&
         std::fflush(file_) == 0;
}

absl::StatusOr<std::optional<v1::Progress>> ProgressReader::Poll() {
  if (broken_) return std::optional<v1::Progress>();
  std::ifstream in(path_, std::ios::binary);
  if (!in) return std::optional<v1::Progress>();  // the rank has not written any yet
  in.seekg(offset_);
  const std::string fresh((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  offset_ += static_cast<int64_t>(fresh.size());
  pending_ += fresh;

  std::optional<v1::Progress> newest;
  size_t used = 0;
  while (used < pending_.size()) {
    google::protobuf::io::CodedInputStream coded(
        reinterpret_cast<const uint8_t*>(pending_.data() + used),
        static_cast<int>(pending_.size() - used));
    uint32_t size = 0;
    if (!coded.ReadVarint32(&size)) break;  // the length itself is not all there yet
    if (size > kMaxRecordBytes) {
      broken_ = true;
      return absl::DataLossError(
          absl::StrCat(path_, ": a record of ", size, " bytes is not a progress record"));
    }
    const size_t header = static_cast<size_t>(coded.CurrentPosition());
    if (pending_.size() - used - header < size) break;  // the rest is still being written
    v1::Progress record;
    if (!record.ParseFromArray(pending_.data() + used + header, static_cast<int>(size))) {
      broken_ = true;
      return absl::DataLossError(absl::StrCat(path_, ": a record that is not a Progress"));
    }
    newest = std::move(record);
    used += header + size;
  }
  pending_.erase(0, used);
  return newest;
}

v1::RankError RankErrorOf(const absl::Status& status) {
  v1::RankError error;
  error.set_code(static_cast<int32_t>(status.code()));
  error.set_message(std::string(status.message()));
  if (const std::optional<FailureCause> cause = FailureCauseOf(status); cause.has_value()) {
    error.set_cause(std::string(FailureCauseName(*cause)));
  }
  return error;
}

absl::Status StatusOfRankError(const v1::RankError& error) {
  absl::StatusCode code = static_cast<absl::StatusCode>(error.code());
  // A rank that failed must not read as a success, whatever its file says.
  if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
  absl::Status status(code, error.message());
  if (const std::optional<FailureCause> cause = ParseFailureCause(error.cause());
      cause.has_value()) {
    status = WithFailureCause(std::move(status), *cause);
  }
  return status;
}

}  // namespace moecap
