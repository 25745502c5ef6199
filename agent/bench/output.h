// moecap-bench's outputs from the cluster's result type (v1::PointResult, one per batch size): the
// table (one row per phase and batch), CSV with the same columns, and the "results" of the JSON
// report, the same objects `moecapctl results -o json` prints.
#ifndef MOECAP_AGENT_BENCH_OUTPUT_H_
#define MOECAP_AGENT_BENCH_OUTPUT_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/workload/config.h"
#include "moecap/v1/report.pb.h"

namespace moecap {

// Rows in the order the points ran: phase by phase, each over the batch sizes.
std::string RenderTable(const WorkloadConfig& config, const std::vector<v1::PointResult>& points);
std::string RenderCsv(const WorkloadConfig& config, const std::vector<v1::PointResult>& points);
absl::StatusOr<nlohmann::json> ResultsToJson(const std::vector<v1::PointResult>& points);

// Whether every phase that ran a check passed it.
bool ChecksPassed(const std::vector<v1::PointResult>& points);

}  // namespace moecap

#endif  // MOECAP_AGENT_BENCH_OUTPUT_H_
