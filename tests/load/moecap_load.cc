// moecap-load: a load generator for one moecap-coordinator. It simulates N agents (each registers,
// then heartbeats once a second, the agents spread evenly over the second) and M concurrent
// submitters of a plan, and prints per-N heartbeat latency (p50/p99/max) and errors, submissions
// accepted per second, and whether every accepted submission is persisted.
//
// With --coordinator-bin it starts the coordinator itself on a fresh database, and after the run
// kills it with SIGKILL, restarts it on the same database and looks every accepted job id up
// (ListJobs): "no job lost" means every id is found after the restart. With --target it loads a
// coordinator that is already running and checks the ids on it without a restart.
//
// The simulated agents do not open an assignment stream, so the scheduler never places the
// submitted jobs on them: the jobs stay QUEUED (still persisted), and agents send no reports.
//
// Few threads: one ticker thread sends the heartbeats with the gRPC callback API over a handful
// of channels (each its own TCP connection); completions run on gRPC's own threads.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/plan/plan.h"
#include "grpcpp/grpcpp.h"
#include "moecap/v1/agent_service.grpc.pb.h"
#include "moecap/v1/job_service.grpc.pb.h"
#include "nlohmann/json.hpp"

namespace moecap::load {
namespace {

using Steady = std::chrono::steady_clock;

struct LoadOptions {
  std::string target;           // HOST:PORT of a running coordinator
  std::string coordinator_bin;  // or: start this coordinator (and restart it to check)
  std::string work_dir;         // database and coordinator log (spawn mode)
  std::vector<std::string> coordinator_args;
  std::vector<int> agents = {100};
  double duration_s = 10;  // per heartbeat step, and the submission phase
  int submitters = 0;
  int64_t submissions = 0;  // total; 0: as many as fit in --duration
  std::string plan_file;
  // "yaml": plan_yaml, parsed by the coordinator (what moecapctl sends); "proto": the Plan
  // message, parsed here once (what a program using the API sends).
  std::string submit_as = "yaml";
  int channels = 8;
  // Jobs submitted and cancelled at once (each ends CANCELLED, kept in the store), to show what
  // finished jobs cost the coordinator's memory; 0: none.
  int64_t finish_jobs = 0;
  bool json = false;
  double heartbeat_deadline_s = 5;
};

// ---------------------------------------------------------------------------------------------
// Latency and error tallies

struct Tally {
  absl::Mutex mu;
  std::atomic<int64_t> sent{0};
  int64_t answered ABSL_GUARDED_BY(mu) = 0;
  std::vector<int64_t> latency_us ABSL_GUARDED_BY(mu);
  std::map<std::string, int64_t> errors ABSL_GUARDED_BY(mu);  // by status code name

  // Waits until every call sent was answered; counts the rest as errors "UNANSWERED".
  void WaitAnswered(absl::Duration timeout) {
    absl::MutexLock lock(&mu);
    auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) { return answered >= sent.load(); };
    if (!mu.AwaitWithTimeout(absl::Condition(&done), timeout)) {
      errors["UNANSWERED"] += sent.load() - answered;
      answered = sent.load();
    }
  }

  void Record(Steady::time_point start, const grpc::Status& status) {
    const int64_t us =
        std::chrono::duration_cast<std::chrono::microseconds>(Steady::now() - start).count();
    absl::MutexLock lock(&mu);
    ++answered;
    if (status.ok()) {
      latency_us.push_back(us);
    } else {
      ++errors[CodeName(status.error_code())];
    }
  }

