// One record -> DecodePass / PrefillPass -> Counts, through common/metrics.h only.
#include "common/records/pass_counts.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace moecap::records {

double RequestTracker::OnVllmChunk(const RequestInfo& info) {
  if (info.req_id.empty()) {
    // No identity: a last chunk holds the rest of the prompt, a first chunk starts it.
    return info.is_last_chunk.value_or(true) && info.prompt_len.has_value()
               ? static_cast<double>(*info.prompt_len - info.extend_len)
               : 0.0;
  }
  State& s = requests_[info.req_id];
  double cached = s.computed;
  if (s.computed == 0 && info.is_last_chunk.value_or(true) && info.prompt_len.has_value()) {
    cached = static_cast<double>(*info.prompt_len - info.extend_len);  // recording began late
  }
  s.computed = cached + static_cast<double>(info.extend_len);
  if (info.is_last_chunk.value_or(true)) {
    s.prompt = info.prompt_len.has_value() ? static_cast<double>(*info.prompt_len) : s.computed;
    s.decoded = 0;
  }
  return cached;
}

std::optional<double> RequestTracker::NextDecodeContext(const std::string& id) {
  auto it = requests_.find(id);
  if (it == requests_.end() || it->second.prompt < 0) return std::nullopt;
  State& s = it->second;
  s.decoded += 1;
  return s.prompt + s.decoded;  // step s attends over P + s entries
}

namespace {

PassOutcome Skip(RecordError* why, std::string reason, std::string message = "") {
  why->message = message.empty() ? reason : std::move(message);
  why->reason = std::move(reason);
  return PassOutcome::kSkipped;
}

// The per-sequence shape of a prefill record's per_req_info, each recorder's way.
std::vector<PrefillPass::Sequence> PrefillSequences(const PassRecord& record,
                                                    RequestTracker* tracker) {
  std::vector<PrefillPass::Sequence> sequences;
  sequences.reserve(record.requests.size());
  for (const RequestInfo& info : record.requests) {
    PrefillPass::Sequence seq;
    seq.new_tokens = static_cast<double>(info.extend_len);
    seq.completes = info.is_last_chunk.value_or(true);
    const bool vllm = !info.has_pool_index && info.prompt_len.has_value();
    if (vllm) {
      RequestTracker scratch;
      seq.cached_tokens = (tracker != nullptr ? *tracker : scratch).OnVllmChunk(info);
    } else if (info.total_len.has_value()) {
      seq.cached_tokens = static_cast<double>(*info.total_len - info.extend_len);
    }
    sequences.push_back(seq);
  }
  return sequences;
}

// The decode pass's context sum, rebuilt when the record's is the scheduled-token count.
PassOutcome DecodeContext(const PassRecord& record, const CountOptions& options,
                          RequestTracker* tracker, CountedPass* pass, RecordError* why,
                          double* context_sum) {
  const double b = static_cast<double>(record.batch_size);
  *context_sum = static_cast<double>(*record.seq_lens_sum);
  if (*record.seq_lens_sum != record.batch_size) return PassOutcome::kCounted;
  // Every context holds at least its prompt and the token being decoded: C = b is the vLLM
  // recorder's scheduled-token count, not a context.
  if (tracker != nullptr && !record.decode_request_ids.empty() &&
      static_cast<int64_t>(record.decode_request_ids.size()) == record.batch_size) {
    double sum = 0;
    bool all_known = true;
    for (const std::string& id : record.decode_request_ids) {
      std::optional<double> c = tracker->NextDecodeContext(id);
      if (!c.has_value()) {
        all_known = false;
        break;
      }
      sum += *c;
    }
    if (all_known) {
      *context_sum = sum;
      pass->context_rebuilt = true;
      pass->validity.Estimate(
          "decode contexts rebuilt from each request's prompt length and tokens generated so far "
          "(the file's seq_lens_sum equals batch_size: MoE-CAP's vLLM recorder writes the "
          "scheduled-token count there)");
      return PassOutcome::kCounted;
    }
  }
  if (options.prompt_len.has_value() && options.output_len.has_value()) {
    *context_sum = b * (*options.prompt_len + *options.output_len / 2);
    pass->context_rebuilt = true;
    pass->validity.Estimate(absl::StrFormat(
        "decode contexts rebuilt as P + O/2 = %g per sequence from --prompt-len %g and "
        "--output-len %g (the file's seq_lens_sum equals batch_size: MoE-CAP's vLLM recorder "
        "writes the scheduled-token count there)",
        *options.prompt_len + *options.output_len / 2, *options.prompt_len, *options.output_len));
    return PassOutcome::kCounted;
  }
  return Skip(why,
              "decode context missing: seq_lens_sum equals batch_size (MoE-CAP's vLLM recorder "
              "writes scheduled tokens, not contexts); pass --prompt-len and --output-len to "
              "rebuild it");
}

}  // namespace

PassOutcome CountPassRecord(const ModelSpec& model, const Precision& precision,
                            const PassRecord& record, CountedPass* pass, RecordError* why) {
  return CountPassRecord(model, precision, record, CountOptions{}, nullptr, pass, why);
}

