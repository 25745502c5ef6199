// The MoE-CAP calculator behind `moecapctl analyze`: given a model, hardware, a batch shape and
// (optionally) measured TTFT/TPOT, counts each phase and derives S-MBU, S-MFU, their dense
// contrasts, the roofline and cost. JSON rendering lives here too, so that every tool that prints
// these figures prints them the same way.
#ifndef MOECAP_COMMON_ANALYSIS_H_
#define MOECAP_COMMON_ANALYSIS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/cost.h"
#include "common/dtype.h"
#include "common/hardware.h"
#include "common/hbm_traffic.h"
#include "common/metrics.h"
#include "common/model.h"
#include "common/precision.h"
#include "common/validity.h"
#include "nlohmann/json.hpp"

namespace moecap {

struct AnalysisInput {
  ModelSpec model;
  HardwareSpec hardware;
  int64_t devices = 1;         // G
  int64_t batch = 1;           // B
  int64_t prompt_len = 0;      // P
  int64_t output_len = 1;      // O
  Dtype dtype = Dtype::kBf16;  // the run's dtype; parts fall back to it (precision.h)
  PrecisionOverrides precision;
  std::optional<double> ttft_s;  // measured prefill time of the batch
  std::optional<double> tpot_s;  // measured mean decode step
  // Measured mean activated experts per MoE layer; by default the uniform-routing expectation.
  std::optional<double> prefill_activated_per_layer;
  std::optional<double> decode_activated_per_layer;
  // Per-device peaks overriding the catalog's (bytes/s, FLOP/s).
  std::optional<double> peak_bandwidth_bytes_s;
  std::optional<double> peak_flops;
  PriceOptions price;
  // The layout over the G devices (--tp, --dp-attention): physical HBM traffic beside the bytes.
  std::optional<ParallelLayout> layout;
};

// Checks ranges; errors name the field as the CLI flag does ("batch: must be at least 1, got 0").
absl::Status ValidateAnalysisInput(const AnalysisInput& input);

struct Utilizations {
  double s_mbu = 0;
  double s_mfu = 0;
  double dense_mbu = 0;
  double dense_mfu = 0;
};

struct PhaseAnalysis {
  Counts counts;        // sparse: the experts really activated
  Counts dense_counts;  // every expert
  double tokens = 0;    // tokens processed by the pass (T = B·P, or B for a decode step)
  double activated_experts_per_layer = 0;
  double roofline_s = 0;
  bool memory_bound = true;              // roofline set by bytes rather than FLOPs
  Utilizations at_roofline;              // what the hardware's lowest time would give
  std::optional<double> time_s;          // measured time, when given
  std::optional<Utilizations> measured;  // present when time_s is
  Validity validity;                     // of the measured sparse figures
  std::optional<HbmTraffic> hbm;         // with a layout: what the devices really read
};

struct CostAnalysis {
  HourlyPrice price;
  bool at_roofline = false;  // times were not given: the cost of the roofline times
  double batch_seconds = 0;
  double usd_per_million_output_tokens = 0;
  double usd_per_million_total_tokens = 0;
  double system_purchase_usd = 0;
  double moecap_system_cost_usd = 0;  // MoE-CAP's figure for this batch's duration
};

struct AnalysisResult {
  PartDtypes dtypes;  // resolved: the bytes of each part and the compute (peak) dtype
  double peak_bandwidth_bytes_s = 0;
  double peak_flops = 0;
  PhaseAnalysis prefill;
  std::optional<PhaseAnalysis> decode;  // absent when output_len == 1 (no decode step)
  double decode_mean_context = 0;       // c̄ = P + O/2
  std::optional<CostAnalysis> cost;     // absent when the hardware has no price
  std::string cost_unavailable_reason;
};

absl::StatusOr<AnalysisResult> Analyze(const AnalysisInput& input);

// The phases' validity together.
Validity AnalysisValidity(const AnalysisResult& result);

// {"attention": {"bytes": .., "flops": ..}, ...} with exactly METRICS.md's term names.
nlohmann::json BreakdownJson(const Counts& counts);
// The whole analysis, inputs echoed.
nlohmann::json AnalysisJson(const AnalysisInput& input, const AnalysisResult& result);

}  // namespace moecap

#endif  // MOECAP_COMMON_ANALYSIS_H_
