// Hugging Face config.json to ModelSpec, family by family as each one's transformers and vLLM
// model code reads its config, and ModelSpec to catalog YAML.
#include "common/hf_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/catalog.h"
#include "common/dtype.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace moecap {
namespace {

using json = nlohmann::json;

// Every size and count read is at most this (real configs stay below 2^20); it keeps the values
// far from int64 overflow and catches a garbled file.
constexpr int64_t kMaxValue = std::numeric_limits<int32_t>::max();
// Layers are walked one by one (which are MoE layers, which slide); no model has this many.
constexpr int64_t kMaxLayers = 100000;

enum class Family {
  kMixtral,
  kQwen2Moe,
  kQwen3Moe,
  kDeepseekV2,
  kDeepseekV3,  // DeepSeek-V3/R1 and Kimi-K2 (model_type kimi_k2, same architecture)
  kGptOss,
  kGlm4Moe,
  kLlama4,
  kOlmoe,
};

struct Architecture {
  absl::string_view name;        // as `architectures` spells it
  absl::string_view model_type;  // as `model_type` spells it
  Family family;
};

constexpr Architecture kArchitectures[] = {
    {"MixtralForCausalLM", "mixtral", Family::kMixtral},
    {"Qwen2MoeForCausalLM", "qwen2_moe", Family::kQwen2Moe},
    {"Qwen3MoeForCausalLM", "qwen3_moe", Family::kQwen3Moe},
    {"DeepseekV2ForCausalLM", "deepseek_v2", Family::kDeepseekV2},
    {"DeepseekV3ForCausalLM", "deepseek_v3", Family::kDeepseekV3},
    {"DeepseekV3ForCausalLM", "kimi_k2", Family::kDeepseekV3},
    {"GptOssForCausalLM", "gpt_oss", Family::kGptOss},
    {"Glm4MoeForCausalLM", "glm4_moe", Family::kGlm4Moe},
    {"Llama4ForConditionalGeneration", "llama4", Family::kLlama4},
    {"Llama4ForCausalLM", "llama4_text", Family::kLlama4},
    {"OlmoeForCausalLM", "olmoe", Family::kOlmoe},
};

std::string SupportedArchitectures() {
  std::vector<std::string> names;
  for (const Architecture& a : kArchitectures) {
    if (names.empty() || names.back() != a.name) names.emplace_back(a.name);
  }
  return absl::StrJoin(names, ", ");
}

absl::Status Refuse(absl::string_view origin, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(origin, ": ", reason));
}

// At most `limit` bytes of `text`, not cutting a UTF-8 sequence.
std::string Clip(absl::string_view text, size_t limit) {
  if (text.size() <= limit) return std::string(text);
  size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return absl::StrCat(text.substr(0, end), "...");
}

// A value as an error message shows it: scalars as JSON spells them, containers by kind (a dump
// of a large or deeply nested one would bury the message).
std::string Describe(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case json::value_t::string:
      return absl::StrCat("\"", Clip(v.get_ref<const std::string&>(), 40), "\"");
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return v.dump();
    case json::value_t::object:
      return "an object";
    case json::value_t::array: {
      // A short list of scalars in full ("[64, 64]"), any other by kind.
      if (v.size() > 8) return "a list";
      std::vector<std::string> items;
      for (const json& item : v) {
        if (item.is_structured()) return "a list";
        items.push_back(Describe(item));
      }
      return absl::StrCat("[", absl::StrJoin(items, ", "), "]");
    }
    default:
      return "a value";
  }
}

// Reads the fields of one JSON object; every error names the origin and the field's path in the
// file ("config.json: field 'text_config.num_local_experts': ..."). Absent and null fields are
// alike: a config writes null for "none" (DeepSeek-V2-Lite's q_lora_rank).
class ConfigReader {
 public:
  ConfigReader(const json& object, std::string origin, std::string prefix, std::string what)
      : object_(object),
        origin_(std::move(origin)),
        prefix_(std::move(prefix)),
        what_(std::move(what)) {}

  std::string Path(absl::string_view key) const {
    return prefix_.empty() ? std::string(key) : absl::StrCat(prefix_, ".", key);
  }
  absl::Status Error(absl::string_view key, absl::string_view reason) const {
    return absl::InvalidArgumentError(absl::StrCat(origin_, ": field '", Path(key), "': ", reason));
  }
  const std::string& origin() const { return origin_; }

