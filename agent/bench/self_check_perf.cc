// The performance self-check: each figure compares a part of the workload with the raw
// capability it is built on, measured in the same run on the same host.
#include "agent/bench/self_check_perf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/comm/file_kv_store.h"
#include "agent/comm/gloo_communicator.h"
#include "agent/comm/local_communicator.h"
#include "agent/compute/cpu_backend.h"
#include "agent/compute/host_probe.h"
#include "agent/workload/harness.h"
#include "agent/workload/launcher.h"
#include "agent/workload/layer_math.h"
#include "agent/workload/report.h"
#include "common/stats.h"
#include "common/status_macros.h"
#include "common/subprocess.h"

namespace moecap {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string Gb(double bytes_per_s) { return absl::StrFormat("%.2f GB/s", bytes_per_s / 1e9); }
std::string Gflops(double flops) { return absl::StrFormat("%.1f GFLOP/s", flops / 1e9); }

WorkloadConfig BasePlan(const SelfCheckOptions& o) {
  WorkloadConfig c;
  c.model = o.model;
  c.scale = o.scale;
  c.iterations = 10;
  c.warmup = 2;
  c.seed = 1;
  return c;
}

// 1. Expert GEMMs of a prefill step on one rank (all cores) vs the same GEMM shapes called
// directly: routed FLOPs / experts-phase time against FLOPs / raw sgemm time.
absl::Status ExpertGemmRatio(const SelfCheckOptions& o, const HostInfo& host) {
  WorkloadConfig c = BasePlan(o);
  c.layers = 1;
  c.phases = {ServingPhase::kPrefill};
  c.batches = {4};
  c.prompt_len = 256;
  c.iterations = 5;
  c.warmup = 1;
  c.threads_per_rank = host.cores;
  LocalCommunicator comm;
  CpuBackend backend(host.cores);
  absl::StatusOr<RankResult> result = RunRank(c, RankContext{}, comm, backend);
  if (!result.ok()) return result.status();
  const RankPointResult& p = result->points[0];
  const double experts_s = Summarize(p.samples.experts).p50;
  const double routed_flops = p.counts.counted[Term::kRoutedExperts].flops;

  // The same shapes, back to back: per layer and expert, (M × d)·(2f × d)ᵀ and (M × f)·(d × f)ᵀ.
  const ModelSpec m = ScaledModel(c.model, c.scale);
  const int64_t d = m.hidden_size, f = m.expert_ffn_size;
  int64_t max_rows = 0;
  for (const auto& layer : p.global_histogram) {
    for (int64_t rows : layer) max_rows = std::max(max_rows, rows);
  }
  std::vector<float> x(max_rows * d, 0.01f), wgu(d * 2 * f, 0.01f), wd(f * d, 0.01f);
  std::vector<float> h(max_rows * 2 * f), y(max_rows * d);
  std::vector<double> raw;
  for (int rep = 0; rep < 5; ++rep) {
    const Clock::time_point start = Clock::now();
    for (const auto& layer : p.global_histogram) {
      for (int64_t rows : layer) {
        if (rows == 0) continue;
        (void)backend.MatMul(Dtype::kFp32, rows, 2 * f, d, x.data(), d, wgu.data(), d, h.data(),
                             2 * f, false);
        (void)backend.MatMul(Dtype::kFp32, rows, d, f, h.data(), 2 * f, wd.data(), f, y.data(), d,
                             false);
      }
    }
    raw.push_back(Since(start));
  }
  const double raw_s = Percentile(raw, 0.50);
  std::cout << absl::StrFormat(
      "expert GEMMs, prefill %d tokens of %s, %d layers, 1 rank x %d threads:\n"
      "  workload %s (experts phase, p50) vs raw OpenBLAS sgemm %s on the same shapes: "
      "ratio %.3f (target >= 0.90)\n",
      p.tokens, m.name, c.layers, host.cores, Gflops(routed_flops / experts_s),
      Gflops(routed_flops / raw_s), raw_s / experts_s);
  return absl::OkStatus();
}

// A plan on two rank processes of this binary, aggregated as a cluster's.
struct TwoRankRun {
  std::vector<v1::RankOutput> ranks;
  std::vector<v1::PointResult> points;
};

absl::StatusOr<TwoRankRun> RunTwoRanks(const SelfCheckOptions& o, const WorkloadConfig& c,
                                       const Peaks& peaks) {
  LaunchOptions launch;
  launch.executable = o.executable;
  launch.worker_args = {"--worker"};
  launch.ranks = 2;
  launch.hostname = o.hostname;
  TwoRankRun run;
  MOECAP_ASSIGN_OR_RETURN(run.ranks, LocalLauncher(launch).Run(c));
  MOECAP_ASSIGN_OR_RETURN(run.points, AggregateRanks(c, run.ranks, peaks));
  return run;
}

// 2. Decode over a stack larger than the caches: counted bytes/s vs the triad probe.
absl::Status DecodeBandwidthRatio(const SelfCheckOptions& o, const HostInfo& host,
                                  double triad_bytes_s, double* harness_overhead) {
  WorkloadConfig c = BasePlan(o);
  const ModelSpec m = ScaledModel(c.model, c.scale);
  const double layer_bytes = 4.0 * m.experts * 3 * m.hidden_size * m.expert_ffn_size;
  // At least 1 GiB of weights, and at least four times the reported last-level cache.
  const double target = std::max(1.0 * (1LL << 30), 4.0 * host.last_level_cache_bytes);
  c.layers = std::max<int64_t>(2, static_cast<int64_t>(target / layer_bytes + 0.999));
  c.phases = {ServingPhase::kDecode};
  c.batches = {8};
  c.iterations = 20;
  absl::StatusOr<TwoRankRun> run = RunTwoRanks(o, c, Peaks{triad_bytes_s, 0, 1, "triad probe"});
  if (!run.ok()) return run.status();
  const v1::PhaseResult& p = run->points.front().phases(0);
  const v1::Percentiles& step = p.step_time();
  double activated_sum = 0;
  for (double a : p.activated_experts()) activated_sum += a;
  *harness_overhead = p.harness_overhead();
  std::cout << absl::StrFormat(
      "decode, batch %d, %d layers of %s (%.2f GB of weights, LLC %.0f MB), 2 ranks x %d "
      "thread(s):\n"
      "  counted %s (mean step %.2f ms, %.0f of %d experts active per layer) vs triad probe %s: "
      "ratio %.3f (target >= 0.70); over the median step %.2f ms: ratio %.3f\n",
      c.batches[0], c.layers, m.name, layer_bytes * c.layers / 1e9,
      host.last_level_cache_bytes / 1e6, run->ranks.front().environment().threads(),
      Gb(p.achieved_bandwidth_bytes_per_s()), step.mean() * 1e3, activated_sum / c.layers,
      m.experts, Gb(triad_bytes_s), p.s_mbu(), step.p50() * 1e3,
      step.p50() > 0 ? p.s_mbu() * step.mean() / step.p50() : 0.0);
  return absl::OkStatus();
}

// 3. The decoder stack (attention over the KV cache, then the MoE block) of the model at 1/4 scale,
// batch 8, context 4096, 2 ranks, decode: counted bytes/s (weights, KV cache) vs the triad probe,
// and the step split into attention and MoE.
absl::Status DecoderBandwidthRatio(const SelfCheckOptions& o, double triad_bytes_s) {
  WorkloadConfig c = BasePlan(o);
  c.scale = 4;
  c.layer = LayerKind::kDecoder;
  c.layers = 2;
  c.phases = {ServingPhase::kDecode};
  c.batches = {8};
  c.prompt_len = 4096;
  c.output_len = 0;  // decode at context 4096
  c.iterations = 10;
  c.warmup = 2;
  absl::StatusOr<TwoRankRun> run = RunTwoRanks(o, c, Peaks{triad_bytes_s, 0, 1, "triad probe"});
  if (!run.ok()) return run.status();
  const v1::PhaseResult& p = run->points.front().phases(0);
  const v1::PhaseTimes& t = p.sub_times();
  const double moe =
      t.gate().mean() + t.dispatch().mean() + t.experts().mean() + t.combine().mean();
  std::cout << absl::StrFormat(
      "decoder layers, decode, batch 8 at context 4096, %d layers of %s at 1/4 scale (KV cache "
      "%.0f MB), 2 ranks x %d thread(s):\n"
      "  counted %s (mean step %.2f ms: attention %.2f ms, MoE %.2f ms) vs triad probe %s: "
      "ratio %.3f (target >= 0.70)\n",
      c.layers, c.model.name, p.breakdown().kv_cache().bytes() / 1e6,
      run->ranks.front().environment().threads(), Gb(p.achieved_bandwidth_bytes_per_s()),
      p.step_time().mean() * 1e3, t.attention().mean() * 1e3, moe * 1e3, Gb(triad_bytes_s),
      p.s_mbu());
  return absl::OkStatus();
}

// One round of the raw TCP probe: sends `bytes` while receiving `bytes` on `fd`; a 1-byte token
// first keeps the two ends' rounds in step.
bool ExchangeRound(int fd, size_t bytes, std::vector<char>& out, std::vector<char>& in) {
  char token = 1;
  if (write(fd, &token, 1) != 1 || read(fd, &token, 1) != 1) return false;
  std::thread sender([&] {
    size_t sent = 0;
    while (sent < bytes) {
      const ssize_t n = write(fd, out.data() + sent, bytes - sent);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  });
  size_t got = 0;
  while (got < bytes) {
    const ssize_t n = read(fd, in.data() + got, bytes - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  sender.join();
  return got == bytes;
}

}  // namespace

int RunRawTcpPeer(int port, int64_t bytes, int rounds) {
  if (port < 1 || port > 65535 || bytes < 1 || rounds < 1) return 2;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return 1;
  const size_t n = static_cast<size_t>(bytes);
  std::vector<char> out(n, 'c'), in(n);
  for (int r = 0; r < rounds; ++r) {
    if (!ExchangeRound(fd, n, out, in)) return 1;
  }
  close(fd);
  return 0;
}

namespace {

// Raw loopback TCP between two processes, both directions at once (what a 2-rank all-to-all
// does): total bytes moved / time, the median round (robust to the scheduler hiccups of a shared
// host, as the workload's figure is). The other process is `executable` (moecap-bench) in its
// --raw-tcp-peer mode.
absl::StatusOr<double> RawLoopbackTcp(const std::string& executable, size_t bytes, int rounds) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listener, 1) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::InternalError("raw TCP probe: cannot listen on loopback");
  }
  absl::StatusOr<Subprocess> peer = Subprocess::Spawn(
      {executable, "--raw-tcp-peer", absl::StrCat(ntohs(addr.sin_port)), "--raw-tcp-bytes",
       absl::StrCat(bytes), "--raw-tcp-rounds", absl::StrCat(rounds)});
  if (!peer.ok()) {
    close(listener);
    return absl::InternalError(
        absl::StrCat("raw TCP probe: cannot start ", executable, ": ", peer.status().message()));
  }
  // At most 30 s for the peer to connect, so one that cannot start or connect ends the probe.
  int fd = -1;
  for (int tries = 0; tries < 300 && fd < 0 && peer->running(); ++tries) {
    pollfd ready = {listener, POLLIN, 0};
    if (poll(&ready, 1, /*timeout_ms=*/100) > 0) {
      fd = accept(listener, nullptr, nullptr);
    } else {
      peer->Poll();
    }
  }
  close(listener);
  if (fd < 0) return absl::InternalError("raw TCP probe: the peer process did not connect");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::vector<char> out(bytes, 'p'), in(bytes);
  std::vector<double> times;
  bool ok = true;
  for (int r = 0; r < rounds && ok; ++r) {
    const Clock::time_point start = Clock::now();
    ok = ExchangeRound(fd, bytes, out, in);
    times.push_back(Since(start));
  }
  close(fd);
  peer->Wait(absl::Seconds(10));  // it exits after its last round; the destructor kills a straggler
  if (!ok) return absl::InternalError("raw TCP probe: the exchange failed");
  return 2.0 * static_cast<double>(bytes) / Percentile(times, 0.50);
}

// Gloo's all-to-all-v alone, 2 ranks on threads, the same bytes per direction: the median round
// of the slower rank.
absl::StatusOr<double> GlooAllToAllV(size_t bytes, int rounds, const std::string& hostname) {
  char templ[] = "/tmp/moecap-selfcheck-XXXXXX";
  if (mkdtemp(templ) == nullptr) return absl::InternalError("cannot create a store directory");
  const std::string dir = templ;
  std::vector<std::vector<double>> times(2);
  std::vector<absl::Status> status(2);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      FileKvStore store(dir);
      GlooOptions options;
      options.rank = rank;
      options.size = 2;
      options.hostname = hostname;
      options.timeout = absl::Seconds(30);
      absl::StatusOr<std::unique_ptr<GlooCommunicator>> comm =
          GlooCommunicator::Connect(store, options);
      if (!comm.ok()) {
        status[rank] = comm.status();
        return;
      }
      std::vector<char> send(2 * bytes, 's'), recv(2 * bytes);
      const std::vector<int64_t> counts = {static_cast<int64_t>(bytes),
                                           static_cast<int64_t>(bytes)};
      for (int r = 0; r < rounds; ++r) {
        if (absl::Status s = (*comm)->Barrier(); !s.ok()) {
          status[rank] = s;
          return;
        }
        const Clock::time_point start = Clock::now();
        if (absl::Status s = (*comm)->AllToAllV(send.data(), counts, recv.data(), counts);
            !s.ok()) {
          status[rank] = s;
          return;
        }
        times[rank].push_back(Since(start));
      }
      (void)(*comm)->Barrier();
    });
  }
  for (std::thread& t : threads) t.join();
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  for (const absl::Status& s : status) {
    if (!s.ok()) return s;
  }
  return 2.0 * static_cast<double>(bytes) /
         Percentile(ElementwiseMax({&times[0], &times[1]}), 0.50);
}

