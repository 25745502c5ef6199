// FileKvStore: rename(2) gives atomic values; flock(2) on a side file serialises Add.
#include "agent/comm/file_kv_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " '", path, "': ", std::strerror(errno)));
}

// Polling interval: starts short so a fast rendezvous is fast, grows so a long wait is cheap.
absl::Duration NextBackoff(absl::Duration current) {
  return std::min(current * 2, absl::Milliseconds(20));
}

}  // namespace

std::string FileKvStore::EncodeKey(absl::string_view key) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(key.size());
  for (unsigned char c : key) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || (c == '.' && !out.empty());
    if (keep) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (out.empty()) out.push_back('%');  // the empty key still needs a name
  return out;
}

std::string FileKvStore::PathOf(absl::string_view key) const {
  return absl::StrCat(dir_, "/", EncodeKey(key));
}

absl::StatusOr<bool> FileKvStore::TryRead(absl::string_view key, std::string* value) const {
  const std::string path = PathOf(key);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return false;
    return ErrnoError("cannot open store file", path);
  }
  value->clear();
  char buffer[4096];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const absl::Status status = ErrnoError("cannot read store file", path);
      close(fd);
      return status;
    }
    value->append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return true;
}

absl::Status FileKvStore::WriteAtomically(absl::string_view key, absl::string_view value) const {
  // The temporary name is unique per process and call, and starts with '.', which EncodeKey
  // never produces first, so a reader can never mistake it for a key.
  static std::atomic<uint64_t> counter{0};
  const std::string path = PathOf(key);
  const std::string tmp =
      absl::StrCat(dir_, "/.tmp.", getpid(), ".", counter.fetch_add(1), ".", EncodeKey(key));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return ErrnoError("cannot create store file", tmp);
    out.write(value.data(), static_cast<std::streamsize>(value.size()));
    out.flush();
    if (!out) return ErrnoError("cannot write store file", tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const absl::Status status = ErrnoError("cannot rename store file to", path);
    std::remove(tmp.c_str());
    return status;
  }
  return absl::OkStatus();
}

absl::Status FileKvStore::Set(absl::string_view key, absl::string_view value) {
  return WriteAtomically(key, value);
}

absl::StatusOr<std::string> FileKvStore::Get(absl::string_view key, absl::Duration timeout) {
  const absl::Time deadline = clock_.Now() + timeout;
  absl::Duration backoff = absl::Microseconds(200);
  std::string value;
  while (true) {
    absl::StatusOr<bool> found = TryRead(key, &value);
    if (!found.ok()) return found.status();
    if (*found) return value;
    const absl::Time now = clock_.Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("store key '", key,
                                                      "' did not appear within ",
                                                      absl::FormatDuration(timeout), " in ", dir_));
    }
    clock_.SleepUntil(now + std::min(backoff, deadline - now));
    backoff = NextBackoff(backoff);
  }
}

absl::Status FileKvStore::Wait(const std::vector<std::string>& keys, absl::Duration timeout) {
  const absl::Time deadline = clock_.Now() + timeout;
  absl::Duration backoff = absl::Microseconds(200);
  std::vector<std::string> missing = keys;
  while (true) {
    std::vector<std::string> still;
    for (const std::string& key : missing) {
      if (access(PathOf(key).c_str(), F_OK) != 0) still.push_back(key);
    }
    if (still.empty()) return absl::OkStatus();
    missing = std::move(still);
    const absl::Time now = clock_.Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("store keys [", absl::StrJoin(missing, ", "),
                                                      "] did not appear within ",
                                                      absl::FormatDuration(timeout), " in ", dir_));
    }
    clock_.SleepUntil(now + std::min(backoff, deadline - now));
    backoff = NextBackoff(backoff);
  }
}

absl::StatusOr<int64_t> FileKvStore::Add(absl::string_view key, int64_t delta) {
  const std::string lock_path = absl::StrCat(dir_, "/.lock.", EncodeKey(key));
  const int fd = open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("cannot open store lock", lock_path);
  // flock blocks only while another process holds the lock for one read-add-write.
  if (flock(fd, LOCK_EX) != 0) {
    const absl::Status status = ErrnoError("cannot lock", lock_path);
    close(fd);
    return status;
  }
  absl::StatusOr<int64_t> result = [&]() -> absl::StatusOr<int64_t> {
    std::string text;
    absl::StatusOr<bool> found = TryRead(key, &text);
    if (!found.ok()) return found.status();
    int64_t value = 0;
    if (*found && !absl::SimpleAtoi(text, &value)) {
      return absl::FailedPreconditionError(
          absl::StrCat("store key '", key, "' holds '", text, "', not an integer, so Add fails"));
    }
    value += delta;
    MOECAP_RETURN_IF_ERROR(WriteAtomically(key, absl::StrCat(value)));
    return value;
  }();
  flock(fd, LOCK_UN);
  close(fd);
  return result;
}

}  // namespace moecap
