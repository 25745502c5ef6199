// Subprocess: fork + exec with PR_SET_PDEATHSIG, redirects opened before fork, and bounded waits.
#include "common/subprocess.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace moecap {
namespace {

// Waits poll waitpid with a pause that grows from 1 ms to 16 ms: a child that exits at once is
// reaped at once, one that takes seconds costs few wake-ups.
constexpr absl::Duration kFirstPause = absl::Milliseconds(1);
constexpr absl::Duration kLongestPause = absl::Milliseconds(16);

// An open file for a redirect, closed when it goes (the parent's copy; the child has dup2'd it).
class Fd {
 public:
  Fd() = default;
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  void reset(int fd) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

absl::Status OpenRedirect(const std::string& path, mode_t mode, Fd& fd) {
  if (path.empty()) return absl::OkStatus();
  // O_CLOEXEC: children other threads start meanwhile must not inherit it; dup2 in our child
  // clears the flag on the copy it makes.
  const int opened = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, mode);
  if (opened < 0) {
    return absl::InternalError(absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
  }
  fd.reset(opened);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Subprocess> Subprocess::Spawn(const std::vector<std::string>& argv,
                                             const SpawnOptions& options, const Clock& clock) {
  if (argv.empty() || argv.front().empty()) {
    return absl::InvalidArgumentError("spawn: no program given");
  }
  std::vector<std::string> args = argv;
  std::vector<char*> c_argv;
  c_argv.reserve(args.size() + 1);
  for (std::string& a : args) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);

  Fd out, err;
  if (absl::Status s = OpenRedirect(options.stdout_path, options.file_mode, out); !s.ok()) {
    return s;
  }
  const bool shared = !options.stderr_path.empty() && options.stderr_path == options.stdout_path;
  if (!shared) {
    if (absl::Status s = OpenRedirect(options.stderr_path, options.file_mode, err); !s.ok()) {
      return s;
    }
  }
  const int out_fd = out.get();
  const int err_fd = shared ? out.get() : err.get();
  const bool set_group = options.process_group.has_value();
  const pid_t group = options.process_group.value_or(0);

  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // The child: async-signal-safe calls only (the parent may have had other threads).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);  // the starter died before prctl took effect
    if (set_group) setpgid(0, group);     // group 0: this child starts the group
    if (out_fd >= 0) dup2(out_fd, STDOUT_FILENO);
    if (err_fd >= 0) dup2(err_fd, STDERR_FILENO);
    execv(c_argv[0], c_argv.data());
    _exit(127);
  }
  if (pid < 0) {
    return absl::ResourceExhaustedError(absl::StrCat("fork failed: ", std::strerror(errno)));
  }
  // Also from the parent, so the group exists whichever of the two runs first.
  if (set_group) setpgid(pid, group == 0 ? pid : group);
  return Subprocess(pid, clock);
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      exit_status_(std::exchange(other.exit_status_, std::nullopt)),
      clock_(other.clock_) {}

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this != &other) {
    if (running()) {
      kill(pid_, SIGKILL);
      Wait(kReapTimeout);
    }
    pid_ = std::exchange(other.pid_, -1);
    exit_status_ = std::exchange(other.exit_status_, std::nullopt);
    clock_ = other.clock_;
  }
  return *this;
}

Subprocess::~Subprocess() {
  if (!running()) return;
  kill(pid_, SIGKILL);
  Wait(kReapTimeout);
}

std::optional<int> Subprocess::Poll() {
  if (!running()) return exit_status_;
  int status = 0;
  const pid_t done = waitpid(pid_, &status, WNOHANG);
  if (done == pid_) {
    exit_status_ = status;
  } else if (done < 0 && errno == ECHILD) {
    // Reaped by someone else (a waitpid(-1) elsewhere): its status is lost; record it as killed
    // by SIGKILL (the wait status of that is the signal's number).
    exit_status_ = SIGKILL;
  }
  return exit_status_;
}

std::optional<int> Subprocess::Wait(absl::Duration timeout) {
  const absl::Time deadline = clock_->Now() + timeout;
  absl::Duration pause = kFirstPause;
  while (running()) {
    if (Poll().has_value()) break;
    const absl::Time now = clock_->Now();
    if (now >= deadline) break;
    clock_->SleepUntil(std::min(deadline, now + pause));
    pause = std::min(pause * 2, kLongestPause);
  }
  return exit_status_;
}

void Subprocess::Signal(int signal) {
  if (running()) kill(pid_, signal);
}

int Subprocess::Kill() {
  if (!running()) return exit_status_.value_or(0);
  kill(pid_, SIGKILL);
  int status = 0;
  pid_t done;
  do {
    done = waitpid(pid_, &status, 0);
  } while (done < 0 && errno == EINTR);
  exit_status_ = done == pid_ ? status : SIGKILL;  // ECHILD: reaped elsewhere (see Poll)
  return *exit_status_;
}

int Subprocess::Stop(absl::Duration grace, int signal) {
  Signal(signal);
  if (std::optional<int> status = Wait(grace)) return *status;
  return Kill();
}

}  // namespace moecap
