// WorkloadConfig helpers: validation, scaling, splits over ranks and JSON round trips (the
// launcher hands the plan to its rank processes as JSON).
#include "agent/workload/config.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/workload/attention.h"
#include "common/metrics.h"
#include "common/status_macros.h"

namespace moecap {

absl::string_view ServingPhaseName(ServingPhase phase) {
  return phase == ServingPhase::kPrefill ? "prefill" : "decode";
}

absl::StatusOr<ServingPhase> ParseServingPhase(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "prefill") return ServingPhase::kPrefill;
  if (lower == "decode") return ServingPhase::kDecode;
  return absl::InvalidArgumentError(
      absl::StrCat("phase '", name, "' is unknown: use prefill, decode or both"));
}

absl::string_view RoutingModeName(RoutingMode mode) {
  switch (mode) {
    case RoutingMode::kGate:
      return "gate";
    case RoutingMode::kUniform:
      return "uniform";
    case RoutingMode::kZipf:
      return "zipf";
    case RoutingMode::kHistogram:
      return "histogram";
  }
  return "gate";
}

absl::StatusOr<RoutingMode> ParseRoutingMode(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  for (RoutingMode mode :
       {RoutingMode::kGate, RoutingMode::kUniform, RoutingMode::kZipf, RoutingMode::kHistogram}) {
    if (lower == RoutingModeName(mode)) return mode;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("routing '", name, "' is unknown: use gate, uniform, zipf or histogram"));
}

absl::string_view LayerKindName(LayerKind kind) {
  return kind == LayerKind::kDecoder ? "decoder" : "moe";
}

absl::StatusOr<LayerKind> ParseLayerKind(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  for (LayerKind kind : {LayerKind::kMoe, LayerKind::kDecoder}) {
    if (lower == LayerKindName(kind)) return kind;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("layer '", name, "' is unknown: use moe or decoder"));
}

double DefaultTolerance(Dtype dtype) { return dtype == Dtype::kFp32 ? 1e-4 : 3e-2; }

