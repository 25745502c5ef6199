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

enum class ForwardMode { kPrefill, kDecode };
// "prefill" or "decode", as the records and moecap's outputs spell them.
absl::string_view ForwardModeName(ForwardMode mode);

// The fields of a record. Optional ones are absent when missing or null. Fields moecap does not
// read are skipped (after a syntax check), since the recorders add fields from release to release.
struct PassRecord {
  std::optional<int64_t> forward_pass_id;
  ForwardMode forward_mode = ForwardMode::kDecode;
  int64_t batch_size = 0;  // sequences in the pass (vLLM's recorder: tokens scheduled)
  double latency_s = 0;
  std::optional<int64_t> seq_lens_sum;      // decode: C, the sum of the context lengths
  std::optional<int64_t> scheduled_tokens;  // tokens computed in the pass
  // Mean over MoE layers of the distinct experts hit. Absent: MoE-CAP skips the pass, as we do.
  std::optional<double> expert_activation;
  std::optional<int64_t> gpu_num;
  bool has_gpu_raw_type = false;
  std::string gpu_raw_type;  // e.g. "NVIDIA-H100-80GB-HBM3"; kept across Clear() for its capacity
  // per_req_info of a prefill: n_i = extend_len, h_i = total_len − extend_len (0 without
  // total_len). Empty when the record has none.
  std::vector<PrefillPass::Sequence> requests;

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
// fields (forward_mode, batch_size, latency; seq_lens_sum for a decode pass; per_req_info,
// scheduled_tokens or seq_lens_sum for a prefill) and their ranges. Messages name the field:
// "field 'batch_size': expected an integer". Returns false and fills `error` on failure.
bool ParsePassRecord(absl::string_view line, PassRecord* record, RecordError* error);

}  // namespace moecap::records

#endif  // MOECAP_COMMON_RECORDS_PASS_RECORD_H_
