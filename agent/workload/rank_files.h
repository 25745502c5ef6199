// The files of a job directory, the one channel between a launcher and the rank processes it
// starts (proto/moecap/v1/rank.proto): DIR/rank-R.launch (a RankLaunch, written by the launcher),
// DIR/rank-R.out (a RankOutput, written by the rank as it ends), DIR/rank-R.progress (the rank's
// length-delimited Progress records, appended as it goes), DIR/rank-R.log (its stdout and
// stderr, for people) and DIR/store/ (a FileKvStore when no coordinator is involved). Messages
// are written whole under a temporary name and renamed, so a reader sees all of one or nothing.
#ifndef MOECAP_AGENT_WORKLOAD_RANK_FILES_H_
#define MOECAP_AGENT_WORKLOAD_RANK_FILES_H_

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message_lite.h"
#include "moecap/v1/job.pb.h"
#include "moecap/v1/rank.pb.h"

namespace moecap {

enum class RankFile { kLaunch, kOutput, kProgress, kLog };

// DIR/rank-R.<launch|out|progress|log>.
std::string RankFilePath(absl::string_view dir, int rank, RankFile file);

// Writes `message` to `path` atomically (a temporary file renamed over it).
absl::Status WriteMessageFile(const std::string& path,
                              const google::protobuf::MessageLite& message);

// Reads a whole message written by WriteMessageFile. NotFound when there is no file;
// DataLoss when it does not parse.
absl::Status ReadMessageFile(const std::string& path, google::protobuf::MessageLite& message);

// The rank's side of its progress file: appends one length-delimited record per call and flushes
// it, so the launcher sees it at once. Writing is best effort: progress is for people, and a full
// disk must not fail the run (Append reports whether it was written).
class ProgressWriter {
 public:
  explicit ProgressWriter(const std::string& path);
  ~ProgressWriter();
  ProgressWriter(const ProgressWriter&) = delete;
  ProgressWriter& operator=(const ProgressWriter&) = delete;

  bool Append(const v1::Progress& progress);

 private:
  std::FILE* file_ = nullptr;
};

// The launcher's side: reads what was appended since the last call, keeping a record that is not
// complete yet (the rank is writing it) for the next call.
class ProgressReader {
 public:
  explicit ProgressReader(std::string path) : path_(std::move(path)) {}

  // The newest complete record appended since the last call; nullopt when there is none (no file
  // yet, nothing new, or only part of a record). DataLoss when the file holds something that is
  // not a record: the reader then stops reading it.
  absl::StatusOr<std::optional<v1::Progress>> Poll();

 private:
  std::string path_;
  int64_t offset_ = 0;   // bytes of the file consumed
  std::string pending_;  // read past offset_, not yet a whole record
  bool broken_ = false;
};

// A rank's error as the RankOutput carries it (code, message, failure cause) and back: the Status
// that comes back has the rank's code, message and FailureCause payload.
v1::RankError RankErrorOf(const absl::Status& status);
absl::Status StatusOfRankError(const v1::RankError& error);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_RANK_FILES_H_