// 3. Dispatch + combine of a 2-rank prefill step vs raw loopback TCP with the same bytes.
absl::Status CommRatio(const SelfCheckOptions& o) {
  WorkloadConfig c = BasePlan(o);
  c.layers = 1;
  c.phases = {ServingPhase::kPrefill};
  c.batches = {4};
  c.prompt_len = 256;
  c.iterations = 12;
  c.warmup = 1;
  absl::StatusOr<TwoRankRun> run = RunTwoRanks(o, c, Peaks{});
  if (!run.ok()) return run.status();
  const v1::PhaseResult& p = run->points.front().phases(0);
  const double remote =
      p.dispatch_bandwidth().remote_bytes() + p.combine_bandwidth().remote_bytes();
  // The rank with the smallest median dispatch + combine time (the rank that reaches a collective
  // last hardly waits there), from the ranks' own reports: medians, as the probes are, so that a
  // few slow steps on a shared machine do not move the ratio.
  double exchange = std::numeric_limits<double>::infinity();
  for (const v1::RankOutput& r : run->ranks) {
    const v1::PhaseTimes& t = r.reports(0).phases(0).sub_times();
    exchange = std::min(exchange, t.dispatch().p50() + t.combine().p50());
  }
  const double workload_bw = remote / exchange;
  const double slowest_bw =
      remote / (p.sub_times().dispatch().p50() + p.sub_times().combine().p50());
  // One direction of one all-to-all-v: half of one phase's remote bytes (two ranks).
  const size_t message = static_cast<size_t>(p.dispatch_bandwidth().remote_bytes() / 2);
  absl::StatusOr<double> tcp = RawLoopbackTcp(o.executable, message, 21);
  if (!tcp.ok()) return tcp.status();
  absl::StatusOr<double> gloo = GlooAllToAllV(message, 21, o.hostname);
  if (!gloo.ok()) return gloo.status();
  std::cout << absl::StrFormat(
      "dispatch + combine, prefill %d tokens, 2 ranks (%.1f MB per direction per all-to-all):\n"
      "  workload %s (remote bytes / dispatch+combine time of the rank arriving last, count "
      "exchange and packing included; median step) vs raw loopback TCP %s (median): ratio %.3f "
      "(target >= 0.80)\n"
      "  (%s over the slowest rank's phase times, waiting for peers included)\n"
      "  Gloo all-to-all-v alone %s (median): ratio %.3f\n",
      p.tokens_per_step(), message / 1e6, Gb(workload_bw), Gb(*tcp), workload_bw / *tcp,
      Gb(slowest_bw), Gb(*gloo), *gloo / *tcp);
  return absl::OkStatus();
}

}  // namespace

