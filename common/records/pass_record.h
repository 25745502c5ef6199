// One line of MoE-CAP's per-pass records (its recorders for SGLang and vLLM write one JSON object
// per forward pass): the fields moecap reads, parsed and checked line by line. Counting a parsed
// record lives in pass_counts.h.
#ifndef MOECAP_COMMON_RECORDS_PASS_RECORD_H_
#define MOECAP_COMMON_RECORDS_PASS_RECORD_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/metrics.h"

namespace moecap::records {

// kMixed is never read from a record: a split step merged back into one pass is one
// (pass_counts.h). kUnknown is what MoE-CAP's vLLM recorder writes for a step with no request id.
enum class ForwardMode { kPrefill, kDecode, kMixed, kUnknown };
// "prefill", "decode", "mixed" or "unknown", as the records and moecap's outputs spell them.
absl::string_view ForwardModeName(ForwardMode mode);

// One element of per_req_info. The recorders disagree on total_len: SGLang's (elements with
// req_pool_idx) is the running total, cached prefix and this chunk included; vLLM's (prompt_len
// present, no req_pool_idx) is the prompt's length, constant across chunks.
struct RequestInfo {
  int64_t extend_len = 0;  // tokens of this request computed in the pass
  std::optional<int64_t> total_len;
  std::optional<int64_t> prompt_len;
  std::optional<bool> is_last_chunk;  // the pass finishes the request's prompt
  bool has_pool_index = false;        // req_pool_idx present: SGLang's recorder
  std::optional<int64_t> pool_index;  // its value when an integer (SGLang's request slot)
  std::string req_id;                 // empty when absent
};

// Which key gave the pass's time: the recorders write `latency`; MoE-CAP's runner copies it into
// detailed_results_*.jsonl as `ttft` (prefill records) or `tpot` (the others), per pass.
enum class LatencyKey { kLatency, kTtft, kTpot };

// The fields of a record. Optional ones are absent when missing or null. Fields moecap does not
// read are skipped (after a syntax check), since the recorders add fields from release to release.
struct PassRecord {
  std::optional<int64_t> forward_pass_id;
  ForwardMode forward_mode = ForwardMode::kDecode;
  int64_t batch_size = 0;  // sequences in the pass (vLLM's recorder: tokens scheduled)
  double latency_s = 0;
  LatencyKey latency_key = LatencyKey::kLatency;
  std::optional<int64_t> seq_lens_sum;      // decode: C, the sum of the context lengths
  std::optional<int64_t> scheduled_tokens;  // tokens computed in the pass
  // Mean over MoE layers of the distinct experts hit. Absent: MoE-CAP skips the pass, as we do.
  std::optional<double> expert_activation;
  std::optional<int64_t> gpu_num;
  bool has_gpu_raw_type = false;
  std::string gpu_raw_type;  // e.g. "NVIDIA-H100-80GB-HBM3"; kept across Clear() for its capacity
  // per_req_info of a prefill, as written. Empty when the record has none.
  std::vector<RequestInfo> requests;
  // req_ids of a decode record when they are strings (vLLM's request ids); SGLang's integer pool
  // slots are not identities and are not kept.
  std::vector<std::string> decode_request_ids;

  // Resets every field, keeping the buffers' capacity.
  void Clear();
};

// Why a line cannot be used. `reason` leaves out values and positions, so that equal causes are
// counted together in `skipped.reasons`; `message` adds them ("invalid JSON at column 12: ...").
struct RecordError {
  std::string reason;
  std::string message;
};

// Parses and checks one line: JSON syntax, the type of every field moecap reads, the required
// fields (forward_mode, batch_size, latency (or ttft/tpot); seq_lens_sum for a decode pass;
// per_req_info, scheduled_tokens or seq_lens_sum for a prefill) and their ranges. Messages name the
// field: "field 'batch_size': expected an integer". Returns false and fills `error` on failure.
bool ParsePassRecord(absl::string_view line, PassRecord* record, RecordError* error);

}  // namespace moecap::records

#endif  // MOECAP_COMMON_RECORDS_PASS_RECORD_H_
