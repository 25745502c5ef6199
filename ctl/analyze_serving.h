// The serving-result mode of `moecapctl analyze`: --serving-result FILE (alias --vllm-result), a
// serving benchmark's summary (vLLM, SGLang, AIPerf), estimated with the step formulas. The
// reading and the estimate are common/records/serving_result.h; this file maps flags to inputs,
// cross-checks the summary's model against --model and prints the views.
#ifndef MOECAP_CTL_ANALYZE_SERVING_H_
#define MOECAP_CTL_ANALYZE_SERVING_H_

#include "absl/status/status.h"
#include "ctl/analyze_command.h"
#include "ctl/command.h"

namespace moecap::ctl {

absl::Status RunServingAnalysis(const AnalyzeOptions& options, const GlobalOptions& global,
                                const CommandIo& io);

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_ANALYZE_SERVING_H_
