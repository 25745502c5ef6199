// JobStore on SQLite.
#include "coordinator/sqlite_job_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/proto_util.h"

namespace moecap::coordinator {
namespace {

// Version 1 of the schema. Protos are stored whole (BLOB) beside the columns queries need.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  state INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  submit_time_ns INTEGER NOT NULL,
  proto BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS points (
  job_id TEXT NOT NULL REFERENCES jobs(id),
  idx INTEGER NOT NULL,
  state INTEGER NOT NULL,
  proto BLOB NOT NULL,
  PRIMARY KEY (job_id, idx)
);
CREATE TABLE IF NOT EXISTS transitions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL REFERENCES jobs(id),
  point_index INTEGER NOT NULL,
  state INTEGER NOT NULL,
  time_ns INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_by_job ON transitions (job_id, id);
CREATE TABLE IF NOT EXISTS reports (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL REFERENCES jobs(id),
  point_index INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  agent_id TEXT NOT NULL,
  rank INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  time_ns INTEGER NOT NULL,
  proto BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_by_job ON reports (job_id, id);
CREATE TABLE IF NOT EXISTS results (
  job_id TEXT NOT NULL REFERENCES jobs(id),
  point_index INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  proto BLOB NOT NULL,
  PRIMARY KEY (job_id, point_index)
);
)sql";

constexpr std::array<const char*, 17> kStatementSql = {
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "INSERT INTO jobs (id, seq, state, priority, submit_time_ns, proto) VALUES (?1, ?2, ?3, ?4, "
    "?5, ?6) ON CONFLICT(id) DO UPDATE SET state = ?3, priority = ?4, proto = ?6",
    "INSERT INTO points (job_id, idx, state, proto) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(job_id, idx) DO UPDATE SET state = ?3, proto = ?4",
    "INSERT INTO transitions (job_id, point_index, state, time_ns, attempt, reason) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    "INSERT INTO reports (job_id, point_index, attempt, agent_id, rank, kind, time_ns, proto) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    "INSERT INTO results (job_id, point_index, attempt, proto) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(job_id, point_index) DO UPDATE SET attempt = ?3, proto = ?4",
    "SELECT seq, proto FROM jobs ORDER BY seq",
    "SELECT job_id, proto FROM points",
    "SELECT job_id, point_index, state, time_ns, attempt, reason FROM transitions ORDER BY id",
    "SELECT job_id, proto FROM results",
    "SELECT point_index, attempt, agent_id, rank, kind, time_ns, proto FROM reports "
    "WHERE job_id = ?1 ORDER BY id",
    "SELECT seq, proto FROM jobs WHERE id = ?1",
    "SELECT job_id, proto FROM points WHERE job_id = ?1",
    "SELECT job_id, point_index, state, time_ns, attempt, reason FROM transitions "
    "WHERE job_id = ?1 ORDER BY id",
    "SELECT job_id, proto FROM results WHERE job_id = ?1",
};

// Resets a statement when it goes out of scope, so each use starts clean.
class StatementUse {
 public:
  explicit StatementUse(sqlite3_stmt* s) : s_(s) {}
  ~StatementUse() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  StatementUse(const StatementUse&) = delete;
  StatementUse& operator=(const StatementUse&) = delete;
  sqlite3_stmt* get() const { return s_; }