absl::Status ValidateWorkload(const WorkloadConfig& c, int world_size) {
  const ModelSpec& m = c.model;
  const auto invalid = [](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(parts...));
  };
  if (m.experts < 1 || m.experts_per_token < 1 || m.experts_per_token > m.experts ||
      m.hidden_size < 1 || m.expert_ffn_size < 1) {
    return invalid("model '", m.name, "' is not a Mixture-of-Experts model the workload can run ",
                   "(experts ", m.experts, ", experts_per_token ", m.experts_per_token,
                   ", hidden_size ", m.hidden_size, ", expert_ffn_size ", m.expert_ffn_size, ")");
  }
  if (m.shared_experts > 0 && m.shared_expert_ffn_size < 1) {
    return invalid("model '", m.name, "': shared experts need shared_expert_ffn_size >= 1");
  }
  if (world_size < 1) return invalid("ranks ", world_size, ": at least one rank is needed");
  if (world_size > m.experts) {
    return invalid("ranks ", world_size, " exceeds the routed experts of '", m.name, "' (",
                   m.experts, "): expert parallelism gives every rank at least one expert and ",
                   "this workload does not replicate experts; use --ranks <= ", m.experts);
  }
  if (m.experts % world_size != 0) {
    return invalid("ranks ", world_size, " does not divide the ", m.experts, " routed experts of '",
                   m.name, "': every rank hosts the same number of experts; pick a divisor of ",
                   m.experts);
  }
  if (c.scale < 1) return invalid("scale ", c.scale, ": must be at least 1");
  if (c.layers < 1) return invalid("layers ", c.layers, ": must be at least 1");
  if (c.batches.empty()) return invalid("batch: give at least one batch size");
  for (int64_t b : c.batches) {
    if (b < 1) return invalid("batch ", b, ": every batch size must be at least 1");
  }
  if (c.phases.empty()) return invalid("phase: give prefill, decode or both");
  const bool prefill =
      std::find(c.phases.begin(), c.phases.end(), ServingPhase::kPrefill) != c.phases.end();
  if (prefill && c.prompt_len < 1) {
    return invalid("prompt-len ", c.prompt_len, ": a prefill needs at least one prompt token");
  }
  if (c.iterations < 1) return invalid("iters ", c.iterations, ": must be at least 1");
  if (c.output_len < 0) return invalid("output-len ", c.output_len, ": must not be negative");
  if (c.lm_head && c.layer != LayerKind::kDecoder) {
    return invalid("lm-head: the LM head runs after decoder layers; give layer decoder too");
  }
  if (c.dense_layers < 0) return invalid("dense-layers ", c.dense_layers, ": must not be negative");
  if (c.dense_layers > 0 && c.layer != LayerKind::kDecoder) {
    return invalid(
        "dense-layers: dense layers are decoder layers (attention, then the dense FFN); "
        "give layer decoder too");
  }
  if (c.dense_layers > m.dense_layers) {
    return invalid("dense-layers ", c.dense_layers, ": model '", m.name, "' has ", m.dense_layers,
                   " dense-FFN layers");
  }
  if (c.lm_head && m.vocab_size < 1) {
    return invalid("lm-head: model '", m.name, "' has no vocab_size");
  }
  if (c.layer == LayerKind::kDecoder) {
    MOECAP_RETURN_IF_ERROR(AttentionSupported(ScaledModel(m, c.scale)));
    const bool decode =
        std::find(c.phases.begin(), c.phases.end(), ServingPhase::kDecode) != c.phases.end();
    if (decode && DecodeContext(c) < 1) {
      return invalid("prompt-len ", c.prompt_len, " and output-len ", c.output_len,
                     ": a decoder layer's decode step needs a context P + O/2 of at least 1");
    }
  }
  if (c.warmup < 0) return invalid("warmup ", c.warmup, ": must not be negative");
  if (c.tolerance < 0) return invalid("tolerance ", c.tolerance, ": must not be negative");
  if (!(c.comm_timeout_s > 0)) {
    return invalid("comm-timeout-s ", c.comm_timeout_s, ": must be positive");
  }
  if (c.threads_per_rank < 0) {
    return invalid("threads-per-rank ", c.threads_per_rank, ": must not be negative");
  }
  const RoutingSpec& r = c.routing;
  if (r.mode == RoutingMode::kZipf && !(r.zipf_exponent >= 0)) {
    return invalid("zipf-exponent ", r.zipf_exponent, ": must be >= 0");
  }
  if (r.mode == RoutingMode::kHistogram) {
    if (r.histogram.size() != 1 && r.histogram.size() != static_cast<size_t>(c.layers)) {
      return invalid("routing histogram has ", r.histogram.size(),
                     " rows: give one row for every layer or one row for all ", c.layers,
                     " layers");
    }
    for (size_t l = 0; l < r.histogram.size(); ++l) {
      const std::vector<double>& row = r.histogram[l];
      if (row.size() != static_cast<size_t>(m.experts)) {
        return invalid("routing histogram row ", l, " has ", row.size(), " entries, expected ",
                       m.experts, " (one per routed expert)");
      }
      int64_t positive = 0;
      for (double w : row) {
        if (!(w >= 0) || w == std::numeric_limits<double>::infinity()) {
          return invalid("routing histogram row ", l, ": shares must be finite and >= 0");
        }
        positive += w > 0 ? 1 : 0;
      }
      if (positive < m.experts_per_token) {
        return invalid("routing histogram row ", l, " gives ", positive,
                       " experts a positive share; each token needs ", m.experts_per_token,
                       " distinct experts");
      }
    }
  } else if (!r.histogram.empty()) {
    return invalid("a routing histogram was given but routing is '", RoutingModeName(r.mode), "'");
  }
  return absl::OkStatus();
}

int64_t TokensPerStep(const WorkloadConfig& config, ServingPhase phase, int64_t batch) {
  return phase == ServingPhase::kPrefill ? batch * config.prompt_len : batch;
}

int64_t DecodeContext(const WorkloadConfig& config) {
  return DecodeStepContext(config.prompt_len, config.output_len);
}

SequenceBlock RankSequences(const WorkloadConfig& config, ServingPhase phase, int64_t batch,
                            int rank, int world) {
  const Range sequences = RankTokens(batch, rank, world);
  SequenceBlock block;
  block.first = sequences.begin;
  block.count = sequences.count;
  if (phase == ServingPhase::kPrefill) {
    block.new_tokens = config.prompt_len;
    block.cached = 0;
  } else {
    block.new_tokens = 1;
    block.cached = DecodeContext(config) - 1;
  }
  return block;
}

Range RankRows(const WorkloadConfig& config, ServingPhase phase, int64_t batch, int rank,
               int world) {
  if (config.layer != LayerKind::kDecoder) {
    return RankTokens(TokensPerStep(config, phase, batch), rank, world);
  }
  const SequenceBlock block = RankSequences(config, phase, batch, rank, world);
  return Range{block.first * block.new_tokens, block.rows()};
}

Range RankTokens(int64_t tokens, int rank, int world) {
  const int64_t base = tokens / world;
  const int64_t extra = tokens % world;
  Range range;
  range.count = base + (rank < extra ? 1 : 0);
  range.begin = rank * base + std::min<int64_t>(rank, extra);
  return range;
}

Range RankExperts(int64_t experts, int rank, int world) {
  const int64_t per_rank = experts / world;
  return Range{rank * per_rank, per_rank};
}

