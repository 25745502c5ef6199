// What the host is and what it can do: inventory (cores, memory, caches, BLAS) and quick probes of
// its peaks — memory bandwidth (a STREAM-triad-like kernel over arrays far larger than the caches)
// and GEMM FLOP/s (one large square GEMM). These are the denominators of S-MBU and S-MFU when
// the hardware catalog has no entry for the host.
#ifndef MOECAP_AGENT_COMPUTE_HOST_PROBE_H_
#define MOECAP_AGENT_COMPUTE_HOST_PROBE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "agent/compute/compute_backend.h"
#include "common/dtype.h"

namespace moecap {

struct HostInfo {
  std::string hostname;
  std::string cpu_model;  // /proc/cpuinfo "model name"
  int cores = 1;          // logical CPUs this process may run on
  int64_t memory_total_bytes = 0;
  int64_t memory_available_bytes = 0;  // /proc/meminfo MemAvailable
  int64_t last_level_cache_bytes = 0;  // as sysconf reports it (0 when unknown)
};

HostInfo GetHostInfo();

// MemAvailable from /proc/meminfo: what can be allocated without swapping.
absl::StatusOr<int64_t> MemAvailableBytes();

struct BandwidthProbeOptions {
  int threads = 0;                    // 0: every core
  int64_t array_bytes = 256LL << 20;  // each of the three arrays
  int repetitions = 5;                // the best repetition counts
};

// a[i] = b[i] + s·c[i] over fp32 arrays; bytes/s counted as STREAM does (two reads and one
// write per element, write-allocate traffic not counted), best of the repetitions.
absl::StatusOr<double> ProbeMemoryBandwidth(const BandwidthProbeOptions& options);

struct GemmProbeOptions {
  int64_t size = 2048;  // n of the n×n×n GEMM
  int repetitions = 3;
};

// FLOP/s (2·n³ per GEMM) of the backend's GEMM in `dtype` with its current threads, best of the
// repetitions (after one warm-up).
absl::StatusOr<double> ProbeGemmFlops(ComputeBackend& backend, Dtype dtype,
                                      const GemmProbeOptions& options);

}  // namespace moecap

#endif  // MOECAP_AGENT_COMPUTE_HOST_PROBE_H_
