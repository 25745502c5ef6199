// SlowestProgress.
#include "common/aggregate/progress.h"

#include <algorithm>
#include <tuple>

namespace moecap {
namespace {

int StageOrder(v1::Progress::Stage stage) {
  switch (stage) {
    case v1::Progress::STAGE_SETUP:
      return 1;
    case v1::Progress::STAGE_WARMUP:
      return 2;
    case v1::Progress::STAGE_CHECK:
      return 3;
    case v1::Progress::STAGE_MEASURE:
      return 4;
    case v1::Progress::STAGE_REPORT:
      return 5;
    default:
      return 0;
  }
}

}  // namespace

v1::Progress SlowestProgress(const std::vector<v1::Progress>& reports) {
  v1::Progress out;
  if (reports.empty()) return out;
  const auto position = [](const v1::Progress& p) {
    return std::make_tuple(p.iterations_done(), StageOrder(p.stage()));
  };
  int64_t total = 0;
  int32_t reporting = 0;
  const v1::Progress* slowest = &reports.front();
  for (const v1::Progress& p : reports) {
    if (position(p) < position(*slowest)) slowest = &p;
    total = std::max(total, p.iterations_total());
    reporting += std::max(1, p.ranks_reporting());
  }
  out = *slowest;
  out.set_iterations_total(total);
  out.set_ranks_reporting(reporting);
  return out;
}

}  // namespace moecap
