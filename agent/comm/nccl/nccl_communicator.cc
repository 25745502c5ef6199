// NcclCommunicator: a non-blocking NCCL communicator whose every wait is bounded by a deadline
// (polling the stream and NCCL's asynchronous error), aborting the communicator on timeout or
// error so that the peers' collectives fail too instead of hanging.
#include "agent/comm/nccl/nccl_communicator.h"

#include <nccl.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

// Polls spin this many times before they start sleeping: a decode step's collectives finish in
// tens of microseconds, and a sleep there would be most of their time.
constexpr int kSpinPolls = 20000;
constexpr absl::Duration kPollSleep = absl::Microseconds(50);

std::string CudaError(cudaError_t error) {
  return absl::StrCat(cudaGetErrorName(error), " (", cudaGetErrorString(error), ")");
}

std::string ToHex(const void* data, size_t bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out;
  out.reserve(2 * bytes);
  for (size_t i = 0; i < bytes; ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 15]);
  }
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes exactly `bytes` bytes of hex into `out`; false on a wrong length or a non-hex digit.
bool FromHex(absl::string_view hex, void* out, size_t bytes) {
  if (hex.size() != 2 * bytes) return false;
  auto* p = static_cast<unsigned char*>(out);
  for (size_t i = 0; i < bytes; ++i) {
    const int hi = HexDigit(hex[2 * i]);
    const int lo = HexDigit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    p[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

// A non-blocking communicator's state: ncclInProgress while NCCL still works on a call (its
// creation, queueing a collective, finalizing), else how that ended.
ncclResult_t AsyncState(ncclComm_t comm) {
  ncclResult_t async = ncclSuccess;
  const ncclResult_t r = ncclCommGetAsyncError(comm, &async);
  return r != ncclSuccess ? r : async;
}

// Calls `poll` until it returns a value other than `pending`, or `deadline` (on `clock`) passes
// (nullopt-like: returns `pending`). Spins first, then sleeps briefly between polls.
template <typename T, typename Poll>
T PollUntil(T pending, absl::Time deadline, const Clock& clock, Poll&& poll) {
  for (int i = 0;; ++i) {
    const T state = poll();
    if (state != pending) return state;
    const absl::Time now = clock.Now();
    if (now >= deadline) return pending;
    if (i < kSpinPolls) {
      std::this_thread::yield();
    } else {
      clock.SleepUntil(std::min(deadline, now + kPollSleep));
    }
  }
}

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, cudaStream_t stream, bool own_stream,
                   const NcclOptions& options, const Clock& clock)
      : comm_(comm),
        stream_(stream),
        own_stream_(own_stream),
        rank_(options.rank),
        size_(options.size),
        device_(options.device),
        timeout_(options.timeout),
        clock_(clock) {}

  ~NcclCommunicator() override {
    cudaSetDevice(device_);
    if (!aborted_) {
      // Finalize flushes what is still queued; bounded, then abort if it does not finish.
      ncclResult_t state = ncclCommFinalize(comm_);
      if (state == ncclSuccess || state == ncclInProgress) {
        state = PollUntil(ncclInProgress, clock_.Now() + std::min(timeout_, absl::Seconds(10)),
                          clock_, [this] { return AsyncState(comm_); });
      }
      if (state == ncclSuccess) {
        ncclCommDestroy(comm_);
      } else {
        ncclCommAbort(comm_);
      }
    }
    if (device_buffer_ != nullptr) cudaFree(device_buffer_);
    if (host_buffer_ != nullptr) cudaFreeHost(host_buffer_);
    if (own_stream_) cudaStreamDestroy(stream_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "nccl"; }
  CommMemory memory() const override { return CommMemory::kDevice; }

  absl::Status AllToAll(const int64_t* send, int64_t* recv, size_t count_per_peer) override {
    constexpr const char* kOp = "AllToAll";
    MOECAP_RETURN_IF_ERROR(Usable(kOp));
    if (count_per_peer == 0) return absl::OkStatus();
    const size_t bytes = count_per_peer * sizeof(int64_t) * static_cast<size_t>(size_);
    const std::vector<int64_t> counts(static_cast<size_t>(size_),
                                      static_cast<int64_t>(count_per_peer * sizeof(int64_t)));
    return StagedHostCall(
        kOp, send, bytes, recv, bytes, /*in_place=*/false,
        [&](char* in, char* out) { return EnqueueAllToAllV(kOp, in, counts, out, counts); });
  }

  absl::Status AllToAllV(const void* send, absl::Span<const int64_t> send_bytes, void* recv,
                         absl::Span<const int64_t> recv_bytes) override {
    constexpr const char* kOp = "AllToAllV";
    MOECAP_RETURN_IF_ERROR(Usable(kOp));
    MOECAP_RETURN_IF_ERROR(EnqueueAllToAllV(kOp, static_cast<const char*>(send), send_bytes,
                                            static_cast<char*>(recv), recv_bytes));
    return Wait(kOp);
  }

  absl::Status Barrier() override {
    constexpr const char* kOp = "Barrier";
    MOECAP_RETURN_IF_ERROR(Usable(kOp));
    MOECAP_RETURN_IF_ERROR(EnsureStaging(kOp, sizeof(int32_t)));
    MOECAP_RETURN_IF_ERROR(CheckNccl(
        kOp, ncclAllReduce(device_buffer_, device_buffer_, 1, ncclInt32, ncclSum, comm_, stream_)));
    return Wait(kOp);
  }

  absl::Status AllReduceSum(int64_t* data, size_t count) override {
    return HostAllReduce("AllReduceSum(int64)", data, count * sizeof(int64_t), count, ncclInt64);
  }
  absl::Status AllReduceSum(double* data, size_t count) override {
    return HostAllReduce("AllReduceSum(double)", data, count * sizeof(double), count, ncclFloat64);
  }

  absl::Status AllGather(const void* send, size_t bytes, void* recv) override {
    constexpr const char* kOp = "AllGather";
    MOECAP_RETURN_IF_ERROR(Usable(kOp));
    if (bytes == 0) return absl::OkStatus();
    const size_t total = bytes * static_cast<size_t>(size_);
    return StagedHostCall(
        kOp, send, bytes, recv, total, /*in_place=*/false, [&](char* in, char* out) {
          return CheckNccl(kOp, ncclAllGather(in, out, bytes, ncclChar, comm_, stream_));
        });
  }

  void Abort() override {
    if (aborted_) return;
    aborted_ = true;
    cudaSetDevice(device_);
    ncclCommAbort(comm_);
  }

 private:
  static size_t AlignUp(size_t bytes) { return (bytes + 255) / 256 * 256; }

  std::string Who() const {
    return absl::StrCat("rank ", rank_, " of ", size_, ", ", size_ - 1, " peer(s)");
  }

  absl::Status Usable(const char* op) {
    if (aborted_) {
      return absl::UnavailableError(
          absl::StrCat("nccl ", op, " (", Who(), "): the communicator was aborted earlier"));
    }
    if (cudaError_t e = cudaSetDevice(device_); e != cudaSuccess) {
      return Fail(absl::InternalError(absl::StrCat("nccl ", op, " (", Who(), "): cudaSetDevice(",
                                                   device_, ") failed: ", CudaError(e))));
    }
    return absl::OkStatus();
  }

  // Aborts (so the peers fail fast) and returns `status`.
  absl::Status Fail(absl::Status status) {
    Abort();
    return status;
  }

  // A non-blocking communicator may still be queueing a call's work when the call returns
  // (ncclInProgress): wait (bounded) until it is queued, so that what the caller puts on the
  // stream next runs after it.
  absl::Status CheckNccl(const char* op, ncclResult_t result) {
    if (result == ncclInProgress) {
      result = PollUntil(ncclInProgress, clock_.Now() + timeout_, clock_,
                         [this] { return AsyncState(comm_); });
      if (result == ncclInProgress) {
        return Fail(absl::DeadlineExceededError(
            absl::StrCat("nccl ", op, " (", Who(), ") was not queued within ",
                         absl::FormatDuration(timeout_), "; the communicator was aborted")));
      }
    }
    if (result == ncclSuccess) return absl::OkStatus();
    const std::string detail = ncclGetLastError(comm_);
    return Fail(absl::UnavailableError(absl::StrCat("nccl ", op, " (", Who(),
                                                    ") failed: ", ncclGetErrorString(result),
                                                    detail.empty() ? "" : ": ", detail)));
  }

  absl::Status CheckCuda(const char* op, cudaError_t error) {
    if (error == cudaSuccess) return absl::OkStatus();
    return Fail(absl::InternalError(
        absl::StrCat("nccl ", op, " (", Who(), "): CUDA error ", CudaError(error))));
  }

  // Grows the staging buffers (device and pinned host) to at least `bytes`.
  absl::Status EnsureStaging(const char* op, size_t bytes) {
    if (bytes <= capacity_) return absl::OkStatus();
    const size_t want = std::max<size_t>(AlignUp(bytes), 1 << 16);
    if (device_buffer_ != nullptr) cudaFree(device_buffer_);
    if (host_buffer_ != nullptr) cudaFreeHost(host_buffer_);
    device_buffer_ = nullptr;
    host_buffer_ = nullptr;
    capacity_ = 0;
    // The old buffers may still be read by queued work: cudaFree synchronises the device.
    MOECAP_RETURN_IF_ERROR(CheckCuda(op, cudaMalloc(&device_buffer_, want)));
    MOECAP_RETURN_IF_ERROR(CheckCuda(op, cudaMallocHost(&host_buffer_, want)));
    MOECAP_RETURN_IF_ERROR(CheckCuda(op, cudaMemsetAsync(device_buffer_, 0, want, stream_)));
    capacity_ = want;
    return absl::OkStatus();
  }

  // A collective on host data through the staging buffers: copies `in_bytes` of `send` to the
  // device, has `enqueue(device_in, device_out)` queue the collective on the stream, copies
  // `out_bytes` of its result back and, once the stream has drained, into `recv` (which may be
  // `send`). The result overwrites the input on the device when `in_place`, else it follows it.
  template <typename Enqueue>
  absl::Status StagedHostCall(const char* op, const void* send, size_t in_bytes, void* recv,
                              size_t out_bytes, bool in_place, Enqueue&& enqueue) {
    const size_t out_offset = in_place ? 0 : AlignUp(in_bytes);
    MOECAP_RETURN_IF_ERROR(EnsureStaging(op, out_offset + out_bytes));
    std::memcpy(host_buffer_, send, in_bytes);
    char* dev = static_cast<char*>(device_buffer_);
    MOECAP_RETURN_IF_ERROR(CheckCuda(
        op, cudaMemcpyAsync(dev, host_buffer_, in_bytes, cudaMemcpyHostToDevice, stream_)));
    MOECAP_RETURN_IF_ERROR(enqueue(dev, dev + out_offset));
    MOECAP_RETURN_IF_ERROR(CheckCuda(op, cudaMemcpyAsync(host_buffer_, dev + out_offset, out_bytes,
                                                         cudaMemcpyDeviceToHost, stream_)));
    MOECAP_RETURN_IF_ERROR(Wait(op));
    std::memcpy(recv, host_buffer_, out_bytes);
    return absl::OkStatus();
  }

  absl::Status HostAllReduce(const char* op, void* data, size_t bytes, size_t count,
                             ncclDataType_t type) {
    MOECAP_RETURN_IF_ERROR(Usable(op));
    if (count == 0) return absl::OkStatus();
    return StagedHostCall(
        op, data, bytes, data, bytes, /*in_place=*/true, [&](char* in, char* out) {
          return CheckNccl(op, ncclAllReduce(in, out, count, type, ncclSum, comm_, stream_));
        });
  }

  // Queues the grouped sends and receives and the local copy on the stream (device pointers).
  absl::Status EnqueueAllToAllV(const char* op, const char* send,
                                absl::Span<const int64_t> send_bytes, char* recv,
                                absl::Span<const int64_t> recv_bytes) {
    const size_t n = static_cast<size_t>(size_);
    if (send_bytes.size() != n || recv_bytes.size() != n) {
      return absl::InvalidArgumentError(
          absl::StrCat("nccl ", op, ": expected ", n, " byte counts per direction, got ",
                       send_bytes.size(), " to send and ", recv_bytes.size(), " to receive"));
    }
    std::vector<size_t> send_offset(n + 1, 0), recv_offset(n + 1, 0);
    for (size_t p = 0; p < n; ++p) {
      if (send_bytes[p] < 0 || recv_bytes[p] < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("nccl ", op, ": negative byte count for peer ", p));
      }
      send_offset[p + 1] = send_offset[p] + static_cast<size_t>(send_bytes[p]);
      recv_offset[p + 1] = recv_offset[p] + static_cast<size_t>(recv_bytes[p]);
    }
    const size_t self = static_cast<size_t>(rank_);
    if (send_bytes[self] != recv_bytes[self]) {
      return absl::InvalidArgumentError(
          absl::StrCat("nccl ", op, ": rank ", rank_, " sends itself ", send_bytes[self],
                       " bytes but expects to receive ", recv_bytes[self], " from itself"));
    }
    if (size_ > 1) {
      ncclResult_t first_error = ncclGroupStart();
      for (size_t p = 0; p < n; ++p) {
        if (p == self) continue;
        const int peer = static_cast<int>(p);
        if (send_bytes[p] > 0) {
          const ncclResult_t r = ncclSend(send + send_offset[p], static_cast<size_t>(send_bytes[p]),
                                          ncclChar, peer, comm_, stream_);
          if (first_error == ncclSuccess) first_error = r;
        }
        if (recv_bytes[p] > 0) {
          const ncclResult_t r = ncclRecv(recv + recv_offset[p], static_cast<size_t>(recv_bytes[p]),
                                          ncclChar, peer, comm_, stream_);
          if (first_error == ncclSuccess) first_error = r;
        }
      }
      const ncclResult_t end = ncclGroupEnd();
      if (first_error != ncclSuccess && first_error != ncclInProgress) {
        MOECAP_RETURN_IF_ERROR(CheckNccl(op, first_error));
      }
      MOECAP_RETURN_IF_ERROR(CheckNccl(op, end));
    }
    if (send_bytes[self] > 0) {
      return CheckCuda(op, cudaMemcpyAsync(recv + recv_offset[self], send + send_offset[self],
                                           static_cast<size_t>(send_bytes[self]),
                                           cudaMemcpyDeviceToDevice, stream_));
    }
    return absl::OkStatus();
  }

  // Waits until NCCL has queued everything (non-blocking calls may still be in progress) and the
  // stream has drained, or the deadline passes.
  absl::Status Wait(const char* op) {
    const absl::Time deadline = clock_.Now() + timeout_;
    cudaError_t stream_error = cudaSuccess;
    enum class State { kPending, kDone, kNcclError, kCudaError };
    ncclResult_t nccl_error = ncclSuccess;
    const State state = PollUntil(State::kPending, deadline, clock_, [&] {
      ncclResult_t async = ncclSuccess;
      const ncclResult_t r = ncclCommGetAsyncError(comm_, &async);
      if (r != ncclSuccess || (async != ncclSuccess && async != ncclInProgress)) {
        nccl_error = r != ncclSuccess ? r : async;
        return State::kNcclError;
      }
      if (async == ncclInProgress) return State::kPending;  // not all queued yet
      const cudaError_t q = cudaStreamQuery(stream_);
      if (q == cudaSuccess) return State::kDone;
      if (q == cudaErrorNotReady) return State::kPending;
      stream_error = q;
      return State::kCudaError;
    });
    switch (state) {
      case State::kDone:
        return absl::OkStatus();
      case State::kNcclError:
        return CheckNccl(op, nccl_error);
      case State::kCudaError:
        return CheckCuda(op, stream_error);
      case State::kPending:
        break;
    }
    return Fail(absl::DeadlineExceededError(absl::StrCat(
        "nccl ", op, " (", Who(), ") did not complete within ", absl::FormatDuration(timeout_),
        " (a peer is lost, stuck or not calling it); the communicator was aborted")));
  }

  ncclComm_t comm_;
  cudaStream_t stream_;
  bool own_stream_;
  int rank_;
  int size_;
  int device_;
  absl::Duration timeout_;
  const Clock& clock_;
  bool aborted_ = false;
  void* device_buffer_ = nullptr;
  void* host_buffer_ = nullptr;  // pinned
  size_t capacity_ = 0;          // of each staging buffer
};

}  // namespace

