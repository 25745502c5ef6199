// Counts one parsed record with METRICS.md's "One measured pass" formulas (common/metrics.h):
// a decode pass is b = batch_size sequences with context sum C = seq_lens_sum; a prefill adds
// n_i = extend_len new tokens on top of h_i = total_len − extend_len cached ones per request, or,
// when only a token total is known, b fresh sequences sharing it; Σ_l A_l =
// L_moe·expert_activation.
#ifndef MOECAP_COMMON_RECORDS_PASS_COUNTS_H_
#define MOECAP_COMMON_RECORDS_PASS_COUNTS_H_

#include "common/metrics.h"
#include "common/model.h"
#include "common/records/pass_record.h"

namespace moecap::records {

struct CountedPass {
  ForwardMode mode = ForwardMode::kDecode;
  double sequences = 0;  // b
  double tokens = 0;     // tokens the pass computes: b for a decode pass, T = Σ n_i for a prefill
  double activated_experts_per_layer = 0;  // ā as recorded
  Counts counts;                           // sparse: the experts really activated
};

enum class PassOutcome {
  kCounted,
  kSkipped,  // expert_activation missing, null or negative: MoE-CAP skips such passes too
  kBad,      // a value the model rules out (more activated experts than it has)
};

// Counts `record` into `pass`, or says why not in `why` (reason and message, as for parse errors).
PassOutcome CountPassRecord(const ModelSpec& model, const Precision& precision,
                            const PassRecord& record, CountedPass* pass, RecordError* why);

}  // namespace moecap::records

#endif  // MOECAP_COMMON_RECORDS_PASS_COUNTS_H_