  // The value, or nullptr when the key is absent or null.
  const json* Find(absl::string_view key) const {
    const auto it = object_.find(std::string(key));
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  bool Has(absl::string_view key) const { return Find(key) != nullptr; }
  bool IsNull(absl::string_view key) const {
    const auto it = object_.find(std::string(key));
    return it != object_.end() && it->is_null();
  }

  // A non-negative integer (at most kMaxValue); absent or null leaves `out` as it is.
  absl::Status Int(absl::string_view key, bool required, int64_t* out) const {
    const json* v = nullptr;
    MOECAP_RETURN_IF_ERROR(Get(key, required, &v));
    if (v == nullptr) return absl::OkStatus();
    if (v->is_number_unsigned()) {
      const uint64_t u = v->get<uint64_t>();
      if (u > static_cast<uint64_t>(kMaxValue)) {
        return Error(key, absl::StrCat(u, " is out of range (at most ", kMaxValue, ")"));
      }
      *out = static_cast<int64_t>(u);
      return absl::OkStatus();
    }
    if (v->is_number_integer()) {
      const int64_t i = v->get<int64_t>();
      if (i < 0) return Error(key, absl::StrCat("expected a non-negative integer, got ", i));
      if (i > kMaxValue) {
        return Error(key, absl::StrCat(i, " is out of range (at most ", kMaxValue, ")"));
      }
      *out = i;
      return absl::OkStatus();
    }
    return Error(key, absl::StrCat("expected an integer, got ", Describe(*v)));
  }
  // An integer above 0.
  absl::Status Positive(absl::string_view key, bool required, int64_t* out) const {
    int64_t value = *out;
    MOECAP_RETURN_IF_ERROR(Int(key, required, &value));
    if (Has(key) && value == 0) return Error(key, "must be positive, got 0");
    *out = value;
    return absl::OkStatus();
  }
  absl::Status Bool(absl::string_view key, bool* out) const {
    const json* v = nullptr;
    MOECAP_RETURN_IF_ERROR(Get(key, false, &v));
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_boolean())
      return Error(key, absl::StrCat("expected true or false, got ", Describe(*v)));
    *out = v->get<bool>();
    return absl::OkStatus();
  }
  absl::Status String(absl::string_view key, bool required, std::string* out) const {
    const json* v = nullptr;
    MOECAP_RETURN_IF_ERROR(Get(key, required, &v));
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_string()) return Error(key, absl::StrCat("expected a string, got ", Describe(*v)));
    *out = v->get<std::string>();
    return absl::OkStatus();
  }
  absl::Status StringList(absl::string_view key,
                          std::optional<std::vector<std::string>>* out) const {
    const json* v = nullptr;
    MOECAP_RETURN_IF_ERROR(Get(key, false, &v));
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_array()) {
      return Error(key, absl::StrCat("expected a list of strings, got ", Describe(*v)));
    }
    out->emplace();
    for (const json& item : *v) {
      if (!item.is_string()) {
        return Error(
            key, absl::StrCat("expected a list of strings, got ", Describe(item), " in the list"));
      }
      (*out)->push_back(item.get<std::string>());
    }
    return absl::OkStatus();
  }
  // A list of layer indices, each below `layers`.
  absl::Status LayerList(absl::string_view key, int64_t layers,
                         std::optional<std::set<int64_t>>* out) const {
    const json* v = nullptr;
    MOECAP_RETURN_IF_ERROR(Get(key, false, &v));
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_array()) {
      return Error(key, absl::StrCat("expected a list of layer indices, got ", Describe(*v)));
    }
    out->emplace();
    for (const json& item : *v) {
      if (!item.is_number_integer()) {
        return Error(key, absl::StrCat("expected a list of layer indices (integers), got ",
                                       Describe(item), " in the list"));
      }
      const bool in_range = item.is_number_unsigned()
                                ? item.get<uint64_t>() < uint64_t(layers)
                                : item.get<int64_t>() >= 0 && item.get<int64_t>() < layers;
      if (!in_range) {
        return Error(key, absl::StrCat("layer ", item.dump(), " is not between 0 and ", layers - 1,
                                       " (num_hidden_layers is ", layers, ")"));
      }
      (*out)->insert(item.get<int64_t>());
    }
    return absl::OkStatus();
  }
  // A nested object; nullopt when absent or null.
  absl::StatusOr<std::optional<ConfigReader>> Child(absl::string_view key) const {
    const json* v = Find(key);
    if (v == nullptr) return std::optional<ConfigReader>();
    if (!v->is_object()) return Error(key, absl::StrCat("expected an object, got ", Describe(*v)));
    return std::optional<ConfigReader>(ConfigReader(*v, origin_, Path(key), what_));
  }

 private:
  absl::Status Get(absl::string_view key, bool required, const json** out) const {
    *out = Find(key);
    if (*out != nullptr || !required) return absl::OkStatus();
    if (object_.contains(std::string(key))) {
      return Error(key, absl::StrCat("required for ", what_, " but null"));
    }
    return Error(key, absl::StrCat("required for ", what_, " but missing"));
  }

  const json& object_;
  std::string origin_;
  std::string prefix_;
  std::string what_;  // the architecture, for "required for X" messages
};

absl::Status NoExperts(absl::string_view origin, absl::string_view architecture,
                       absl::string_view why) {
  return Refuse(origin, absl::StrCat("'", architecture, "' has no experts", why,
                                     ": moecap measures MoE models"));
}

// Hidden size, layers, vocabulary and query heads: every family has them under these names.
absl::Status ReadCommon(const ConfigReader& r, ModelSpec* m, int64_t* heads) {
  MOECAP_RETURN_IF_ERROR(r.Positive("hidden_size", true, &m->hidden_size));
  MOECAP_RETURN_IF_ERROR(r.Positive("num_hidden_layers", true, &m->layers));
  if (m->layers > kMaxLayers) {
    return r.Error("num_hidden_layers",
                   absl::StrCat(m->layers, " is more than any model has (at most ", kMaxLayers,
                                "); check the value"));
  }
  MOECAP_RETURN_IF_ERROR(r.Positive("vocab_size", true, &m->vocab_size));
  return r.Positive("num_attention_heads", true, heads);
}

