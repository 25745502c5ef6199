// SubmissionQueue: submissions answered once each, in order; what queues up while a worker
// commits is committed as one batch (one store transaction); a full queue refuses at once; Stop
// answers every accepted submission; a failed transaction refuses its whole batch and only it.
#include "coordinator/submission_queue.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "coordinator/in_memory_job_store.h"
#include "tests/fakes/fake_clock.h"

namespace moecap::coordinator {
namespace {

constexpr char kPlan[] = R"(
name: queued
model: mixtral-8x7b
hardware: {backend: cpu}
parallelism: {nodes: 1, devices_per_node: 1}
workload: {phases: [decode], batch_sizes: [1], prompt_len: 16, output_len: 4, scale: 16}
)";

// An in-memory store whose transactions can be held (the first one waits for Release) or made
// to fail; it records each transaction's size.
class GatedStore final : public JobStore {
 public:
  absl::Status ApplyAll(absl::Span<const JobWrite> writes) override {
    {
      absl::MutexLock lock(&mu_);
      sizes_.push_back(static_cast<int>(writes.size()));
      if (hold_next_) {
        hold_next_ = false;
        entered_.Notify();
        mu_.Await(absl::Condition(&released_));
      }
      if (static_cast<int>(sizes_.size()) - 1 == fail_index_) {
        return absl::InternalError("disk full");
      }
    }
    return inner_.ApplyAll(writes);
  }
  absl::StatusOr<std::vector<StoredJob>> LoadJobs() override { return inner_.LoadJobs(); }
  absl::StatusOr<std::optional<StoredJob>> LoadJob(absl::string_view id) override {
    return inner_.LoadJob(id);
  }
  absl::StatusOr<std::optional<v1::Job>> LoadJobHeader(absl::string_view id) override {
    return inner_.LoadJobHeader(id);
  }
  absl::StatusOr<std::vector<StoredReport>> LoadReports(absl::string_view id) override {
    return inner_.LoadReports(id);
  }

  void HoldNext() {
    absl::MutexLock lock(&mu_);
    hold_next_ = true;
  }
  // The transaction of this index (0: the first) fails.
  void FailTransaction(int index) {
    absl::MutexLock lock(&mu_);
    fail_index_ = index;
  }
  void WaitEntered() { entered_.WaitForNotification(); }
  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }
  std::vector<int> sizes() {
    absl::MutexLock lock(&mu_);
    return sizes_;
  }

 private:
  InMemoryJobStore inner_;
  absl::Mutex mu_;
  absl::Notification entered_;
  bool hold_next_ ABSL_GUARDED_BY(mu_) = false;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  int fail_index_ ABSL_GUARDED_BY(mu_) = -1;
  std::vector<int> sizes_ ABSL_GUARDED_BY(mu_);
};

// The answers, by the order their submissions were posted; `worker_nice` is the niceness of
// the thread that gave them.
class Answers {
 public:
  SubmissionQueue::Done For(int index) {
    return [this, index](absl::StatusOr<v1::Job> job) {
      const int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
      absl::MutexLock lock(&mu_);
      results_[index].push_back(std::move(job));
      worker_nice_ = nice;
      ++count_;
    };
  }
  // Waits until `n` answers came, then returns each submission's answers.
  std::map<int, std::vector<absl::StatusOr<v1::Job>>> WaitFor(int n) {
    absl::MutexLock lock(&mu_);
    wanted_ = n;
    mu_.Await(absl::Condition(this, &Answers::Enough));
    return results_;
  }
  int worker_nice() {
    absl::MutexLock lock(&mu_);
    return worker_nice_;
  }

 private:
  bool Enough() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return count_ >= wanted_; }
  absl::Mutex mu_;
  std::map<int, std::vector<absl::StatusOr<v1::Job>>> results_ ABSL_GUARDED_BY(mu_);
  int count_ ABSL_GUARDED_BY(mu_) = 0;
  int wanted_ ABSL_GUARDED_BY(mu_) = 0;
  int worker_nice_ ABSL_GUARDED_BY(mu_) = 0;
};

