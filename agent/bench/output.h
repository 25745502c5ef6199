// moecap-bench's outputs: the table (one row per point), CSV with the same columns, and the full
// JSON report with reproducibility metadata.
#ifndef MOECAP_AGENT_BENCH_OUTPUT_H_
#define MOECAP_AGENT_BENCH_OUTPUT_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/workload/config.h"
#include "agent/workload/report.h"

namespace moecap {

std::string RenderTable(const std::vector<PointReport>& points);
std::string RenderCsv(const std::vector<PointReport>& points);

}  // namespace moecap

#endif  // MOECAP_AGENT_BENCH_OUTPUT_H_