// GQA/MHA: num_key_value_heads defaults to the query heads (MHA) and head_dim to
// hidden_size / num_attention_heads, as in every family's config class.
absl::Status ReadGqa(const ConfigReader& r, int64_t heads, ModelSpec* m) {
  m->attention = AttentionKind::kGqa;
  m->gqa.heads = heads;
  m->gqa.kv_heads = heads;
  MOECAP_RETURN_IF_ERROR(r.Positive("num_key_value_heads", false, &m->gqa.kv_heads));
  if (heads % m->gqa.kv_heads != 0) {
    return r.Error(
        "num_key_value_heads",
        absl::StrCat(m->gqa.kv_heads, " does not divide num_attention_heads (", heads, ")"));
  }
  if (r.Has("head_dim")) return r.Positive("head_dim", true, &m->gqa.head_dim);
  if (m->hidden_size % heads != 0) {
    return r.Error("head_dim", absl::StrCat("missing, and hidden_size (", m->hidden_size,
                                            ") is not a multiple of num_attention_heads (", heads,
                                            "): give head_dim"));
  }
  m->gqa.head_dim = m->hidden_size / heads;
  return absl::OkStatus();
}

// MLA (DeepSeek-V2/V3, Kimi-K2): q_lora_rank null means queries are projected straight from d.
absl::Status ReadMla(const ConfigReader& r, int64_t heads, ModelSpec* m) {
  m->attention = AttentionKind::kMla;
  m->mla.heads = heads;
  MOECAP_RETURN_IF_ERROR(r.Int("q_lora_rank", false, &m->mla.q_lora_rank));
  MOECAP_RETURN_IF_ERROR(r.Positive("kv_lora_rank", true, &m->mla.kv_lora_rank));
  MOECAP_RETURN_IF_ERROR(r.Positive("qk_nope_head_dim", true, &m->mla.qk_nope_head_dim));
  MOECAP_RETURN_IF_ERROR(r.Positive("qk_rope_head_dim", true, &m->mla.qk_rope_head_dim));
  return r.Positive("v_head_dim", true, &m->mla.v_head_dim);
}

// The routed experts: their count (0 or null: a dense model of an MoE family), the experts per
// token (`k_keys` in order of preference; where a file has two, they must agree) and the
// expert FFN size.
absl::Status ReadExperts(const ConfigReader& r, absl::string_view architecture,
                         absl::string_view experts_key, std::vector<absl::string_view> k_keys,
                         absl::string_view ffn_key, ModelSpec* m) {
  const bool null_experts = r.IsNull(experts_key);
  if (!null_experts) MOECAP_RETURN_IF_ERROR(r.Int(experts_key, true, &m->experts));
  if (m->experts == 0) {
    return NoExperts(
        r.origin(), architecture,
        absl::StrCat(" (", r.Path(experts_key), " is ", null_experts ? "null" : "0", ")"));
  }
  absl::string_view k_key;
  for (absl::string_view key : k_keys) {
    if (!r.Has(key)) continue;
    int64_t k = 0;
    MOECAP_RETURN_IF_ERROR(r.Positive(key, true, &k));
    if (!k_key.empty() && k != m->experts_per_token) {
      return r.Error(
          key, absl::StrCat(k, " disagrees with ", r.Path(k_key), " (", m->experts_per_token, ")"));
    }
    if (k_key.empty()) {
      k_key = key;
      m->experts_per_token = k;
    }
  }
  if (k_key.empty()) MOECAP_RETURN_IF_ERROR(r.Int(k_keys.front(), true, &m->experts_per_token));
  if (m->experts_per_token > m->experts) {
    return r.Error(k_key, absl::StrCat(m->experts_per_token, " exceeds ", r.Path(experts_key), " (",
                                       m->experts, ")"));
  }
  return r.Positive(ffn_key, true, &m->expert_ffn_size);
}

// Shared experts counted as METRICS.md does (S of f_s each): DeepSeek and GLM-4.5 run their
// n_shared_experts as one MLP of n_shared_experts·moe_intermediate_size, which has the same
// parameters.
absl::Status ReadSharedExperts(const ConfigReader& r, ModelSpec* m) {
  MOECAP_RETURN_IF_ERROR(r.Int("n_shared_experts", true, &m->shared_experts));
  if (m->shared_experts > 0) m->shared_expert_ffn_size = m->expert_ffn_size;
  return absl::OkStatus();
}

absl::Status ReadRouter(const ConfigReader& r, RouterScoring default_scoring, bool default_norm,
                        ModelSpec* m) {
  std::string scoring = default_scoring == RouterScoring::kSigmoid ? "sigmoid" : "softmax";
  MOECAP_RETURN_IF_ERROR(r.String("scoring_func", false, &scoring));
  if (scoring == "softmax") {
    m->router_scoring = RouterScoring::kSoftmax;
  } else if (scoring == "sigmoid") {
    m->router_scoring = RouterScoring::kSigmoid;
  } else {
    return r.Error("scoring_func", absl::StrCat("unknown scoring function \"", Clip(scoring, 40),
                                                "\": expected softmax or sigmoid"));
  }
  m->normalize_topk = default_norm;
  return r.Bool("norm_topk_prob", &m->normalize_topk);
}

// Which of the layers are MoE layers, as the family's model code decides.
using MoeMask = std::vector<bool>;

