// moecap-bench: runs the expert-parallel MoE workload as R rank processes on this host (like
// nccl-tests, for MoE layers) and prints one row per batch size, or the full JSON report. Also the
// rank processes' entry point (hidden --worker mode) and the performance self-check.
#include <limits.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "agent/bench/output.h"
#include "agent/bench/self_check_perf.h"
#include "agent/compute/cpu_backend.h"
#include "agent/compute/host_probe.h"
#include "agent/workload/launcher.h"
#include "agent/workload/memory.h"
#include "agent/workload/report.h"
#include "common/catalog.h"
#include "common/hardware.h"

#ifdef MOECAP_HAVE_CUDA
#include "agent/bench/cuda_bench.h"
#include "agent/comm/nccl/nccl_rank.h"
#endif

namespace moecap {
namespace {

struct BenchFlags {
  std::string model = "mixtral-8x7b";
  std::vector<std::string> catalog_dirs;
  int ranks = 2;
  std::vector<int64_t> batches = {1, 8, 64};
  std::string phase = "decode";
  int64_t prompt_len = 128;
  int64_t output_len = 256;
  std::string layer;  // empty: decoder on cpu, moe on cuda (its decoder layer is opt-in)
  bool lm_head = false;
  int64_t dense_layers = 0;
  int64_t layers = 1;
  std::string dtype = "fp32";
  int iters = 20;
  int warmup = 5;
  bool check = false;
  double tolerance = 0;
  int64_t scale = 1;
  uint64_t seed = 1;
  std::string routing = "gate";
  double zipf_exponent = 1.0;
  std::string histogram_file;
  std::string hardware;
  double peak_bandwidth_gb_s = 0;
  double peak_tflops = 0;
  int64_t probe_mib = 256;
  int threads_per_rank = 0;
  double comm_timeout_s = 60;
  double timeout_s = 1800;
  std::string hostname = "127.0.0.1";
  std::string output = "table";
  std::string output_file;
  bool keep_job_dir = false;
  bool self_check_perf = false;
  std::string backend = "cpu";
};

// Why `--backend cuda` cannot run in this build (empty when it can).
std::string CudaUnavailableReason() {
#ifdef MOECAP_HAVE_CUDA
  return "";
#else
  return "--backend cuda: this moecap-bench was built without the GPU backend (CMake found no "
         "CUDA toolkit and NCCL, or MOECAP_CUDA=OFF); rebuild with CUDA, or use --backend cpu";
#endif
}

std::string SelfExecutable() {
  char path[PATH_MAX] = {};
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string();
}

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

// One line per layer (or one line for all), shares separated by commas or spaces; '#' comments.
absl::StatusOr<std::vector<std::vector<double>>> ReadHistogram(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("histogram file '", path, "' cannot be read"));
  std::vector<std::vector<double>> rows;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const std::string content = line.substr(0, line.find('#'));
    std::vector<double> row;
    for (absl::string_view cell :
         absl::StrSplit(content, absl::ByAnyChar(", \t"), absl::SkipEmpty())) {
      double value = 0;
      if (!absl::SimpleAtod(cell, &value)) {
        return absl::InvalidArgumentError(absl::StrCat("histogram file '", path, "' line ", line_no,
                                                       ": '", cell, "' is not a number"));
      }
      row.push_back(value);
    }
    if (!row.empty()) rows.push_back(std::move(row));
  }
  return rows;
}

absl::StatusOr<WorkloadConfig> BuildConfig(const BenchFlags& f, const Catalog& catalog) {
  absl::StatusOr<const ModelSpec*> model = catalog.FindModel(f.model);
  if (!model.ok()) return model.status();
  WorkloadConfig c;
  c.model = **model;
  c.scale = f.scale;
  c.layers = f.layers;
  absl::StatusOr<Dtype> dtype = ParseDtype(f.dtype);
  if (!dtype.ok()) return dtype.status();
  c.dtype = *dtype;
  c.batches = f.batches;
  const std::string phase = absl::AsciiStrToLower(f.phase);
  if (phase == "both") {
    c.phases = {ServingPhase::kPrefill, ServingPhase::kDecode};
  } else {
    absl::StatusOr<ServingPhase> p = ParseServingPhase(phase);
    if (!p.ok()) return p.status();
    c.phases = {*p};
  }
  c.prompt_len = f.prompt_len;
  c.output_len = f.output_len;
  absl::StatusOr<LayerKind> layer = ParseLayerKind(!f.layer.empty()      ? f.layer
                                                   : f.backend == "cuda" ? "moe"
                                                                         : "decoder");
  if (!layer.ok()) return layer.status();
  c.layer = *layer;
  c.lm_head = f.lm_head;
  c.dense_layers = f.dense_layers;
  c.iterations = f.iters;
  c.warmup = f.warmup;
  c.seed = f.seed;
  absl::StatusOr<RoutingMode> mode = ParseRoutingMode(f.routing);
  if (!mode.ok()) return mode.status();
  c.routing.mode = *mode;
  c.routing.zipf_exponent = f.zipf_exponent;
  if (c.routing.mode == RoutingMode::kHistogram) {
    if (f.histogram_file.empty()) {
      return absl::InvalidArgumentError("routing histogram needs --histogram FILE");
    }
    absl::StatusOr<std::vector<std::vector<double>>> rows = ReadHistogram(f.histogram_file);
    if (!rows.ok()) return rows.status();
    c.routing.histogram = *std::move(rows);
  }
  c.check = f.check;
  c.tolerance = f.tolerance;
  c.threads_per_rank = f.threads_per_rank;
  c.comm_timeout_s = f.comm_timeout_s;
  return c;
}