  static std::string CodeName(grpc::StatusCode code) {
    switch (code) {
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        return "DEADLINE_EXCEEDED";
      case grpc::StatusCode::UNAVAILABLE:
        return "UNAVAILABLE";
      case grpc::StatusCode::NOT_FOUND:
        return "NOT_FOUND";
      case grpc::StatusCode::INVALID_ARGUMENT:
        return "INVALID_ARGUMENT";
      case grpc::StatusCode::RESOURCE_EXHAUSTED:
        return "RESOURCE_EXHAUSTED";
      case grpc::StatusCode::INTERNAL:
        return "INTERNAL";
      default:
        return absl::StrCat("code ", static_cast<int>(code));
    }
  }
};

struct Summary {
  int64_t ok = 0;
  int64_t errors = 0;
  std::map<std::string, int64_t> error_codes;
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};

Summary Summarize(Tally& t) {
  absl::MutexLock lock(&t.mu);
  Summary s;
  std::vector<int64_t>& v = t.latency_us;
  s.ok = static_cast<int64_t>(v.size());
  for (const auto& [code, n] : t.errors) s.errors += n;
  s.error_codes = t.errors;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const auto at = [&](double q) {
    const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
    return static_cast<double>(v[i]) / 1000.0;
  };
  s.p50_ms = at(0.50);
  s.p99_ms = at(0.99);
  s.max_ms = static_cast<double>(v.back()) / 1000.0;
  return s;
}

nlohmann::json ToJson(const Summary& s) {
  return {{"ok", s.ok},         {"errors", s.errors}, {"error_codes", s.error_codes},
          {"p50_ms", s.p50_ms}, {"p99_ms", s.p99_ms}, {"max_ms", s.max_ms}};
}

// CPU seconds (user + system) a process used so far; -1 when unknown.
// Resident memory of `pid` in MiB (VmRSS), or -1.
double ProcessRssMib(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, "VmRSS:")) continue;
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    double kib = 0;
    if (parts.size() >= 2 && absl::SimpleAtod(parts[1], &kib)) return kib / 1024.0;
  }
  return -1;
}

double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(in, line)) return -1;
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::vector<std::string> fields = absl::StrSplit(line.substr(close + 2), ' ');
  // After "pid (comm) ": state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
  double utime = 0;
  double stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtod(fields[11], &utime) ||
      !absl::SimpleAtod(fields[12], &stime)) {
    return -1;
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return absl::StrCat(a, " ", b, " ", c);
}

// ---------------------------------------------------------------------------------------------
// The coordinator process (spawn mode)

class CoordinatorProcess {
 public:
  ~CoordinatorProcess() { Kill(SIGKILL); }

  // Starts `bin` on `db` with a free port; returns once it printed "listening on HOST:PORT".
  absl::Status Start(const LoadOptions& o, const std::string& db) {
    std::vector<std::string> argv = {o.coordinator_bin, "--listen", "127.0.0.1:0", "--db", db};
    if (NeedsInsecureFlag(o.coordinator_bin)) argv.push_back("--insecure");
    for (const std::string& a : o.coordinator_args) argv.push_back(a);
    int out[2];
    if (pipe(out) != 0) return absl::InternalError("pipe failed");
    const std::string log = o.work_dir + "/coordinator.log";
    pid_ = fork();
    if (pid_ < 0) return absl::InternalError("fork failed");
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      const int err = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (err >= 0) dup2(err, STDERR_FILENO);
      close(out[0]);
      std::vector<char*> args;
      for (std::string& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(out[1]);
    stdout_ = fdopen(out[0], "r");
    // Bounded: the coordinator prints the line within seconds or exits.
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    char buf[512];
    while (absl::Now() < deadline && fgets(buf, sizeof(buf), stdout_) != nullptr) {
      std::string line(buf);
      const std::string prefix = "listening on ";
      if (line.rfind(prefix, 0) == 0) {
        address_ = line.substr(prefix.size());
        while (!address_.empty() && (address_.back() == '\n' || address_.back() == '\r')) {
          address_.pop_back();
        }
        return absl::OkStatus();
      }
    }
    Kill(SIGKILL);
    return absl::UnavailableError(
        absl::StrCat("--coordinator-bin ", o.coordinator_bin, ": did not start; see ", log));
  }

  // Sends `sig` and reaps the process (bounded: SIGKILL after 15 s).
  void Kill(int sig) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    for (int i = 0; i < 150; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) break;
      if (i == 149) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    pid_ = -1;
    if (stdout_ != nullptr) fclose(stdout_);
    stdout_ = nullptr;
  }

  const std::string& address() const { return address_; }
  pid_t pid() const { return pid_; }

 private:
  // Plaintext gRPC needs --insecure on coordinators that have TLS flags.
  static bool NeedsInsecureFlag(const std::string& bin) {
    FILE* p = popen(absl::StrCat("'", bin, "' --help 2>&1").c_str(), "r");
    if (p == nullptr) return false;
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) text.append(buf, n);
    pclose(p);
    return text.find("--insecure") != std::string::npos;
  }

  pid_t pid_ = -1;
  FILE* stdout_ = nullptr;
  std::string address_;
};

// ---------------------------------------------------------------------------------------------
// Channels

struct Channels {
  std::vector<std::unique_ptr<v1::AgentService::Stub>> agents;
  std::vector<std::unique_ptr<v1::JobService::Stub>> jobs;

