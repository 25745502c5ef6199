// A registry holding every metric moecap declares (metric_names.h), each with at least one child
// at a fixed, exactly representable value. Used to check the exposition with promtool, to feed
// the Prometheus end-to-end test, and to give every dashboard query something to return.
#ifndef MOECAP_TESTS_E2E_EXAMPLE_METRICS_H_
#define MOECAP_TESTS_E2E_EXAMPLE_METRICS_H_

#include "absl/status/status.h"
#include "common/telemetry/registry.h"

namespace moecap::telemetry::testing {

// Registers kCoordinatorMetrics and kAgentMetrics into `registry` and fills them. The values a
// test may rely on: moecap_result_sparse_mbu{job_id="e2e-job",point="0",model="mixtral-8x7b",
// hardware="h100-sxm",phase="decode",batch="8"} = 0.4375 and the same series of
// moecap_result_sparse_mfu = 0.0625; every other value is likewise a short binary fraction.
absl::Status PopulateExampleMetrics(Registry& registry);

}  // namespace moecap::telemetry::testing

#endif  // MOECAP_TESTS_E2E_EXAMPLE_METRICS_H_