// The denominators, per figure: given on the command line, else the hardware catalog's entry
// when one is named and has it, else a quick probe of this host.
absl::StatusOr<Peaks> GetPeaks(const BenchFlags& f, const Catalog& catalog, Dtype dtype,
                               int ranks) {
  Peaks peaks;
  const HardwareSpec* hw = nullptr;
  if (!f.hardware.empty()) {
    absl::StatusOr<const HardwareSpec*> found = catalog.FindHardware(f.hardware);
    if (!found.ok()) return found.status();
    hw = *found;
  }
  // A GPU entry describes one device per rank; a CPU entry or the probed host is one device that
  // all ranks share.
  peaks.devices = hw != nullptr && hw->kind == DeviceKind::kGpu ? ranks : 1;
  if (hw != nullptr) peaks.hardware = hw->name;
  const HostInfo host = GetHostInfo();
  std::string bw_source, flops_source;
  if (f.peak_bandwidth_gb_s > 0) {
    peaks.bandwidth_bytes_s = f.peak_bandwidth_gb_s * 1e9;
    bw_source = "bandwidth given (--peak-bandwidth-gb-s)";
  } else if (absl::StatusOr<double> bw = hw ? PeakBandwidth(*hw) : absl::NotFoundError("");
             bw.ok()) {
    peaks.bandwidth_bytes_s = *bw;
    bw_source = absl::StrCat("bandwidth from the hardware catalog (", hw->name, ")");
  } else {
    BandwidthProbeOptions options;
    options.array_bytes = f.probe_mib << 20;
    absl::StatusOr<double> probed = ProbeMemoryBandwidth(options);
    if (!probed.ok()) return probed.status();
    peaks.bandwidth_bytes_s = *probed;
    bw_source = absl::StrCat("bandwidth probed (triad over 3 x ", f.probe_mib, " MiB, ", host.cores,
                             " threads)");
  }
  if (f.peak_tflops > 0) {
    peaks.flops = f.peak_tflops * 1e12;
    flops_source = "FLOP/s given (--peak-tflops)";
  } else if (absl::StatusOr<double> flops = hw ? PeakFlops(*hw, dtype) : absl::NotFoundError("");
             flops.ok() && *flops > 0) {
    peaks.flops = *flops;
    flops_source =
        absl::StrCat(DtypeName(dtype), " FLOP/s from the hardware catalog (", hw->name, ")");
  } else {
    CpuBackend backend(host.cores);
    absl::StatusOr<double> probed = ProbeGemmFlops(backend, dtype, GemmProbeOptions{});
    if (!probed.ok()) return probed.status();
    peaks.flops = *probed;
    flops_source = absl::StrCat(DtypeName(dtype), " FLOP/s probed (GEMM 2048^3, ", host.cores,
                                " BLAS threads)");
  }
  peaks.source = absl::StrCat(bw_source, "; ", flops_source);
  return peaks;
}

nlohmann::json Metadata(const BenchFlags& f, const std::vector<v1::RankOutput>& ranks,
                        const std::string& command_line) {
  const HostInfo host = GetHostInfo();
  const v1::RankEnvironment environment =
      ranks.empty() ? v1::RankEnvironment() : ranks.front().environment();
  return {{"moecap_version", MOECAP_VERSION},
          {"started_at", UtcNow()},
          {"command_line", command_line},
          {"host",
           {{"hostname", host.hostname},
            {"cpu_model", host.cpu_model},
            {"cores", host.cores},
            {"memory_total_bytes", host.memory_total_bytes},
            {"memory_available_bytes", host.memory_available_bytes},
            {"last_level_cache_bytes", host.last_level_cache_bytes}}},
          {"backend", environment.backend()},
          {"blas", environment.library()},
          {"communicator", environment.communicator()},
          {"threads_per_rank", environment.threads()},
          {"seed", f.seed}};
}