std::string NcclUniqueIdKey(absl::string_view key_prefix) {
  return absl::StrCat(key_prefix, "/nccl-unique-id");
}

int CudaDeviceCount(std::string* why_none) {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    if (why_none != nullptr) *why_none = absl::StrCat("cudaGetDeviceCount: ", CudaError(error));
    return 0;
  }
  if (count == 0 && why_none != nullptr) *why_none = "cudaGetDeviceCount found no device";
  return count;
}

absl::StatusOr<std::unique_ptr<Communicator>> ConnectNccl(KvStore& store,
                                                          const NcclOptions& options,
                                                          const Clock& clock) {
  if (options.size < 1 || options.rank < 0 || options.rank >= options.size) {
    return absl::InvalidArgumentError(
        absl::StrCat("nccl: rank ", options.rank, " is not within a world of ", options.size));
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("nccl: the timeout must be positive");
  }
  std::string why_none;
  const int devices = CudaDeviceCount(&why_none);
  if (devices == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("nccl: rank ", options.rank, " has no CUDA device to run on (", why_none,
                     "); the cuda backend needs an NVIDIA GPU and driver"));
  }
  if (options.device < 0 || options.device >= devices) {
    return absl::FailedPreconditionError(
        absl::StrCat("nccl: rank ", options.rank, " asks for device ", options.device,
                     " but this host has ", devices, " CUDA device(s)"));
  }
  if (cudaError_t e = cudaSetDevice(options.device); e != cudaSuccess) {
    return absl::FailedPreconditionError(
        absl::StrCat("nccl: cudaSetDevice(", options.device, ") failed: ", CudaError(e)));
  }

  ncclUniqueId id;
  const std::string key = NcclUniqueIdKey(options.key_prefix);
  if (options.rank == 0) {
    if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess) {
      return absl::UnavailableError(
          absl::StrCat("nccl: ncclGetUniqueId failed: ", ncclGetErrorString(r)));
    }
    MOECAP_RETURN_IF_ERROR(store.Set(key, ToHex(&id, sizeof(id))));
  } else {
    absl::StatusOr<std::string> value = store.Get(key, options.timeout);
    if (!value.ok()) {
      return absl::Status(value.status().code(), absl::StrCat("nccl: rank ", options.rank,
                                                              " did not get rank 0's unique id: ",
                                                              value.status().message()));
    }
    if (!FromHex(*value, &id, sizeof(id))) {
      return absl::InvalidArgumentError(absl::StrCat("nccl: the value under '", key, "' is not a ",
                                                     2 * sizeof(id), "-digit hex unique id"));
    }
  }

  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  const ncclResult_t init = ncclCommInitRankConfig(&comm, options.size, id, options.rank, &config);
  if (init != ncclSuccess && init != ncclInProgress) {
    if (comm != nullptr) ncclCommAbort(comm);
    return absl::UnavailableError(absl::StrCat("nccl: ncclCommInitRankConfig (rank ", options.rank,
                                               " of ", options.size,
                                               ") failed: ", ncclGetErrorString(init)));
  }
  const ncclResult_t state = PollUntil(ncclInProgress, clock.Now() + options.timeout, clock,
                                       [comm] { return AsyncState(comm); });
  if (state != ncclSuccess) {
    const std::string detail = ncclGetLastError(comm);
    ncclCommAbort(comm);
    if (state == ncclInProgress) {
      return absl::DeadlineExceededError(
          absl::StrCat("nccl: creating the communicator (rank ", options.rank, " of ", options.size,
                       ", device ", options.device, ") did not finish within ",
                       absl::FormatDuration(options.timeout), " (a peer did not join); aborted"));
    }
    return absl::UnavailableError(
        absl::StrCat("nccl: creating the communicator (rank ", options.rank, " of ", options.size,
                     ") failed: ", ncclGetErrorString(state), detail.empty() ? "" : ": ", detail));
  }

  cudaStream_t stream = options.stream;
  const bool own_stream = stream == nullptr;
  if (own_stream) {
    if (cudaError_t e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
        e != cudaSuccess) {
      ncclCommAbort(comm);
      return absl::InternalError(absl::StrCat("nccl: cannot create a stream: ", CudaError(e)));
    }
  }
  return std::unique_ptr<Communicator>(
      std::make_unique<NcclCommunicator>(comm, stream, own_stream, options, clock));
}

}  // namespace moecap
