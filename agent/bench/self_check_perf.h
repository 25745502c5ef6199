// `moecap-bench --self-check-perf`: how close the workload gets to what the host's raw pieces can
// do, in one run: expert-GEMM FLOP/s vs raw OpenBLAS on the same shapes (prefill), decode counted
// bytes/s vs the STREAM-like probe (a layer stack larger than the caches), Gloo dispatch+combine
// bytes/s vs raw loopback TCP between two processes, and the harness's overhead. Figures for the
// record, not pass/fail.
#ifndef MOECAP_AGENT_BENCH_SELF_CHECK_PERF_H_
#define MOECAP_AGENT_BENCH_SELF_CHECK_PERF_H_

#include <cstdint>
#include <string>

#include "common/model.h"

namespace moecap {

struct SelfCheckOptions {
  ModelSpec model;         // the catalog model whose (scaled) shapes are used
  int64_t scale = 4;       // shrinks d and f_e (defaults keep a run to about a minute here)
  std::string executable;  // moecap-bench itself, for the rank processes
  std::string hostname = "127.0.0.1";
  // The GPU self-check (`--backend cuda`, agent/bench/cuda_bench.h): its device, layers (0: 4)
  // and whether it prints JSON instead of lines.
  int device = 0;
  int64_t layers = 0;
  bool json = false;
};

// Prints the figures to stdout; returns the process exit status (0, or 1 on an error).
int RunSelfCheckPerf(const SelfCheckOptions& options);

// The other end of the raw TCP probe, a process of its own as a rank is (moecap-bench's hidden
// --raw-tcp-peer mode): connects to 127.0.0.1:`port` and does `rounds` rounds of `bytes` each way
// at once. Returns the process exit status: 0, 1 when the connection or a round fails, 2 for bad
// arguments.
int RunRawTcpPeer(int port, int64_t bytes, int rounds);

}  // namespace moecap

#endif  // MOECAP_AGENT_BENCH_SELF_CHECK_PERF_H_
