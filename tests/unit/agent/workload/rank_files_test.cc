// The job directory's typed files: whole messages by rename, progress records read as they are
// appended (a record cut in the middle is kept for the next poll), a rank's error with its code
// and failure cause across the process boundary.
#include "agent/workload/rank_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/failure_cause.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace moecap {
namespace {

class RankFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("moecap-rank-files-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(RankFile file) const { return RankFilePath(dir_.string(), 3, file); }

  std::filesystem::path dir_;
};

v1::Progress At(v1::Progress::Stage stage, int64_t done) {
  v1::Progress p;
  p.set_stage(stage);
  p.set_phase(v1::PHASE_DECODE);
  p.set_iterations_done(done);
  p.set_iterations_total(40);
  p.set_ranks_reporting(1);
  return p;
}

std::string Delimited(const v1::Progress& p) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.WriteVarint32(static_cast<uint32_t>(p.ByteSizeLong()));
  p.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

void AppendBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << bytes;
}

TEST_F(RankFilesTest, PathsNameTheRankAndTheFile) {
  EXPECT_EQ(RankFilePath("/j", 3, RankFile::kLaunch), "/j/rank-3.launch");
  EXPECT_EQ(RankFilePath("/j", 3, RankFile::kOutput), "/j/rank-3.out");
  EXPECT_EQ(RankFilePath("/j", 3, RankFile::kProgress), "/j/rank-3.progress");
  EXPECT_EQ(RankFilePath("/j", 3, RankFile::kLog), "/j/rank-3.log");
}

TEST_F(RankFilesTest, MessagesRoundTripAndBadFilesAreNamed) {
  v1::RankLaunch launch;
  launch.set_rank(3);
  launch.set_world_size(4);
  launch.mutable_grpc_store()->set_target("10.0.0.1:7000");
  launch.add_batch_sizes(8);
  ASSERT_TRUE(WriteMessageFile(Path(RankFile::kLaunch), launch).ok());
  EXPECT_FALSE(std::filesystem::exists(Path(RankFile::kLaunch) + ".tmp"));
  v1::RankLaunch back;
  ASSERT_TRUE(ReadMessageFile(Path(RankFile::kLaunch), back).ok());
  EXPECT_EQ(back.rank(), 3);
  EXPECT_EQ(back.grpc_store().target(), "10.0.0.1:7000");
  EXPECT_EQ(back.batch_sizes_size(), 1);

  EXPECT_TRUE(absl::IsNotFound(ReadMessageFile(Path(RankFile::kOutput), back)));
  AppendBytes(Path(RankFile::kOutput), std::string("\xff\xff\xff", 3));
  const absl::Status bad = ReadMessageFile(Path(RankFile::kOutput), back);
  EXPECT_TRUE(absl::IsDataLoss(bad)) << bad;
  EXPECT_NE(bad.message().find("rank-3.out"), std::string::npos) << bad;
}

TEST_F(RankFilesTest, ProgressIsReadAsItGrowsAndAHalfWrittenRecordWaits) {
  ProgressReader reader(Path(RankFile::kProgress));
  absl::StatusOr<std::optional<v1::Progress>> none = reader.Poll();  // no file yet
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  {
    ProgressWriter writer(Path(RankFile::kProgress));
    ASSERT_TRUE(writer.Append(At(v1::Progress::STAGE_CHECK, 0)));
    ASSERT_TRUE(writer.Append(At(v1::Progress::STAGE_MEASURE, 0)));
  }
  absl::StatusOr<std::optional<v1::Progress>> newest = reader.Poll();
  ASSERT_TRUE(newest.ok() && newest->has_value());
  EXPECT_EQ((*newest)->stage(), v1::Progress::STAGE_MEASURE);  // the newest of the two
  newest = reader.Poll();
  ASSERT_TRUE(newest.ok());
  EXPECT_FALSE(newest->has_value());  // nothing new

  // A record arrives in two pieces: nothing until it is whole.
  const std::string record = Delimited(At(v1::Progress::STAGE_CHECK, 20));
  AppendBytes(Path(RankFile::kProgress), record.substr(0, 3));
  newest = reader.Poll();
  ASSERT_TRUE(newest.ok());
  EXPECT_FALSE(newest->has_value());
  AppendBytes(Path(RankFile::kProgress), record.substr(3));
  newest = reader.Poll();
  ASSERT_TRUE(newest.ok() && newest->has_value());
  EXPECT_EQ((*newest)->iterations_done(), 20);
  EXPECT_EQ((*newest)->stage(), v1::Progress::STAGE_CHECK);
}

TEST_F(RankFilesTest, AFileThatIsNotProgressIsRefusedOnce) {
  AppendBytes(Path(RankFile::kProgress), std::string("\xff\xff\xff\xff\x0f garbage", 13));
  ProgressReader reader(Path(RankFile::kProgress));
  absl::StatusOr<std::optional<v1::Progress>> got = reader.Poll();
  EXPECT_TRUE(absl::IsDataLoss(got.status())) << got.status();
  got = reader.Poll();  // it stops reading that file
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST_F(RankFilesTest, ARankErrorKeepsItsCodeMessageAndCause) {
  const absl::Status made = WithFailureCause(
      absl::DeadlineExceededError("rank 2 of 4: Gloo rendezvous under 'gloo' timed out"),
      FailureCause::kRendezvous);
  const v1::RankError error = RankErrorOf(made);
  EXPECT_EQ(error.cause(), "rendezvous");
  const absl::Status back = StatusOfRankError(error);
  EXPECT_EQ(back.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(back.message(), made.message());
  EXPECT_EQ(FailureCauseOf(back), FailureCause::kRendezvous);

  // No cause, and a file that claims success for a failed rank: still an error, no cause.
  v1::RankError plain;
  plain.set_message("boom");
  const absl::Status unknown = StatusOfRankError(plain);
  EXPECT_FALSE(unknown.ok());
  EXPECT_FALSE(FailureCauseOf(unknown).has_value());
}

}  // namespace
}  // namespace moecap
