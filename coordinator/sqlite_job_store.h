// A JobStore in one SQLite file (WAL mode): tables jobs, points, transitions, reports, results,
// the schema version in PRAGMA user_version. Every JobWrite is one transaction run with prepared
// statements; a coordinator restarted on the same file reloads everything.
#ifndef MOECAP_COORDINATOR_SQLITE_JOB_STORE_H_
#define MOECAP_COORDINATOR_SQLITE_JOB_STORE_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/job_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace moecap::coordinator {

struct SqliteJobStoreOptions {
  std::string path = "moecap.db";
  // synchronous=FULL survives power loss; NORMAL (WAL) survives a crash of the coordinator and
  // writes faster. Default FULL: results are what the user came for.
  bool synchronous_full = true;
  // How long a statement waits for a lock held by another process (e.g. a backup), ms.
  int busy_timeout_ms = 5000;
};

// Thread-safe (one connection behind a mutex).
class SqliteJobStore final : public JobStore {
 public:
  // The schema version this build writes; an older file is migrated, a newer one refused.
  static constexpr int kSchemaVersion = 1;

  // Opens (creating when absent) and checks the schema. Unavailable when the file cannot be
  // opened; FailedPrecondition for a database of a newer schema or not moecap's.
  static absl::StatusOr<std::unique_ptr<SqliteJobStore>> Open(SqliteJobStoreOptions options);
  ~SqliteJobStore() override;
  SqliteJobStore(const SqliteJobStore&) = delete;
  SqliteJobStore& operator=(const SqliteJobStore&) = delete;

  absl::Status ApplyAll(absl::Span<const JobWrite> writes) override;
  absl::StatusOr<std::vector<StoredJob>> LoadJobs() override;
  absl::StatusOr<std::optional<StoredJob>> LoadJob(absl::string_view job_id) override;
  absl::StatusOr<std::optional<v1::Job>> LoadJobHeader(absl::string_view job_id) override;
  absl::StatusOr<std::vector<StoredReport>> LoadReports(absl::string_view job_id) override;

 private:
  enum Statement {
    kBegin,
    kCommit,
    kRollback,
    kUpsertJob,
    kUpsertPoint,
    kInsertTransition,
    kInsertReport,
    kUpsertResult,
    kSelectJobs,
    kSelectPoints,
    kSelectTransitions,
    kSelectResults,
    kSelectReports,
    kSelectJob,
    kSelectJobPoints,
    kSelectJobTransitions,
    kSelectJobResults,
    kNumStatements,
  };

  explicit SqliteJobStore(sqlite3* db) : db_(db) {}
  absl::Status Prepare();
  absl::Status ApplyLocked(const JobWrite& write) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads the rows the four statements select (jobs, points, transitions, results; with
  // `job_id` bound as ?1 when given) into `assembler`.
  absl::Status ReadRows(const std::array<Statement, 4>& statements, const std::string* job_id,
                        JobAssembler& assembler) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Error(absl::string_view what) const;
  sqlite3_stmt* Stmt(Statement s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* const db_;
  std::vector<sqlite3_stmt*> statements_ ABSL_GUARDED_BY(mu_);
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_SQLITE_JOB_STORE_H_