PassOutcome CountPassRecord(const ModelSpec& model, const Precision& precision,
                            const PassRecord& record, const CountOptions& options,
                            RequestTracker* tracker, CountedPass* pass, RecordError* why) {
  *pass = CountedPass{};
  if (record.forward_mode == ForwardMode::kUnknown) {
    return Skip(why, "forward_mode \"unknown\" (a step without requests)");
  }
  const double b = static_cast<double>(record.batch_size);
  pass->mode = record.forward_mode;

  // The pass's shape first: the prefill tracker must see every chunk, counted or not.
  PrefillPass prefill;
  double context_sum = 0;
  if (record.forward_mode == ForwardMode::kDecode) {
    // ParsePassRecord guarantees seq_lens_sum on a decode pass.
    const PassOutcome outcome = DecodeContext(record, options, tracker, pass, why, &context_sum);
    if (outcome != PassOutcome::kCounted) return outcome;
    pass->sequences = b;
    pass->tokens = b;
  } else {
    const double window = static_cast<double>(model.sliding_window);
    if (!record.requests.empty()) {
      prefill = PrefillPass::FromSequences(PrefillSequences(record, tracker), 0, window);
    } else {
      // scheduled_tokens is the tokens computed on both engines; SGLang's seq_lens_sum also
      // counts cached context, so it is only the last resort.
      const int64_t tokens = record.scheduled_tokens.value_or(record.seq_lens_sum.value_or(0));
      prefill = PrefillPass::Fresh(b, static_cast<double>(tokens), 0, window);
    }
    pass->sequences = prefill.sequences;
    pass->tokens = prefill.new_tokens;
  }

  if (!record.expert_activation.has_value()) {
    return Skip(why, "expert_activation missing or null");
  }
  double activated = *record.expert_activation;
  if (activated < 0) {
    return Skip(why, "expert_activation negative",
                absl::StrCat("expert_activation negative (", activated, ")"));
  }
  if (activated > static_cast<double>(model.experts)) {
    why->reason = "field 'expert_activation': exceeds the model's experts";
    why->message = absl::StrCat("field 'expert_activation': ", activated, " exceeds the ",
                                model.experts, " experts per layer of ", model.name);
    return PassOutcome::kBad;
  }
  if (activated == 0) {
    // A pass with tokens activates at least k experts: 0 means nothing was recorded (vLLM
    // without MOE_CAP_ENABLE_EXPERT_PATCHING=1, SGLang's warm-up, profiling-only mode).
    if (!options.uniform_when_unrecorded) {
      return Skip(why,
                  "expert_activation 0: not recorded (vLLM without "
                  "MOE_CAP_ENABLE_EXPERT_PATCHING=1, a warm-up pass, or profiling-only mode); "
                  "--uniform-activation counts such passes at the uniform-routing expectation");
    }
    activated = ExpectedActivatedExperts(model, pass->tokens);
    pass->validity.Estimate(
        "activated experts of passes without a recorded expert_activation taken as the "
        "uniform-routing expectation A(T) = E·(1 − (1 − k/E)^T) (--uniform-activation)");
  }
  const double activated_sum = static_cast<double>(model.MoeLayers()) * activated;
  pass->activated_experts_per_layer = activated;
  pass->activated_experts_sum = activated_sum;
  if (record.forward_mode == ForwardMode::kDecode) {
    const DecodePass decode{b, context_sum, activated_sum};
    pass->decode_part = decode;
    pass->counts = CountDecodePass(model, precision, decode);
  } else {
    prefill.activated_experts_sum = activated_sum;
    pass->prefill_part = prefill;
    pass->counts = CountPrefillPass(model, precision, prefill);
  }
  return PassOutcome::kCounted;
}

bool IsSecondHalfOfSplitStep(const PassRecord& prefill, const PassRecord& decode) {
  if (prefill.forward_mode != ForwardMode::kPrefill ||
      decode.forward_mode != ForwardMode::kDecode) {
    return false;
  }
  if (prefill.forward_pass_id.has_value() != decode.forward_pass_id.has_value()) return false;
  if (prefill.forward_pass_id.has_value() && *prefill.forward_pass_id != *decode.forward_pass_id) {
    return false;
  }
  // The recorder writes one latency and one activation for the whole step into both halves;
  // two real passes never share a perf_counter delta to the last bit.
  return prefill.latency_s == decode.latency_s &&
         prefill.expert_activation == decode.expert_activation;
}

CountedPass MergeSplitPass(const ModelSpec& model, const Precision& precision,
                           const CountedPass& prefill, const CountedPass& decode) {
  CountedPass mixed;
  mixed.mode = ForwardMode::kMixed;
  mixed.sequences = prefill.sequences + decode.sequences;
  mixed.tokens = prefill.tokens + decode.tokens;
  mixed.activated_experts_per_layer = prefill.activated_experts_per_layer;
  mixed.activated_experts_sum = prefill.activated_experts_sum;
  mixed.decode_part = decode.decode_part;
  mixed.prefill_part = prefill.prefill_part;
  mixed.counts = CountMixedPass(model, precision, *decode.decode_part, *prefill.prefill_part,
                                prefill.activated_experts_sum);
  mixed.validity = prefill.validity;
  mixed.validity.Merge(decode.validity);
  mixed.context_rebuilt = decode.context_rebuilt;
  return mixed;
}

}  // namespace moecap::records
