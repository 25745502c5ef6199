// The MoE-CAP counting rules of METRICS.md as pure functions: the bytes that must move and the
// FLOPs that must be done by one pass (prefill or decode) of a model, split into named terms, and
// the utilisations they give against a device's peaks. The agent, the coordinator and
// `moecapctl analyze` all count with these functions, so their figures agree exactly.
#ifndef MOECAP_COMMON_METRICS_H_
#define MOECAP_COMMON_METRICS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/dtype.h"
#include "common/model.h"
#include "common/precision.h"

namespace moecap {

// The terms of METRICS.md's breakdown. Weight terms carry bytes and FLOPs; kv_cache carries
// bytes only and attention_scores FLOPs only.
enum class Term {
  kAttention,
  kRouter,
  kDenseFfn,
  kSharedExperts,
  kRoutedExperts,
  kLmHead,
  kKvCache,
  kAttentionScores,
};
inline constexpr int kNumTerms = 8;
inline constexpr std::array<Term, kNumTerms> kAllTerms = {
    Term::kAttention,     Term::kRouter, Term::kDenseFfn, Term::kSharedExperts,
    Term::kRoutedExperts, Term::kLmHead, Term::kKvCache,  Term::kAttentionScores};

// "attention", "router", "dense_ffn", "shared_experts", "routed_experts", "lm_head",
// "kv_cache", "attention_scores": the names METRICS.md and the JSON outputs use.
absl::string_view TermName(Term term);

struct TermCount {
  double bytes = 0;
  double flops = 0;
};

// Bytes and FLOPs of some work, by term. Sums of passes add term by term.
class Counts {
 public:
  TermCount& operator[](Term t) { return terms_[static_cast<int>(t)]; }
  const TermCount& operator[](Term t) const { return terms_[static_cast<int>(t)]; }
  double bytes() const;
  double flops() const;
  Counts& operator+=(const Counts& other);

 private:
  std::array<TermCount, kNumTerms> terms_{};
};

// Whether to count the experts the tokens really activate (S-MBU/S-MFU) or every expert
// (the dense MBU/MFU shown for contrast: A_l = E and k = E).
enum class Counting { kSparse, kDense };

// A(T) = E·(1 − (1 − k/E)^T): expected distinct experts hit in one MoE layer when T tokens each
// pick k experts independently and uniformly. 0 for T <= 0.
double ExpectedActivatedExperts(const ModelSpec& model, double tokens);

// Σ_l A_l under uniform routing of `tokens` tokens: L_moe·A(T).
double ExpectedActivatedExpertsSum(const ModelSpec& model, double tokens);

// Σ_l A_l from a measured histogram: counts[l][e] = tokens routed to expert e in MoE layer l.
double ActivatedExpertsSum(const std::vector<std::vector<int64_t>>& counts);

// One decode pass over `sequences` sequences whose context lengths (each counting the token being
// decoded) sum to `context_sum` (C), with `activated_experts_sum` = Σ_l A_l.
struct DecodePass {
  double sequences = 0;
  double context_sum = 0;
  double activated_experts_sum = 0;
  // Σ_i min(c_i, w) for the model's sliding window w, when the contexts are known one by one;
  // unset: the contexts are taken as equal, b·min(C/b, w).
  std::optional<double> windowed_context_sum;
};

// One prefill pass: T new tokens over `sequences` sequences with Σ h_i cached tokens, and
// `score_pairs` = Σ_i (n_i·h_i + n_i·(n_i + 1)/2), the query-key pairs causal attention scores.
// `completed_sequences` (b_done) is how many prompts complete in the pass: only those compute
// logits.
struct PrefillPass {
  double sequences = 0;
  double new_tokens = 0;
  double cached_tokens = 0;
  double score_pairs = 0;
  double completed_sequences = 0;
  double activated_experts_sum = 0;
  // The same sums in a sliding-window layer of window w: Σ_i min(n_i + h_i, w) entries and
  // Σ_i Σ_{j=1..n_i} min(h_i + j, w) pairs. Set by the builders below when given a window.
  double windowed_kv_tokens = 0;
  double windowed_score_pairs = 0;