// Sets dense_layers and moe_layer_step from the MoE layers. The counts need only how many layers
// are dense; the step says where they sit when the MoE layers are every s-th one (Llama-4's
// interleave, Qwen's decoder_sparse_step). Any other placement (Qwen's mlp_only_layers) is kept as
// a count, with step 1.
absl::Status SetLayerLayout(const ConfigReader& r, absl::string_view architecture,
                            absl::string_view fields, const MoeMask& moe, ModelSpec* m) {
  int64_t first_moe = -1;
  int64_t moe_layers = 0;
  for (int64_t i = 0; i < m->layers; ++i) {
    if (!moe[i]) continue;
    ++moe_layers;
    if (first_moe < 0) first_moe = i;
  }
  if (moe_layers == 0) {
    return NoExperts(r.origin(), architecture,
                     absl::StrCat(" in any of its ", m->layers, " layers (", fields, ")"));
  }
  m->dense_layers = m->layers - moe_layers;
  m->moe_layer_step = 1;
  const int64_t step = first_moe + 1;
  if (step > 1) {
    bool every_step = true;
    for (int64_t i = 0; i < m->layers && every_step; ++i)
      every_step = moe[i] == ((i + 1) % step == 0);
    if (every_step) m->moe_layer_step = step;
  }
  return absl::OkStatus();
}

// The dense FFN size, needed when some layers are dense.
absl::Status ReadDenseFfn(const ConfigReader& r, absl::string_view key, ModelSpec* m) {
  if (m->dense_layers == 0) return absl::OkStatus();
  return r.Positive(key, true, &m->dense_ffn_size);
}

// `layer_types` (transformers' per-layer attention kinds): how many are "sliding_attention".
absl::Status CountSlidingLayers(const ConfigReader& r, const std::vector<std::string>& types,
                                ModelSpec* m, int64_t* count) {
  if (static_cast<int64_t>(types.size()) != m->layers) {
    return r.Error("layer_types", absl::StrCat("has ", types.size(), " entries, one per layer of ",
                                               m->layers, " (num_hidden_layers)"));
  }
  *count = 0;
  for (const std::string& t : types) *count += t == "sliding_attention" ? 1 : 0;
  return absl::OkStatus();
}

// A window on `layers` of the layers; no window, or no layer with one, is none (ValidateModel:
// both or neither).
void SetSlidingWindow(int64_t window, int64_t layers, ModelSpec* m) {
  if (window > 0 && layers > 0) {
    m->sliding_window = window;
    m->sliding_window_layers = layers;
  }
}

absl::Status ReadMixtral(const ConfigReader& r, absl::string_view arch, int64_t heads,
                         ModelSpec* m) {
  MOECAP_RETURN_IF_ERROR(ReadGqa(r, heads, m));
  MOECAP_RETURN_IF_ERROR(
      ReadExperts(r, arch, "num_local_experts", {"num_experts_per_tok"}, "intermediate_size", m));
  // Softmax over all experts, then the top-k weights renormalised (MixtralSparseMoeBlock).
  m->router_scoring = RouterScoring::kSoftmax;
  m->normalize_topk = true;
  MOECAP_RETURN_IF_ERROR(SetLayerLayout(r, arch, "", MoeMask(m->layers, true), m));
  // A Mistral-style window (null in the published Mixtral files) applies to every layer.
  int64_t window = 0;
  MOECAP_RETURN_IF_ERROR(r.Int("sliding_window", false, &window));
  std::optional<std::vector<std::string>> types;
  MOECAP_RETURN_IF_ERROR(r.StringList("layer_types", &types));
  int64_t sliding = m->layers;
  if (types) MOECAP_RETURN_IF_ERROR(CountSlidingLayers(r, *types, m, &sliding));
  SetSlidingWindow(window, sliding, m);
  return absl::OkStatus();
}

// Qwen2-MoE (and Qwen1.5-MoE) and Qwen3-MoE: layer i is an MoE layer when it is not in
// mlp_only_layers and (i + 1) % decoder_sparse_step == 0; the others have a dense MLP of
// intermediate_size. Qwen2-MoE adds one shared expert of shared_expert_intermediate_size (gated
// by a d-vector, not counted); Qwen3-MoE has none.
absl::Status ReadQwenMoe(const ConfigReader& r, absl::string_view arch, int64_t heads,
                         bool shared_expert, ModelSpec* m) {
  MOECAP_RETURN_IF_ERROR(ReadGqa(r, heads, m));
  MOECAP_RETURN_IF_ERROR(
      ReadExperts(r, arch, "num_experts", {"num_experts_per_tok"}, "moe_intermediate_size", m));
  if (shared_expert) {
    int64_t shared_ffn = 0;
    MOECAP_RETURN_IF_ERROR(r.Int("shared_expert_intermediate_size", true, &shared_ffn));
    if (shared_ffn > 0) {
      m->shared_experts = 1;
      m->shared_expert_ffn_size = shared_ffn;
    }
  }
  MOECAP_RETURN_IF_ERROR(ReadRouter(r, RouterScoring::kSoftmax, /*default_norm=*/false, m));
  int64_t step = 1;
  MOECAP_RETURN_IF_ERROR(r.Positive("decoder_sparse_step", false, &step));
  std::optional<std::set<int64_t>> mlp_only;
  MOECAP_RETURN_IF_ERROR(r.LayerList("mlp_only_layers", m->layers, &mlp_only));
  MoeMask moe(m->layers);
  for (int64_t i = 0; i < m->layers; ++i) {
    moe[i] = (!mlp_only || !mlp_only->contains(i)) && (i + 1) % step == 0;
  }
  MOECAP_RETURN_IF_ERROR(
      SetLayerLayout(r, arch, "decoder_sparse_step and mlp_only_layers leave none", moe, m));
  MOECAP_RETURN_IF_ERROR(ReadDenseFfn(r, "intermediate_size", m));
  // The window applies only with use_sliding_window (false in every published Qwen MoE file);
  // which layers then slide has changed between transformers versions, so only an explicit
  // layer_types says it.
  bool use_sliding_window = false;
  MOECAP_RETURN_IF_ERROR(r.Bool("use_sliding_window", &use_sliding_window));
  if (!use_sliding_window) return absl::OkStatus();
  std::optional<std::vector<std::string>> types;
  MOECAP_RETURN_IF_ERROR(r.StringList("layer_types", &types));
  if (!types) {
    return r.Error("use_sliding_window",
                   "true, but without layer_types the layers that slide depend on the "
                   "transformers version; add layer_types, or describe the model in a catalog "
                   "YAML (see docs/catalog.md)");
  }
  int64_t window = 0, sliding = 0;
  MOECAP_RETURN_IF_ERROR(r.Positive("sliding_window", true, &window));
  MOECAP_RETURN_IF_ERROR(CountSlidingLayers(r, *types, m, &sliding));
  SetSlidingWindow(window, sliding, m);
  return absl::OkStatus();
}

