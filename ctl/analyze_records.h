// The serving-run modes of `moecapctl analyze`: --records (MoE-CAP per-pass records, measured
// pass by pass) and --vllm-result (a vLLM benchmark result, estimated with the step formulas).
// The analysis itself is common/records/; this file maps flags to options and prints the views.
#ifndef MOECAP_CTL_ANALYZE_RECORDS_H_
#define MOECAP_CTL_ANALYZE_RECORDS_H_

#include "absl/status/status.h"
#include "ctl/analyze_command.h"
#include "ctl/command.h"

namespace moecap::ctl {

absl::Status RunRecordsAnalysis(const AnalyzeOptions& options, const GlobalOptions& global,
                                const CommandIo& io);
absl::Status RunVllmAnalysis(const AnalyzeOptions& options, const GlobalOptions& global,
                             const CommandIo& io);

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_ANALYZE_RECORDS_H_
