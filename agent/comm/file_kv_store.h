// A KvStore in a directory shared by the processes of one host: one file per key, written to a
// temporary name and renamed so readers never see half a value. Standalone `moecap-bench` runs
// rendezvous through it.
#ifndef MOECAP_AGENT_COMM_FILE_KV_STORE_H_
#define MOECAP_AGENT_COMM_FILE_KV_STORE_H_

#include <string>
#include <vector>

#include "agent/comm/kv_store.h"
#include "common/clock.h"

namespace moecap {

class FileKvStore : public KvStore {
 public:
  // `dir` must exist (the launcher creates it) and be shared by every rank. Waits for keys poll
  // with a growing pause (200 us doubling to 20 ms) on `clock`.
  explicit FileKvStore(std::string dir, const Clock& clock = SystemClock())
      : dir_(std::move(dir)), clock_(clock) {}

  absl::Status Set(absl::string_view key, absl::string_view value) override;
  absl::StatusOr<std::string> Get(absl::string_view key, absl::Duration timeout) override;
  absl::Status Wait(const std::vector<std::string>& keys, absl::Duration timeout) override;
  absl::StatusOr<int64_t> Add(absl::string_view key, int64_t delta) override;

  const std::string& dir() const { return dir_; }

  // The file name a key is stored under: letters, digits, '-', '_' and '.' kept, every other
  // byte written as %XX, so any key (with '/' or spaces) maps to one flat, safe file name.
  static std::string EncodeKey(absl::string_view key);

 private:
  std::string PathOf(absl::string_view key) const;
  // Reads the key's file if it exists: true and the value, or false when it does not exist yet.
  absl::StatusOr<bool> TryRead(absl::string_view key, std::string* value) const;
  absl::Status WriteAtomically(absl::string_view key, absl::string_view value) const;

  std::string dir_;
  const Clock& clock_;
};

}  // namespace moecap

#endif  // MOECAP_AGENT_COMM_FILE_KV_STORE_H_
