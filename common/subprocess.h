// Child processes that never outlive their starter: fork + exec of an argv, the child asking the
// kernel to SIGKILL it when the thread that started it ends (PR_SET_PDEATHSIG), its stdout and
// stderr optionally in files, and waits bounded on an injected Clock (common/clock.h). What the
// launcher's ranks, `moecapctl run --local`'s agents, the self-check's TCP peer and the tests'
// agent processes are started with.
#ifndef MOECAP_COMMON_SUBPROCESS_H_
#define MOECAP_COMMON_SUBPROCESS_H_

#include <signal.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace moecap {

struct SpawnOptions {
  // Files the child's stdout and stderr go to, created (mode `file_mode`) and truncated; empty:
  // the parent's. The same path for both opens it once, so the lines of the two keep their order.
  std::string stdout_path;
  std::string stderr_path;
  mode_t file_mode = 0600;
  // The child's process group: unset, the parent's; 0, a new group the child leads; > 0, that
  // existing group (so one kill(-group) reaches a job's children together).
  std::optional<pid_t> process_group;
};

// One child process. Not thread-safe: one thread at a time may wait on or signal it (any thread
// of the parent process may). Movable, not copyable.
class Subprocess {
 public:
  // Starts argv[0] (a path, not looked up on PATH) with `argv`. Everything the child needs is
  // prepared here, before fork: between fork and exec the child makes only async-signal-safe
  // calls. InvalidArgument for an empty argv; Internal when a redirect file cannot be created;
  // ResourceExhausted when fork fails. A program that cannot be executed shows as exit status
  // 127, a starter that died before the child could ask to follow it as 126.
  //
  // The child is killed when the calling thread ends, so call it from a thread that lives as
  // long as the child should (not a short-lived worker thread). A thread that ends before the
  // child has made that request (between fork and exec) leaves it running: the child can check
  // that its parent process lives, not the thread. `clock` times the waits below and must
  // outlive the Subprocess.
  static absl::StatusOr<Subprocess> Spawn(const std::vector<std::string>& argv,
                                          const SpawnOptions& options = {},
                                          const Clock& clock = SystemClock());

  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  // A child not reaped yet is sent SIGKILL and waited for at most kReapTimeout: a destructor
  // never hangs on a process stuck in the kernel (it is left a zombie instead).
  ~Subprocess();

  static constexpr absl::Duration kReapTimeout = absl::Seconds(5);

  pid_t pid() const { return pid_; }
  // The wait status (waitpid's: WIFEXITED, WEXITSTATUS...) once the child has been reaped.
  std::optional<int> exit_status() const { return exit_status_; }
  bool running() const { return pid_ > 0 && !exit_status_.has_value(); }

  // Reaps the child if it has exited, without waiting: its wait status, or nullopt while it runs.
  std::optional<int> Poll();
  // Waits at most `timeout` (on the clock) for the child to exit: its wait status, or nullopt
  // when it still runs.
  std::optional<int> Wait(absl::Duration timeout);
  // Sends `signal` to the child; nothing once it has been reaped (its pid may be reused).
  void Signal(int signal);
  // Sends SIGKILL and reaps the child, waiting as long as the kernel takes to end it (SIGKILL
  // cannot be caught or ignored, so only a process stuck in an uninterruptible call delays it).
  int Kill();
  // Asks the child to go (`signal`, SIGTERM by default), gives it `grace` to exit, then Kill().
  // Returns the wait status.
  int Stop(absl::Duration grace, int signal = SIGTERM);

 private:
  Subprocess(pid_t pid, const Clock& clock) : pid_(pid), clock_(&clock) {}

  pid_t pid_ = -1;
  std::optional<int> exit_status_;
  const Clock* clock_;
};

}  // namespace moecap

#endif  // MOECAP_COMMON_SUBPROCESS_H_
