// Host inventory from /proc and sysconf; the bandwidth and GEMM probes.
#include "agent/compute/host_probe.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// "MemAvailable:   24337360 kB" -> bytes.
int64_t MeminfoField(const std::string& name) {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view view(line);
    if (!absl::ConsumePrefix(&view, name) || !absl::ConsumePrefix(&view, ":")) continue;
    view = absl::StripAsciiWhitespace(view);
    absl::ConsumeSuffix(&view, "kB");
    int64_t kib = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(view), &kib)) return kib * 1024;
  }
  return -1;
}

}  // namespace

absl::StatusOr<int64_t> MemAvailableBytes() {
  const int64_t bytes = MeminfoField("MemAvailable");
  if (bytes < 0) return absl::UnavailableError("cannot read MemAvailable from /proc/meminfo");
  return bytes;
}

HostInfo GetHostInfo() {
  HostInfo info;
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) == 0) info.hostname = name;
  cpu_set_t set;
  CPU_ZERO(&set);
  info.cores = sched_getaffinity(0, sizeof(set), &set) == 0
                   ? CPU_COUNT(&set)
                   : static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  info.memory_total_bytes = MeminfoField("MemTotal");
  info.memory_available_bytes = MeminfoField("MemAvailable");
  const long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
  info.last_level_cache_bytes = llc > 0 ? llc : std::max(0L, sysconf(_SC_LEVEL2_CACHE_SIZE));
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    absl::string_view view(line);
    if (absl::ConsumePrefix(&view, "model name")) {
      const size_t colon = view.find(':');
      if (colon != absl::string_view::npos) {
        info.cpu_model = std::string(absl::StripAsciiWhitespace(view.substr(colon + 1)));
      }
      break;
    }
  }
  return info;
}

absl::StatusOr<double> ProbeMemoryBandwidth(const BandwidthProbeOptions& options) {
  const int threads = options.threads > 0 ? options.threads : GetHostInfo().cores;
  const int64_t n = options.array_bytes / static_cast<int64_t>(sizeof(float));
  if (n < threads * 1024 || options.repetitions < 1) {
    return absl::InvalidArgumentError("bandwidth probe: arrays too small or no repetition");
  }
  std::vector<float> a, b, c;
  try {
    a.resize(n);
    b.resize(n);
    c.resize(n);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat("bandwidth probe: cannot allocate 3 × ", options.array_bytes, " bytes"));
  }
  const auto run = [&](auto&& body) {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      const int64_t begin = n * t / threads;
      const int64_t end = n * (t + 1) / threads;
      pool.emplace_back([=] { body(begin, end); });
    }
    for (std::thread& th : pool) th.join();
  };
  // Each thread first touches the slice it will stream, so pages sit near the core that uses them.
  run([&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      a[i] = 0.0f;
      b[i] = 1.0f;
      c[i] = 2.0f;
    }
  });
  const float scalar = 3.0f;
  double best = std::numeric_limits<double>::infinity();
  for (int rep = 0; rep < options.repetitions + 1; ++rep) {  // the first is a warm-up
    const auto start = std::chrono::steady_clock::now();
    run([&](int64_t begin, int64_t end) {
      float* __restrict pa = a.data();
      const float* __restrict pb = b.data();
      const float* __restrict pc = c.data();
      for (int64_t i = begin; i < end; ++i) pa[i] = pb[i] + scalar * pc[i];
    });
    const double seconds = Seconds(start);
    if (rep > 0) best = std::min(best, seconds);
  }
  if (a[n / 2] != 7.0f) return absl::InternalError("bandwidth probe: wrong triad result");
  return 3.0 * static_cast<double>(n) * sizeof(float) / best;
}

absl::StatusOr<double> ProbeGemmFlops(ComputeBackend& backend, Dtype dtype,
                                      const GemmProbeOptions& options) {
  MOECAP_RETURN_IF_ERROR(backend.CheckDtype(dtype));
  const int64_t n = options.size;
  const size_t elements = static_cast<size_t>(n * n);
  const size_t element_bytes = static_cast<size_t>(DtypeBytes(dtype));
  absl::StatusOr<Buffer> a = backend.Allocate(elements * element_bytes);
  absl::StatusOr<Buffer> b = backend.Allocate(elements * element_bytes);
  absl::StatusOr<Buffer> c = backend.Allocate(elements * sizeof(float));
  if (!a.ok()) return a.status();
  if (!b.ok()) return b.status();
  if (!c.ok()) return c.status();
  std::vector<float> init(elements);
  for (size_t i = 0; i < elements; ++i) init[i] = static_cast<float>(i % 13) * 0.01f;
  backend.FromFloat(init.data(), static_cast<int64_t>(elements), dtype, a->data());
  backend.FromFloat(init.data(), static_cast<int64_t>(elements), dtype, b->data());
  double best = std::numeric_limits<double>::infinity();
  for (int rep = 0; rep < options.repetitions + 1; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    if (absl::Status s =
            backend.MatMul(dtype, n, n, n, a->data(), n, b->data(), n, c->as<float>(), n, false);
        !s.ok()) {
      return s;
    }
    const double seconds = Seconds(start);
    if (rep > 0) best = std::min(best, seconds);
  }
  return 2.0 * static_cast<double>(n) * n * n / best;
}

}  // namespace moecap
