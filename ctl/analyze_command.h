// `moecapctl analyze`: the MoE-CAP calculator. From a model, hardware and a batch shape (and
// measured TTFT/TPOT when given) it prints bytes, FLOPs, S-MBU, S-MFU, the roofline and cost.
#ifndef MOECAP_CTL_ANALYZE_COMMAND_H_
#define MOECAP_CTL_ANALYZE_COMMAND_H_

#include <CLI/CLI.hpp>
#include <string>

#include "absl/status/status.h"
#include "ctl/command.h"

namespace moecap::ctl {

struct AnalyzeOptions {
  std::string model;
  std::string hardware;
  int64_t gpus = 1;
  int64_t batch = 1;
  int64_t prompt_len = 0;
  int64_t output_len = 1;
  std::string dtype = "bf16";
  std::string kv_dtype;
  double ttft_s = 0;
  double tpot_s = 0;
  double prefill_activated = 0;
  double decode_activated = 0;
  double peak_bandwidth_gb_s = 0;
  double peak_tflops = 0;
  double usd_per_hour = 0;
  double amortize_hours = 0;
  double usd_per_kwh = 0.15;
  std::string output = "table";
  bool explain = false;

  // Which optional flags were given (CLI11 fills these through the registered options).
  const CLI::Option* ttft_flag = nullptr;
  const CLI::Option* tpot_flag = nullptr;
  const CLI::Option* prefill_activated_flag = nullptr;
  const CLI::Option* decode_activated_flag = nullptr;
  const CLI::Option* peak_bandwidth_flag = nullptr;
  const CLI::Option* peak_tflops_flag = nullptr;
  const CLI::Option* usd_per_hour_flag = nullptr;
  const CLI::Option* amortize_hours_flag = nullptr;
  const CLI::Option* prompt_len_flag = nullptr;
};

// Adds the `analyze` subcommand's flags to `app`, bound to `options`.
CLI::App* RegisterAnalyzeCommand(CLI::App& app, AnalyzeOptions& options);

absl::Status RunAnalyzeCommand(const AnalyzeOptions& options, const GlobalOptions& global,
                               const CommandIo& io);

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_ANALYZE_COMMAND_H_
