#include "common/hbm_traffic.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace moecap {

absl::Status ValidateLayout(const ParallelLayout& layout, int64_t devices) {
  if (layout.tensor_parallel < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("tp: must be at least 1, got ", layout.tensor_parallel));
  }
  if (devices % layout.tensor_parallel != 0) {
    return absl::InvalidArgumentError(absl::StrCat("tp: ", layout.tensor_parallel,
                                                   " does not divide the device count ", devices,
                                                   " (the attention replicas are G/t)"));
  }
  return absl::OkStatus();
}

ReplicationFactors ReplicationOf(const ModelSpec& model, const ParallelLayout& layout,
                                 int64_t devices) {
  ReplicationFactors f;
  const double t = static_cast<double>(layout.tensor_parallel);
  const double replicas = static_cast<double>(devices) / t;
  f.attention = replicas;
  f.dense = layout.dp_attention ? replicas : 1;
  if (model.attention == AttentionKind::kMla) {
    f.kv_cache = t;  // the latent cache is not split by head: whole on every rank of the group
  } else {
    const double kv_heads = static_cast<double>(model.gqa.kv_heads);
    f.kv_cache = kv_heads < t ? t / kv_heads : 1;
  }
  return f;
}

HbmTraffic PhysicalTraffic(const ModelSpec& model, const Counts& counts,
                           const ParallelLayout& layout, int64_t devices,
                           std::optional<double> time_s, double peak_bandwidth_bytes_s,
                           const std::string& phase, Validity* validity) {
  const ReplicationFactors f = ReplicationOf(model, layout, devices);
  HbmTraffic h;
  h.model_bytes = counts.bytes();
  // The LM head goes with the attention replicas: each serves its own sequences' logits.
  h.replication_bytes =
      (f.attention - 1) * (counts[Term::kAttention].bytes + counts[Term::kLmHead].bytes) +
      (f.dense - 1) * (counts[Term::kRouter].bytes + counts[Term::kSharedExperts].bytes +
                       counts[Term::kDenseFfn].bytes) +
      (f.kv_cache - 1) * counts[Term::kKvCache].bytes;
  if (time_s.has_value()) {
    h.utilization =
        Utilization(h.bytes(), *time_s, static_cast<double>(devices), peak_bandwidth_bytes_s);
    if (validity != nullptr) {
      CheckUtilization(absl::StrCat(phase, " HBM utilisation"), *h.utilization, validity);
    }
  }
  return h;
}

nlohmann::json LayoutJson(const ModelSpec& model, const ParallelLayout& layout, int64_t devices) {
  const ReplicationFactors f = ReplicationOf(model, layout, devices);
  return {{"tensor_parallel", layout.tensor_parallel},
          {"dp_attention", layout.dp_attention},
          {"attention_replicas", f.attention},
          {"dense_copies", f.dense},
          {"kv_copies", f.kv_cache}};
}

nlohmann::json HbmTrafficJson(const HbmTraffic& h) {
  return {{"model_bytes", h.model_bytes},
          {"replication_bytes", h.replication_bytes},
          {"hbm_bytes", h.bytes()},
          {"hbm_utilization",
           h.utilization.has_value() ? nlohmann::json(*h.utilization) : nlohmann::json(nullptr)}};
}

}  // namespace moecap
