// Benchmark of `analyze --records` (not a test): writes a records file of N lines (default
// 1,000,000; a serving run's mix of decode passes and chunked prefills, MoE-CAP's format), then
// streams it through AnalyzeRecords and reports lines/s, MB/s and the peak RSS next to the memory
// the per-pass percentiles need (two doubles per pass).
//   records_bench [--lines N] [--file PATH] [--keep] [--reuse] [--vllm]
// --vllm writes MoE-CAP's vLLM batch records instead (vllm_batch_records.jsonl): chunked prefills
// split into a prefill and a decode record (merged back by the reader), decode contexts as the
// scheduled-token count with req_ids (rebuilt by the reader from earlier prefills).
// --reuse analyzes PATH as it is (written by an earlier --keep run) instead of writing it.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/catalog.h"
#include "common/records/records_analysis.h"

namespace {

// User plus system CPU seconds of this process: a rate per CPU second is less disturbed than
// one per wall second when other work shares the machine.
double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

double PeakRssMiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// Mixtral-8x7B on 2 x H100 as SGLang's recorder writes it: 1 line in 20 a prefill with 1-8
// requests (some chunks on cached context), the rest decode passes of batch 1-64.
uint64_t WriteRecords(const std::string& path, int64_t lines) {
  std::ofstream out(path, std::ios::binary);
  std::mt19937_64 rng(20250801);
  std::uniform_int_distribution<int> batch(1, 64), requests(1, 8), extend(64, 2048),
      cached(0, 4096);
  std::uniform_real_distribution<double> jitter(0.9, 1.1);
  std::string line;
  uint64_t bytes = 0;
  for (int64_t i = 0; i < lines; ++i) {
    if (i % 20 == 0) {
      const int n = requests(rng);
      std::string info;
      int64_t tokens = 0;
      for (int r = 0; r < n; ++r) {
        const int e = extend(rng), h = r % 3 == 0 ? cached(rng) : 0;
        tokens += e;
        absl::StrAppend(&info, r > 0 ? ", " : "", "{\"req_id\": \"", i, "-", r,
                        "\", \"extend_len\": ", e, ", \"total_len\": ", e + h,
                        ", \"is_last_chunk\": true}");
      }
      line = absl::StrFormat(
          "{\"forward_pass_id\": %d, \"forward_mode\": \"prefill\", \"batch_size\": %d, "
          "\"latency\": %.6f, \"seq_lens_sum\": %d, \"scheduled_tokens\": %d, "
          "\"expert_activation\": 8.0, \"gpu_num\": 2, \"gpu_raw_type\": "
          "\"NVIDIA-H100-80GB-HBM3\", \"per_req_info\": [%s]}\n",
          i, n, 2e-5 * static_cast<double>(tokens) * jitter(rng), tokens, tokens, info);
    } else {
      const int b = batch(rng);
      line = absl::StrFormat(
          "{\"forward_pass_id\": %d, \"forward_mode\": \"decode\", \"batch_size\": %d, "
          "\"latency\": %.6f, \"seq_lens_sum\": %d, \"expert_activation\": %.4f, \"gpu_num\": 2, "
          "\"gpu_raw_type\": \"NVIDIA-H100-80GB-HBM3\"}\n",
          i, b, (0.012 + 0.0002 * b) * jitter(rng), b * 1500,
          std::min(8.0, 8.0 * (1.0 - std::pow(0.75, b)) * jitter(rng)));
    }
    out << line;
    bytes += line.size();
  }
  return bytes;
}

// MoE-CAP's vLLM batch records of Qwen3-30B-A3B on 1 x H100: a step every 10 admits a new
// request's prompt chunk beside the running decodes (a split step); the others decode the
// running requests, each for 256 steps.
uint64_t WriteVllmRecords(const std::string& path, int64_t lines) {
  std::ofstream out(path, std::ios::binary);
  std::mt19937_64 rng(20250802);
  std::uniform_int_distribution<int> prompt(1000, 6000);
  std::uniform_real_distribution<double> jitter(0.9, 1.1);
  struct Running {
    std::string id;
    int prompt = 0, computed = 0, decoded = 0;
  };
  std::vector<Running> prefilling, decoding;
  int64_t next_id = 0, written = 0;
  uint64_t bytes = 0;
  auto decode_ids = [&] {
    std::string ids;
    for (size_t i = 0; i < decoding.size(); ++i) {
      absl::StrAppend(&ids, i > 0 ? ", " : "", "\"", decoding[i].id, "\"");
    }
    return ids;
  };
  while (written < lines) {
    const bool admit = written % 10 == 0 || decoding.empty();
    if (admit && prefilling.empty()) {
      prefilling.push_back({absl::StrCat("cmpl-", next_id++, "-0"), prompt(rng), 0, 0});
    }
    std::string line;
    const double latency = (0.015 + 0.0002 * decoding.size()) * jitter(rng);
    const double activation = 40 + 60 * jitter(rng) - 54;
    if (admit) {
      Running& r = prefilling.front();
      const int chunk = std::min(2048, r.prompt - r.computed);
      r.computed += chunk;
      const bool last = r.computed == r.prompt;
      absl::StrAppend(
          &line,
          absl::StrFormat(
              "{\"batch_size\": 1, \"latency\": %.6f, \"seq_lens_sum\": %d, \"forward_mode\": "
              "\"prefill\", \"expert_activation\": %.4f, \"gpu_num\": 1, \"gpu_raw_type\": "
              "\"NVIDIA-H100-HBM3-80GB\", \"per_req_info\": [{\"req_id\": \"%s\", "
              "\"extend_len\": %d, \"total_len\": %d, \"prompt_len\": %d, \"is_last_chunk\": "
              "%s}], \"scheduled_tokens\": %d}\n",
              latency + 5e-6 * chunk, chunk, activation + 60, r.id, chunk, r.prompt, r.prompt,
              last ? "true" : "false", chunk));
      if (!decoding.empty()) {
        const size_t b = decoding.size();
        absl::StrAppend(
            &line, absl::StrFormat("{\"batch_size\": %d, \"latency\": %.6f, \"seq_lens_sum\": %d, "
                                   "\"forward_mode\": \"decode\", \"req_ids\": [%s], "
                                   "\"expert_activation\": %.4f, \"gpu_num\": 1, "
                                   "\"gpu_raw_type\": \"NVIDIA-H100-HBM3-80GB\", "
                                   "\"scheduled_tokens\": %d}\n",
                                   b, latency + 5e-6 * chunk, b, decode_ids(), activation + 60, b));
      }
      if (last) {
        decoding.push_back(r);
        prefilling.erase(prefilling.begin());
      }
    } else {
      const size_t b = decoding.size();
      line = absl::StrFormat(
          "{\"batch_size\": %d, \"latency\": %.6f, \"seq_lens_sum\": %d, \"forward_mode\": "
          "\"decode\", \"expert_activation\": %.4f, \"gpu_num\": 1, \"gpu_raw_type\": "
          "\"NVIDIA-H100-HBM3-80GB\", \"req_ids\": [%s], \"scheduled_tokens\": %d}\n",
          b, latency, b, activation, decode_ids(), b);
    }
    for (Running& r : decoding) ++r.decoded;
    decoding.erase(std::remove_if(decoding.begin(), decoding.end(),
                                  [](const Running& r) { return r.decoded >= 256; }),
                   decoding.end());
    written += std::count(line.begin(), line.end(), '\n');
    out << line;
    bytes += line.size();
  }
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t lines = 1'000'000;
  std::string path =
      (std::filesystem::temp_directory_path() / "moecap_records_bench.jsonl").string();
  bool keep = false, reuse = false, vllm = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--lines" && i + 1 < argc) {
      lines = std::atoll(argv[++i]);
    } else if (arg == "--file" && i + 1 < argc) {
      path = argv[++i];
    } else if (arg == "--keep") {
      keep = true;
    } else if (arg == "--reuse") {
      reuse = keep = true;
    } else if (arg == "--vllm") {
      vllm = true;
    } else {
      std::cerr << "usage: records_bench [--lines N] [--file PATH] [--keep] [--reuse] [--vllm]\n";
      return 2;
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t bytes = reuse  ? std::filesystem::file_size(path)
                         : vllm ? WriteVllmRecords(path, lines)
                                : WriteRecords(path, lines);
  const double write_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!reuse) {
    std::cout << absl::StrFormat("wrote %d lines, %.1f MB, to %s in %.2f s\n", lines, bytes / 1e6,
                                 path, write_s);
  }
  const double rss_before = PeakRssMiB();

