// Parameter counts of a model shape (METRICS.md, "Parameters counted").
#include "common/model.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace moecap {

int64_t ModelSpec::QueryKeyHeadDim() const {
  return attention == AttentionKind::kGqa ? gqa.head_dim
                                          : mla.qk_nope_head_dim + mla.qk_rope_head_dim;
}

int64_t ModelSpec::ValueHeadDim() const {
  return attention == AttentionKind::kGqa ? gqa.head_dim : mla.v_head_dim;
}

int64_t ModelSpec::AttentionHeads() const {
  return attention == AttentionKind::kGqa ? gqa.heads : mla.heads;
}

namespace {

absl::Status FieldError(const ModelSpec& model, absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(
      absl::StrCat("model '", model.name, "': field '", field, "': ", reason));
}

absl::Status RequirePositive(const ModelSpec& model, absl::string_view field, int64_t value) {
  if (value <= 0) return FieldError(model, field, absl::StrCat(value, " must be positive"));
  return absl::OkStatus();
}

absl::Status RequireNonNegative(const ModelSpec& model, absl::string_view field, int64_t value) {
  if (value < 0) return FieldError(model, field, absl::StrCat(value, " must not be negative"));
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateModel(const ModelSpec& model) {
  if (model.name.empty()) return absl::InvalidArgumentError("model: field 'name': empty");
  struct Check {
    absl::string_view field;
    int64_t value;
    bool positive;
  };
  std::vector<Check> checks = {
      {"layers", model.layers, true},
      {"dense_layers", model.dense_layers, false},
      {"hidden_size", model.hidden_size, true},
      {"vocab_size", model.vocab_size, true},
      {"moe.experts", model.experts, true},
      {"moe.experts_per_token", model.experts_per_token, true},
      {"moe.expert_ffn_size", model.expert_ffn_size, true},
      {"moe.shared_experts", model.shared_experts, false},
  };
  if (model.attention == AttentionKind::kGqa) {
    checks.push_back({"attention.heads", model.gqa.heads, true});
    checks.push_back({"attention.kv_heads", model.gqa.kv_heads, true});
    checks.push_back({"attention.head_dim", model.gqa.head_dim, true});
  } else {
    checks.push_back({"attention.heads", model.mla.heads, true});
    checks.push_back({"attention.q_lora_rank", model.mla.q_lora_rank, false});
    checks.push_back({"attention.kv_lora_rank", model.mla.kv_lora_rank, true});
    checks.push_back({"attention.qk_nope_head_dim", model.mla.qk_nope_head_dim, true});
    checks.push_back({"attention.qk_rope_head_dim", model.mla.qk_rope_head_dim, true});
    checks.push_back({"attention.v_head_dim", model.mla.v_head_dim, true});
  }
  if (model.dense_layers > 0) checks.push_back({"dense_ffn_size", model.dense_ffn_size, true});
  if (model.shared_experts > 0) {
    checks.push_back({"moe.shared_expert_ffn_size", model.shared_expert_ffn_size, true});
  }
  for (const Check& c : checks) {
    absl::Status s = c.positive ? RequirePositive(model, c.field, c.value)
                                : RequireNonNegative(model, c.field, c.value);
    if (!s.ok()) return s;
  }
  if (model.dense_layers >= model.layers) {
    return FieldError(model, "dense_layers",
                      absl::StrCat(model.dense_layers, " leaves no MoE layer out of layers (",
                                   model.layers, ")"));
  }
  if (model.experts_per_token > model.experts) {
    return FieldError(
        model, "moe.experts_per_token",
        absl::StrCat(model.experts_per_token, " exceeds moe.experts (", model.experts, ")"));
  }
  if (model.sliding_window < 0 || model.sliding_window_layers < 0 ||
      model.sliding_window_layers > model.layers) {
    return FieldError(model, "attention.sliding_window_layers",
                      absl::StrCat(model.sliding_window_layers, " is not between 0 and layers (",
                                   model.layers, ")"));
  }
  if ((model.sliding_window > 0) != (model.sliding_window_layers > 0)) {
    return FieldError(model, "attention.sliding_window",
                      "a window needs the layers it applies to, and layers need a window");
  }
  if (model.moe_layer_step < 1) {
    return FieldError(model, "moe.layer_step",
                      absl::StrCat(model.moe_layer_step, " must be at least 1"));
  }
  if (model.moe_layer_step > 1 &&
      model.dense_layers != model.layers - model.layers / model.moe_layer_step) {
    return FieldError(model, "dense_layers",
                      absl::StrCat(model.dense_layers, " disagrees with moe.layer_step ",
                                   model.moe_layer_step, " over ", model.layers, " layers (",
                                   model.layers - model.layers / model.moe_layer_step, " dense)"));
  }
  if (model.attention == AttentionKind::kGqa && model.gqa.heads % model.gqa.kv_heads != 0) {
    return FieldError(model, "attention.kv_heads",
                      absl::StrCat(model.gqa.kv_heads, " does not divide attention.heads (",
                                   model.gqa.heads, ")"));
  }
  return absl::OkStatus();
}

int64_t AttentionParamsPerLayer(const ModelSpec& m) {
  const int64_t d = m.hidden_size;
  if (m.attention == AttentionKind::kGqa) {
    const GqaAttention& a = m.gqa;
    return d * a.heads * a.head_dim + 2 * d * a.kv_heads * a.head_dim + a.heads * a.head_dim * d;
  }
  const MlaAttention& a = m.mla;
  const int64_t qk = a.qk_nope_head_dim + a.qk_rope_head_dim;
  const int64_t q =
      a.q_lora_rank > 0 ? d * a.q_lora_rank + a.q_lora_rank * a.heads * qk : d * a.heads * qk;
  return q + d * (a.kv_lora_rank + a.qk_rope_head_dim) +
         a.kv_lora_rank * a.heads * (a.qk_nope_head_dim + a.v_head_dim) +
         a.heads * a.v_head_dim * d;
}

int64_t RouterParamsPerLayer(const ModelSpec& m) { return m.hidden_size * m.experts; }

int64_t ParamsPerExpert(const ModelSpec& m) { return 3 * m.hidden_size * m.expert_ffn_size; }

int64_t SharedParamsPerLayer(const ModelSpec& m) {
  return m.shared_experts * 3 * m.hidden_size * m.shared_expert_ffn_size;
}

int64_t DenseFfnParamsPerLayer(const ModelSpec& m) { return 3 * m.hidden_size * m.dense_ffn_size; }

int64_t LmHeadParams(const ModelSpec& m) { return m.vocab_size * m.hidden_size; }

int64_t KvElementsPerTokenPerLayer(const ModelSpec& m) {
  if (m.attention == AttentionKind::kGqa) return 2 * m.gqa.kv_heads * m.gqa.head_dim;
  return m.mla.kv_lora_rank + m.mla.qk_rope_head_dim;
}

namespace {
int64_t ParamsWithExperts(const ModelSpec& m, int64_t experts_counted) {
  const int64_t moe_layer =
      RouterParamsPerLayer(m) + SharedParamsPerLayer(m) + experts_counted * ParamsPerExpert(m);
  return m.layers * AttentionParamsPerLayer(m) + m.dense_layers * DenseFfnParamsPerLayer(m) +
         m.MoeLayers() * moe_layer + 2 * LmHeadParams(m);
}
}  // namespace

int64_t TotalParams(const ModelSpec& m) { return ParamsWithExperts(m, m.experts); }

int64_t ActiveParamsPerToken(const ModelSpec& m) {
  return ParamsWithExperts(m, m.experts_per_token);
}

ModelSpec ScaledModel(const ModelSpec& model, int64_t scale) {
  ModelSpec scaled = model;
  if (scale <= 1) return scaled;
  const auto shrink = [scale](int64_t size) {
    return size > 0 ? std::max<int64_t>(1, size / scale) : size;
  };
  scaled.hidden_size = shrink(model.hidden_size);
  scaled.expert_ffn_size = shrink(model.expert_ffn_size);
  scaled.shared_expert_ffn_size = shrink(model.shared_expert_ffn_size);
  scaled.dense_ffn_size = shrink(model.dense_ffn_size);
  // Attention keeps its head width and loses heads, so n_h·d_h stays in step with d; the KV
  // heads shrink alike and still divide the query heads.
  scaled.gqa.heads = shrink(model.gqa.heads);
  scaled.gqa.kv_heads = shrink(model.gqa.kv_heads);
  while (scaled.gqa.kv_heads > 1 && scaled.gqa.heads % scaled.gqa.kv_heads != 0) {
    --scaled.gqa.kv_heads;
  }
  scaled.mla.heads = shrink(model.mla.heads);
  scaled.mla.q_lora_rank = shrink(model.mla.q_lora_rank);
  scaled.mla.kv_lora_rank = shrink(model.mla.kv_lora_rank);
  scaled.name = absl::StrCat(model.name, "@1/", scale);
  return scaled;
}

bool IsSlidingLayer(const ModelSpec& model, int64_t layer) {
  if (model.sliding_window <= 0 || model.sliding_window_layers <= 0 || model.layers <= 0) {
    return false;
  }
  const int64_t s = model.sliding_window_layers, l = model.layers;
  const auto ceil_div = [l](int64_t a) { return (a + l - 1) / l; };
  return ceil_div((layer + 1) * s) > ceil_div(layer * s);
}

bool IsDenseModelLayer(const ModelSpec& model, int64_t layer) {
  if (model.moe_layer_step > 1) return (layer + 1) % model.moe_layer_step != 0;
  return layer < model.dense_layers;
}

std::vector<bool> StackDenseLayers(const ModelSpec& model, int64_t moe_layers,
                                   int64_t dense_layers) {
  std::vector<bool> dense;
  int64_t left[2] = {moe_layers, dense_layers};  // by kind: MoE, dense
  for (int64_t l = 0; l < model.layers && left[0] + left[1] > 0; ++l) {
    const bool is_dense = IsDenseModelLayer(model, l);
    if (left[is_dense] == 0) continue;
    --left[is_dense];
    dense.push_back(is_dense);
  }
  // A stack deeper than the model (a workload may stack more MoE layers than it has) ends with
  // what is left.
  dense.insert(dense.end(), static_cast<size_t>(left[0]), false);
  dense.insert(dense.end(), static_cast<size_t>(left[1]), true);
  return dense;
}

ModelSpec StackModel(const ModelSpec& model, int64_t moe_layers, int64_t dense_layers) {
  ModelSpec stack = model;
  const int64_t layers = moe_layers + dense_layers;
  int64_t sliding = 0;
  for (int64_t l = 0; l < layers; ++l) sliding += IsSlidingLayer(model, l) ? 1 : 0;
  stack.layers = layers;
  stack.dense_layers = dense_layers;
  stack.moe_layer_step = 1;
  stack.sliding_window_layers = sliding;
  if (sliding == 0) stack.sliding_window = 0;
  return stack;
}

}  // namespace moecap
