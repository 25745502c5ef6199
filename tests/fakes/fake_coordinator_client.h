// Test doubles for the agent daemon's unit tests: a scripted CoordinatorClient and its streams
// (the clock is tests/fakes/fake_clock.h).
#ifndef MOECAP_TESTS_FAKES_FAKE_COORDINATOR_CLIENT_H_
#define MOECAP_TESTS_FAKES_FAKE_COORDINATOR_CLIENT_H_

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "agent/daemon/coordinator_client.h"
#include "tests/fakes/fake_clock.h"

namespace moecap::agentd {

// A stream that ends on its first Read with `status` (the coordinator went away); `on_read` runs
// first (a test advances its clock there: how long the stream lasted).
class EndedStream : public AssignmentStream {
 public:
  EndedStream(absl::Status status, std::function<void()> on_read)
      : status_(std::move(status)), on_read_(std::move(on_read)) {}
  bool Read(v1::StreamAssignmentsResponse*) override {
    if (on_read_) on_read_();
    return false;
  }
  void Cancel() override {}
  absl::Status Finish() override { return status_; }

 private:
  absl::Status status_;
  std::function<void()> on_read_;
};

// Answers from scripts; records the requests (thread-safe: the runner reports from its thread).
class ScriptedClient : public CoordinatorClient {
 public:
  // Scripts and hooks: set before use.
  std::deque<absl::StatusOr<v1::RegisterResponse>> register_answers;
  std::deque<absl::StatusOr<v1::HeartbeatResponse>> heartbeat_answers;
  std::function<void()> on_stream;       // called when the session opens a stream
  std::function<void()> on_stream_read;  // called when the session reads from it
  absl::Status rank_answer;              // what ReportRank answers (recorded either way)
  // Recorded.
  std::vector<v1::RegisterRequest> registers;
  std::vector<v1::HeartbeatRequest> heartbeats;
  std::vector<v1::ReportFailureRequest> failures;
  std::vector<v1::ReportRankRequest> ranks;
  std::vector<v1::ReportNodeRequest> nodes;
  std::vector<v1::ReportProgressRequest> progress;
  std::vector<std::string> log;  // "progress", "rank", "node", "failure" in order

  absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& request) override {
    absl::MutexLock lock(&mu_);
    registers.push_back(request);
    if (register_answers.empty()) return absl::UnavailableError("no coordinator");
    absl::StatusOr<v1::RegisterResponse> answer = register_answers.front();
    register_answers.pop_front();
    return answer;
  }
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) override {
    absl::MutexLock lock(&mu_);
    heartbeats.push_back(request);
    if (heartbeat_answers.empty()) return v1::HeartbeatResponse();
    absl::StatusOr<v1::HeartbeatResponse> answer = heartbeat_answers.front();
    heartbeat_answers.pop_front();
    return answer;
  }
  std::unique_ptr<AssignmentStream> StreamAssignments(const std::string&) override {
    if (on_stream) on_stream();
    return std::make_unique<EndedStream>(absl::UnavailableError("coordinator gone"),
                                         on_stream_read);
  }
  absl::StatusOr<v1::ReportProgressResponse> ReportProgress(
      const v1::ReportProgressRequest& request) override {
    absl::MutexLock lock(&mu_);
    progress.push_back(request);
    log.push_back("progress");
    return v1::ReportProgressResponse();
  }
  absl::Status ReportRank(const v1::ReportRankRequest& request) override {
    absl::MutexLock lock(&mu_);
    ranks.push_back(request);
    log.push_back("rank");
    return rank_answer;
  }
  absl::Status ReportNode(const v1::ReportNodeRequest& request) override {
    absl::MutexLock lock(&mu_);
    nodes.push_back(request);
    log.push_back("node");
    return absl::OkStatus();
  }
  absl::Status ReportFailure(const v1::ReportFailureRequest& request) override {
    absl::MutexLock lock(&mu_);
    failures.push_back(request);
    log.push_back("failure");
    return absl::OkStatus();
  }
  absl::Status Deregister(const v1::DeregisterRequest&) override { return absl::OkStatus(); }

  // Runs `read` on the recorded requests under the lock.
  template <typename Fn>
  auto Locked(Fn&& read) {
    absl::MutexLock lock(&mu_);
    return read(*this);
  }

 private:
  absl::Mutex mu_;
};

inline v1::RegisterResponse Registered(const std::string& id, double lease_s = 10,
                                       double interval_s = 0) {
  v1::RegisterResponse r;
  r.set_agent_id(id);
  r.set_lease_seconds(lease_s);
  r.set_heartbeat_interval_seconds(interval_s);
  return r;
}

}  // namespace moecap::agentd

#endif  // MOECAP_TESTS_FAKES_FAKE_COORDINATOR_CLIENT_H_
