// Table, CSV and JSON rendering of point results.
#include "agent/bench/output.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/aggregate/aggregator.h"
#include "common/plan/convert.h"

namespace moecap {
namespace {

std::string CheckCell(const v1::CheckResult& c) {
  if (!c.checked()) return "-";
  return absl::StrFormat("%s abs=%.1e rel=%.1e", c.passed() ? "ok" : "FAIL", c.max_abs_error(),
                         c.max_rel_error());
}

const std::vector<std::string>& Header() {
  static const std::vector<std::string> header = {
      "phase", "batch",   "tokens", "p50_ms", "p90_ms",    "p99_ms", "attn_ms", "moe_ms",
      "GB/s",  "GFLOP/s", "S-MBU",  "S-MFU",  "imbalance", "A_sum",  "check"};
  return header;
}

double ActivatedSum(const v1::PhaseResult& p) {
  double sum = 0;
  for (double a : p.activated_experts()) sum += a;
  return sum;
}

int64_t BatchOf(const v1::PointResult& point) {
  for (const v1::PointParameter& p : point.parameters()) {
    if (p.name() == "batch_size") return std::stoll(p.value());
  }
  return 0;
}

// (point, phase) in the order the harness ran them: phase by phase, each over the batches.
std::vector<std::pair<const v1::PointResult*, const v1::PhaseResult*>> Rows(
    const WorkloadConfig& config, const std::vector<v1::PointResult>& points) {
  std::vector<std::pair<const v1::PointResult*, const v1::PhaseResult*>> rows;
  for (ServingPhase phase : config.phases) {
    const v1::Phase proto = phase == ServingPhase::kPrefill ? v1::PHASE_PREFILL : v1::PHASE_DECODE;
    for (const v1::PointResult& point : points) {
      if (const v1::PhaseResult* p = FindPhase(point, proto); p != nullptr) {
        rows.emplace_back(&point, p);
      }
    }
  }
  return rows;
}

std::string PhaseWord(v1::Phase phase) { return phase == v1::PHASE_PREFILL ? "prefill" : "decode"; }

std::vector<std::string> Cells(const v1::PointResult& point, const v1::PhaseResult& p) {
  const v1::Percentiles& t = p.step_time();
  return {PhaseWord(p.phase()),
          absl::StrCat(BatchOf(point)),
          absl::StrCat(p.tokens_per_step()),
          absl::StrFormat("%.3f", t.p50() * 1e3),
          absl::StrFormat("%.3f", t.p90() * 1e3),
          absl::StrFormat("%.3f", t.p99() * 1e3),
          p.sub_times().has_attention()
              ? absl::StrFormat("%.3f", p.sub_times().attention().mean() * 1e3)
              : std::string("-"),
          absl::StrFormat("%.3f", MoeMeanSeconds(p.sub_times()) * 1e3),
          absl::StrFormat("%.2f", p.achieved_bandwidth_bytes_per_s() / 1e9),
          absl::StrFormat("%.2f", p.achieved_flops_per_s() / 1e9),
          absl::StrFormat("%.3f", p.s_mbu()),
          absl::StrFormat("%.3f", p.s_mfu()),
          absl::StrFormat("%.2f", p.imbalance()),
          absl::StrFormat("%.0f", ActivatedSum(p)),
          CheckCell(p.check())};
}

// Full precision for machines (absl::StrCat keeps only 6 digits of a double).
std::string Num(double value) { return absl::StrFormat("%.10g", value); }

}  // namespace

bool ChecksPassed(const std::vector<v1::PointResult>& points) {
  for (const v1::PointResult& point : points) {
    for (const v1::PhaseResult& p : point.phases()) {
      if (p.check().checked() && !p.check().passed()) return false;
    }
  }
  return true;
}

std::string RenderTable(const WorkloadConfig& config, const std::vector<v1::PointResult>& points) {
  std::vector<std::vector<std::string>> rows = {Header()};
  for (const auto& [point, phase] : Rows(config, points)) rows.push_back(Cells(*point, *phase));
  std::vector<size_t> width(Header().size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      // Text columns to the left, numbers to the right.
      const bool left = i == 0 || i + 1 == row.size();
      const std::string pad(width[i] - row[i].size(), ' ');
      absl::StrAppend(&line, i == 0 ? "" : "  ", left ? row[i] + pad : pad + row[i]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string RenderCsv(const WorkloadConfig& config, const std::vector<v1::PointResult>& points) {
  // Machine-friendly: plain column names, seconds and bytes unscaled, the check in two columns.
  std::string out =
      "phase,batch,tokens,ranks,step_p50_s,step_p90_s,step_p99_s,step_mean_s,attention_mean_s,"
      "moe_mean_s,bytes_per_s,"
      "flops_per_s,s_mbu,s_mfu,imbalance_max,activated_experts_sum,counted_bytes,counted_flops,"
      "check,max_rel_error\n";
  for (const auto& [point, phase] : Rows(config, points)) {
    const v1::PhaseResult& p = *phase;
    const v1::Percentiles& t = p.step_time();
    absl::StrAppend(&out,
                    absl::StrJoin({PhaseWord(p.phase()),
                                   absl::StrCat(BatchOf(*point)),
                                   absl::StrCat(p.tokens_per_step()),
                                   absl::StrCat(p.ranks_size()),
                                   Num(t.p50()),
                                   Num(t.p90()),
                                   Num(t.p99()),
                                   Num(t.mean()),
                                   Num(p.sub_times().attention().mean()),
                                   Num(MoeMeanSeconds(p.sub_times())),
                                   Num(p.achieved_bandwidth_bytes_per_s()),
                                   Num(p.achieved_flops_per_s()),
                                   Num(p.s_mbu()),
                                   Num(p.s_mfu()),
                                   Num(p.imbalance()),
                                   Num(ActivatedSum(p)),
                                   absl::StrFormat("%.0f", p.bytes()),
                                   absl::StrFormat("%.0f", p.flops()),
                                   std::string(!p.check().checked() ? "not_run"
                                               : p.check().passed() ? "passed"
                                                                    : "failed"),
                                   Num(p.check().max_rel_error())},
                                  ","),
                    "\n");
  }
  return out;
}

absl::StatusOr<nlohmann::json> ResultsToJson(const std::vector<v1::PointResult>& points) {
  nlohmann::json out = nlohmann::json::array();
  for (const v1::PointResult& point : points) {
    absl::StatusOr<std::string> text = ProtoToJson(point);
    if (!text.ok()) return text.status();
    out.push_back(nlohmann::json::parse(*text));
  }
  return out;
}

}  // namespace moecap