  Channels(const std::string& target, int n) {
    for (int i = 0; i < n; ++i) {
      grpc::ChannelArguments args;
      // A distinct argument and a local subchannel pool: each channel its own connection.
      args.SetInt("moecap.load.channel", i);
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetMaxReceiveMessageSize(64 << 20);
      std::shared_ptr<grpc::Channel> ch =
          grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
      agents.push_back(v1::AgentService::NewStub(ch));
      jobs.push_back(v1::JobService::NewStub(ch));
    }
  }
};

// Counts calls in flight; Wait blocks until none is (bounded).
class InFlight {
 public:
  void Add() {
    absl::MutexLock lock(&mu_);
    ++n_;
  }
  void Done() {
    absl::MutexLock lock(&mu_);
    --n_;
  }
  bool WaitBelow(int64_t limit, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto below = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return n_ < limit; };
    return mu_.AwaitWithTimeout(absl::Condition(&below), timeout);
  }

 private:
  absl::Mutex mu_;
  int64_t n_ ABSL_GUARDED_BY(mu_) = 0;
};

// ---------------------------------------------------------------------------------------------
// Agents

v1::AgentInfo AgentInfoOf(int i) {
  v1::AgentInfo info;
  info.set_name(absl::StrCat("load-agent-", i));
  info.set_hostname(absl::StrCat("load-host-", i));
  info.set_data_plane_host("127.0.0.1");
  info.set_backend(v1::BACKEND_CPU);
  info.set_version("moecap-load");
  (*info.mutable_labels())["moecap-load"] = "1";
  v1::HardwareInventory* inv = info.mutable_inventory();
  inv->set_cpu_cores(2);
  inv->set_host_memory_bytes(8ull << 30);
  v1::Device* d = inv->add_devices();
  d->set_index(0);
  d->set_kind(v1::DEVICE_KIND_CPU);
  d->set_name("simulated cpu");
  d->set_hardware("cpu");
  d->set_memory_bytes(8ull << 30);
  d->set_cores(2);
  return info;
}

class AgentFleet {
 public:
  AgentFleet(Channels& channels, const LoadOptions& o) : channels_(channels), options_(o) {}

  // Registers agents [registered, n): at most 128 registrations in flight. Returns the errors.
  int64_t RegisterUpTo(int n) {
    int64_t errors = 0;
    absl::Mutex mu;
    InFlight flight;
    std::vector<std::string> ids(static_cast<size_t>(n));
    const int from = registered();
    // Bounded: a coordinator that stops answering ends the ramp, it does not hang the tool.
    const absl::Time give_up = absl::Now() + absl::Seconds(120);
    for (int i = from; i < n; ++i) {
      if (!flight.WaitBelow(128, give_up - absl::Now())) {
        absl::MutexLock lock(&mu);
        errors += n - i;
        std::cerr << "register: gave up after 120 s with " << n - i << " agents left\n";
        break;
      }
      struct Call {
        grpc::ClientContext ctx;
        v1::RegisterRequest req;
        v1::RegisterResponse resp;
      };
      auto* call = new Call;
      call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      *call->req.mutable_agent() = AgentInfoOf(i);
      flight.Add();
      channels_.agents[static_cast<size_t>(i) % channels_.agents.size()]->async()->Register(
          &call->ctx, &call->req, &call->resp, [&, call, i](grpc::Status s) {
            {
              absl::MutexLock lock(&mu);
              if (s.ok()) {
                ids[static_cast<size_t>(i)] = call->resp.agent_id();
              } else {
                ++errors;
                if (errors <= 3) std::cerr << "register: " << s.error_message() << "\n";
              }
            }
            delete call;
            flight.Done();
          });
    }
    flight.WaitBelow(1, absl::Seconds(40));  // each call has a 30 s deadline
    absl::MutexLock lock(&mu_);
    for (int i = from; i < n; ++i) ids_.push_back(ids[static_cast<size_t>(i)]);
    return errors;
  }

