// GlooStoreAdapter: KvStore statuses become gloo::IoException, the error channel Gloo expects.
#include "agent/comm/gloo_store_adapter.h"

#include <gloo/common/error.h>

namespace moecap {
namespace {
[[noreturn]] void Throw(const absl::Status& status) {
  throw gloo::IoException(std::string(status.message()));
}
}  // namespace

void GlooStoreAdapter::set(const std::string& key, const std::vector<char>& data) {
  if (absl::Status s = store_.Set(key, absl::string_view(data.data(), data.size())); !s.ok()) {
    Throw(s);
  }
}

std::vector<char> GlooStoreAdapter::get(const std::string& key) {
  absl::StatusOr<std::string> value = store_.Get(key, default_timeout_);
  if (!value.ok()) Throw(value.status());
  return std::vector<char>(value->begin(), value->end());
}

void GlooStoreAdapter::wait(const std::vector<std::string>& keys) {
  if (absl::Status s = store_.Wait(keys, default_timeout_); !s.ok()) Throw(s);
}

void GlooStoreAdapter::wait(const std::vector<std::string>& keys,
                            const std::chrono::milliseconds& timeout) {
  // Gloo passes kNoTimeout (zero) to mean "no limit of its own": the default applies then.
  const absl::Duration limit = timeout.count() > 0 ? absl::FromChrono(timeout) : default_timeout_;
  if (absl::Status s = store_.Wait(keys, limit); !s.ok()) Throw(s);
}

}  // namespace moecap