  struct Sequence {
    double new_tokens = 0;     // n_i
    double cached_tokens = 0;  // h_i
    bool completes = true;     // the prompt's last chunk: its logits are computed
  };
  // `window` is the model's sliding window (0: none), for the windowed sums.
  static PrefillPass FromSequences(const std::vector<Sequence>& sequences,
                                   double activated_experts_sum, double window = 0);
  // `sequences` fresh sequences sharing `new_tokens` equally (when only T and b are known), all
  // completing.
  static PrefillPass Fresh(double sequences, double new_tokens, double activated_experts_sum,
                           double window = 0);
};

// Σ_{j=1..n} min(h + j, w): the keys n queries after h cached tokens score in a window of w.
double WindowedScorePairs(double new_tokens, double cached_tokens, double window);

// Attention-score FLOPs per (query, key) pair and layer: GQA/MHA 2·n_h·2·d_h; MLA decode the
// absorbed form 2·n_h·(2·kv_lora_rank + qk_rope); MLA prefill the expanded form
// 2·n_h·(qk_nope + qk_rope + v_head).
enum class PassKind { kPrefill, kDecode };
double ScoreFlopsPerPair(const ModelSpec& model, PassKind kind);

// Linear-layer FLOPs: F_tok = 2·(L·P_attn + L_dense·P_dense + L_moe·(P_router + P_shared +
// k·P_expert)) for each of `tokens` tokens, and F_lm = 2·V·d for each of `logit_positions`
// positions whose logits are computed (METRICS.md v2: the last position of a sequence only).
void AddLinearFlops(const ModelSpec& model, Counting counting, double tokens,
                    double logit_positions, Counts& counts);

// Weight bytes read once per pass: W(A), by term.
void AddWeightBytes(const ModelSpec& model, const Precision& precision,
                    double activated_experts_sum, Counting counting, Counts& counts);

// The MoE blocks alone (router, shared experts, routed experts) of `moe_layers` MoE layers that
// process `tokens` tokens each and activate `activated_experts_sum` experts in all (Σ_l A_l): what
// the expert-parallel workload of moecap-bench runs. AddWeightBytes/AddLinearFlops use it for
// the MoE part of a whole model, so the workload's counts and the model's agree term by term.
Counts CountMoeBlocks(const ModelSpec& model, const Precision& precision, double moe_layers,
                      double tokens, double activated_experts_sum,
                      Counting counting = Counting::kSparse);

// METRICS.md "One measured pass".
Counts CountDecodePass(const ModelSpec& model, const Precision& precision, const DecodePass& pass,
                       Counting counting = Counting::kSparse);
Counts CountPrefillPass(const ModelSpec& model, const Precision& precision, const PrefillPass& pass,
                        Counting counting = Counting::kSparse);
// A mixed pass (chunked prefill: prefill chunks and decode tokens in one forward pass): the
// weights once with the pass's activated experts, the KV bytes and FLOPs of both parts. The
// parts' own activated_experts_sum are ignored.
Counts CountMixedPass(const ModelSpec& model, const Precision& precision, const DecodePass& decode,
                      const PrefillPass& prefill, double activated_experts_sum,
                      Counting counting = Counting::kSparse);

// The parts of one step of a stack of decoder layers beside its MoE blocks (`stack`: the model as
// StackModel gives it): `sequences` sequences of `new_tokens` new tokens each after `cached` cached
// entries each (a decode step at context c: 1 after c − 1). The attention weights' bytes and
// FLOPs, the dense-FFN layers' (where the stack has them), the KV-cache bytes and the score
// FLOPs, and with `lm_head` the LM head's (its weights and
// the logits of each sequence's last position), exactly as CountDecodePass / CountPrefillPass
// count them for those sequences; every other term 0. Additive over disjoint sets of sequences
// but for the weight bytes, which a pass reads once.
Counts CountDecoderStep(const ModelSpec& stack, const Precision& precision, PassKind kind,
                        double sequences, double new_tokens, double cached, bool lm_head);

// The context a workload's decode step is timed at: each sequence's KV entries, the new token
// included, at the mean step P + O/2 (integer division: the workload runs whole entries).
inline int64_t DecodeStepContext(int64_t prompt_len, int64_t output_len) {
  return prompt_len + output_len / 2;
}

// METRICS.md "Bytes" for a batch of B requests of P prompt and O output tokens.
// Prefill of the batch: B fresh sequences of P tokens.
Counts CountPrefillStep(const ModelSpec& model, const Precision& precision, int64_t batch,
                        int64_t prompt_len, double activated_experts_sum,
                        Counting counting = Counting::kSparse);
// The mean decode step: B sequences at mean context c̄ = P + O/2 (in a sliding-window layer the
// mean of min(P + s, w) over s = 1..O−1).
Counts CountMeanDecodeStep(const ModelSpec& model, const Precision& precision, int64_t batch,
                           int64_t prompt_len, int64_t output_len, double activated_experts_sum,
                           Counting counting = Counting::kSparse);

// amount / (seconds · devices · peak_per_device): S-MBU with bytes and bytes/s, S-MFU with FLOPs
// and FLOP/s. Precondition: seconds, devices and peak are positive.
double Utilization(double amount, double seconds, double devices, double peak_per_device);

// The lowest time the hardware allows: max(bytes / (G·BW), flops / (G·FLOPS)).
double RooflineSeconds(double bytes, double flops, double devices, double peak_bandwidth,
                       double peak_flops);

}  // namespace moecap

#endif  // MOECAP_COMMON_METRICS_H_
