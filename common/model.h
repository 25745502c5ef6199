// The shape of a Mixture-of-Experts transformer, as METRICS.md's notation names it, and the
// parameter counts derived from it (matrices only; norms and biases are not counted).
#ifndef MOECAP_COMMON_MODEL_H_
#define MOECAP_COMMON_MODEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/dtype.h"

namespace moecap {

enum class AttentionKind { kGqa, kMla };

// Grouped-query (or multi-head, when kv_heads == heads) attention.
struct GqaAttention {
  int64_t heads = 0;     // n_h, query heads
  int64_t kv_heads = 0;  // n_kv
  int64_t head_dim = 0;  // d_h
};

// Multi-head latent attention (DeepSeek-V2/V3).
struct MlaAttention {
  int64_t heads = 0;         // n_h
  int64_t q_lora_rank = 0;   // 0 means none: queries are projected directly from d
  int64_t kv_lora_rank = 0;  // compressed KV width
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
};

// How the router turns logits into expert weights (the workload needs it; the counts do not).
enum class RouterScoring { kSoftmax, kSigmoid };

struct ModelSpec {
  std::string name;          // canonical catalog id, lower case ("mixtral-8x7b")
  std::string display_name;  // as its authors spell it ("Mixtral-8x7B")
  std::vector<std::string> aliases;
  std::string source;  // where the figures come from (the published config)

  int64_t layers = 0;          // L, all decoder layers
  int64_t dense_layers = 0;    // L_dense, the first layers, with a dense FFN
  int64_t hidden_size = 0;     // d
  int64_t vocab_size = 0;      // V
  int64_t dense_ffn_size = 0;  // f_dense (only used when dense_layers > 0)

  AttentionKind attention = AttentionKind::kGqa;
  GqaAttention gqa;
  MlaAttention mla;

  int64_t experts = 0;                 // E, routed experts per MoE layer
  int64_t experts_per_token = 0;       // k
  int64_t expert_ffn_size = 0;         // f_e
  int64_t shared_experts = 0;          // S
  int64_t shared_expert_ffn_size = 0;  // f_s, per shared expert
  RouterScoring router_scoring = RouterScoring::kSoftmax;
  bool normalize_topk = true;  // renormalise the k selected weights to sum to 1

  // Interleaved MoE (Llama-4): with moe_layer_step s > 1, layer i is an MoE layer when
  // (i + 1) % s == 0 and the others have a dense FFN; dense_layers then counts those. The counts
  // need only L_dense and L_moe; the step says where they sit.
  int64_t moe_layer_step = 1;

  // Sliding-window attention (gpt-oss): `sliding_window_layers` of the L layers keep and read at
  // most `sliding_window` KV entries per sequence (METRICS.md "Bytes"). 0 and 0: none.
  int64_t sliding_window = 0;
  int64_t sliding_window_layers = 0;

  // The checkpoint's native precisions (METRICS.md v2 "Precisions"); unset parts take the run's
  // dtype. gpt-oss: experts mxfp4, the rest bf16; DeepSeek-V3: fp8 block-128, LM head bf16.
  std::optional<Dtype> expert_dtype;     // routed and shared experts (p_e)
  std::optional<Dtype> attention_dtype;  // attention, router, dense FFN (p_a)
  std::optional<Dtype> lm_head_dtype;    // p_lm

  int64_t MoeLayers() const { return layers - dense_layers; }  // L_moe
  int64_t FullAttentionLayers() const { return layers - sliding_window_layers; }
  int64_t QueryKeyHeadDim() const;  // d_qk
  int64_t ValueHeadDim() const;     // d_v
  int64_t AttentionHeads() const;   // n_h
};

// Checks that every field is in range and consistent (k <= E, dense_layers <= layers, ...).
// Errors name the field: "model 'x': field 'moe.experts_per_token': 9 exceeds moe.experts (8)".
absl::Status ValidateModel(const ModelSpec& model);

// The model with d, f_e, f_s and f_dense divided by `scale` (each at least 1), and the attention
// heads (query and KV; MLA's and its LoRA ranks) alike, head widths kept; experts, top-k and shared
// counts unchanged: what a scaled-down workload runs. The name gets a "@1/scale" suffix when
// scale > 1.
ModelSpec ScaledModel(const ModelSpec& model, int64_t scale);

// Whether decoder layer `layer` (0-based) of `model` keeps a sliding window: its
// sliding_window_layers S spread evenly over its L layers, layer i sliding when
// ceil((i + 1)·S / L) > ceil(i·S / L) (gpt-oss: the even layers, as its layer_types say).
bool IsSlidingLayer(const ModelSpec& model, int64_t layer);

// Whether layer `layer` (0-based) of `model` has a dense FFN in place of an MoE block: the first
// dense_layers (DeepSeek's first_k_dense_replace), or, with moe_layer_step s > 1, those with
// (layer + 1) % s != 0 (Llama-4's interleaving).
bool IsDenseModelLayer(const ModelSpec& model, int64_t layer);

// Which layers of a workload's stack of `moe_layers` MoE layers and `dense_layers` dense ones
// (dense_layers <= model.dense_layers) are dense, in the order the model has them: its layers
// are walked from the first, each taken while its kind's count is not used up (DeepSeek-V3 with
// 1 dense and 2 MoE: dense, MoE, MoE; Llama-4 with 1 and 2: dense, MoE, MoE). Entry i: stack
// layer i.
std::vector<bool> StackDenseLayers(const ModelSpec& model, int64_t moe_layers,
                                   int64_t dense_layers);

// The model as a workload's stack of `moe_layers` MoE layers and `dense_layers` dense-FFN layers
// runs it: L = moe_layers + dense_layers, L_dense = dense_layers, the sliding ones those
// IsSlidingLayer picks among the first L. Counting a pass of it (CountPrefillStep,
// CountMeanDecodeStep) gives what the stack must move and compute.
ModelSpec StackModel(const ModelSpec& model, int64_t moe_layers, int64_t dense_layers = 0);

// Parameter counts of METRICS.md, "Parameters counted".
int64_t AttentionParamsPerLayer(const ModelSpec& model);  // P_attn
int64_t RouterParamsPerLayer(const ModelSpec& model);     // P_router = d·E
int64_t ParamsPerExpert(const ModelSpec& model);          // P_expert = 3·d·f_e
int64_t SharedParamsPerLayer(const ModelSpec& model);     // P_shared = S·3·d·f_s
int64_t DenseFfnParamsPerLayer(const ModelSpec& model);   // P_dense = 3·d·f_dense
int64_t LmHeadParams(const ModelSpec& model);             // V·d

// KV-cache elements stored per token per layer: 2·n_kv·d_h (GQA) or kv_lora_rank + qk_rope (MLA).
int64_t KvElementsPerTokenPerLayer(const ModelSpec& model);

// All counted parameters with every expert (plus the embedding table, V·d, which a step does not
// read but which published totals include); for checking catalog entries against model cards.
int64_t TotalParams(const ModelSpec& model);
// Parameters one token uses: attention, router, dense and shared FFN, k experts, LM head,
// embedding (the "active parameters" of model cards).
int64_t ActiveParamsPerToken(const ModelSpec& model);

}  // namespace moecap

#endif  // MOECAP_COMMON_MODEL_H_
