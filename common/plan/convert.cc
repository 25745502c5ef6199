// API message <-> metric core conversions.
#include "common/plan/convert.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/catalog.h"
#include "common/status_macros.h"
#include "google/protobuf/util/json_util.h"

namespace moecap {
namespace {

v1::TermCount* MutableTerm(v1::TermCounts& p, Term term) {
  switch (term) {
    case Term::kAttention:
      return p.mutable_attention();
    case Term::kRouter:
      return p.mutable_router();
    case Term::kDenseFfn:
      return p.mutable_dense_ffn();
    case Term::kSharedExperts:
      return p.mutable_shared_experts();
    case Term::kRoutedExperts:
      return p.mutable_routed_experts();
    case Term::kLmHead:
      return p.mutable_lm_head();
    case Term::kKvCache:
      return p.mutable_kv_cache();
    case Term::kAttentionScores:
      return p.mutable_attention_scores();
  }
  return p.mutable_attention();
}

const v1::TermCount& GetTerm(const v1::TermCounts& p, Term term) {
  switch (term) {
    case Term::kAttention:
      return p.attention();
    case Term::kRouter:
      return p.router();
    case Term::kDenseFfn:
      return p.dense_ffn();
    case Term::kSharedExperts:
      return p.shared_experts();
    case Term::kRoutedExperts:
      return p.routed_experts();
    case Term::kLmHead:
      return p.lm_head();
    case Term::kKvCache:
      return p.kv_cache();
    case Term::kAttentionScores:
      return p.attention_scores();
  }
  return p.attention();
}

}  // namespace

std::optional<Dtype> DtypeFromProto(v1::Dtype dtype) {
  switch (dtype) {
    case v1::DTYPE_FP32:
      return Dtype::kFp32;
    case v1::DTYPE_BF16:
      return Dtype::kBf16;
    case v1::DTYPE_FP16:
      return Dtype::kFp16;
    case v1::DTYPE_FP8:
      return Dtype::kFp8;
    case v1::DTYPE_FP8_BLOCK128:
      return Dtype::kFp8Block128;
    case v1::DTYPE_INT8:
      return Dtype::kInt8;
    case v1::DTYPE_INT4_G128:
      return Dtype::kInt4Group128;
    case v1::DTYPE_MXFP4:
      return Dtype::kMxfp4;
    case v1::DTYPE_NVFP4:
      return Dtype::kNvfp4;
    default:
      return std::nullopt;
  }
}

v1::Dtype DtypeToProto(Dtype dtype) {
  switch (dtype) {
    case Dtype::kFp32:
      return v1::DTYPE_FP32;
    case Dtype::kBf16:
      return v1::DTYPE_BF16;
    case Dtype::kFp16:
      return v1::DTYPE_FP16;
    case Dtype::kFp8:
      return v1::DTYPE_FP8;
    case Dtype::kFp8Block128:
      return v1::DTYPE_FP8_BLOCK128;
    case Dtype::kInt8:
      return v1::DTYPE_INT8;
    case Dtype::kInt4Group128:
      return v1::DTYPE_INT4_G128;
    case Dtype::kMxfp4:
      return v1::DTYPE_MXFP4;
    case Dtype::kNvfp4:
      return v1::DTYPE_NVFP4;
  }
  return v1::DTYPE_UNSPECIFIED;
}

absl::StatusOr<ModelSpec> ModelSpecFromProto(const v1::ModelSpec& p) {
  ModelSpec m;
  m.name = NormalizeName(p.name());
  m.display_name = p.display_name().empty() ? m.name : p.display_name();
  m.aliases.assign(p.aliases().begin(), p.aliases().end());
  m.source = p.source();
  m.layers = p.layers();
  m.dense_layers = p.dense_layers();
  m.hidden_size = p.hidden_size();
  m.vocab_size = p.vocab_size();
  m.dense_ffn_size = p.dense_ffn_size();
  const v1::ModelAttention& a = p.attention();
  if (a.kind() == v1::ATTENTION_KIND_MLA) {
    m.attention = AttentionKind::kMla;
    m.mla = {.heads = a.heads(),
             .q_lora_rank = a.q_lora_rank(),
             .kv_lora_rank = a.kv_lora_rank(),
             .qk_nope_head_dim = a.qk_nope_head_dim(),
             .qk_rope_head_dim = a.qk_rope_head_dim(),
             .v_head_dim = a.v_head_dim()};
  } else {
    m.attention = AttentionKind::kGqa;
    // MHA: every query head has its own KV head.
    const int64_t kv_heads =
        a.kind() == v1::ATTENTION_KIND_MHA && a.kv_heads() == 0 ? a.heads() : a.kv_heads();
    m.gqa = {.heads = a.heads(), .kv_heads = kv_heads, .head_dim = a.head_dim()};
  }
  m.sliding_window = a.sliding_window();
  m.sliding_window_layers = a.sliding_window_layers();
  m.moe_layer_step = p.moe_layer_step() > 1 ? p.moe_layer_step() : 1;
  m.expert_dtype = DtypeFromProto(p.expert_dtype());
  m.attention_dtype = DtypeFromProto(p.attention_dtype());
  m.lm_head_dtype = DtypeFromProto(p.lm_head_dtype());
  const v1::ModelMoe& moe = p.moe();
  m.experts = moe.experts();
  m.experts_per_token = moe.experts_per_token();
  m.expert_ffn_size = moe.expert_ffn_size();
  m.shared_experts = moe.shared_experts();
  m.shared_expert_ffn_size = moe.shared_expert_ffn_size();
  m.router_scoring = moe.router() == v1::ROUTER_SCORING_SIGMOID ? RouterScoring::kSigmoid
                                                                : RouterScoring::kSoftmax;
  m.normalize_topk = moe.has_normalize_topk() ? moe.normalize_topk() : true;
  MOECAP_RETURN_IF_ERROR(ValidateModel(m));
  return m;
}

v1::ModelSpec ModelSpecToProto(const ModelSpec& m) {
  v1::ModelSpec p;
  p.set_name(m.name);
  p.set_display_name(m.display_name);
  for (const std::string& alias : m.aliases) p.add_aliases(alias);
  p.set_source(m.source);
  p.set_layers(m.layers);
  p.set_dense_layers(m.dense_layers);
  p.set_hidden_size(m.hidden_size);
  p.set_vocab_size(m.vocab_size);
  p.set_dense_ffn_size(m.dense_ffn_size);
  v1::ModelAttention* a = p.mutable_attention();
  if (m.attention == AttentionKind::kMla) {
    a->set_kind(v1::ATTENTION_KIND_MLA);
    a->set_heads(m.mla.heads);
    a->set_q_lora_rank(m.mla.q_lora_rank);
    a->set_kv_lora_rank(m.mla.kv_lora_rank);
    a->set_qk_nope_head_dim(m.mla.qk_nope_head_dim);
    a->set_qk_rope_head_dim(m.mla.qk_rope_head_dim);
    a->set_v_head_dim(m.mla.v_head_dim);
  } else {
    a->set_kind(v1::ATTENTION_KIND_GQA);
    a->set_heads(m.gqa.heads);
    a->set_kv_heads(m.gqa.kv_heads);
    a->set_head_dim(m.gqa.head_dim);
  }
  v1::ModelMoe* moe = p.mutable_moe();
  moe->set_experts(m.experts);
  moe->set_experts_per_token(m.experts_per_token);
  moe->set_expert_ffn_size(m.expert_ffn_size);
  moe->set_shared_experts(m.shared_experts);
  moe->set_shared_expert_ffn_size(m.shared_expert_ffn_size);
  moe->set_router(m.router_scoring == RouterScoring::kSigmoid ? v1::ROUTER_SCORING_SIGMOID
                                                              : v1::ROUTER_SCORING_SOFTMAX);
  moe->set_normalize_topk(m.normalize_topk);
  a->set_sliding_window(m.sliding_window);
  a->set_sliding_window_layers(m.sliding_window_layers);
  p.set_moe_layer_step(m.moe_layer_step);
  if (m.expert_dtype) p.set_expert_dtype(DtypeToProto(*m.expert_dtype));
  if (m.attention_dtype) p.set_attention_dtype(DtypeToProto(*m.attention_dtype));
  if (m.lm_head_dtype) p.set_lm_head_dtype(DtypeToProto(*m.lm_head_dtype));
  return p;
}

v1::TermCounts TermCountsToProto(const Counts& counts) {
  v1::TermCounts p;
  for (Term t : kAllTerms) {
    v1::TermCount* term = MutableTerm(p, t);
    term->set_bytes(counts[t].bytes);
    term->set_flops(counts[t].flops);
  }
  p.set_total_bytes(counts.bytes());
  p.set_total_flops(counts.flops());
  return p;
}

Counts TermCountsFromProto(const v1::TermCounts& p) {
  Counts counts;
  for (Term t : kAllTerms) {
    counts[t].bytes = GetTerm(p, t).bytes();
    counts[t].flops = GetTerm(p, t).flops();
  }
  return counts;
}

absl::StatusOr<std::string> ProtoToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("cannot render JSON: ", status.ToString()));
  }
  return json;
}

}  // namespace moecap
