// JobStore: the same behaviour from SqliteJobStore (a temp file, reopened) and InMemoryJobStore.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "coordinator/in_memory_job_store.h"
#include "coordinator/proto_util.h"
#include "coordinator/sqlite_job_store.h"

namespace moecap::coordinator {
namespace {

std::string TempDbPath() {
  return (std::filesystem::temp_directory_path() /
          ("moecap_store_test_" + std::to_string(getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db"))
      .string();
}

// Gives a store, and the same data reopened (a coordinator restart).
class StoreFactory {
 public:
  virtual ~StoreFactory() = default;
  virtual JobStore& Get() = 0;
  virtual JobStore& Reopen() = 0;
};

class SqliteFactory final : public StoreFactory {
 public:
  SqliteFactory() : path_(TempDbPath()) { std::filesystem::remove(path_); }
  ~SqliteFactory() override {
    store_.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
  }
  JobStore& Get() override {
    if (store_ == nullptr) store_ = *SqliteJobStore::Open({path_});
    return *store_;
  }
  JobStore& Reopen() override {
    store_.reset();
    return Get();
  }

 private:
  const std::string path_;
  std::unique_ptr<SqliteJobStore> store_;
};

class MemoryFactory final : public StoreFactory {
 public:
  JobStore& Get() override { return store_; }
  JobStore& Reopen() override { return store_; }

 private:
  InMemoryJobStore store_;
};

v1::StateTransition Transition(v1::JobState s, const std::string& reason, int attempt = 0) {
  v1::StateTransition t;
  t.set_state(s);
  *t.mutable_time() = ToProtoTime(absl::FromUnixSeconds(1700000000 + attempt));
  t.set_reason(reason);
  t.set_attempt(attempt);
  return t;
}

JobWrite NewJob(const std::string& id, int64_t seq) {
  JobWrite w;
  w.job_id = id;
  w.seq = seq;
  v1::Job job;
  job.set_id(id);
  job.set_name("plan " + id);
  job.set_state(v1::JOB_STATE_QUEUED);
  job.set_priority(3);
  job.mutable_plan()->set_model("mixtral-8x7b");
  w.job = job;
  for (int i = 0; i < 2; ++i) {
    v1::Point p;
    p.set_index(i);
    p.set_state(v1::JOB_STATE_QUEUED);
    p.mutable_workload()->set_batch_size(8 << i);
    w.points.push_back(p);
  }
  w.transitions.push_back({-1, Transition(v1::JOB_STATE_QUEUED, "submitted")});
  return w;
}

template <typename Factory>
class JobStoreTest : public ::testing::Test {
 protected:
  Factory factory_;
};

using Factories = ::testing::Types<SqliteFactory, MemoryFactory>;
TYPED_TEST_SUITE(JobStoreTest, Factories);

TYPED_TEST(JobStoreTest, EverythingWrittenIsReloaded) {
  JobStore& store = this->factory_.Get();
  ASSERT_TRUE(store.Apply(NewJob("job-000002", 2)).ok());
  ASSERT_TRUE(store.Apply(NewJob("job-000001", 1)).ok());
  // The first job runs point 0 to a result.
  JobWrite w;
  w.job_id = "job-000001";
  w.seq = 1;
  v1::Job header = *NewJob("job-000001", 1).job;
  header.set_state(v1::JOB_STATE_RUNNING);
  w.job = header;
  v1::Point p0 = NewJob("job-000001", 1).points[0];
  p0.set_state(v1::JOB_STATE_SUCCEEDED);
  p0.set_attempts(1);
  w.points.push_back(p0);
  w.transitions.push_back({-1, Transition(v1::JOB_STATE_RUNNING, "")});
  w.transitions.push_back({0, Transition(v1::JOB_STATE_SCHEDULED, "attempt 1", 1)});
  w.transitions.push_back({0, Transition(v1::JOB_STATE_SUCCEEDED, "", 1)});
  v1::PointResult result;
  result.set_point_index(0);
  result.set_attempt(1);
  result.add_phases()->set_s_mbu(0.42);
  w.results.push_back(result);
  StoredReport report;
  report.job_id = "job-000001";
  report.point_index = 0;
  report.attempt = 1;
  report.agent_id = "agent-1";
  report.kind = ReportKind::kNode;
  report.time = absl::FromUnixSeconds(1700000005);
  report.payload = "node report bytes";
  w.reports.push_back(report);
  ASSERT_TRUE(store.Apply(w).ok());

  JobStore& reopened = this->factory_.Reopen();
  absl::StatusOr<std::vector<StoredJob>> jobs = reopened.LoadJobs();
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 2u);
  const v1::Job& j1 = (*jobs)[0].job;  // submission order
  EXPECT_EQ(j1.id(), "job-000001");
  EXPECT_EQ((*jobs)[0].seq, 1);
  EXPECT_EQ(j1.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(j1.plan().model(), "mixtral-8x7b");
  ASSERT_EQ(j1.history_size(), 2);
  EXPECT_EQ(j1.history(0).reason(), "submitted");
  ASSERT_EQ(j1.points_size(), 2);
  EXPECT_EQ(j1.points(0).state(), v1::JOB_STATE_SUCCEEDED);
  ASSERT_EQ(j1.points(0).history_size(), 2);
  EXPECT_EQ(j1.points(0).history(0).attempt(), 1);
  EXPECT_DOUBLE_EQ(j1.points(0).result().phases(0).s_mbu(), 0.42);
  EXPECT_EQ(j1.points(1).workload().batch_size(), 16);
  EXPECT_FALSE(j1.points(1).has_result());
  EXPECT_EQ((*jobs)[1].job.id(), "job-000002");

  absl::StatusOr<std::vector<StoredReport>> reports = reopened.LoadReports("job-000001");
  ASSERT_TRUE(reports.ok());
  ASSERT_EQ(reports->size(), 1u);
  EXPECT_EQ((*reports)[0].payload, "node report bytes");
  EXPECT_EQ((*reports)[0].kind, ReportKind::kNode);
  EXPECT_EQ((*reports)[0].time, absl::FromUnixSeconds(1700000005));
}

TYPED_TEST(JobStoreTest, AWriteWithoutItsJobIsRefusedAndLeavesNothing) {
  JobStore& store = this->factory_.Get();
  JobWrite orphan;
  orphan.job_id = "job-000009";
  orphan.transitions.push_back({-1, Transition(v1::JOB_STATE_QUEUED, "")});
  EXPECT_FALSE(store.Apply(orphan).ok());
  EXPECT_TRUE(this->factory_.Reopen().LoadJobs()->empty());
}

TEST(SqliteJobStoreTest, RefusesANewerSchemaAndNonDatabases) {
  const std::string path = TempDbPath();
  std::filesystem::remove(path);
  { ASSERT_TRUE(SqliteJobStore::Open({path}).ok()); }
  {
    // Pretend a newer coordinator wrote the file.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  absl::StatusOr<std::unique_ptr<SqliteJobStore>> newer = SqliteJobStore::Open({path});
  EXPECT_EQ(newer.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(newer.status().message().find("schema version 99"), std::string::npos);
  std::FILE* f = std::fopen((path + ".txt").c_str(), "w");
  std::fputs("this is not a database, just text long enough to fill a header.........", f);
  std::fclose(f);
  absl::StatusOr<std::unique_ptr<SqliteJobStore>> bad = SqliteJobStore::Open({path + ".txt"});
  EXPECT_FALSE(bad.ok());
  for (const char* suffix : {"", "-wal", "-shm", ".txt"}) std::filesystem::remove(path + suffix);
}

}  // namespace
}  // namespace moecap::coordinator