 private:
  sqlite3_stmt* const s_;
};

void BindText(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
void BindBlob(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
std::string ColumnText(sqlite3_stmt* s, int i) {
  const unsigned char* p = sqlite3_column_text(s, i);
  return p == nullptr ? std::string()
                      : std::string(reinterpret_cast<const char*>(p),
                                    static_cast<size_t>(sqlite3_column_bytes(s, i)));
}
std::string ColumnBlob(sqlite3_stmt* s, int i) {
  const void* p = sqlite3_column_blob(s, i);
  return p == nullptr ? std::string()
                      : std::string(static_cast<const char*>(p),
                                    static_cast<size_t>(sqlite3_column_bytes(s, i)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteJobStore>> SqliteJobStore::Open(
    SqliteJobStoreOptions options) {
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(options.path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::UnavailableError(
        absl::StrCat("--db ", options.path, ": cannot open the database: ", message));
  }
  std::unique_ptr<SqliteJobStore> store(new SqliteJobStore(db));
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  const auto exec = [&](const std::string& sql) -> absl::Status {
    char* error = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      std::string message = error != nullptr ? error : "unknown error";
      sqlite3_free(error);
      return absl::FailedPreconditionError(
          absl::StrCat("--db ", options.path, ": ", message, " (in: ", sql.substr(0, 60), ")"));
    }
    return absl::OkStatus();
  };
  MOECAP_RETURN_IF_ERROR(exec("PRAGMA journal_mode=WAL"));
  if (absl::Status s =
          exec(absl::StrCat("PRAGMA synchronous=", options.synchronous_full ? "FULL" : "NORMAL"));
      !s.ok()) {
    return s;
  }
  MOECAP_RETURN_IF_ERROR(exec("PRAGMA foreign_keys=ON"));
  int version = -1;
  {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr) != SQLITE_OK) {
      return absl::FailedPreconditionError(
          absl::StrCat("--db ", options.path, ": not a SQLite database: ", sqlite3_errmsg(db)));
    }
    if (sqlite3_step(stmt) == SQLITE_ROW) version = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
  }
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--db ", options.path, ": schema version ", version, " is newer than this coordinator's (",
        kSchemaVersion, "); use a newer moecap-coordinator"));
  }
  if (version < kSchemaVersion) {
    // Migrations from older versions go here, one step per version, in one transaction.
    MOECAP_RETURN_IF_ERROR(exec(
        absl::StrCat("BEGIN; ", kSchemaV1, "PRAGMA user_version = ", kSchemaVersion, "; COMMIT;")));
  }
  MOECAP_RETURN_IF_ERROR(store->Prepare());
  return store;
}

SqliteJobStore::~SqliteJobStore() {
  absl::MutexLock lock(&mu_);
  for (sqlite3_stmt* s : statements_) sqlite3_finalize(s);
  statements_.clear();
  sqlite3_close(db_);
}

absl::Status SqliteJobStore::Error(absl::string_view what) const {
  return absl::InternalError(absl::StrCat("job database: ", what, ": ", sqlite3_errmsg(db_)));
}

absl::Status SqliteJobStore::Prepare() {
  absl::MutexLock lock(&mu_);
  static_assert(kStatementSql.size() == kNumStatements);
  for (const char* sql : kStatementSql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK) {
      return Error(absl::StrCat("preparing '", sql, "'"));
    }
    statements_.push_back(stmt);
  }
  return absl::OkStatus();
}

sqlite3_stmt* SqliteJobStore::Stmt(Statement s) { return statements_[s]; }

absl::Status SqliteJobStore::ApplyAll(absl::Span<const JobWrite> writes) {
  if (std::all_of(writes.begin(), writes.end(), [](const JobWrite& w) { return w.empty(); })) {
    return absl::OkStatus();
  }
  absl::MutexLock lock(&mu_);
  {
    StatementUse begin(Stmt(kBegin));
    if (sqlite3_step(begin.get()) != SQLITE_DONE) return Error("BEGIN");
  }
  absl::Status status = absl::OkStatus();
  for (const JobWrite& write : writes) {
    if (!write.empty()) status = ApplyLocked(write);
    if (!status.ok()) break;
  }
  StatementUse end(Stmt(status.ok() ? kCommit : kRollback));
  if (sqlite3_step(end.get()) != SQLITE_DONE && status.ok()) {
    status = Error("COMMIT");
    StatementUse rollback(Stmt(kRollback));
    sqlite3_step(rollback.get());
  }
  return status;
}

