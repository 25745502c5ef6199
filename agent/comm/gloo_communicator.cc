// GlooCommunicator: gloo::rendezvous::Context over tcp::Device, each collective wrapped so Gloo's
// exceptions stop here and come out as statuses.
#include "agent/comm/gloo_communicator.h"

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/alltoall.h>
#include <gloo/alltoallv.h>
#include <gloo/barrier.h>
#include <gloo/common/error.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>

#include <exception>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/comm/gloo_store_adapter.h"
#include "common/failure_cause.h"

namespace moecap {
namespace {

std::chrono::milliseconds ToMillis(absl::Duration d) {
  return std::chrono::milliseconds(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

// Gloo says "Timed out" in the messages of its timeouts; everything else is a broken connection.
absl::Status FromGlooError(const std::string& context, const std::exception& e) {
  const std::string message = absl::StrCat(context, ": ", e.what());
  if (absl::StrContains(e.what(), "Timed out") || absl::StrContains(e.what(), "did not appear")) {
    return absl::DeadlineExceededError(message);
  }
  return absl::UnavailableError(message);
}

}  // namespace

absl::StatusOr<std::unique_ptr<GlooCommunicator>> GlooCommunicator::Connect(
    KvStore& store, const GlooOptions& options) {
  if (options.size < 1 || options.rank < 0 || options.rank >= options.size) {
    return absl::InvalidArgumentError(
        absl::StrCat("Gloo rank ", options.rank, " is out of range for world size ", options.size));
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("Gloo timeout must be positive");
  }
  const std::string where =
      absl::StrCat("rank ", options.rank, " of ", options.size, ": Gloo rendezvous under '",
                   options.key_prefix, "' (listening on ", options.hostname, ")");
  try {
    gloo::transport::tcp::attr attr;
    attr.hostname = options.hostname;
    std::shared_ptr<gloo::transport::Device> device = gloo::transport::tcp::CreateDevice(attr);
    auto context = std::make_shared<gloo::rendezvous::Context>(options.rank, options.size);
    context->setTimeout(ToMillis(options.timeout));
    GlooStoreAdapter adapter(store, options.timeout);
    gloo::rendezvous::PrefixStore prefixed(options.key_prefix, adapter);
    context->connectFullMesh(prefixed, device);
    return std::unique_ptr<GlooCommunicator>(new GlooCommunicator(context, options.timeout));
  } catch (const std::exception& e) {
    return WithFailureCause(FromGlooError(where, e), FailureCause::kRendezvous);
  }
}

GlooCommunicator::GlooCommunicator(std::shared_ptr<gloo::Context> context, absl::Duration timeout)
    : context_(std::move(context)),
      rank_(context_->rank),
      size_(context_->size),
      timeout_(timeout) {}

GlooCommunicator::~GlooCommunicator() = default;

template <typename Fn>
absl::Status GlooCommunicator::Guard(const char* op, Fn&& fn) {
  if (aborted_.load()) {
    return absl::CancelledError(absl::StrCat("rank ", rank_, ": ", op, " after Abort"));
  }
  try {
    fn();
    return absl::OkStatus();
  } catch (const std::exception& e) {
    absl::Status status = FromGlooError(
        absl::StrCat(op, " failed (timeout ", absl::FormatDuration(timeout_), ")"), e);
    if (absl::IsDeadlineExceeded(status)) {
      status = absl::DeadlineExceededError(absl::StrCat(
          status.message(), "; a peer did not take part in time (hung, dead or overloaded)"));
    }
    return WithFailureCause(std::move(status), FailureCause::kCollective);
  }
}

absl::Status GlooCommunicator::AllToAll(const int64_t* send, int64_t* recv, size_t count_per_peer) {
  if (count_per_peer == 0) return absl::OkStatus();
  return Guard("AllToAll", [&] {
    gloo::AlltoallOptions opts(context_);
    opts.setInput(const_cast<int64_t*>(send), count_per_peer * static_cast<size_t>(size_));
    opts.setOutput(recv, count_per_peer * static_cast<size_t>(size_));
    opts.setTimeout(ToMillis(timeout_));
    gloo::alltoall(opts);
  });
}

absl::Status GlooCommunicator::AllToAllV(const void* send, absl::Span<const int64_t> send_bytes,
                                         void* recv, absl::Span<const int64_t> recv_bytes) {
  if (send_bytes.size() != static_cast<size_t>(size_) ||
      recv_bytes.size() != static_cast<size_t>(size_)) {
    return absl::InvalidArgumentError(absl::StrCat("AllToAllV needs ", size_,
                                                   " send and receive counts, got ",
                                                   send_bytes.size(), " and ", recv_bytes.size()));
  }
  if (send_bytes[rank_] != recv_bytes[rank_]) {
    return absl::InvalidArgumentError(absl::StrCat("AllToAllV: rank ", rank_, " sends itself ",
                                                   send_bytes[rank_], " bytes but expects ",
                                                   recv_bytes[rank_]));
  }
  // Gloo wants a non-null buffer even when nothing moves; a dummy byte stands in.
  char dummy_send = 0;
  char dummy_recv = 0;
  char* in = send != nullptr ? static_cast<char*>(const_cast<void*>(send)) : &dummy_send;
  char* out = recv != nullptr ? static_cast<char*>(recv) : &dummy_recv;
  return Guard("AllToAllV", [&] {
    gloo::AlltoallvOptions opts(context_);
    opts.setInput(in, std::vector<int64_t>(send_bytes.begin(), send_bytes.end()));
    opts.setOutput(out, std::vector<int64_t>(recv_bytes.begin(), recv_bytes.end()));
    opts.setTimeout(ToMillis(timeout_));
    gloo::alltoallv(opts);
  });
}

absl::Status GlooCommunicator::Barrier() {
  return Guard("Barrier", [&] {
    gloo::BarrierOptions opts(context_);
    opts.setTimeout(ToMillis(timeout_));
    gloo::barrier(opts);
  });
}

absl::Status GlooCommunicator::AllReduceSum(int64_t* data, size_t count) {
  if (count == 0) return absl::OkStatus();
  return Guard("AllReduceSum(int64)", [&] {
    gloo::AllreduceOptions opts(context_);
    opts.setOutput(data, count);
    opts.setReduceFunction(
        static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<int64_t>));
    opts.setTimeout(ToMillis(timeout_));
    gloo::allreduce(opts);
  });
}

absl::Status GlooCommunicator::AllReduceSum(double* data, size_t count) {
  if (count == 0) return absl::OkStatus();
  return Guard("AllReduceSum(double)", [&] {
    gloo::AllreduceOptions opts(context_);
    opts.setOutput(data, count);
    opts.setReduceFunction(
        static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<double>));
    opts.setTimeout(ToMillis(timeout_));
    gloo::allreduce(opts);
  });
}

absl::Status GlooCommunicator::AllGather(const void* send, size_t bytes, void* recv) {
  if (bytes == 0) return absl::OkStatus();
  return Guard("AllGather", [&] {
    gloo::AllgatherOptions opts(context_);
    opts.setInput(static_cast<char*>(const_cast<void*>(send)), bytes);
    opts.setOutput(static_cast<char*>(recv), bytes * static_cast<size_t>(size_));
    opts.setTimeout(ToMillis(timeout_));
    gloo::allgather(opts);
  });
}

void GlooCommunicator::Abort() {
  if (aborted_.exchange(true)) return;
  try {
    context_->closeConnections();
  } catch (const std::exception&) {
    // Closing is best effort: the peers see the broken connections either way.
  }
}

}  // namespace moecap
