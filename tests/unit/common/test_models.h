// Model shapes for the worked examples, written out here (not read from the catalog) so that a
// catalog edit cannot silently change what the hand arithmetic in the tests assumes.
#ifndef MOECAP_TESTS_UNIT_COMMON_TEST_MODELS_H_
#define MOECAP_TESTS_UNIT_COMMON_TEST_MODELS_H_

#include "common/model.h"

namespace moecap::testing {

// METRICS.md's toy model: d=8, V=10, L=2, L_dense=0, E=4, k=2, f_e=4, S=0, GQA n_h=2 n_kv=1 d_h=4.
inline ModelSpec ToyModel() {
  ModelSpec m;
  m.name = "toy";
  m.layers = 2;
  m.hidden_size = 8;
  m.vocab_size = 10;
  m.experts = 4;
  m.experts_per_token = 2;
  m.expert_ffn_size = 4;
  m.gqa = {.heads = 2, .kv_heads = 1, .head_dim = 4};
  return m;
}

// Mixtral-8x7B: GQA, every layer MoE, no shared expert.
inline ModelSpec Mixtral8x7b() {
  ModelSpec m;
  m.name = "mixtral-8x7b";
  m.layers = 32;
  m.hidden_size = 4096;
  m.vocab_size = 32000;
  m.experts = 8;
  m.experts_per_token = 2;
  m.expert_ffn_size = 14336;
  m.gqa = {.heads = 32, .kv_heads = 8, .head_dim = 128};
  return m;
}

// DeepSeek-V3: MLA, 3 dense layers first, 1 shared expert, 256 routed experts, top-8.
inline ModelSpec DeepSeekV3() {
  ModelSpec m;
  m.name = "deepseek-v3";
  m.layers = 61;
  m.dense_layers = 3;
  m.dense_ffn_size = 18432;
  m.hidden_size = 7168;
  m.vocab_size = 129280;
  m.attention = AttentionKind::kMla;
  m.mla = {.heads = 128,
           .q_lora_rank = 1536,
           .kv_lora_rank = 512,
           .qk_nope_head_dim = 128,
           .qk_rope_head_dim = 64,
           .v_head_dim = 128};
  m.experts = 256;
  m.experts_per_token = 8;
  m.expert_ffn_size = 2048;
  m.shared_experts = 1;
  m.shared_expert_ffn_size = 2048;
  m.router_scoring = RouterScoring::kSigmoid;
  return m;
}

// Qwen3-30B-A3B: GQA whose n_h·d_h (4096) differs from d (2048), 128 experts, top-8.
inline ModelSpec Qwen3_30bA3b() {
  ModelSpec m;
  m.name = "qwen3-30b-a3b";
  m.layers = 48;
  m.hidden_size = 2048;
  m.vocab_size = 151936;
  m.experts = 128;
  m.experts_per_token = 8;
  m.expert_ffn_size = 768;
  m.gqa = {.heads = 32, .kv_heads = 4, .head_dim = 128};
  return m;
}

}  // namespace moecap::testing

#endif  // MOECAP_TESTS_UNIT_COMMON_TEST_MODELS_H_