  int registered() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(ids_.size());
  }

  // Heartbeats go to this tally (null: not measured).
  void SetTally(std::shared_ptr<Tally> t) {
    absl::MutexLock lock(&mu_);
    tally_ = std::move(t);
  }

  // The ticker: every millisecond slot k of a second, agents i with i % 1000 == k heartbeat.
  void Start() {
    ticker_ = std::thread([this] { Tick(); });
  }
  void Stop() {
    stop_.store(true);
    if (ticker_.joinable()) ticker_.join();
    flight_.WaitBelow(1, absl::Seconds(options_.heartbeat_deadline_s + 5));
  }
  double max_lag_ms() const { return static_cast<double>(max_lag_us_.load()) / 1000.0; }
  void ResetLag() { max_lag_us_.store(0); }
  int64_t sent() const { return sent_.load(); }

 private:
  void Tick() {
    const Steady::time_point t0 = Steady::now();
    for (int64_t slot = 0; !stop_.load(); ++slot) {
      const Steady::time_point due = t0 + std::chrono::milliseconds(slot);
      std::this_thread::sleep_until(due);
      const int64_t lag_us =
          std::chrono::duration_cast<std::chrono::microseconds>(Steady::now() - due).count();
      if (lag_us > max_lag_us_.load()) max_lag_us_.store(lag_us);
      std::vector<std::pair<int, std::string>> batch;
      std::shared_ptr<Tally> tally;
      {
        absl::MutexLock lock(&mu_);
        tally = tally_;
        for (size_t i = static_cast<size_t>(slot % 1000); i < ids_.size(); i += 1000) {
          if (!ids_[i].empty()) batch.emplace_back(static_cast<int>(i), ids_[i]);
        }
      }
      for (auto& [i, id] : batch) Beat(i, std::move(id), tally);
    }
  }

  void Beat(int i, std::string id, const std::shared_ptr<Tally>& tally) {
    struct Call {
      grpc::ClientContext ctx;
      v1::HeartbeatRequest req;
      v1::HeartbeatResponse resp;
      Steady::time_point start;
    };
    auto* call = new Call;
    call->ctx.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(static_cast<int64_t>(options_.heartbeat_deadline_s * 1000)));
    call->req.set_agent_id(std::move(id));
    call->req.set_state(v1::AGENT_STATE_IDLE);
    call->req.mutable_usage()->set_cpu_cores_used(0.1);
    call->req.mutable_usage()->set_host_memory_used_bytes(1ull << 30);
    flight_.Add();
    sent_.fetch_add(1);
    if (tally != nullptr) tally->sent.fetch_add(1);
    call->start = Steady::now();
    channels_.agents[static_cast<size_t>(i) % channels_.agents.size()]->async()->Heartbeat(
        &call->ctx, &call->req, &call->resp, [this, call, tally](grpc::Status s) {
          if (tally != nullptr) tally->Record(call->start, s);
          delete call;
          flight_.Done();
        });
  }

  Channels& channels_;
  const LoadOptions& options_;
  absl::Mutex mu_;
  std::vector<std::string> ids_ ABSL_GUARDED_BY(mu_);  // by agent index; empty: not registered
  std::shared_ptr<Tally> tally_ ABSL_GUARDED_BY(mu_);
  std::thread ticker_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> max_lag_us_{0};
  std::atomic<int64_t> sent_{0};
  InFlight flight_;
};

// ---------------------------------------------------------------------------------------------
// Submitters

struct SubmitResult {
  Summary latency;
  std::vector<std::string> accepted_ids;
  double seconds = 0;
};

// M loops, each one SubmitPlan in flight at a time, until `total` were sent or `duration` passed.
SubmitResult RunSubmitters(Channels& channels, const LoadOptions& o,
                           const v1::SubmitPlanRequest& request) {
  Tally tally;
  absl::Mutex mu;
  std::vector<std::string> accepted;
  std::atomic<int64_t> issued{0};
  const Steady::time_point start = Steady::now();
  const Steady::time_point end =
      start + std::chrono::milliseconds(static_cast<int64_t>(o.duration_s * 1000));
  InFlight loops;

  struct Loop {
    grpc::ClientContext* ctx = nullptr;
    v1::SubmitPlanRequest req;
    v1::SubmitPlanResponse resp;
    Steady::time_point started;
    size_t channel = 0;
  };
  std::vector<std::unique_ptr<Loop>> all;
  std::function<void(Loop*)> next = [&](Loop* loop) {
    const int64_t n = issued.fetch_add(1);
    if ((o.submissions > 0 && n >= o.submissions) || Steady::now() >= end) {
      loops.Done();
      return;
    }
    delete loop->ctx;
    loop->ctx = new grpc::ClientContext;
    loop->ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    loop->resp.Clear();
    loop->started = Steady::now();
    channels.jobs[loop->channel]->async()->SubmitPlan(
        loop->ctx, &loop->req, &loop->resp, [&, loop](grpc::Status s) {
          tally.Record(loop->started, s);
          if (s.ok()) {
            absl::MutexLock lock(&mu);
            accepted.push_back(loop->resp.job_id());
          } else if (s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
            static std::atomic<int> shown{0};
            if (shown.fetch_add(1) < 3) std::cerr << "submit: " << s.error_message() << "\n";
          }
          next(loop);
        });
  };
  for (int m = 0; m < o.submitters; ++m) {
    auto loop = std::make_unique<Loop>();
    loop->req = request;
    loop->channel = static_cast<size_t>(m) % channels.jobs.size();
    all.push_back(std::move(loop));
  }
  for (auto& loop : all) {
    loops.Add();
    next(loop.get());
  }
  loops.WaitBelow(1, absl::Seconds(o.duration_s + 60));
  SubmitResult r;
  r.seconds = std::chrono::duration<double>(Steady::now() - start).count();
  for (auto& loop : all) delete loop->ctx;
  r.latency = Summarize(tally);
  absl::MutexLock lock(&mu);
  r.accepted_ids = std::move(accepted);
  return r;
}