// DeepSeek-V2/V3 and Kimi-K2: layer i is an MoE layer when i >= first_k_dense_replace and
// i % moe_layer_freq == 0; the first layers have a dense MLP of intermediate_size. The V2 remote
// code defaults to a softmax router without renormalisation, V3's to sigmoid with it.
absl::Status ReadDeepseek(const ConfigReader& r, absl::string_view arch, int64_t heads, bool v3,
                          ModelSpec* m) {
  MOECAP_RETURN_IF_ERROR(ReadMla(r, heads, m));
  MOECAP_RETURN_IF_ERROR(ReadExperts(r, arch, "n_routed_experts", {"num_experts_per_tok"},
                                     "moe_intermediate_size", m));
  MOECAP_RETURN_IF_ERROR(ReadSharedExperts(r, m));
  MOECAP_RETURN_IF_ERROR(ReadRouter(r, v3 ? RouterScoring::kSigmoid : RouterScoring::kSoftmax,
                                    /*default_norm=*/v3, m));
  int64_t first_dense = 0, freq = 1;
  MOECAP_RETURN_IF_ERROR(r.Int("first_k_dense_replace", true, &first_dense));
  MOECAP_RETURN_IF_ERROR(r.Positive("moe_layer_freq", false, &freq));
  MoeMask moe(m->layers);
  for (int64_t i = 0; i < m->layers; ++i) moe[i] = i >= first_dense && i % freq == 0;
  MOECAP_RETURN_IF_ERROR(
      SetLayerLayout(r, arch, absl::StrCat("first_k_dense_replace is ", first_dense), moe, m));
  return ReadDenseFfn(r, "intermediate_size", m);
}

// gpt-oss: softmax over the top-k logits (the same weights as a softmax renormalised over the
// top k); `layer_types` names the sliding layers (its default alternates, sliding first).
absl::Status ReadGptOss(const ConfigReader& r, absl::string_view arch, int64_t heads,
                        ModelSpec* m) {
  MOECAP_RETURN_IF_ERROR(ReadGqa(r, heads, m));
  // The published files carry both the transformers name and the original one.
  MOECAP_RETURN_IF_ERROR(ReadExperts(r, arch, "num_local_experts",
                                     {"num_experts_per_tok", "experts_per_token"},
                                     "intermediate_size", m));
  m->router_scoring = RouterScoring::kSoftmax;
  m->normalize_topk = true;
  MOECAP_RETURN_IF_ERROR(SetLayerLayout(r, arch, "", MoeMask(m->layers, true), m));
  int64_t window = 0;
  MOECAP_RETURN_IF_ERROR(r.Int("sliding_window", false, &window));
  std::optional<std::vector<std::string>> types;
  MOECAP_RETURN_IF_ERROR(r.StringList("layer_types", &types));
  int64_t sliding = (m->layers + 1) / 2;  // layers 0, 2, 4, ...
  if (types) MOECAP_RETURN_IF_ERROR(CountSlidingLayers(r, *types, m, &sliding));
  SetSlidingWindow(window, sliding, m);
  return absl::OkStatus();
}

// GLM-4.5 (Glm4MoeForCausalLM): DeepSeek-V3's MoE (sigmoid router with a correction bias,
// n_shared_experts of moe_intermediate_size, first_k_dense_replace dense layers) under GQA
// attention. Its partial rotary factor changes no count; the MTP layer
// (num_nextn_predict_layers) is not one of num_hidden_layers and is not counted.
absl::Status ReadGlm4Moe(const ConfigReader& r, absl::string_view arch, int64_t heads,
                         ModelSpec* m) {
  MOECAP_RETURN_IF_ERROR(ReadGqa(r, heads, m));
  MOECAP_RETURN_IF_ERROR(ReadExperts(r, arch, "n_routed_experts", {"num_experts_per_tok"},
                                     "moe_intermediate_size", m));
  MOECAP_RETURN_IF_ERROR(ReadSharedExperts(r, m));
  m->router_scoring = RouterScoring::kSigmoid;  // vLLM and transformers: always sigmoid
  m->normalize_topk = true;
  MOECAP_RETURN_IF_ERROR(r.Bool("norm_topk_prob", &m->normalize_topk));
  int64_t first_dense = 0;
  MOECAP_RETURN_IF_ERROR(r.Int("first_k_dense_replace", true, &first_dense));
  MoeMask moe(m->layers);
  for (int64_t i = 0; i < m->layers; ++i) moe[i] = i >= first_dense;
  MOECAP_RETURN_IF_ERROR(
      SetLayerLayout(r, arch, absl::StrCat("first_k_dense_replace is ", first_dense), moe, m));
  return ReadDenseFfn(r, "intermediate_size", m);
}