int Fail(const absl::Status& status) {
  std::cerr << "moecap-bench: error: " << status.message() << std::endl;
  return 1;
}

int RunBench(const BenchFlags& f, const std::string& command_line) {
  absl::StatusOr<Catalog> catalog = Catalog::Load(f.catalog_dirs);
  if (!catalog.ok()) return Fail(catalog.status());
  absl::StatusOr<WorkloadConfig> config = BuildConfig(f, *catalog);
  if (!config.ok()) return Fail(config.status());
  // Everything that can be refused is refused before the probes and before any rank starts.
  if (absl::Status s = ValidateWorkload(*config, f.ranks); !s.ok()) return Fail(s);
  const bool cuda = f.backend == "cuda";
  const MemoryEstimate memory = EstimateMemory(*config, f.ranks, f.ranks);
  absl::StatusOr<Peaks> peaks;
  if (cuda) {
#ifdef MOECAP_HAVE_CUDA
    // The device memory check is each rank's (RunCudaRank), against its GPU's free memory.
    if (absl::Status s = CheckCudaRun(*config, f.ranks); !s.ok()) return Fail(s);
    GpuPeakRequest request;
    request.hardware = f.hardware;
    request.peak_bandwidth_gb_s = f.peak_bandwidth_gb_s;
    request.peak_tflops = f.peak_tflops;
    request.dtype = config->dtype;
    request.ranks = f.ranks;
    peaks = GpuPeaks(*catalog, request);
#else
    return Fail(absl::FailedPreconditionError(CudaUnavailableReason()));
#endif
  } else {
    if (absl::Status s = CpuBackend(1).CheckDtype(config->dtype); !s.ok()) return Fail(s);
    if (absl::StatusOr<int64_t> available = MemAvailableBytes(); available.ok()) {
      if (absl::Status s = CheckMemoryFits(*config, memory, *available); !s.ok()) return Fail(s);
    }
    peaks = GetPeaks(f, *catalog, config->dtype, f.ranks);
  }
  if (!peaks.ok()) return Fail(peaks.status());

  LaunchOptions launch;
  launch.executable = SelfExecutable();
  launch.worker_args = {"--worker"};
  launch.ranks = f.ranks;
  launch.timeout = absl::Seconds(f.timeout_s);
  launch.keep_work_dir = f.keep_job_dir;
  launch.hostname = f.hostname;
  launch.backend = cuda ? v1::BACKEND_CUDA : v1::BACKEND_CPU;  // cuda: rank r on GPU r
  absl::StatusOr<std::vector<v1::RankOutput>> ranks = LocalLauncher(launch).Run(*config);
  if (!ranks.ok()) return Fail(ranks.status());
  absl::StatusOr<std::vector<v1::PointResult>> points = AggregateRanks(*config, *ranks, *peaks);
  if (!points.ok()) return Fail(points.status());
  const bool all_passed = ChecksPassed(*points);

  std::string text;
  if (f.output == "json") {
    absl::StatusOr<nlohmann::json> results = ResultsToJson(*points);
    if (!results.ok()) return Fail(results.status());
    nlohmann::json plan = WorkloadToJson(*config);
    plan["ranks"] = f.ranks;
    plan["model_run"] = ModelToJson(ScaledModel(config->model, config->scale));
    nlohmann::json report = {{"metadata", Metadata(f, *ranks, command_line)},
                             {"plan", plan},
                             {"peaks",
                              {{"bandwidth_bytes_s", peaks->bandwidth_bytes_s},
                               {"flops", peaks->flops},
                               {"devices", peaks->devices},
                               {"source", peaks->source}}},
                             {"memory_estimate",
                              {{"weights_per_rank", memory.weights_per_rank},
                               {"work_per_rank", memory.work_per_rank},
                               {"reference_per_rank", memory.reference_per_rank},
                               {"host_total", memory.host_total}}},
                             {"results", *std::move(results)},
                             {"checks_passed", all_passed}};
    text = report.dump(2) + "\n";
  } else if (f.output == "csv") {
    text = RenderCsv(*config, *points);
  } else {
    const ModelSpec scaled = ScaledModel(config->model, config->scale);
    const v1::RankEnvironment& environment = ranks->front().environment();
    text = absl::StrCat(
        "# moecap-bench ", MOECAP_VERSION, ": ", config->model.name, " scale 1/", config->scale,
        " (d=", scaled.hidden_size, ", f_e=", scaled.expert_ffn_size, ", E=", scaled.experts,
        ", k=", scaled.experts_per_token, "), ", config->layers, " layer(s)",
        config->dense_layers > 0 ? absl::StrCat(" + ", config->dense_layers, " dense") : "", ", ",
        DtypeName(config->dtype), ", ", f.ranks, " rank(s) x ", environment.threads(),
        " thread(s), routing ", RoutingModeName(config->routing.mode), "\n", "# backend ",
        environment.backend(), " (", environment.library(), "), communicator ",
        environment.communicator(), "\n",
        absl::StrFormat("# peaks per device: %.2f GB/s, %.1f GFLOP/s; %d device(s) (%s)\n",
                        peaks->bandwidth_bytes_s / 1e9, peaks->flops / 1e9, peaks->devices,
                        peaks->source),
        RenderTable(*config, *points));
  }
  if (f.output_file.empty()) {
    std::cout << text << std::flush;
  } else {
    std::ofstream out(f.output_file);
    out << text;
    if (!out) return Fail(absl::InternalError(absl::StrCat("cannot write ", f.output_file)));
  }
  if (!all_passed) {
    std::cerr << "moecap-bench: error: the check against the single-rank reference FAILED "
                 "(max relative error above the tolerance, or a routing mismatch)"
              << std::endl;
    return 2;
  }
  return 0;
}

}  // namespace
}  // namespace moecap