// M loops, each submitting a job and cancelling it as soon as it is accepted, until `total`
// jobs were cancelled (or a call failed).
struct FinishResult {
  int64_t finished = 0;
  int64_t errors = 0;
  double seconds = 0;
};

FinishResult RunFinishers(Channels& channels, int loops_wanted, int64_t total,
                          const v1::SubmitPlanRequest& request) {
  std::atomic<int64_t> issued{0};
  std::atomic<int64_t> finished{0};
  std::atomic<int64_t> errors{0};
  InFlight loops;
  struct Loop {
    std::unique_ptr<grpc::ClientContext> ctx;
    v1::SubmitPlanRequest submit;
    v1::SubmitPlanResponse submitted;
    v1::CancelJobRequest cancel;
    v1::CancelJobResponse cancelled;
    size_t channel = 0;
  };
  const auto fresh = [](Loop* loop) {
    loop->ctx = std::make_unique<grpc::ClientContext>();
    loop->ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  };
  const auto failed = [&](Loop*, const grpc::Status& s) {
    if (errors.fetch_add(1) < 3) std::cerr << "finish: " << s.error_message() << "\n";
    loops.Done();
  };
  std::function<void(Loop*)> next = [&](Loop* loop) {
    if (issued.fetch_add(1) >= total) {
      loops.Done();
      return;
    }
    fresh(loop);
    loop->submitted.Clear();
    channels.jobs[loop->channel]->async()->SubmitPlan(
        loop->ctx.get(), &loop->submit, &loop->submitted, [&, loop](grpc::Status s) {
          if (!s.ok()) return failed(loop, s);
          fresh(loop);
          loop->cancel.set_job_id(loop->submitted.job_id());
          loop->cancel.set_reason("moecap-load --finish");
          channels.jobs[loop->channel]->async()->CancelJob(
              loop->ctx.get(), &loop->cancel, &loop->cancelled, [&, loop](grpc::Status c) {
                if (!c.ok()) return failed(loop, c);
                finished.fetch_add(1);
                next(loop);
              });
        });
  };
  std::vector<std::unique_ptr<Loop>> all;
  for (int m = 0; m < loops_wanted; ++m) {
    auto loop = std::make_unique<Loop>();
    loop->submit = request;
    loop->channel = static_cast<size_t>(m) % channels.jobs.size();
    all.push_back(std::move(loop));
  }
  const Steady::time_point start = Steady::now();
  for (auto& loop : all) {
    loops.Add();
    next(loop.get());
  }
  loops.WaitBelow(1, absl::Hours(24));
  FinishResult r;
  r.seconds = std::chrono::duration<double>(Steady::now() - start).count();
  r.finished = finished.load();
  r.errors = errors.load();
  return r;
}

// Every job id the coordinator lists (ListJobs, pages of 1000).
absl::StatusOr<std::set<std::string>> ListedJobIds(const std::string& target) {
  std::shared_ptr<grpc::Channel> ch =
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto stub = v1::JobService::NewStub(ch);
  std::set<std::string> ids;
  std::string token;
  for (int page = 0; page < 100000; ++page) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::ListJobsRequest req;
    req.set_page_size(1000);
    req.set_page_token(token);
    v1::ListJobsResponse resp;
    grpc::Status s = stub->ListJobs(&ctx, req, &resp);
    if (!s.ok()) return absl::UnavailableError(absl::StrCat("ListJobs: ", s.error_message()));
    for (const v1::Job& j : resp.jobs()) ids.insert(j.id());
    token = resp.next_page_token();
    if (token.empty()) break;
  }
  return ids;
}

