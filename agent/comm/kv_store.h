// The key-value store the data plane rendezvouses through: a standalone run uses a directory
// (FileKvStore); the cluster's coordinator serves the same interface per job (issue 4), and the
// NCCL unique id travels through it later. Gloo reaches it through GlooStoreAdapter.
#ifndef MOECAP_AGENT_COMM_KV_STORE_H_
#define MOECAP_AGENT_COMM_KV_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace moecap {

// Implementations must be safe to call from several threads and processes at once.
class KvStore {
 public:
  virtual ~KvStore() = default;

  // Stores `value` under `key`, replacing any earlier value. Readers see the whole value or none.
  virtual absl::Status Set(absl::string_view key, absl::string_view value) = 0;

  // The value of `key`, waiting up to `timeout` for it to appear. DeadlineExceeded names the key.
  virtual absl::StatusOr<std::string> Get(absl::string_view key, absl::Duration timeout) = 0;

  // Returns once every key exists, or DeadlineExceeded naming the keys still missing.
  virtual absl::Status Wait(const std::vector<std::string>& keys, absl::Duration timeout) = 0;

  // Atomically adds `delta` to the integer stored under `key` (absent counts as 0) and returns
  // the new value; a counter for barriers and "how many ranks have joined".
  virtual absl::StatusOr<int64_t> Add(absl::string_view key, int64_t delta) = 0;
};

}  // namespace moecap

#endif  // MOECAP_AGENT_COMM_KV_STORE_H_
