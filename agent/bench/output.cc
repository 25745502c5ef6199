// Table and CSV rendering of point reports.
#include "agent/bench/output.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace moecap {
namespace {

std::string CheckCell(const PointReport& p) {
  if (!p.check.ran) return "-";
  return absl::StrFormat("%s abs=%.1e rel=%.1e", p.check.passed ? "ok" : "FAIL",
                         p.check.max_abs_error, p.check.max_rel_error);
}

struct Row {
  std::vector<std::string> cells;
};

const std::vector<std::string>& Header() {
  static const std::vector<std::string> header = {
      "phase",   "batch", "tokens", "p50_ms",    "p90_ms", "p99_ms", "GB/s",
      "GFLOP/s", "S-MBU", "S-MFU",  "imbalance", "A_sum",  "check"};
  return header;
}

std::vector<std::string> Cells(const PointReport& p) {
  return {std::string(ServingPhaseName(p.phase)),
          absl::StrCat(p.batch),
          absl::StrCat(p.tokens),
          absl::StrFormat("%.3f", p.step.p50 * 1e3),
          absl::StrFormat("%.3f", p.step.p90 * 1e3),
          absl::StrFormat("%.3f", p.step.p99 * 1e3),
          absl::StrFormat("%.2f", p.bytes_per_s / 1e9),
          absl::StrFormat("%.2f", p.flops_per_s / 1e9),
          absl::StrFormat("%.3f", p.s_mbu),
          absl::StrFormat("%.3f", p.s_mfu),
          absl::StrFormat("%.2f", p.routing.max_imbalance),
          absl::StrFormat("%.0f", p.routing.activated_sum),
          CheckCell(p)};
}

// Full precision for machines (absl::StrCat keeps only 6 digits of a double).
std::string Num(double value) { return absl::StrFormat("%.10g", value); }

}  // namespace

std::string RenderTable(const std::vector<PointReport>& points) {
  std::vector<std::vector<std::string>> rows = {Header()};
  for (const PointReport& p : points) rows.push_back(Cells(p));
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

std::string RenderCsv(const std::vector<PointReport>& points) {
  // Machine-friendly: plain column names, seconds and bytes unscaled, the check in two columns.
  std::string out =
      "phase,batch,tokens,ranks,step_p50_s,step_p90_s,step_p99_s,step_mean_s,bytes_per_s,"
      "flops_per_s,s_mbu,s_mfu,imbalance_max,activated_experts_sum,counted_bytes,counted_flops,"
      "check,max_rel_error\n";
  for (const PointReport& p : points) {
    absl::StrAppend(
        &out,
        absl::StrJoin(
            {std::string(ServingPhaseName(p.phase)), absl::StrCat(p.batch), absl::StrCat(p.tokens),
             absl::StrCat(p.ranks), Num(p.step.p50), Num(p.step.p90), Num(p.step.p99),
             Num(p.step.mean), Num(p.bytes_per_s), Num(p.flops_per_s), Num(p.s_mbu), Num(p.s_mfu),
             Num(p.routing.max_imbalance), Num(p.routing.activated_sum),
             absl::StrFormat("%.0f", p.counted.bytes()), absl::StrFormat("%.0f", p.counted.flops()),
             std::string(!p.check.ran     ? "not_run"
                         : p.check.passed ? "passed"
                                          : "failed"),
             Num(p.check.max_rel_error)},
            ","),
        "\n");
  }
  return out;
}

}  // namespace moecap
