// Reads a Hugging Face `config.json`, as the model's repository publishes it, into a ModelSpec
// (METRICS.md's notation), and writes a ModelSpec back out as the catalog YAML that
// ParseModelYaml reads, so that a user can start a catalog entry from a config.
#ifndef MOECAP_COMMON_HF_CONFIG_H_
#define MOECAP_COMMON_HF_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/model.h"

namespace moecap {

// Maps the config of one of these MoE families to a ModelSpec that passes ValidateModel:
//   Mixtral (MixtralForCausalLM), Qwen2-MoE / Qwen1.5-MoE (Qwen2MoeForCausalLM), Qwen3-MoE
//   (Qwen3MoeForCausalLM), DeepSeek-V2 (DeepseekV2ForCausalLM), DeepSeek-V3 and Kimi-K2
//   (DeepseekV3ForCausalLM), gpt-oss (GptOssForCausalLM), GLM-4.5 (Glm4MoeForCausalLM), Llama-4
//   (Llama4ForConditionalGeneration, whose text_config is read, and Llama4ForCausalLM) and OLMoE
//   (OlmoeForCausalLM).
// Each field is read the way the family's transformers and vLLM model code reads it (which layers
// are MoE layers, the shared experts, the router's scoring and renormalisation). The native
// precisions come from `quantization_config` only (fp8 with 128×128 blocks: experts and attention
// fp8_block128, LM head bf16; mxfp4: experts mxfp4, the rest bf16); `torch_dtype` is the type the
// weights are loaded in, not the checkpoint's, and is ignored. The display name is `_name_or_path`
// when the file has one, else the architecture; the name is it normalised ("mixtralforcausallm");
// `source` is `origin`. Not counted, as the catalog does not count them: vision towers (Llama-4),
// MTP layers (DeepSeek-V3, GLM-4.5); Llama-4's chunked local attention counts as full attention.
// Errors are InvalidArgument and start with `origin`: a text that is not JSON (a UTF-8 BOM is
// skipped), a JSON that is not a model config, an architecture without experts, an MoE
// architecture moecap does not read (the message lists those it does), a quantization it cannot
// map, and a missing or ill-typed field, by its path in the file ("config.json: field
// 'num_experts_per_tok': expected an integer, got \"8\"").
absl::StatusOr<ModelSpec> ModelFromHfConfig(absl::string_view json_text, absl::string_view origin);

// The catalog YAML of `model` (docs/catalog.md): ParseModelYaml reads it back to an equal spec
// when `model.name` is normalised (NormalizeName) and the spec is valid. Optional keys
// (dense_ffn_size, shared_expert_ffn_size, attention.sliding_window(_layers), moe.layer_step,
// precision) are written only when set.
std::string ModelYaml(const ModelSpec& model);

}  // namespace moecap

#endif  // MOECAP_COMMON_HF_CONFIG_H_