nlohmann::json ModelToJson(const ModelSpec& m) {
  return nlohmann::json{
      {"name", m.name},
      {"display_name", m.display_name},
      {"aliases", m.aliases},
      {"source", m.source},
      {"layers", m.layers},
      {"dense_layers", m.dense_layers},
      {"hidden_size", m.hidden_size},
      {"vocab_size", m.vocab_size},
      {"dense_ffn_size", m.dense_ffn_size},
      {"attention", m.attention == AttentionKind::kMla ? "mla" : "gqa"},
      {"gqa", {{"heads", m.gqa.heads}, {"kv_heads", m.gqa.kv_heads}, {"head_dim", m.gqa.head_dim}}},
      {"mla",
       {{"heads", m.mla.heads},
        {"q_lora_rank", m.mla.q_lora_rank},
        {"kv_lora_rank", m.mla.kv_lora_rank},
        {"qk_nope_head_dim", m.mla.qk_nope_head_dim},
        {"qk_rope_head_dim", m.mla.qk_rope_head_dim},
        {"v_head_dim", m.mla.v_head_dim}}},
      {"experts", m.experts},
      {"experts_per_token", m.experts_per_token},
      {"expert_ffn_size", m.expert_ffn_size},
      {"shared_experts", m.shared_experts},
      {"shared_expert_ffn_size", m.shared_expert_ffn_size},
      {"router", m.router_scoring == RouterScoring::kSigmoid ? "sigmoid" : "softmax"},
      {"normalize_topk", m.normalize_topk},
  };
}

absl::StatusOr<ModelSpec> ModelFromJson(const nlohmann::json& j) {
  try {
    ModelSpec m;
    m.name = j.at("name").get<std::string>();
    m.display_name = j.value("display_name", "");
    m.aliases = j.value("aliases", std::vector<std::string>{});
    m.source = j.value("source", "");
    m.layers = j.at("layers").get<int64_t>();
    m.dense_layers = j.value("dense_layers", int64_t{0});
    m.hidden_size = j.at("hidden_size").get<int64_t>();
    m.vocab_size = j.value("vocab_size", int64_t{0});
    m.dense_ffn_size = j.value("dense_ffn_size", int64_t{0});
    m.attention = j.value("attention", "gqa") == "mla" ? AttentionKind::kMla : AttentionKind::kGqa;
    if (j.contains("gqa")) {
      const auto& g = j.at("gqa");
      m.gqa = {g.at("heads").get<int64_t>(), g.at("kv_heads").get<int64_t>(),
               g.at("head_dim").get<int64_t>()};
    }
    if (j.contains("mla")) {
      const auto& a = j.at("mla");
      m.mla = {a.at("heads").get<int64_t>(),
               a.at("q_lora_rank").get<int64_t>(),
               a.at("kv_lora_rank").get<int64_t>(),
               a.at("qk_nope_head_dim").get<int64_t>(),
               a.at("qk_rope_head_dim").get<int64_t>(),
               a.at("v_head_dim").get<int64_t>()};
    }
    m.experts = j.at("experts").get<int64_t>();
    m.experts_per_token = j.at("experts_per_token").get<int64_t>();
    m.expert_ffn_size = j.at("expert_ffn_size").get<int64_t>();
    m.shared_experts = j.value("shared_experts", int64_t{0});
    m.shared_expert_ffn_size = j.value("shared_expert_ffn_size", int64_t{0});
    m.router_scoring = j.value("router", "softmax") == "sigmoid" ? RouterScoring::kSigmoid
                                                                 : RouterScoring::kSoftmax;
    m.normalize_topk = j.value("normalize_topk", true);
    return m;
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("model JSON: ", e.what()));
  }
}

nlohmann::json WorkloadToJson(const WorkloadConfig& c) {
  std::vector<std::string> phases;
  for (ServingPhase p : c.phases) phases.emplace_back(ServingPhaseName(p));
  nlohmann::json routing = {{"mode", RoutingModeName(c.routing.mode)}};
  if (c.routing.mode == RoutingMode::kZipf) routing["zipf_exponent"] = c.routing.zipf_exponent;
  if (!c.routing.histogram.empty()) routing["histogram"] = c.routing.histogram;
  return nlohmann::json{
      {"model", ModelToJson(c.model)},
      {"scale", c.scale},
      {"layers", c.layers},
      {"dtype", DtypeName(c.dtype)},
      {"batches", c.batches},
      {"phases", phases},
      {"layer", LayerKindName(c.layer)},
      {"lm_head", c.lm_head},
      {"dense_layers", c.dense_layers},
      {"prompt_len", c.prompt_len},
      {"output_len", c.output_len},
      {"iterations", c.iterations},
      {"warmup", c.warmup},
      {"seed", c.seed},
      {"routing", routing},
      {"check", c.check},
      {"tolerance", c.tolerance > 0 ? c.tolerance : DefaultTolerance(c.dtype)},
      {"threads_per_rank", c.threads_per_rank},
      {"comm_timeout_s", c.comm_timeout_s},
  };
}

}  // namespace moecap
