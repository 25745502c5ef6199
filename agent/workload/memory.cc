// The memory estimate, from the same size functions the allocating code uses.
#include "agent/workload/memory.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/workload/attention.h"
#include "agent/workload/dense_ffn.h"
#include "agent/workload/moe_layer.h"
#include "agent/workload/reference.h"
#include "agent/workload/weights.h"

namespace moecap {
namespace {
std::string GiB(int64_t bytes) {
  return absl::StrFormat("%.2f GiB", static_cast<double>(bytes) / (1LL << 30));
}
}  // namespace

MemoryEstimate EstimateMemory(const WorkloadConfig& config, int world, int ranks_on_host) {
  const ModelSpec scaled = ScaledModel(config.model, config.scale);
  MemoryEstimate e;
  const bool decoder = config.layer == LayerKind::kDecoder;
  const int64_t stack = config.layers + (decoder ? config.dense_layers : 0);
  e.weights_per_rank =
      MoeWeights::BytesPerRank(scaled, config.layers, config.dtype, scaled.experts / world) +
      (decoder ? AttentionWeights::Bytes(scaled, stack, config.dtype, config.lm_head) +
                     DenseFfnLayers::Bytes(scaled, config.dense_layers, config.dtype)
               : 0);
  for (ServingPhase phase : config.phases) {
    for (int64_t batch : config.batches) {
      const int64_t tokens = TokensPerStep(config, phase, batch);
      // Rank 0 has the most tokens (and sequences).
      const int64_t own = RankRows(config, phase, batch, 0, world).count;
      int64_t per_point =
          ExpertParallelMoe::WorkBytes(scaled, config.dtype, own, tokens, world, decoder) +
          2 * own * scaled.hidden_size * 4 +                       // input and output
          2 * config.layers * own * scaled.experts_per_token * 4;  // overrides and record
      if (decoder) {
        // The KV caches of its sequences (B·(P + O/2)·L·kv·p over the ranks) and the scratch.
        per_point +=
            AttentionStack::CacheBytes(scaled, stack, config.dtype,
                                       RankSequences(config, phase, batch, 0, world)) +
            (config.lm_head ? RankSequences(config, phase, batch, 0, world).count *
                                  (scaled.vocab_size + scaled.hidden_size) * 4
                            : 0) +  // the logits
            (config.dense_layers > 0 ? DenseFfnLayers::WorkBytes(scaled, config.dtype, own) : 0);
      }
      e.work_per_rank = std::max(e.work_per_rank, per_point);
      if (config.check) {
        e.reference_per_rank =
            std::max(e.reference_per_rank, ReferenceWorkBytes(scaled, config.dtype, own));
      }
    }
  }
  e.per_rank = e.weights_per_rank + e.work_per_rank + e.reference_per_rank;
  e.ranks_on_host = ranks_on_host;
  e.host_total = e.per_rank * ranks_on_host;
  return e;
}

absl::Status CheckMemoryFits(const WorkloadConfig& config, const MemoryEstimate& e,
                             int64_t available_bytes) {
  const int64_t usable = available_bytes / 10 * 9;
  if (e.host_total <= usable) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "the plan does not fit in memory: it needs about ", GiB(e.host_total), " on this host (",
      e.ranks_on_host, " rank(s) × ", GiB(e.per_rank), ": weights ", GiB(e.weights_per_rank),
      " for ", config.layers, " MoE layer(s)",
      config.dense_layers > 0 ? absl::StrCat(" and ", config.dense_layers, " dense layer(s)") : "",
      " of ", config.model.name, " at scale 1/", config.scale, " in ", DtypeName(config.dtype),
      ", work buffers ", config.layer == LayerKind::kDecoder ? "and KV caches " : "",
      GiB(e.work_per_rank),
      config.check ? absl::StrCat(", check reference ", GiB(e.reference_per_rank)) : "",
      ") but only ", GiB(available_bytes), " is available (MemAvailable; 90% usable); ",
      "use fewer --layers or --dense-layers, a larger --scale, smaller --batch, --prompt-len or "
      "--output-len (plans: workload.layers, dense_layers, scale, batch_sizes, prompt_len, "
      "output_len)"));
}

}  // namespace moecap