// Llama-4: the MoE layers are `moe_layers` when given, else every interleave_moe_layer_step-th
// layer ((i + 1) % step == 0); the others have a dense MLP of intermediate_size_mlp. Each MoE
// layer has one shared expert of intermediate_size (Llama4TextMoe.shared_expert); the router takes
// the top-k logits through a sigmoid, without renormalising. The chunked local attention
// (attention_chunk_size) is not a sliding window and is counted as full attention.
absl::Status ReadLlama4(const ConfigReader& r, absl::string_view arch, int64_t heads,
                        ModelSpec* m) {
  MOECAP_RETURN_IF_ERROR(ReadGqa(r, heads, m));
  MOECAP_RETURN_IF_ERROR(
      ReadExperts(r, arch, "num_local_experts", {"num_experts_per_tok"}, "intermediate_size", m));
  m->shared_experts = 1;
  m->shared_expert_ffn_size = m->expert_ffn_size;
  m->router_scoring = RouterScoring::kSigmoid;
  m->normalize_topk = false;
  int64_t step = 1;
  MOECAP_RETURN_IF_ERROR(r.Positive("interleave_moe_layer_step", false, &step));
  std::optional<std::set<int64_t>> listed;
  MOECAP_RETURN_IF_ERROR(r.LayerList("moe_layers", m->layers, &listed));
  MoeMask moe(m->layers);
  for (int64_t i = 0; i < m->layers; ++i) {
    moe[i] = listed ? listed->contains(i) : (i + 1) % step == 0;
  }
  MOECAP_RETURN_IF_ERROR(SetLayerLayout(
      r, arch, listed ? "moe_layers is empty" : "interleave_moe_layer_step", moe, m));
  return ReadDenseFfn(r, "intermediate_size_mlp", m);
}

absl::Status ReadOlmoe(const ConfigReader& r, absl::string_view arch, int64_t heads, ModelSpec* m) {
  MOECAP_RETURN_IF_ERROR(ReadGqa(r, heads, m));
  MOECAP_RETURN_IF_ERROR(
      ReadExperts(r, arch, "num_experts", {"num_experts_per_tok"}, "intermediate_size", m));
  MOECAP_RETURN_IF_ERROR(ReadRouter(r, RouterScoring::kSoftmax, /*default_norm=*/false, m));
  return SetLayerLayout(r, arch, "", MoeMask(m->layers, true), m);
}

// The checkpoint's precisions, from quantization_config only.
absl::Status ReadQuantization(const ConfigReader& root, ModelSpec* m) {
  MOECAP_ASSIGN_OR_RETURN(std::optional<ConfigReader> q, root.Child("quantization_config"));
  if (!q) return absl::OkStatus();
  std::string method;
  MOECAP_RETURN_IF_ERROR(q->String("quant_method", true, &method));
  if (method == "fp8") {
    // DeepSeek-V3, Kimi-K2, Qwen3-*-FP8: every linear layer but the LM head (and the router gate,
    // 0.03 % of the weights, counted with attention) in fp8; 128×128 blocks carry an fp32 scale.
    Dtype weights = Dtype::kFp8;
    if (q->Has("weight_block_size")) {
      const json& block = *q->Find("weight_block_size");
      if (block != json::array({128, 128})) {
        return q->Error("weight_block_size",
                        absl::StrCat(Describe(block),
                                     ": moecap counts fp8 with [128, 128] blocks or a per-tensor "
                                     "scale; give the precisions in a catalog YAML (see "
                                     "docs/catalog.md)"));
      }
      weights = Dtype::kFp8Block128;
    }
    m->expert_dtype = weights;
    m->attention_dtype = weights;
    m->lm_head_dtype = Dtype::kBf16;
    return absl::OkStatus();
  }
  if (method == "mxfp4") {
    // gpt-oss: modules_to_not_convert keeps attention, router, embedding and LM head in bf16.
    m->expert_dtype = Dtype::kMxfp4;
    m->attention_dtype = Dtype::kBf16;
    m->lm_head_dtype = Dtype::kBf16;
    return absl::OkStatus();
  }
  return q->Error("quant_method",
                  absl::StrCat("\"", Clip(method, 40),
                               "\" is not read (moecap maps fp8 and mxfp4): guessing its "
                               "precisions would skew every byte count; give them in a catalog "
                               "YAML's precision: section (see docs/catalog.md)"));
}

// Whether a config of an architecture moecap does not read describes an MoE model: an expert
// count under one of the names MoE families use, or "moe" in the architecture's name.
bool LooksLikeMoe(const json& root, absl::string_view architecture) {
  if (absl::StrContains(absl::AsciiStrToLower(architecture), "moe")) return true;
  constexpr absl::string_view kExpertKeys[] = {
      "num_experts",         "num_local_experts",     "n_routed_experts", "moe_num_experts",
      "num_experts_per_tok", "moe_intermediate_size", "ffn_config",       "moe_topk"};
  std::vector<const json*> objects = {&root};
  if (const auto it = root.find("text_config"); it != root.end() && it->is_object()) {
    objects.push_back(&*it);
  }
  for (const json* object : objects) {
    for (absl::string_view key : kExpertKeys) {
      const auto it = object->find(std::string(key));
      if (it == object->end() || it->is_null() || *it == 0 || *it == false) continue;
      return true;
    }
  }
  return false;
}