// ---------------------------------------------------------------------------------------------

int Run(const LoadOptions& o) {
  v1::SubmitPlanRequest submit_request;
  submit_request.set_origin("moecap-load");
  if (o.submitters > 0 || o.finish_jobs > 0) {
    std::ifstream in(o.plan_file);
    if (!in) {
      std::cerr << "--plan " << o.plan_file << ": cannot read the file\n";
      return 2;
    }
    std::stringstream text;
    text << in.rdbuf();
    if (o.submit_as == "proto") {
      absl::StatusOr<v1::Plan> plan = ParsePlanYaml(text.str(), o.plan_file);
      if (!plan.ok()) {
        std::cerr << plan.status().message() << "\n";
        return 2;
      }
      *submit_request.mutable_plan() = *std::move(plan);
    } else {
      submit_request.set_plan_yaml(text.str());
    }
  }
  std::unique_ptr<CoordinatorProcess> coordinator;
  std::string target = o.target;
  std::string db;
  if (!o.coordinator_bin.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.work_dir, ec);
    db = o.work_dir + "/load.db";
    for (const char* suffix : {"", "-wal", "-shm"}) unlink((db + suffix).c_str());
    coordinator = std::make_unique<CoordinatorProcess>();
    if (absl::Status s = coordinator->Start(o, db); !s.ok()) {
      std::cerr << s.message() << "\n";
      return 2;
    }
    target = coordinator->address();
  }
  const auto coordinator_cpu = [&]() {
    return coordinator != nullptr ? ProcessCpuSeconds(coordinator->pid()) : -1.0;
  };
  nlohmann::json report = {{"target", target},
                           {"channels", o.channels},
                           {"duration_s", o.duration_s},
                           {"load_average_before", LoadAverage()}};
  Channels channels(target, o.channels);
  AgentFleet fleet(channels, o);
  fleet.Start();
  bool failed = false;

  // 1. The agent ramp: register up to N, let it settle for a second, measure for --duration.
  std::vector<nlohmann::json> steps;
  for (int n : o.agents) {
    const Steady::time_point reg_start = Steady::now();
    const int64_t reg_errors = fleet.RegisterUpTo(n);
    const double reg_s = std::chrono::duration<double>(Steady::now() - reg_start).count();
    absl::SleepFor(absl::Seconds(1));
    auto tally = std::make_shared<Tally>();
    fleet.ResetLag();
    const double cpu0 = coordinator_cpu();
    const double self0 = SelfCpuSeconds();
    fleet.SetTally(tally);
    absl::SleepFor(absl::Seconds(o.duration_s));
    fleet.SetTally(nullptr);
    const double cpu1 = coordinator_cpu();
    const double self1 = SelfCpuSeconds();
    tally->WaitAnswered(absl::Seconds(o.heartbeat_deadline_s + 1));
    const Summary s = Summarize(*tally);
    nlohmann::json step = ToJson(s);
    step["agents"] = n;
    step["registration_s"] = reg_s;
    step["registration_errors"] = reg_errors;
    step["heartbeats_per_s"] = static_cast<double>(s.ok + s.errors) / o.duration_s;
    step["ticker_max_lag_ms"] = fleet.max_lag_ms();
    step["coordinator_cpu_cores"] = cpu0 < 0 ? -1.0 : (cpu1 - cpu0) / o.duration_s;
    step["load_tool_cpu_cores"] = (self1 - self0) / o.duration_s;
    step["load_average"] = LoadAverage();
    if (!o.json) {
      std::printf(
          "agents %6d  heartbeats %7lld ok %5lld err  p50 %7.2f ms  p99 %7.2f ms  max %8.2f ms  "
          "(register %.1f s, %lld err; coordinator %.2f cores, tool %.2f cores, ticker lag %.1f "
          "ms)\n",
          n, static_cast<long long>(s.ok), static_cast<long long>(s.errors), s.p50_ms, s.p99_ms,
          s.max_ms, reg_s, static_cast<long long>(reg_errors),
          step["coordinator_cpu_cores"].get<double>(), step["load_tool_cpu_cores"].get<double>(),
          fleet.max_lag_ms());
      std::fflush(stdout);
    }
    if (!o.json) {
      for (const auto& [code, count] : s.error_codes) {
        std::printf("  heartbeat errors %s: %lld\n", code.c_str(), static_cast<long long>(count));
      }
      if (fleet.max_lag_ms() > 50) {
        std::printf(
            "  warning: the tool sent heartbeats up to %.0f ms late: it fell behind (the machine "
            "is short of CPU), so this step measures the machine, not the coordinator\n",
            fleet.max_lag_ms());
      }
    }
    if (s.errors > 0 || reg_errors > 0) failed = true;
    steps.push_back(std::move(step));
    if (reg_errors > 0) break;  // larger N would only fail more
  }
  report["heartbeat_steps"] = steps;

  // 2. Submissions, with the last N agents still heartbeating.
  std::vector<std::string> accepted;
  if (o.submitters > 0) {
    auto tally = std::make_shared<Tally>();
    fleet.ResetLag();
    const double cpu0 = coordinator_cpu();
    fleet.SetTally(tally);
    SubmitResult r = RunSubmitters(channels, o, submit_request);
    fleet.SetTally(nullptr);
    const double cpu1 = coordinator_cpu();
    tally->WaitAnswered(absl::Seconds(o.heartbeat_deadline_s + 1));
    const Summary hb = Summarize(*tally);
    accepted = r.accepted_ids;
    const double rate = static_cast<double>(accepted.size()) / r.seconds;
    nlohmann::json sub = ToJson(r.latency);
    sub["submitters"] = o.submitters;
    sub["submit_as"] = o.submit_as;
    sub["accepted"] = accepted.size();
    sub["seconds"] = r.seconds;
    sub["accepted_per_s"] = rate;
    sub["coordinator_cpu_cores"] = cpu0 < 0 ? -1.0 : (cpu1 - cpu0) / r.seconds;
    nlohmann::json hbj = ToJson(hb);
    hbj["agents"] = fleet.registered();
    sub["heartbeats_meanwhile"] = hbj;
    report["submissions"] = sub;
    if (!o.json) {
      std::printf(
          "submitters %d (%s)  accepted %zu in %.1f s = %.0f/s  errors %lld  latency p50 %.2f ms  "
          "p99 %.2f ms  max %.2f ms  (coordinator %.2f cores)\n  heartbeats meanwhile (%d "
          "agents): p50 %.2f ms  p99 %.2f ms  max %.2f ms  errors %lld\n",
          o.submitters, o.submit_as.c_str(), accepted.size(), r.seconds, rate,
          static_cast<long long>(r.latency.errors), r.latency.p50_ms, r.latency.p99_ms,
          r.latency.max_ms, sub["coordinator_cpu_cores"].get<double>(), fleet.registered(),
          hb.p50_ms, hb.p99_ms, hb.max_ms, static_cast<long long>(hb.errors));
      std::fflush(stdout);
    }
    if (r.latency.errors > 0 || hb.errors > 0) failed = true;
  }

  // 3. Finished jobs and memory: N jobs submitted and cancelled (the agents still beating).
  if (o.finish_jobs > 0) {
    const auto rss = [&]() {
      return coordinator != nullptr ? ProcessRssMib(coordinator->pid()) : -1.0;
    };
    const double before = rss();
    FinishResult f =
        RunFinishers(channels, std::max(o.submitters, 16), o.finish_jobs, submit_request);
    const double after = rss();
    report["finished_jobs"] = {
        {"finished", f.finished}, {"errors", f.errors},
        {"seconds", f.seconds},   {"rss_mib_before", before},
        {"rss_mib_after", after}, {"finished_per_s", f.finished / f.seconds}};
    if (!o.json) {
      std::printf(
          "finished %lld jobs (submitted, then cancelled) in %.1f s = %.0f/s, errors %lld; "
          "coordinator RSS %.1f MiB before, %.1f MiB after (%+.2f KiB per job)\n",
          static_cast<long long>(f.finished), f.seconds, f.finished / f.seconds,
          static_cast<long long>(f.errors), before, after,
          f.finished > 0 ? (after - before) * 1024.0 / static_cast<double>(f.finished) : 0.0);
      std::fflush(stdout);
    }
    if (f.errors > 0 || f.finished < o.finish_jobs) failed = true;
  }
  fleet.Stop();

  // 4. Persistence: every accepted id is listed (after a SIGKILL and restart in spawn mode).
  if (o.submitters > 0) {
    bool restarted = false;
    if (coordinator != nullptr) {
      coordinator->Kill(SIGKILL);
      if (absl::Status s = coordinator->Start(o, db); !s.ok()) {
        std::cerr << "restart: " << s.message() << "\n";
        return 2;
      }
      target = coordinator->address();
      restarted = true;
    }
    absl::StatusOr<std::set<std::string>> listed = ListedJobIds(target);
    if (!listed.ok()) {
      std::cerr << listed.status().message() << "\n";
      return 2;
    }
    int64_t missing = 0;
    for (const std::string& id : accepted) missing += listed->count(id) == 0 ? 1 : 0;
    const int64_t persisted = static_cast<int64_t>(accepted.size()) - missing;
    report["persistence"] = {{"accepted", accepted.size()},
                             {"persisted", persisted},
                             {"missing", missing},
                             {"listed", listed->size()},
                             {"after_sigkill_restart", restarted}};
    if (!o.json) {
      std::printf("persisted %lld of %zu accepted (%lld missing%s)\n",
                  static_cast<long long>(persisted), accepted.size(),
                  static_cast<long long>(missing),
                  restarted ? ", after SIGKILL and restart of the coordinator" : "");
    }
    if (missing > 0) failed = true;
  }
  if (coordinator != nullptr) coordinator->Kill(SIGTERM);
  report["load_average_after"] = LoadAverage();
  report["ok"] = !failed;
  if (o.json) std::cout << report.dump(2) << "\n";
  if (!o.json) std::printf("load average %s; %s\n", LoadAverage().c_str(), failed ? "FAIL" : "OK");
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace moecap::load