class SubmissionQueueTest : public ::testing::Test {
 protected:
  SubmissionQueueTest()
      : registry_(clock_, AgentRegistryOptions{absl::Seconds(10)}),
        rendezvous_(clock_, RendezvousLimits{}),
        jobs_(clock_, store_, registry_, rendezvous_, streams_, events_, catalog_,
              JobManagerOptions{}, nullptr) {}

  static Submission Plan(const std::string& yaml = kPlan) {
    Submission s;
    s.plan.plan_yaml = yaml;
    s.plan.origin = "test.yaml";
    s.submitted_by = "tester";
    return s;
  }

  FakeClock clock_;
  Catalog catalog_ = *Catalog::Builtin();
  GatedStore store_;
  AgentRegistry registry_;
  RendezvousStore rendezvous_;
  AgentStreamHub streams_;
  JobEventHub events_;
  JobManager jobs_;
};

TEST_F(SubmissionQueueTest, CommitsWhatQueuedWhileAWorkerCommittedAsOneBatch) {
  SubmissionQueue queue(jobs_, SubmissionQueueOptions{.workers = 1, .max_batch = 64});
  Answers answers;
  store_.HoldNext();
  ASSERT_TRUE(queue.Post(Plan(), answers.For(0)).ok());
  store_.WaitEntered();  // the worker took submission 0 and is in its transaction
  for (int i = 1; i <= 8; ++i) ASSERT_TRUE(queue.Post(Plan(), answers.For(i)).ok());
  EXPECT_EQ(queue.pending(), 8);
  store_.Release();
  auto results = answers.WaitFor(9);
  EXPECT_EQ(store_.sizes(), (std::vector<int>{1, 8}));
  EXPECT_EQ(queue.batches(), 2);
  for (int i = 0; i <= 8; ++i) {
    ASSERT_EQ(results[i].size(), 1u) << "submission " << i << " answered more than once";
    ASSERT_TRUE(results[i][0].ok()) << results[i][0].status();
    // Ids in the order of posting, each job queued with its submitter.
    EXPECT_EQ(results[i][0]->id(), absl::StrFormat("job-%06d", i + 1));
    EXPECT_EQ(results[i][0]->state(), v1::JOB_STATE_QUEUED);
    EXPECT_EQ(results[i][0]->submitted_by(), "tester");
  }
  EXPECT_EQ(jobs_.GetJob("job-000009", v1::JOB_VIEW_BASIC)->queue_position(), 9);
}

TEST_F(SubmissionQueueTest, BatchesAreNoLargerThanMaxBatch) {
  SubmissionQueue queue(jobs_, SubmissionQueueOptions{.workers = 1, .max_batch = 3});
  Answers answers;
  store_.HoldNext();
  ASSERT_TRUE(queue.Post(Plan(), answers.For(0)).ok());
  store_.WaitEntered();
  for (int i = 1; i <= 7; ++i) ASSERT_TRUE(queue.Post(Plan(), answers.For(i)).ok());
  store_.Release();
  answers.WaitFor(8);
  EXPECT_EQ(store_.sizes(), (std::vector<int>{1, 3, 3, 1}));
}

TEST_F(SubmissionQueueTest, AFullQueueRefusesAtOnceAndAnswersTheRest) {
  SubmissionQueue queue(jobs_, SubmissionQueueOptions{.workers = 1, .max_pending = 2});
  Answers answers;
  store_.HoldNext();
  ASSERT_TRUE(queue.Post(Plan(), answers.For(0)).ok());
  store_.WaitEntered();
  ASSERT_TRUE(queue.Post(Plan(), answers.For(1)).ok());
  ASSERT_TRUE(queue.Post(Plan(), answers.For(2)).ok());
  const absl::Status refused = queue.Post(Plan(), answers.For(3));
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("retry"), std::string::npos) << refused;
  store_.Release();
  auto results = answers.WaitFor(3);
  EXPECT_EQ(results.count(3), 0u) << "a refused submission must not be answered too";
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(results[i][0].ok()) << i;
}