absl::Status SqliteJobStore::ApplyLocked(const JobWrite& write) {
  const auto done = [&](StatementUse& use, absl::string_view what) -> absl::Status {
    if (sqlite3_step(use.get()) != SQLITE_DONE) return Error(what);
    return absl::OkStatus();
  };
  if (write.job.has_value()) {
    v1::Job job = *write.job;
    job.clear_points();
    job.clear_history();
    StatementUse use(Stmt(kUpsertJob));
    BindText(use.get(), 1, write.job_id);
    sqlite3_bind_int64(use.get(), 2, write.seq);
    sqlite3_bind_int(use.get(), 3, job.state());
    sqlite3_bind_int(use.get(), 4, job.priority());
    sqlite3_bind_int64(use.get(), 5, absl::ToUnixNanos(FromProtoTime(job.submit_time())));
    BindBlob(use.get(), 6, job.SerializeAsString());
    MOECAP_RETURN_IF_ERROR(done(use, "writing a job"));
  }
  for (const v1::Point& point : write.points) {
    v1::Point p = point;
    p.clear_history();
    p.clear_result();
    StatementUse use(Stmt(kUpsertPoint));
    BindText(use.get(), 1, write.job_id);
    sqlite3_bind_int(use.get(), 2, p.index());
    sqlite3_bind_int(use.get(), 3, p.state());
    BindBlob(use.get(), 4, p.SerializeAsString());
    MOECAP_RETURN_IF_ERROR(done(use, "writing a point"));
  }
  for (const StoredTransition& t : write.transitions) {
    StatementUse use(Stmt(kInsertTransition));
    BindText(use.get(), 1, write.job_id);
    sqlite3_bind_int(use.get(), 2, t.point_index);
    sqlite3_bind_int(use.get(), 3, t.transition.state());
    sqlite3_bind_int64(use.get(), 4, absl::ToUnixNanos(FromProtoTime(t.transition.time())));
    sqlite3_bind_int(use.get(), 5, t.transition.attempt());
    BindText(use.get(), 6, t.transition.reason());
    MOECAP_RETURN_IF_ERROR(done(use, "writing a state change"));
  }
  for (const StoredReport& r : write.reports) {
    StatementUse use(Stmt(kInsertReport));
    BindText(use.get(), 1, r.job_id.empty() ? write.job_id : r.job_id);
    sqlite3_bind_int(use.get(), 2, r.point_index);
    sqlite3_bind_int(use.get(), 3, r.attempt);
    BindText(use.get(), 4, r.agent_id);
    sqlite3_bind_int(use.get(), 5, r.rank);
    sqlite3_bind_int(use.get(), 6, static_cast<int>(r.kind));
    sqlite3_bind_int64(use.get(), 7, absl::ToUnixNanos(r.time));
    BindBlob(use.get(), 8, r.payload);
    MOECAP_RETURN_IF_ERROR(done(use, "writing a report"));
  }
  for (const v1::PointResult& result : write.results) {
    StatementUse use(Stmt(kUpsertResult));
    BindText(use.get(), 1, write.job_id);
    sqlite3_bind_int(use.get(), 2, result.point_index());
    sqlite3_bind_int(use.get(), 3, result.attempt());
    BindBlob(use.get(), 4, result.SerializeAsString());
    MOECAP_RETURN_IF_ERROR(done(use, "writing a result"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<StoredJob>> SqliteJobStore::LoadJobs() {
  absl::MutexLock lock(&mu_);
  JobAssembler assembler;
  MOECAP_RETURN_IF_ERROR(ReadRows({kSelectJobs, kSelectPoints, kSelectTransitions, kSelectResults},
                                  nullptr, assembler));
  return assembler.Finish();
}

absl::StatusOr<std::optional<StoredJob>> SqliteJobStore::LoadJob(absl::string_view job_id) {
  absl::MutexLock lock(&mu_);
  JobAssembler assembler;
  const std::string id(job_id);
  MOECAP_RETURN_IF_ERROR(ReadRows(
      {kSelectJob, kSelectJobPoints, kSelectJobTransitions, kSelectJobResults}, &id, assembler));
  std::vector<StoredJob> one = assembler.Finish();
  if (one.empty()) return std::nullopt;
  return std::move(one.front());
}

absl::StatusOr<std::optional<v1::Job>> SqliteJobStore::LoadJobHeader(absl::string_view job_id) {
  absl::MutexLock lock(&mu_);
  StatementUse use(Stmt(kSelectJob));
  BindText(use.get(), 1, std::string(job_id));
  const int rc = sqlite3_step(use.get());
  if (rc == SQLITE_DONE) return std::nullopt;
  if (rc != SQLITE_ROW) return Error("reading a job");
  v1::Job job;
  if (!job.ParseFromString(ColumnBlob(use.get(), 1))) {
    return absl::DataLossError("job database: a job row does not parse");
  }
  return job;
}

absl::Status SqliteJobStore::ReadRows(const std::array<Statement, 4>& statements,
                                      const std::string* job_id, JobAssembler& assembler) {
  const auto bind = [&](StatementUse& use) {
    if (job_id != nullptr) BindText(use.get(), 1, *job_id);
  };
  {
    StatementUse use(Stmt(statements[0]));
    bind(use);
    int rc;
    while ((rc = sqlite3_step(use.get())) == SQLITE_ROW) {
      v1::Job job;
      if (!job.ParseFromString(ColumnBlob(use.get(), 1))) {
        return absl::DataLossError("job database: a job row does not parse");
      }
      assembler.SetJob(sqlite3_column_int64(use.get(), 0), std::move(job));
    }
    if (rc != SQLITE_DONE) return Error("reading jobs");
  }
  {
    StatementUse use(Stmt(statements[1]));
    bind(use);
    int rc;
    while ((rc = sqlite3_step(use.get())) == SQLITE_ROW) {
      v1::Point point;
      if (!point.ParseFromString(ColumnBlob(use.get(), 1))) {
        return absl::DataLossError("job database: a point row does not parse");
      }
      assembler.SetPoint(ColumnText(use.get(), 0), std::move(point));
    }
    if (rc != SQLITE_DONE) return Error("reading points");
  }
  {
    StatementUse use(Stmt(statements[2]));
    bind(use);
    int rc;
    while ((rc = sqlite3_step(use.get())) == SQLITE_ROW) {
      StoredTransition t;
      t.point_index = sqlite3_column_int(use.get(), 1);
      t.transition.set_state(static_cast<v1::JobState>(sqlite3_column_int(use.get(), 2)));
      *t.transition.mutable_time() =
          ToProtoTime(absl::FromUnixNanos(sqlite3_column_int64(use.get(), 3)));
      t.transition.set_attempt(sqlite3_column_int(use.get(), 4));
      t.transition.set_reason(ColumnText(use.get(), 5));
      assembler.AddTransition(ColumnText(use.get(), 0), t);
    }
    if (rc != SQLITE_DONE) return Error("reading state changes");
  }
  {
    StatementUse use(Stmt(statements[3]));
    bind(use);
    int rc;
    while ((rc = sqlite3_step(use.get())) == SQLITE_ROW) {
      v1::PointResult result;
      if (!result.ParseFromString(ColumnBlob(use.get(), 1))) {
        return absl::DataLossError("job database: a result row does not parse");
      }
      assembler.SetResult(ColumnText(use.get(), 0), std::move(result));
    }
    if (rc != SQLITE_DONE) return Error("reading results");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<StoredReport>> SqliteJobStore::LoadReports(absl::string_view job_id) {
  absl::MutexLock lock(&mu_);
  std::vector<StoredReport> out;
  StatementUse use(Stmt(kSelectReports));
  BindText(use.get(), 1, std::string(job_id));
  int rc;
  while ((rc = sqlite3_step(use.get())) == SQLITE_ROW) {
    StoredReport r;
    r.job_id = std::string(job_id);
    r.point_index = sqlite3_column_int(use.get(), 0);
    r.attempt = sqlite3_column_int(use.get(), 1);
    r.agent_id = ColumnText(use.get(), 2);
    r.rank = sqlite3_column_int(use.get(), 3);
    r.kind = static_cast<ReportKind>(sqlite3_column_int(use.get(), 4));
    r.time = absl::FromUnixNanos(sqlite3_column_int64(use.get(), 5));
    r.payload = ColumnBlob(use.get(), 6);
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return Error("reading reports");
  return out;
}

}  // namespace moecap::coordinator
