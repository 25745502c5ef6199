// What one rank counts for one step, with the metric core's formula (common/metrics.h
// CountMoeBlocks), split so that the ranks' counts add up to the cluster's exactly:
// - router and shared-expert FLOPs: the rank's own tokens;
// - routed-expert FLOPs: the token-expert pairs the rank's experts computed;
// - routed-expert bytes: the rank's experts that received tokens (Σ over ranks = Σ_l A_l);
// - router and shared-expert bytes: their weights are replicated on every rank, but METRICS.md's
//   W(A) counts them once, so they are attributed to one rank (rank 0); what each rank really
//   read is reported apart, as `physical`.
#ifndef MOECAP_AGENT_WORKLOAD_COUNTING_H_
#define MOECAP_AGENT_WORKLOAD_COUNTING_H_

#include <cstdint>

#include "agent/workload/config.h"
#include "agent/workload/moe_layer.h"
#include "common/dtype.h"
#include "common/metrics.h"
#include "common/model.h"

namespace moecap {

// Bytes on the wire in one step, named as DeepEP and nccl-tests name them: "logical" counts every
// row a rank sends, its own included (DeepEP's logical bandwidth); "remote" leaves out what a rank
// sends itself (DeepEP issue #51). The bandwidths they make are common/parallel_metrics.h's.
struct CommBytes {
  double dispatch_logical = 0;
  double dispatch_remote = 0;
  double combine_logical = 0;
  double combine_remote = 0;
  double count_exchange = 0;  // the per-expert count all-to-alls
};

struct RankCounts {
  Counts counted;   // this rank's share of the cluster count (see the file comment)
  Counts physical;  // what this rank really read and computed (replicated weights on each rank)
  // Bytes of token rows entering and leaving the expert GEMMs (routed and shared) in the compute
  // dtype. Informational: METRICS.md does not count activations.
  double activation_bytes = 0;
  CommBytes comm;
};

// A decoder layer's attention on this rank: its sequences and the pass (data-parallel attention:
// the rank attends over its own sequences with all the attention weights, replicated).
struct AttentionShare {
  SequenceBlock sequences;
  PassKind kind = PassKind::kDecode;
  bool lm_head = false;      // the LM head over each sequence's last position too
  int64_t dense_layers = 0;  // the stack's dense-FFN layers beside its MoE layers
};

// `counts_replicated`: whether this rank carries the replicated router, shared-expert, attention,
// dense-FFN and LM head weight bytes in `counted` (exactly one rank of a job must). `attention`
// (decoder layers; null: the MoE blocks alone) adds the rank's attention FLOPs, KV-cache bytes and
// score FLOPs (and its dense FFNs' and LM head's), as common/metrics.h's CountDecoderStep counts
// its sequences over the stack.
RankCounts CountRankStep(const ModelSpec& scaled, Dtype dtype, int64_t layers,
                         const StepTally& tally, bool counts_replicated,
                         const AttentionShare* attention = nullptr);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_COUNTING_H_
