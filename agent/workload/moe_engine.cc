// The tally and exchange-size arithmetic every MoeEngine shares.
#include "agent/workload/moe_engine.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace moecap {

StepTally StartTally(int64_t own_tokens, int64_t layers, int64_t experts) {
  StepTally tally;
  tally.own_tokens = own_tokens;
  tally.histogram.assign(static_cast<size_t>(layers),
                         std::vector<int64_t>(static_cast<size_t>(experts), 0));
  return tally;
}

void TallyLayer(int64_t layer, int rank, int world, int64_t own_tokens, int64_t top_k,
                absl::Span<const int64_t> send_counts, absl::Span<const int64_t> recv_counts,
                StepTally& tally) {
  const int64_t experts = static_cast<int64_t>(send_counts.size());
  const int64_t local = experts / world;
  std::vector<int64_t>& hist = tally.histogram[static_cast<size_t>(layer)];
  for (int64_t e = 0; e < experts; ++e) hist[e] += send_counts[e];
  int64_t to_self = 0;
  for (int64_t j = 0; j < local; ++j) to_self += send_counts[rank * local + j];
  int64_t received_rows = 0;
  int64_t local_activated = 0;
  for (int64_t j = 0; j < local; ++j) {
    int64_t rows = 0;
    for (int q = 0; q < world; ++q) rows += recv_counts[q * local + j];
    received_rows += rows;
    if (rows > 0) ++local_activated;  // an expert without tokens reads no weights
  }
  tally.pairs_computed += received_rows;
  tally.local_activated_sum += local_activated;
  tally.dispatch_rows_sent += own_tokens * top_k;
  tally.dispatch_rows_to_self += to_self;
  tally.combine_rows_sent += received_rows;
  tally.combine_rows_to_self += to_self;
  tally.count_exchange_bytes += experts * static_cast<int64_t>(sizeof(int64_t));
}

int64_t PeerBytes(absl::Span<const int64_t> send_counts, absl::Span<const int64_t> recv_counts,
                  int world, size_t row_bytes, std::vector<int64_t>& send_bytes,
                  std::vector<int64_t>& recv_bytes) {
  const int64_t local = static_cast<int64_t>(send_counts.size()) / world;
  const int64_t rb = static_cast<int64_t>(row_bytes);
  send_bytes.assign(static_cast<size_t>(world), 0);
  recv_bytes.assign(static_cast<size_t>(world), 0);
  int64_t received_rows = 0;
  for (int q = 0; q < world; ++q) {
    for (int64_t j = 0; j < local; ++j) {
      send_bytes[q] += send_counts[q * local + j] * rb;
      recv_bytes[q] += recv_counts[q * local + j] * rb;
      received_rows += recv_counts[q * local + j];
    }
  }
  return received_rows;
}

int64_t MaxReceivedRows(int64_t top_k, int64_t local_experts, int64_t global_tokens) {
  return global_tokens * std::min(top_k, local_experts);
}

absl::Status CheckRoutingOverrides(const std::vector<std::vector<int32_t>>& overrides,
                                   int64_t layers, int64_t own_tokens, int64_t top_k) {
  if (overrides.empty()) return absl::OkStatus();
  if (static_cast<int64_t>(overrides.size()) != layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("routing overrides for ", overrides.size(), " layers, expected ", layers));
  }
  for (const std::vector<int32_t>& layer : overrides) {
    if (static_cast<int64_t>(layer.size()) != own_tokens * top_k) {
      return absl::InvalidArgumentError(absl::StrCat("routing overrides: ", layer.size(),
                                                     " choices in a layer, expected ",
                                                     own_tokens * top_k));
    }
  }
  return absl::OkStatus();
}

}  // namespace moecap