  absl::StatusOr<moecap::Catalog> catalog = moecap::Catalog::Builtin();
  if (!catalog.ok()) {
    std::cerr << catalog.status() << "\n";
    return 1;
  }
  moecap::records::RecordsOptions options;
  options.origin = path;
  options.model = **catalog->FindModel(vllm ? "qwen3-30b-a3b" : "mixtral-8x7b");
  options.catalog = &*catalog;
  std::ifstream in(path, std::ios::binary);
  const auto t1 = std::chrono::steady_clock::now();
  const double cpu0 = CpuSeconds();
  absl::StatusOr<moecap::records::RecordsSummary> summary =
      moecap::records::AnalyzeRecords(in, options);
  const double analyze_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  const double analyze_cpu_s = CpuSeconds() - cpu0;
  if (!summary.ok()) {
    std::cerr << summary.status() << "\n";
    return 1;
  }
  int64_t passes = 0;
  for (const auto* phase : {&summary->prefill, &summary->decode, &summary->mixed}) {
    if (phase->has_value()) passes += (*phase)->passes;
  }
  const double prefill_s_mfu = summary->prefill.has_value() ? summary->prefill->s_mfu : 0;
  const double mixed_s_mbu = summary->mixed.has_value() ? summary->mixed->s_mbu : 0;
  std::cout << absl::StrFormat(
      "analyzed %d lines (%d passes, %d split steps merged, %d decode contexts rebuilt) in %.3f "
      "s: %.0f lines/s, %.0f MB/s, one thread "
      "(%.3f CPU s: %.0f lines per CPU second)\n"
      "decode S-MBU %.1f %% (p50 %.1f %%), prefill S-MFU %.1f %%, mixed S-MBU %.1f %%\n"
      "peak RSS %.1f MiB (%.1f MiB before the analysis); the percentiles hold 16 B per pass = "
      "%.1f MiB\n",
      summary->records, passes, summary->merged_steps, summary->rebuilt_contexts, analyze_s,
      summary->records / analyze_s, bytes / 1e6 / analyze_s, analyze_cpu_s,
      summary->records / analyze_cpu_s, 100 * summary->decode->s_mbu,
      100 * summary->decode->s_mbu_p50, 100 * prefill_s_mfu, 100 * mixed_s_mbu, PeakRssMiB(),
      rss_before, 16.0 * passes / (1 << 20));
  if (!keep) std::filesystem::remove(path);
  return 0;
}