absl::StatusOr<json> ParseJson(absl::string_view text, absl::string_view origin) {
  if (absl::StartsWith(text, "\xEF\xBB\xBF")) text.remove_prefix(3);
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    // "[json.exception.parse_error.101] parse error at line 1, column 1: ..." without the tag.
    absl::string_view what = e.what();
    if (const size_t tag_end = what.find("] "); tag_end != absl::string_view::npos) {
      what.remove_prefix(tag_end + 2);
    }
    return Refuse(origin, absl::StrCat("not JSON (", Clip(what, 200),
                                       "): give the model's config.json from its Hugging Face "
                                       "repository (a catalog entry is YAML: see "
                                       "docs/catalog.md)"));
  }
}

void EmitPrecision(YAML::Emitter& out, absl::string_view key, const std::optional<Dtype>& dtype) {
  if (!dtype) return;
  out << YAML::Key << std::string(key) << YAML::Value << std::string(DtypeName(*dtype));
}

// The model's name from where its config.json lies: Hugging Face's cache keeps
// models--<org>--<name>/snapshots/<commit>/config.json ("<org>/<name>"); a folder of the model's
// own files is named after it ("GLM-4.5/config.json"). Empty when the path says nothing.
std::string ModelNameFromPath(absl::string_view origin) {
  const std::filesystem::path path{std::string(origin)};
  for (const auto& part : path) {
    const std::string p = part.string();
    if (absl::StartsWith(p, "models--")) {
      return absl::StrReplaceAll(p.substr(8), {{"--", "/"}});
    }
  }
  const std::string parent = path.parent_path().filename().string();
  const bool commit_hash =
      parent.size() == 40 &&
      std::all_of(parent.begin(), parent.end(), [](char c) { return std::isxdigit(c) != 0; });
  if (parent.empty() || parent == "." || parent == ".." || parent == "snapshots" || commit_hash) {
    return "";
  }
  return parent;
}

}  // namespace

absl::StatusOr<ModelSpec> ModelFromHfConfig(absl::string_view json_text, absl::string_view origin) {
  MOECAP_ASSIGN_OR_RETURN(const json root, ParseJson(json_text, origin));
  if (!root.is_object()) {
    return Refuse(origin, absl::StrCat("not a model config (the top level is ", Describe(root),
                                       ", not an object): give the model's config.json from its "
                                       "Hugging Face repository"));
  }
  ConfigReader top(root, std::string(origin), "", "a model config");
  std::optional<std::vector<std::string>> architectures;
  std::string model_type;
  MOECAP_RETURN_IF_ERROR(top.StringList("architectures", &architectures));
  MOECAP_RETURN_IF_ERROR(top.String("model_type", false, &model_type));
  if ((!architectures || architectures->empty()) && model_type.empty()) {
    return Refuse(origin,
                  "not a model config (it has neither 'architectures' nor 'model_type'): give the "
                  "model's config.json from its Hugging Face repository, not its "
                  "tokenizer_config.json or generation_config.json");
  }

  // The architecture by name, else by model_type (older files have no `architectures`).
  const Architecture* arch = nullptr;
  std::string arch_name = architectures && !architectures->empty() ? architectures->front() : "";
  for (const Architecture& a : kArchitectures) {
    if (!arch_name.empty() && a.name == arch_name) {
      arch = &a;
      if (a.model_type == model_type) break;  // DeepseekV3ForCausalLM: deepseek_v3 or kimi_k2
    }
  }
  for (const Architecture& a : kArchitectures) {
    if (arch == nullptr && !model_type.empty() && a.model_type == model_type) arch = &a;
  }
  if (arch_name.empty()) arch_name = arch != nullptr ? std::string(arch->name) : model_type;
  if (arch == nullptr) {
    if (!LooksLikeMoe(root, arch_name)) return NoExperts(origin, arch_name, "");
    return Refuse(origin,
                  absl::StrCat("unknown MoE architecture '", Clip(arch_name, 80),
                               "': moecap reads the config.json of ", SupportedArchitectures(),
                               "; name the model from the catalog if it is there (`moecapctl "
                               "models` lists them), or describe it in a catalog YAML (see "
                               "docs/catalog.md)"));
  }

  // Llama4ForConditionalGeneration keeps the language model's fields in text_config.
  MOECAP_ASSIGN_OR_RETURN(const std::optional<ConfigReader> text, top.Child("text_config"));
  const ConfigReader family_reader(text ? *top.Find("text_config") : root, std::string(origin),
                                   text ? "text_config" : "", arch_name);

  ModelSpec m;
  int64_t heads = 0;
  MOECAP_RETURN_IF_ERROR(ReadCommon(family_reader, &m, &heads));
  switch (arch->family) {
    case Family::kMixtral:
      MOECAP_RETURN_IF_ERROR(ReadMixtral(family_reader, arch_name, heads, &m));
      break;
    case Family::kQwen2Moe:
      MOECAP_RETURN_IF_ERROR(ReadQwenMoe(family_reader, arch_name, heads, true, &m));
      break;
    case Family::kQwen3Moe:
      MOECAP_RETURN_IF_ERROR(ReadQwenMoe(family_reader, arch_name, heads, false, &m));
      break;
    case Family::kDeepseekV2:
      MOECAP_RETURN_IF_ERROR(ReadDeepseek(family_reader, arch_name, heads, false, &m));
      break;
    case Family::kDeepseekV3:
      MOECAP_RETURN_IF_ERROR(ReadDeepseek(family_reader, arch_name, heads, true, &m));
      break;
    case Family::kGptOss:
      MOECAP_RETURN_IF_ERROR(ReadGptOss(family_reader, arch_name, heads, &m));
      break;
    case Family::kGlm4Moe:
      MOECAP_RETURN_IF_ERROR(ReadGlm4Moe(family_reader, arch_name, heads, &m));
      break;
    case Family::kLlama4:
      MOECAP_RETURN_IF_ERROR(ReadLlama4(family_reader, arch_name, heads, &m));
      break;
    case Family::kOlmoe:
      MOECAP_RETURN_IF_ERROR(ReadOlmoe(family_reader, arch_name, heads, &m));
      break;
  }
  MOECAP_RETURN_IF_ERROR(ReadQuantization(top, &m));

  std::string name_or_path;
  MOECAP_RETURN_IF_ERROR(top.String("_name_or_path", false, &name_or_path));
  // Downloaded configs often lack _name_or_path: the repository's folder names the model better
  // than the architecture does ("glm4moeforcausallm").
  const std::string from_path = ModelNameFromPath(origin);
  m.display_name = !name_or_path.empty() ? name_or_path
                   : !from_path.empty()  ? from_path
                                         : arch_name;
  m.name = NormalizeName(m.display_name);  // lower case: "mixtralforcausallm"
  m.source = std::string(origin);
  if (m.name.empty()) return top.Error("_name_or_path", "empty once spaces are trimmed");
  if (absl::Status s = ValidateModel(m); !s.ok()) return Refuse(origin, s.message());
  return m;
}

