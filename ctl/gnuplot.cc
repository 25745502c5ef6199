// fork/exec of gnuplot with a working directory of its own.
#include "ctl/gnuplot.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace moecap::ctl {
namespace {

constexpr char kInstallHint[] = "install gnuplot-nox (apt-get install gnuplot-nox)";

bool IsExecutable(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// The program's path: as given when it holds a '/', else the first match on PATH.
std::string FindProgram(const std::string& program) {
  if (program.find('/') != std::string::npos) return IsExecutable(program) ? program : "";
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':')) {
    if (dir.empty()) continue;
    const std::string candidate = absl::StrCat(dir, "/", program);
    if (IsExecutable(candidate)) return candidate;
  }
  return "";
}

absl::Status WriteFile(const std::filesystem::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

std::string Tail(const std::filesystem::path& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > max_bytes) text = "..." + text.substr(text.size() - max_bytes);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// Removes the temporary directory on every return path.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        absl::StrCat(base != nullptr && *base ? base : "/tmp", "/moecap-plot-XXXXXX");
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) != nullptr) path_ = buffer.data();
  }
  ~TempDir() {
    if (!path_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(path_, ignored);
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace

absl::Status RenderSvg(const GnuplotJob& job, const std::string& out_path,
                       const GnuplotOptions& options) {
  const std::string program = FindProgram(options.program);
  if (program.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("gnuplot not found ('", options.program,
                                                      "'): moecapctl plot draws with it; ",
                                                      kInstallHint));
  }
  TempDir dir;
  if (dir.path().empty()) {
    return absl::InternalError(
        absl::StrCat("cannot create a temporary directory: ", std::strerror(errno)));
  }
  for (const auto& [name, contents] : job.data_files) {
    MOECAP_RETURN_IF_ERROR(WriteFile(dir.path() / name, contents));
  }
  MOECAP_RETURN_IF_ERROR(WriteFile(dir.path() / "plot.gp", job.script));

  // Everything the child needs is prepared before fork(): after it only async-signal-safe calls.
  const std::string work_dir = dir.path().string();
  const std::string log_path = (dir.path() / "gnuplot.log").string();
  std::vector<char*> argv = {const_cast<char*>(program.c_str()), const_cast<char*>("plot.gp"),
                             nullptr};
  const pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int null_in = ::open("/dev/null", O_RDONLY);
    if (log < 0 || null_in < 0 || ::chdir(work_dir.c_str()) != 0) ::_exit(126);
    ::dup2(null_in, STDIN_FILENO);
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  const absl::Time deadline = absl::Now() + options.timeout;
  int status = 0;
  while (true) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrCat("waitpid: ", std::strerror(errno)));
    }
    if (absl::Now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return absl::DeadlineExceededError(
          absl::StrCat("gnuplot did not finish within ", absl::FormatDuration(options.timeout)));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  const std::string log_tail = Tail(log_path, 2000);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code == 127 || code == 126) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot run ", program, ": ", kInstallHint));
    }
    return absl::InternalError(absl::StrCat("gnuplot failed (exit ", code, "): ", log_tail));
  }
  std::error_code ec;
  std::filesystem::copy_file(dir.path() / GnuplotJob::kPlotOutputName, out_path,
                             std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot write ", out_path, ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace moecap::ctl
