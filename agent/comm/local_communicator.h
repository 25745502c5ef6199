// The one-rank Communicator: every collective is a local copy. Used by single-rank runs (the
// performance self-check's GEMM measurement) and by tests of code that takes a Communicator.
#ifndef MOECAP_AGENT_COMM_LOCAL_COMMUNICATOR_H_
#define MOECAP_AGENT_COMM_LOCAL_COMMUNICATOR_H_

#include <atomic>
#include <string>

#include "agent/comm/communicator.h"

namespace moecap {

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "local"; }
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
  std::atomic<bool> aborted_{false};
};

}  // namespace moecap

#endif  // MOECAP_AGENT_COMM_LOCAL_COMMUNICATOR_H_