std::string ModelYaml(const ModelSpec& m) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << m.name;
  if (!m.display_name.empty()) {
    out << YAML::Key << "display_name" << YAML::Value << m.display_name;
  }
  if (!m.aliases.empty()) {
    out << YAML::Key << "aliases" << YAML::Value << YAML::Flow << m.aliases;
  }
  if (!m.source.empty()) out << YAML::Key << "source" << YAML::Value << m.source;
  out << YAML::Key << "layers" << YAML::Value << m.layers;
  out << YAML::Key << "dense_layers" << YAML::Value << m.dense_layers;
  if (m.dense_ffn_size != 0) {
    out << YAML::Key << "dense_ffn_size" << YAML::Value << m.dense_ffn_size;
  }
  out << YAML::Key << "hidden_size" << YAML::Value << m.hidden_size;
  out << YAML::Key << "vocab_size" << YAML::Value << m.vocab_size;

  out << YAML::Key << "attention" << YAML::Value << YAML::BeginMap;
  if (m.attention == AttentionKind::kGqa) {
    out << YAML::Key << "kind" << YAML::Value << "gqa";
    out << YAML::Key << "heads" << YAML::Value << m.gqa.heads;
    out << YAML::Key << "kv_heads" << YAML::Value << m.gqa.kv_heads;
    out << YAML::Key << "head_dim" << YAML::Value << m.gqa.head_dim;
  } else {
    out << YAML::Key << "kind" << YAML::Value << "mla";
    out << YAML::Key << "heads" << YAML::Value << m.mla.heads;
    out << YAML::Key << "q_lora_rank" << YAML::Value << m.mla.q_lora_rank;
    out << YAML::Key << "kv_lora_rank" << YAML::Value << m.mla.kv_lora_rank;
    out << YAML::Key << "qk_nope_head_dim" << YAML::Value << m.mla.qk_nope_head_dim;
    out << YAML::Key << "qk_rope_head_dim" << YAML::Value << m.mla.qk_rope_head_dim;
    out << YAML::Key << "v_head_dim" << YAML::Value << m.mla.v_head_dim;
  }
  if (m.sliding_window != 0 || m.sliding_window_layers != 0) {
    out << YAML::Key << "sliding_window" << YAML::Value << m.sliding_window;
    out << YAML::Key << "sliding_window_layers" << YAML::Value << m.sliding_window_layers;
  }
  out << YAML::EndMap;

  out << YAML::Key << "moe" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "experts" << YAML::Value << m.experts;
  out << YAML::Key << "experts_per_token" << YAML::Value << m.experts_per_token;
  out << YAML::Key << "expert_ffn_size" << YAML::Value << m.expert_ffn_size;
  out << YAML::Key << "shared_experts" << YAML::Value << m.shared_experts;
  if (m.shared_expert_ffn_size != 0) {
    out << YAML::Key << "shared_expert_ffn_size" << YAML::Value << m.shared_expert_ffn_size;
  }
  out << YAML::Key << "router" << YAML::Value
      << (m.router_scoring == RouterScoring::kSigmoid ? "sigmoid" : "softmax");
  out << YAML::Key << "normalize_topk" << YAML::Value << m.normalize_topk;
  if (m.moe_layer_step != 1) {
    out << YAML::Key << "layer_step" << YAML::Value << m.moe_layer_step;
  }
  out << YAML::EndMap;

  if (m.expert_dtype || m.attention_dtype || m.lm_head_dtype) {
    out << YAML::Key << "precision" << YAML::Value << YAML::BeginMap;
    EmitPrecision(out, "experts", m.expert_dtype);
    EmitPrecision(out, "attention", m.attention_dtype);
    EmitPrecision(out, "lm_head", m.lm_head_dtype);
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  return absl::StrCat("# A moecap model entry (docs/catalog.md).\n", out.c_str(), "\n");
}

}  // namespace moecap