int RunSelfCheckPerf(const SelfCheckOptions& o) {
  const HostInfo host = GetHostInfo();
  std::cout << absl::StrFormat("moecap-bench --self-check-perf on %s (%s, %d cores, %.1f GB)\n",
                               host.hostname, host.cpu_model, host.cores,
                               host.memory_total_bytes / 1e9);
  std::cout << "BLAS: " << CpuBackend(host.cores).LibraryConfig() << "\n";
  BandwidthProbeOptions bw_options;
  absl::StatusOr<double> triad = ProbeMemoryBandwidth(bw_options);
  CpuBackend probe_backend(host.cores);
  absl::StatusOr<double> sgemm = ProbeGemmFlops(probe_backend, Dtype::kFp32, GemmProbeOptions{});
  if (!triad.ok() || !sgemm.ok()) {
    std::cerr << "moecap-bench: error: probe failed: "
              << (!triad.ok() ? triad.status() : sgemm.status()).message() << std::endl;
    return 1;
  }
  std::cout << "probes: triad " << Gb(*triad) << " (3 x 256 MiB, " << host.cores
            << " threads); sgemm 2048^3 " << Gflops(*sgemm) << "\n";
  double overhead = 0;
  absl::Status s = ExpertGemmRatio(o, host);
  if (s.ok()) s = DecodeBandwidthRatio(o, host, *triad, &overhead);
  if (s.ok()) s = DecoderBandwidthRatio(o, *triad);
  if (s.ok()) s = CommRatio(o);
  if (!s.ok()) {
    std::cerr << "moecap-bench: error: " << s.message() << std::endl;
    return 1;
  }
  std::cout << absl::StrFormat(
      "harness overhead (decode run above): %.2f%% of the measured loop outside the timed steps "
      "(barriers, bookkeeping) (target <= 2%%)\n",
      100 * overhead);
  return 0;
}

}  // namespace moecap
