// The records mode of `moecapctl analyze`: --records (MoE-CAP per-pass records, measured pass by
// pass; --serving-result is ctl/analyze_serving.h). The analysis itself is common/records/; this
// file maps flags to options and prints the views.
#ifndef MOECAP_CTL_ANALYZE_RECORDS_H_
#define MOECAP_CTL_ANALYZE_RECORDS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ctl/analyze_command.h"
#include "ctl/command.h"

namespace moecap::ctl {

absl::Status RunRecordsAnalysis(const AnalyzeOptions& options, const GlobalOptions& global,
                                const CommandIo& io);
// The step mode's batch-shape flags are usage errors in a serving-run mode (`mode_flag`), which
// takes the shape from its file (`why`); `allow_lengths` lets --prompt-len/--output-len through.
absl::Status RejectShapeFlags(const AnalyzeOptions& options, absl::string_view mode_flag,
                              absl::string_view why, bool allow_lengths = false);

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_ANALYZE_RECORDS_H_
