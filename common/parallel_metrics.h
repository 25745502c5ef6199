// The expert-parallel exchange's figures, defined once (the rank reports, the aggregator and
// moecap-bench read them here): the all-to-alls' bandwidths, named as nccl-tests and DeepEP name
// them, and the routing imbalance of an expert histogram.
//
// Bandwidths (nccl-tests doc/PERFORMANCE.md): algbw = bytes / time; for an all-to-all over n ranks
// busbw = algbw · (n − 1) / n, the share of each rank's bytes that crosses a link. DeepEP's
// "remote" bandwidth (its issue #51) leaves out what a rank sends itself instead. Over a cluster
// the bytes are the busiest rank's (the one the links wait for) and the time the slowest rank's.
#ifndef MOECAP_COMMON_PARALLEL_METRICS_H_
#define MOECAP_COMMON_PARALLEL_METRICS_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace moecap {

// algbw · (n − 1) / n, as nccl-tests computes an all-to-all's busbw: 0 for one rank (nothing
// crosses a link).
double BusBandwidth(double algbw, int ranks);

// One all-to-all's figures over `ranks` ranks, from each rank's bytes per step.
struct AllToAllFigures {
  double logical_bytes = 0;  // Σ over ranks, self-sends included
  double remote_bytes = 0;   // Σ over ranks, self-sends left out
  double seconds = 0;        // the time base given
  double algbw = 0;          // max over ranks of logical bytes / seconds
  double busbw = 0;          // BusBandwidth(algbw, n)
  double remote_bw = 0;      // max over ranks of remote bytes / seconds
};

// `logical` and `remote` hold one entry per rank (the same length); a zero `seconds` leaves the
// bandwidths zero.
AllToAllFigures AllToAllBandwidth(absl::Span<const double> logical, absl::Span<const double> remote,
                                  double seconds);

// The routing imbalance of one layer: the busiest expert's tokens ÷ the mean tokens per expert
// over all `experts` experts (1: perfectly even; E: one expert takes everything). `busiest` may be
// the busiest of a subset (a node's experts) against the whole layer's mean. 0 without tokens.
double ExpertImbalance(double busiest, double all_tokens, int64_t experts);

struct RoutingImbalance {
  std::vector<double> per_layer;
  double max = 0;  // the largest layer's: the step waits for its most loaded layer
};

// counts[l][e]: tokens (token-expert pairs) of expert e in layer l, every expert of the layer.
RoutingImbalance ImbalanceOf(const std::vector<std::vector<int64_t>>& counts);

}  // namespace moecap

#endif  // MOECAP_COMMON_PARALLEL_METRICS_H_