int main(int argc, char** argv) {
  moecap::BenchFlags f;
  CLI::App app{
      "moecap-bench: runs an expert-parallel MoE layer stack as rank processes on this host and "
      "reports step times, counted bytes/FLOPs, S-MBU and S-MFU (exit 1: error, 2: check failed)"};
  app.add_option("--model", f.model, "catalog model (name or alias)")->capture_default_str();
  app.add_option("--catalog", f.catalog_dirs, "extra catalog directory (models/, hardware/)");
  app.add_option("--ranks", f.ranks, "expert-parallel ranks (processes)")->capture_default_str();
  app.add_option("--batch", f.batches, "batch sizes, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--phase", f.phase, "prefill, decode or both")->capture_default_str();
  app.add_option("--prompt-len", f.prompt_len, "prompt tokens per sequence (prefill)")
      ->capture_default_str();
  app.add_option("--output-len", f.output_len,
                 "output tokens per sequence: decode is timed at the mean context P + O/2")
      ->capture_default_str();
  app.add_option("--layer", f.layer,
                 "moe (the MoE blocks alone) or decoder (attention over the KV cache, then the "
                 "MoE block; cuda: GQA/MHA models in bf16); default decoder on cpu, moe on cuda")
      ->check(CLI::IsMember({"moe", "decoder"}));
  app.add_flag("--lm-head", f.lm_head,
               "decoder layers: the final norm and LM head over each sequence's last position");
  app.add_option("--layers", f.layers, "MoE layers stacked")->capture_default_str();
  app.add_option("--dense-layers", f.dense_layers,
                 "decoder layers: the model's dense-FFN layers stacked too, where the model has "
                 "them (DeepSeek's first ones, Llama-4's interleaved ones)")
      ->capture_default_str();
  app.add_option("--dtype", f.dtype, "fp32 or bf16")->capture_default_str();
  app.add_option("--iters", f.iters, "measured steps per point")->capture_default_str();
  app.add_option("--warmup", f.warmup, "warm-up steps per point")->capture_default_str();
  app.add_flag("--check", f.check, "compare with the single-rank reference (failure: exit 2)");
  app.add_option("--tolerance", f.tolerance,
                 "check bound on max|out-ref|/max|ref| (default fp32 1e-4, bf16 3e-2)");
  app.add_option("--scale", f.scale, "divide hidden and expert sizes by this")
      ->capture_default_str();
  app.add_option("--seed", f.seed, "weights, inputs and routing")->capture_default_str();
  app.add_option("--routing", f.routing, "gate, uniform, zipf or histogram")->capture_default_str();
  app.add_option("--zipf-exponent", f.zipf_exponent, "exponent of --routing zipf")
      ->capture_default_str();
  app.add_option("--histogram", f.histogram_file,
                 "--routing histogram: file with one row of expert shares per layer (or one row)");
  app.add_option("--hardware", f.hardware,
                 "peaks from this hardware catalog entry (figures it lacks are probed)");
  app.add_option("--peak-bandwidth-gb-s", f.peak_bandwidth_gb_s,
                 "peak memory bandwidth per device, GB/s (overrides catalog and probe)");
  app.add_option("--peak-tflops", f.peak_tflops,
                 "peak TFLOP/s per device in the run's dtype (overrides catalog and probe)");
  app.add_option("--probe-mib", f.probe_mib, "bandwidth probe: MiB per array")
      ->capture_default_str();
  app.add_option("--threads-per-rank", f.threads_per_rank, "BLAS threads (0: cores / ranks)")
      ->capture_default_str();
  app.add_option("--comm-timeout-s", f.comm_timeout_s, "rendezvous and collective timeout")
      ->capture_default_str();
  app.add_option("--timeout-s", f.timeout_s, "whole-job timeout")->capture_default_str();
  app.add_option("--hostname", f.hostname, "address the ranks listen on")->capture_default_str();
  app.add_option("-o,--output", f.output, "table, json or csv")
      ->check(CLI::IsMember({"table", "json", "csv"}))
      ->capture_default_str();
  app.add_option("--output-file", f.output_file, "write the output here instead of stdout");
  app.add_flag("--keep-job-dir", f.keep_job_dir, "keep the job directory (logs, rank results)");
  app.add_option("--backend", f.backend,
                 "cpu (OpenBLAS + Gloo, host memory) or cuda (cuBLAS + NCCL, rank r on GPU r; "
                 "needs a build with CUDA and one GPU per rank)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  app.add_flag("--self-check-perf", f.self_check_perf,
               "print the workload's efficiency against raw probes: cpu: OpenBLAS, STREAM-like and "
               "TCP; cuda: one GPU's copy bandwidth and cuBLAS bf16 GEMM vs a Mixtral-8x7B layer "
               "stack in decode (batch 1, 8, 32, 64) and prefill (-o json: JSON)");
  bool worker = false;
  std::string worker_launch;
  app.add_flag("--worker", worker)->group("");
  app.add_option("--worker-launch", worker_launch)->group("");
  // The self-check's raw TCP peer (RunRawTcpPeer), started by --self-check-perf.
  int raw_tcp_peer = 0;
  int64_t raw_tcp_bytes = 0;
  int raw_tcp_rounds = 0;
  app.add_option("--raw-tcp-peer", raw_tcp_peer)->group("");
  app.add_option("--raw-tcp-bytes", raw_tcp_bytes)->group("");
  app.add_option("--raw-tcp-rounds", raw_tcp_rounds)->group("");
  CLI11_PARSE(app, argc, argv);

  if (worker) {
    moecap::WorkerHooks hooks;
#ifdef MOECAP_HAVE_CUDA
    hooks.run_rank = moecap::RunRankOnBackend;  // the launch's backend: cpu or cuda
#endif
    return moecap::RunLocalWorker(worker_launch, hooks);
  }
  if (raw_tcp_peer > 0) return moecap::RunRawTcpPeer(raw_tcp_peer, raw_tcp_bytes, raw_tcp_rounds);
  if (f.backend == "cuda" && !moecap::CudaUnavailableReason().empty()) {
    return moecap::Fail(absl::FailedPreconditionError(moecap::CudaUnavailableReason()));
  }
  if (f.self_check_perf) {
    absl::StatusOr<moecap::Catalog> catalog = moecap::Catalog::Load(f.catalog_dirs);
    if (!catalog.ok()) return moecap::Fail(catalog.status());
    absl::StatusOr<const moecap::ModelSpec*> model = catalog->FindModel(f.model);
    if (!model.ok()) return moecap::Fail(model.status());
    moecap::SelfCheckOptions options;
    options.model = **model;
    if (f.scale > 1) options.scale = f.scale;
    options.executable = moecap::SelfExecutable();
    options.hostname = f.hostname;
#ifdef MOECAP_HAVE_CUDA
    if (f.backend == "cuda") {
      options.scale = f.scale;  // full size unless --scale says otherwise
      options.layers = f.layers > 1 ? f.layers : 0;
      options.json = f.output == "json";
      return moecap::RunCudaSelfCheckPerf(options);
    }
#endif
    return moecap::RunSelfCheckPerf(options);
  }
  std::string command_line;
  for (int i = 0; i < argc; ++i) absl::StrAppend(&command_line, i ? " " : "", argv[i]);
  return moecap::RunBench(f, command_line);
}