int main(int argc, char** argv) {
  moecap::load::LoadOptions o;
  std::string agents = "100";
  CLI::App app{"moecap-load: N simulated agents and M submitters against one moecap-coordinator"};
  app.add_option("--target", o.target, "HOST:PORT of a running coordinator");
  app.add_option("--coordinator-bin", o.coordinator_bin,
                 "start this moecap-coordinator on a fresh database instead, and SIGKILL and "
                 "restart it before checking persistence");
  app.add_option("--work-dir", o.work_dir, "database and coordinator log (with --coordinator-bin)")
      ->capture_default_str();
  app.add_option("--coordinator-arg", o.coordinator_args,
                 "extra coordinator flag (repeatable; e.g. --coordinator-arg=--db-sync-full)");
  app.add_option("--agents", agents, "simulated agents: N, or a ramp N1,N2,... (measured per N)")
      ->capture_default_str();
  app.add_option("--duration", o.duration_s, "seconds measured per N, and of the submission phase")
      ->check(CLI::Range(0.5, 3600.0))
      ->capture_default_str();
  app.add_option("--submitters", o.submitters, "concurrent submitters (0: none)")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  app.add_option("--submissions", o.submissions,
                 "submissions in all (0: as many as --duration lets)")
      ->check(CLI::Range(int64_t{0}, int64_t{100000000}))
      ->capture_default_str();
  app.add_option("--plan", o.plan_file, "plan YAML the submitters submit");
  app.add_option("--submit-as", o.submit_as,
                 "yaml: send plan_yaml (the coordinator parses it, as from moecapctl); proto: "
                 "send the Plan message, parsed here once")
      ->check(CLI::IsMember({"yaml", "proto"}))
      ->capture_default_str();
  app.add_option("--channels", o.channels, "gRPC channels (TCP connections) the agents share")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--finish", o.finish_jobs,
                 "jobs to submit and cancel at once (finished jobs, kept in the store), with the "
                 "coordinator's RSS before and after (0: none; needs --plan)")
      ->check(CLI::Range(int64_t{0}, int64_t{100000000}))
      ->capture_default_str();
  app.add_flag("--json", o.json, "print the figures as one JSON object");
  CLI11_PARSE(app, argc, argv);
  if (o.target.empty() == o.coordinator_bin.empty()) {
    std::cerr << "give exactly one of --target and --coordinator-bin\n";
    return 2;
  }
  if ((o.submitters > 0 || o.finish_jobs > 0) && o.plan_file.empty()) {
    std::cerr << "--plan: needed with --submitters and --finish\n";
    return 2;
  }
  o.agents.clear();
  for (absl::string_view part : absl::StrSplit(agents, ',', absl::SkipEmpty())) {
    int n = 0;
    if (!absl::SimpleAtoi(part, &n) || n < 0 || n > 1000000) {
      std::cerr << "--agents: '" << part << "' is not a count of agents (0..1000000)\n";
      return 2;
    }
    o.agents.push_back(n);
  }
  if (!o.coordinator_bin.empty() && o.work_dir.empty()) {
    char tmpl[] = "/tmp/moecap-load-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      std::cerr << "--work-dir: cannot create a temporary directory\n";
      return 2;
    }
    o.work_dir = tmpl;
  }
  return moecap::load::Run(o);
}
