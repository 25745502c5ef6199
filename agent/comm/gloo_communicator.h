// Communicator over Gloo's TCP transport: a full mesh of TCP connections set up through a KvStore
// (under a per-job key prefix), every collective bounded by a timeout so a dead or missing peer
// turns into an error naming the operation instead of a hung rank.
#ifndef MOECAP_AGENT_COMM_GLOO_COMMUNICATOR_H_
#define MOECAP_AGENT_COMM_GLOO_COMMUNICATOR_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/comm/communicator.h"
#include "agent/comm/kv_store.h"

namespace gloo {
class Context;
}

namespace moecap {

struct GlooOptions {
  int rank = 0;
  int size = 1;
  // Address the rank listens on for its peers: "127.0.0.1" on one host, the host's data-plane
  // address in a cluster.
  std::string hostname = "127.0.0.1";
  // Keys of this job in the store ("moecap/job-42"): several jobs can share one store.
  std::string key_prefix = "moecap";
  // Bounds the rendezvous and every collective.
  absl::Duration timeout = absl::Seconds(60);
};

class GlooCommunicator : public Communicator {
 public:
  // Joins the rendezvous: publishes this rank's address in `store` and connects to every peer.
  // `store` is only used during Connect. Fails with DeadlineExceeded when a peer does not show up
  // within the timeout.
  static absl::StatusOr<std::unique_ptr<GlooCommunicator>> Connect(KvStore& store,
                                                                   const GlooOptions& options);
  ~GlooCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "gloo-tcp"; }
  CommMemory memory() const override { return CommMemory::kHost; }
  absl::Status AllToAll(const int64_t* send, int64_t* recv, size_t count_per_peer) override;
  absl::Status AllToAllV(const void* send, absl::Span<const int64_t> send_bytes, void* recv,
                         absl::Span<const int64_t> recv_bytes) override;
  absl::Status Barrier() override;
  absl::Status AllReduceSum(int64_t* data, size_t count) override;
  absl::Status AllReduceSum(double* data, size_t count) override;
  absl::Status AllGather(const void* send, size_t bytes, void* recv) override;
  void Abort() override;

 private:
  GlooCommunicator(std::shared_ptr<gloo::Context> context, absl::Duration timeout);
  // Runs one Gloo call, turning its exceptions into a status that names `op` and this rank.
  template <typename Fn>
  absl::Status Guard(const char* op, Fn&& fn);

  std::shared_ptr<gloo::Context> context_;
  int rank_;
  int size_;
  absl::Duration timeout_;
  std::atomic<bool> aborted_{false};
};

}  // namespace moecap

#endif  // MOECAP_AGENT_COMM_GLOO_COMMUNICATOR_H_
