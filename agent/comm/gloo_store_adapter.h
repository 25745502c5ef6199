// Lets Gloo's rendezvous (gloo::rendezvous::Store) run over a moecap KvStore, so the data plane
// can rendezvous through a directory (standalone) or the coordinator (cluster) alike.
#ifndef MOECAP_AGENT_COMM_GLOO_STORE_ADAPTER_H_
#define MOECAP_AGENT_COMM_GLOO_STORE_ADAPTER_H_

#include <gloo/rendezvous/store.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "agent/comm/kv_store.h"

namespace moecap {

// Gloo reports store failures by exception: every error of the KvStore becomes a
// gloo::IoException carrying the store's message; GlooCommunicator catches it at the boundary.
class GlooStoreAdapter : public gloo::rendezvous::Store {
 public:
  // `store` must outlive the adapter. `default_timeout` bounds get() and the wait() without one.
  GlooStoreAdapter(KvStore& store, absl::Duration default_timeout)
      : store_(store), default_timeout_(default_timeout) {}

  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys,
            const std::chrono::milliseconds& timeout) override;

 private:
  KvStore& store_;
  absl::Duration default_timeout_;
};

}  // namespace moecap

#endif  // MOECAP_AGENT_COMM_GLOO_STORE_ADAPTER_H_
