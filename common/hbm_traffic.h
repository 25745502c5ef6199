// METRICS.md v2 "Physical HBM traffic under sharding": the bytes the devices really read when the
// model is laid out over them, beside the model's bytes (which S-MBU counts once, however they
// are laid out, so that layouts compare). The difference is the `replication` term.
#ifndef MOECAP_COMMON_HBM_TRAFFIC_H_
#define MOECAP_COMMON_HBM_TRAFFIC_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "common/metrics.h"
#include "common/model.h"
#include "common/validity.h"
#include "nlohmann/json.hpp"

namespace moecap {

// Tensor parallel `t` over the attention, G/t data-parallel attention replicas, experts spread
// over all G devices. With `dp_attention` the router, shared experts and dense FFN go with the
// attention replicas (SGLang's --enable-dp-attention); otherwise they are sharded over G.
struct ParallelLayout {
  int64_t tensor_parallel = 1;
  bool dp_attention = false;
};

// t ≥ 1 and divides G. Errors name the field as AnalysisInput's do ("tp: 3 does not divide ...").
absl::Status ValidateLayout(const ParallelLayout& layout, int64_t devices);

// How many times each part is read, relative to the once-counted model bytes.
struct ReplicationFactors {
  double attention = 1;  // r = G/t: each replica reads its attention (and LM head)
  double dense = 1;      // router, shared experts, dense FFN: r with dp_attention, else 1
  double kv_cache = 1;   // GQA: t/n_kv when n_kv < t (a KV head on several ranks); MLA: t
};
ReplicationFactors ReplicationOf(const ModelSpec& model, const ParallelLayout& layout,
                                 int64_t devices);

struct HbmTraffic {
  double model_bytes = 0;        // the counts' bytes, as S-MBU counts them
  double replication_bytes = 0;  // read beyond them
  double bytes() const { return model_bytes + replication_bytes; }
  std::optional<double> utilization;  // bytes / (time · G · BW), with a time
};

// The traffic of `counts` (one pass or a phase's sum: the factors are linear) under `layout`;
// the utilisation when `time_s` is given, checked into `validity` as "<phase> HBM utilisation".
HbmTraffic PhysicalTraffic(const ModelSpec& model, const Counts& counts,
                           const ParallelLayout& layout, int64_t devices,
                           std::optional<double> time_s, double peak_bandwidth_bytes_s,
                           const std::string& phase, Validity* validity);

// {"tensor_parallel": 4, "dp_attention": true, "attention_replicas": 2, "kv_copies": 4}.
nlohmann::json LayoutJson(const ModelSpec& model, const ParallelLayout& layout, int64_t devices);
// {"model_bytes": .., "replication_bytes": .., "hbm_bytes": .., "hbm_utilization": ..|null}.
nlohmann::json HbmTrafficJson(const HbmTraffic& traffic);

}  // namespace moecap

#endif  // MOECAP_COMMON_HBM_TRAFFIC_H_
