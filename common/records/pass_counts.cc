// One record -> DecodePass / PrefillPass -> Counts, through common/metrics.h only.
#include "common/records/pass_counts.h"

#include "absl/strings/str_cat.h"

namespace moecap::records {

PassOutcome CountPassRecord(const ModelSpec& model, const Precision& precision,
                            const PassRecord& record, CountedPass* pass, RecordError* why) {
  if (!record.expert_activation.has_value()) {
    why->reason = "expert_activation missing or null";
    why->message = why->reason;
    return PassOutcome::kSkipped;
  }
  const double activated = *record.expert_activation;
  if (activated < 0) {
    why->reason = "expert_activation negative";
    why->message = absl::StrCat("expert_activation negative (", activated, ")");
    return PassOutcome::kSkipped;
  }
  if (activated > static_cast<double>(model.experts)) {
    why->reason = "field 'expert_activation': exceeds the model's experts";
    why->message = absl::StrCat("field 'expert_activation': ", activated, " exceeds the ",
                                model.experts, " experts per layer of ", model.name);
    return PassOutcome::kBad;
  }
  const double activated_sum = static_cast<double>(model.MoeLayers()) * activated;
  const double b = static_cast<double>(record.batch_size);
  pass->mode = record.forward_mode;
  pass->activated_experts_per_layer = activated;
  if (record.forward_mode == ForwardMode::kDecode) {
    // ParsePassRecord guarantees seq_lens_sum on a decode pass.
    const DecodePass decode{b, static_cast<double>(*record.seq_lens_sum), activated_sum};
    pass->sequences = b;
    pass->tokens = b;
    pass->counts = CountDecodePass(model, precision, decode);
    return PassOutcome::kCounted;
  }
  PrefillPass prefill;
  if (!record.requests.empty()) {
    prefill = PrefillPass::FromSequences(record.requests, activated_sum);
  } else {
    // scheduled_tokens is the tokens computed on both engines; SGLang's seq_lens_sum also counts
    // cached context, so it is only the last resort.
    const int64_t tokens = record.scheduled_tokens.value_or(record.seq_lens_sum.value_or(0));
    prefill = PrefillPass::Fresh(b, static_cast<double>(tokens), activated_sum);
  }
  pass->sequences = prefill.sequences;
  pass->tokens = prefill.new_tokens;
  pass->counts = CountPrefillPass(model, precision, prefill);
  return PassOutcome::kCounted;
}

}  // namespace moecap::records