TEST_F(SubmissionQueueTest, StopAnswersEveryAcceptedSubmissionThenRefuses) {
  auto queue = std::make_unique<SubmissionQueue>(jobs_, SubmissionQueueOptions{.max_pending = 16});
  Answers answers;
  store_.HoldNext();
  ASSERT_TRUE(queue->Post(Plan(), answers.For(0)).ok());
  store_.WaitEntered();
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(queue->Post(Plan(), answers.For(i)).ok());
  std::thread stopper([&] { queue->Stop(); });
  // Posts go on being accepted until Stop has begun; each accepted one must be answered.
  // (A full queue refuses too, but only until Stop begins: then every Post is Unavailable.)
  int accepted = 4;
  absl::Status refused;
  while (true) {
    refused = queue->Post(Plan(), answers.For(accepted));
    if (refused.ok()) {
      ++accepted;
    } else if (absl::IsResourceExhausted(refused)) {
      absl::SleepFor(absl::Milliseconds(1));
    } else {
      break;
    }
  }
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  store_.Release();
  stopper.join();
  auto results = answers.WaitFor(accepted);
  for (int i = 0; i < accepted; ++i) {
    ASSERT_EQ(results[i].size(), 1u) << i;
    EXPECT_TRUE(results[i][0].ok()) << i << ": " << results[i][0].status();
  }
}

TEST_F(SubmissionQueueTest, AFailedTransactionRefusesItsBatchAndAnInvalidPlanFailsAlone) {
  SubmissionQueue queue(jobs_, SubmissionQueueOptions{});
  Answers answers;
  store_.HoldNext();
  store_.FailTransaction(1);
  ASSERT_TRUE(queue.Post(Plan(), answers.For(0)).ok());
  store_.WaitEntered();
  // The second batch: a valid plan, an invalid one and another valid one; its transaction fails.
  ASSERT_TRUE(queue.Post(Plan(), answers.For(1)).ok());
  std::string bad = kPlan;
  bad.replace(bad.find("batch_sizes: [1]"), 16, "batch_sizes: [x]");
  ASSERT_TRUE(queue.Post(Plan(bad), answers.For(2)).ok());
  ASSERT_TRUE(queue.Post(Plan(), answers.For(3)).ok());
  store_.Release();
  answers.WaitFor(4);
  ASSERT_TRUE(queue.Post(Plan(), answers.For(4)).ok());
  auto results = answers.WaitFor(5);
  EXPECT_EQ(store_.sizes(), (std::vector<int>{1, 2, 1}));
  ASSERT_TRUE(results[0][0].ok());
  for (int i : {1, 3}) {
    EXPECT_EQ(results[i][0].status().code(), absl::StatusCode::kUnavailable) << i;
    EXPECT_NE(results[i][0].status().message().find("disk full"), std::string::npos);
  }
  EXPECT_EQ(results[2][0].status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(results[2][0].status().message().find("workload.batch_sizes[0]"), std::string::npos)
      << results[2][0].status();
  // Nothing of the failed batch is kept, and the next job takes the id it left free.
  ASSERT_TRUE(results[4][0].ok());
  EXPECT_EQ(results[4][0]->id(), "job-000002");
  v1::ListJobsRequest list;
  EXPECT_EQ(jobs_.ListJobs(list)->jobs_size(), 2);
  EXPECT_EQ(store_.LoadJobs()->size(), 2u);
}

TEST_F(SubmissionQueueTest, WorkersRunAtTheLowerPriorityTheyWereGiven) {
  const int mine = getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
  if (mine > 15) GTEST_SKIP() << "this test runs at niceness " << mine;
  SubmissionQueue queue(jobs_, SubmissionQueueOptions{.nice = 4});
  Answers answers;
  ASSERT_TRUE(queue.Post(Plan(), answers.For(0)).ok());
  answers.WaitFor(1);
  EXPECT_EQ(answers.worker_nice(), mine + 4);
}

}  // namespace
}  // namespace moecap::coordinator
