// Counts parsed records with METRICS.md's "One measured pass" formulas (common/metrics.h), reading
// each recorder's fields as that recorder means them (tests/fixtures/real/FORMATS.md):
// - a decode pass is b = batch_size sequences with context sum C = seq_lens_sum, except where
//   seq_lens_sum equals batch_size (MoE-CAP's vLLM recorder writes the scheduled-token count
//   there): C is then rebuilt from per-request lengths (vLLM's req_ids and the prompt lengths of
//   earlier prefills), else from the user's --prompt-len/--output-len, and marked estimated; with
//   neither the pass is skipped with the reason, never counted silently low;
// - a prefill adds n_i = extend_len tokens to h_i cached ones: SGLang's total_len is the running
//   total (h_i = total_len − extend_len), vLLM's is the prompt length (h_i = the tokens of earlier
//   chunks of the same req_id); b_done counts is_last_chunk (every sequence when absent); without
//   per_req_info, b fresh sequences share the token total;
// - Σ_l A_l = L_moe·expert_activation; an activation of 0 (not recorded) skips the pass, or with
//   `uniform_when_unrecorded` takes the uniform-routing expectation, marked estimated;
// - a step split into a prefill and a decode record (same forward_pass_id — or, without ids, the
//   next record — with the same latency and activation) is merged back into one mixed pass.
#ifndef MOECAP_COMMON_RECORDS_PASS_COUNTS_H_
#define MOECAP_COMMON_RECORDS_PASS_COUNTS_H_

#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "common/metrics.h"
#include "common/model.h"
#include "common/records/pass_record.h"
#include "common/validity.h"

namespace moecap::records {

struct CountedPass {
  ForwardMode mode = ForwardMode::kDecode;
  double sequences = 0;  // b (both parts of a mixed pass)
  double tokens = 0;     // tokens the pass computes: b for decode, T = Σ n_i for a prefill
  double activated_experts_per_layer = 0;  // ā as recorded (or estimated)
  double activated_experts_sum = 0;        // Σ_l A_l
  std::optional<DecodePass> decode_part;
  std::optional<PrefillPass> prefill_part;
  Counts counts;      // sparse: the experts really activated
  Validity validity;  // estimated with its assumptions (rebuilt context, uniform activation)
  bool context_rebuilt = false;
};

enum class PassOutcome {
  kCounted,
  kSkipped,  // not measured (expert_activation missing, null, negative or 0; mode "unknown";
             // a decode context that cannot be rebuilt)
  kBad,      // a value the model rules out (more activated experts than it has)
};

struct CountOptions {
  // --prompt-len/--output-len with --records: the mean decode context P + O/2 for decode passes
  // whose recorded context is the scheduled-token count and whose requests are unknown.
  std::optional<double> prompt_len;
  std::optional<double> output_len;
  // Count a pass whose expert_activation is 0 (not recorded) at A(T), the uniform expectation.
  bool uniform_when_unrecorded = false;
};

// What earlier records said about each request (vLLM's req_id): the prompt tokens computed so far,
// the prompt length once its last chunk ran, and the decode steps since. Memory grows with the
// requests of the file (a few dozen bytes each).
class RequestTracker {
 public:
  // h_i of a vLLM prefill chunk, then records the chunk.
  double OnVllmChunk(const RequestInfo& info);
  // The context of request `id` in its next decode step (prompt + tokens generated so far, the
  // one being decoded included), advancing it; nullopt when its prompt was never seen.
  std::optional<double> NextDecodeContext(const std::string& id);

 private:
  struct State {
    double computed = 0;  // prompt tokens prefilled so far
    double prompt = -1;   // the prompt's length once its last chunk ran
    double decoded = 0;   // decode steps since
  };
  absl::flat_hash_map<std::string, State> requests_;
};

// Counts `record` into `pass`, or says why not in `why` (reason and message, as for parse errors).
// `tracker` carries request state from line to line (nullptr: no cross-line reconstruction).
PassOutcome CountPassRecord(const ModelSpec& model, const Precision& precision,
                            const PassRecord& record, const CountOptions& options,
                            RequestTracker* tracker, CountedPass* pass, RecordError* why);
// The same with default options and no tracker.
PassOutcome CountPassRecord(const ModelSpec& model, const Precision& precision,
                            const PassRecord& record, CountedPass* pass, RecordError* why);

// Whether `decode` (the record after `prefill`) is the decode half of the same split step:
// same forward_pass_id when both have one, same latency and expert_activation.
bool IsSecondHalfOfSplitStep(const PassRecord& prefill, const PassRecord& decode);

// One mixed pass from the two halves of a split step: the weights once, both parts' KV and FLOPs.
CountedPass MergeSplitPass(const ModelSpec& model, const Precision& precision,
                           const CountedPass& prefill, const CountedPass& decode);

}  // namespace moecap::records

#endif  // MOECAP_COMMON_RECORDS_PASS_COUNTS_H_
