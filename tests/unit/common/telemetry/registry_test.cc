// Tests of the registry: exact exposition text per metric kind, escaping, validation errors,
// child removal and exact sums under concurrent updates.
#include "common/telemetry/registry.h"

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moecap::telemetry {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(RegistryTest, CounterWithLabelsRendersSortedChildren) {
  Registry registry;
  absl::StatusOr<CounterFamily*> requests =
      registry.AddCounter("moecap_test_requests_total", "Requests handled.", {"method", "code"});
  ASSERT_TRUE(requests.ok()) << requests.status();
  (*(*requests)->WithLabels({"Submit", "OK"}))->Increment(3);
  (*(*requests)->WithLabels({"Cancel", "NOT_FOUND"}))->Increment();
  // Children are ordered by label values: ("Cancel", ...) before ("Submit", ...).
  EXPECT_EQ(registry.Render(),
            "# HELP moecap_test_requests_total Requests handled.\n"
            "# TYPE moecap_test_requests_total counter\n"
            "moecap_test_requests_total{method=\"Cancel\",code=\"NOT_FOUND\"} 1\n"
            "moecap_test_requests_total{method=\"Submit\",code=\"OK\"} 3\n");
}

TEST(RegistryTest, CounterIgnoresNegativeAndNanIncrements) {
  Counter counter;
  counter.Increment(2.5);
  counter.Increment(-1);
  counter.Increment(std::nan(""));
  EXPECT_EQ(counter.Value(), 2.5);
}

TEST(RegistryTest, UnlabelledGaugeIsExportedAtZeroBeforeItsFirstUpdate) {
  Registry registry;
  absl::StatusOr<GaugeFamily*> depth =
      registry.AddGauge("moecap_test_queue_depth", "Jobs waiting.");
  ASSERT_TRUE(depth.ok());
  EXPECT_EQ(registry.Render(),
            "# HELP moecap_test_queue_depth Jobs waiting.\n"
            "# TYPE moecap_test_queue_depth gauge\n"
            "moecap_test_queue_depth 0\n");
  std::shared_ptr<Gauge> gauge = *(*depth)->WithLabels({});
  gauge->Set(5);
  gauge->Decrement(2);
  gauge->Increment(0.5);  // 5 - 2 + 0.5 = 3.5
  EXPECT_THAT(registry.Render(), HasSubstr("\nmoecap_test_queue_depth 3.5\n"));
}

TEST(RegistryTest, LabelledFamilyWithoutChildrenHasOnlyHelpAndType) {
  Registry registry;
  ASSERT_TRUE(registry.AddGauge("moecap_test_agents", "Agents.", {"state"}).ok());
  EXPECT_EQ(registry.Render(),
            "# HELP moecap_test_agents Agents.\n"
            "# TYPE moecap_test_agents gauge\n");
}

TEST(RegistryTest, HistogramRendersCumulativeBucketsSumAndCount) {
  Registry registry;
  absl::StatusOr<HistogramFamily*> steps =
      registry.AddHistogram("moecap_test_step_seconds", "Step time.", {"phase"}, {0.125, 1, 8});
  ASSERT_TRUE(steps.ok()) << steps.status();
  std::shared_ptr<Histogram> decode = *(*steps)->WithLabels({"decode"});
  // 0.0625 and 0.125 fall in le=0.125 (bounds are inclusive), 0.5 in le=1, 16 only in +Inf.
  // Cumulative: 2, 3, 3, 4. Sum 0.0625 + 0.125 + 0.5 + 16 = 16.6875 (exact in binary).
  for (double v : {0.0625, 0.125, 0.5, 16.0}) decode->Observe(v);
  decode->Observe(std::nan(""));  // ignored
  EXPECT_EQ(registry.Render(),
            "# HELP moecap_test_step_seconds Step time.\n"
            "# TYPE moecap_test_step_seconds histogram\n"
            "moecap_test_step_seconds_bucket{phase=\"decode\",le=\"0.125\"} 2\n"
            "moecap_test_step_seconds_bucket{phase=\"decode\",le=\"1\"} 3\n"
            "moecap_test_step_seconds_bucket{phase=\"decode\",le=\"8\"} 3\n"
            "moecap_test_step_seconds_bucket{phase=\"decode\",le=\"+Inf\"} 4\n"
            "moecap_test_step_seconds_sum{phase=\"decode\"} 16.6875\n"
            "moecap_test_step_seconds_count{phase=\"decode\"} 4\n");
}

TEST(RegistryTest, UnlabelledHistogramPutsLeAlone) {
  Registry registry;
  absl::StatusOr<HistogramFamily*> latency =
      registry.AddHistogram("moecap_test_latency_seconds", "Latency.", {}, {1});
  ASSERT_TRUE(latency.ok());
  (*(*latency)->WithLabels({}))->Observe(2);
  EXPECT_EQ(registry.Render(),
            "# HELP moecap_test_latency_seconds Latency.\n"
            "# TYPE moecap_test_latency_seconds histogram\n"
            "moecap_test_latency_seconds_bucket{le=\"1\"} 0\n"
            "moecap_test_latency_seconds_bucket{le=\"+Inf\"} 1\n"
            "moecap_test_latency_seconds_sum 2\n"
            "moecap_test_latency_seconds_count 1\n");
}

TEST(RegistryTest, SummaryRendersQuantilesSumAndCount) {
  Registry registry;
  absl::StatusOr<SummaryFamily*> result = registry.AddSummary(
      "moecap_test_result_step_seconds", "Result step time.", {"job_id"}, {0.5, 0.9, 0.99});
  ASSERT_TRUE(result.ok()) << result.status();
  std::shared_ptr<Summary> job = *(*result)->WithLabels({"j1"});
  ASSERT_TRUE(job->Set({0.25, 0.5, 0.75}, 12.5, 40).ok());
  EXPECT_EQ(job->Set({0.25}, 1, 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.Render(),
            "# HELP moecap_test_result_step_seconds Result step time.\n"
            "# TYPE moecap_test_result_step_seconds summary\n"
            "moecap_test_result_step_seconds{job_id=\"j1\",quantile=\"0.5\"} 0.25\n"
            "moecap_test_result_step_seconds{job_id=\"j1\",quantile=\"0.9\"} 0.5\n"
            "moecap_test_result_step_seconds{job_id=\"j1\",quantile=\"0.99\"} 0.75\n"
            "moecap_test_result_step_seconds_sum{job_id=\"j1\"} 12.5\n"
            "moecap_test_result_step_seconds_count{job_id=\"j1\"} 40\n");
}

TEST(RegistryTest, UnsetSummaryQuantilesAreNaN) {
  Registry registry;
  absl::StatusOr<SummaryFamily*> result = registry.AddSummary("moecap_test_s", "S.", {}, {0.5});
  ASSERT_TRUE(result.ok());
  EXPECT_THAT(registry.Render(), HasSubstr("moecap_test_s{quantile=\"0.5\"} NaN\n"));
}

TEST(RegistryTest, FamiliesAreSortedByName) {
  Registry registry;
  ASSERT_TRUE(registry.AddGauge("moecap_b", "B.").ok());
  ASSERT_TRUE(registry.AddCounter("moecap_a_total", "A.").ok());
  ASSERT_TRUE(registry.AddGauge("moecap_c", "C.").ok());
  EXPECT_EQ(registry.Render(),
            "# HELP moecap_a_total A.\n# TYPE moecap_a_total counter\nmoecap_a_total 0\n"
            "# HELP moecap_b B.\n# TYPE moecap_b gauge\nmoecap_b 0\n"
            "# HELP moecap_c C.\n# TYPE moecap_c gauge\nmoecap_c 0\n");
}

TEST(RegistryTest, EscapesLabelValuesAndHelp) {
  Registry registry;
  absl::StatusOr<GaugeFamily*> info =
      registry.AddGauge("moecap_test_info", "Path C:\\models\nsecond \"line\".", {"model"});
  ASSERT_TRUE(info.ok()) << info.status();
  (*(*info)->WithLabels({"a\\b\"c\nd"}))->Set(1);
  EXPECT_EQ(registry.Render(),
            "# HELP moecap_test_info Path C:\\\\models\\nsecond \"line\".\n"
            "# TYPE moecap_test_info gauge\n"
            "moecap_test_info{model=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(RegistryTest, RemovedChildIsNoLongerExportedButStaysUsable) {
  Registry registry;
  GaugeFamily* mbu = *registry.AddGauge("moecap_test_mbu", "MBU.", {"job_id"});
  std::shared_ptr<Gauge> j1 = *mbu->WithLabels({"j1"});
  (*mbu->WithLabels({"j2"}))->Set(0.5);
  j1->Set(0.25);
  EXPECT_EQ(mbu->size(), 2u);
  EXPECT_TRUE(mbu->Remove({"j1"}));
  EXPECT_FALSE(mbu->Remove({"j1"}));
  j1->Set(0.75);  // the holder's pointer is still valid; the series is simply gone
  const std::string text = registry.Render();
  EXPECT_THAT(text, Not(HasSubstr("j1")));
  EXPECT_THAT(text, HasSubstr("moecap_test_mbu{job_id=\"j2\"} 0.5\n"));
  // Asking again creates a fresh child at zero.
  EXPECT_EQ((*mbu->WithLabels({"j1"}))->Value(), 0);
  mbu->RemoveAll();
  EXPECT_EQ(mbu->size(), 0u);
}

TEST(RegistryTest, RemoveAllKeepsTheSingleChildOfAnUnlabelledFamily) {
  Registry registry;
  GaugeFamily* depth = *registry.AddGauge("moecap_test_depth", "Depth.");
  (*depth->WithLabels({}))->Set(4);
  depth->RemoveAll();
  EXPECT_EQ(depth->size(), 1u);
  EXPECT_THAT(registry.Render(), HasSubstr("\nmoecap_test_depth 0\n"));
}

TEST(RegistryTest, SameLabelValuesReturnTheSameChild) {
  Registry registry;
  CounterFamily* family = *registry.AddCounter("moecap_test_total", "T.", {"a"});
  EXPECT_EQ(*family->WithLabels({"x"}), *family->WithLabels({"x"}));
  EXPECT_NE(*family->WithLabels({"x"}), *family->WithLabels({"y"}));
}

TEST(RegistryValidationTest, RejectsInvalidNamesWithInvalidArgument) {
  Registry registry;
  EXPECT_EQ(registry.AddCounter("bad-name_total", "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.AddGauge("", "x").status().code(), absl::StatusCode::kInvalidArgument);
  absl::Status bad_label = registry.AddGauge("moecap_ok", "x", {"bad label"}).status();
  EXPECT_EQ(bad_label.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_label.message(), HasSubstr("moecap_ok: label name \"bad label\""));
  EXPECT_THAT(registry.AddGauge("moecap_ok", "x", {"__name__"}).status().message(),
              HasSubstr("reserved"));
  EXPECT_THAT(registry.AddGauge("moecap_ok", "x", {"a", "a"}).status().message(),
              HasSubstr("appears twice"));
  EXPECT_THAT(registry.AddHistogram("moecap_h", "x", {"le"}, {1}).status().message(),
              HasSubstr("reserved"));
  EXPECT_THAT(registry.AddSummary("moecap_s", "x", {"quantile"}, {0.5}).status().message(),
              HasSubstr("reserved"));
  EXPECT_EQ(registry.AddGauge("moecap_ok", "bad \xff help").status().code(),
            absl::StatusCode::kInvalidArgument);
  // Nothing was registered by the failed calls.
  EXPECT_EQ(registry.Render(), "");
}

TEST(RegistryValidationTest, RejectsBadBucketsAndQuantiles) {
  Registry registry;
  EXPECT_THAT(registry.AddHistogram("moecap_h", "x", {}, {1, 1}).status().message(),
              HasSubstr("strictly increasing"));
  EXPECT_THAT(registry.AddHistogram("moecap_h", "x", {}, {2, 1}).status().message(),
              HasSubstr("bound 1 (1) follows 2"));
  EXPECT_THAT(
      registry.AddHistogram("moecap_h", "x", {}, {1, std::numeric_limits<double>::infinity()})
          .status()
          .message(),
      HasSubstr("must be finite"));
  EXPECT_THAT(registry.AddHistogram("moecap_h", "x", {}, {std::nan("")}).status().message(),
              HasSubstr("must be finite"));
  EXPECT_THAT(registry.AddSummary("moecap_s", "x", {}, {}).status().message(),
              HasSubstr("at least one quantile"));
  EXPECT_THAT(registry.AddSummary("moecap_s", "x", {}, {0.5, 1.5}).status().message(),
              HasSubstr("[0, 1]"));
  EXPECT_THAT(registry.AddSummary("moecap_s", "x", {}, {0.9, 0.5}).status().message(),
              HasSubstr("strictly increasing"));
}

TEST(RegistryValidationTest, RejectsNameCollisionsIncludingImpliedSeries) {
  Registry registry;
  ASSERT_TRUE(registry.AddHistogram("moecap_lat_seconds", "x", {}, {1}).ok());
  EXPECT_EQ(registry.AddGauge("moecap_lat_seconds", "x").status().code(),
            absl::StatusCode::kAlreadyExists);
  // A histogram writes moecap_lat_seconds_count: no other family may use that name.
  absl::Status taken = registry.AddCounter("moecap_lat_seconds_count", "x").status();
  EXPECT_EQ(taken.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(taken.message(), HasSubstr("already used by the histogram moecap_lat_seconds"));
  // And the other way round: a summary named moecap_x would write moecap_x_sum.
  ASSERT_TRUE(registry.AddGauge("moecap_x_sum", "x").ok());
  EXPECT_EQ(registry.AddSummary("moecap_x", "x", {}, {0.5}).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST(RegistryValidationTest, RejectsWrongLabelCountAndInvalidUtf8Values) {
  Registry registry;
  CounterFamily* family = *registry.AddCounter("moecap_t_total", "x", {"job_id", "phase"});
  absl::Status wrong_count = family->WithLabels({"j1"}).status();
  EXPECT_EQ(wrong_count.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong_count.message(),
              HasSubstr("moecap_t_total: expected 2 label values (job_id, phase), got 1"));
  absl::Status bad_utf8 = family->WithLabels({"j1", "dec\xc3"}).status();
  EXPECT_EQ(bad_utf8.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_utf8.message(), HasSubstr("moecap_t_total label phase: not valid UTF-8"));
  EXPECT_EQ(family->size(), 0u);
}

TEST(RegistryLookupTest, GetReturnsTheFamilyOfTheRightType) {
  Registry registry;
  GaugeFamily* gauge = *registry.AddGauge("moecap_g", "G.");
  absl::StatusOr<GaugeFamily*> found = registry.GetGauge("moecap_g");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, gauge);
  EXPECT_EQ(registry.GetCounter("moecap_g").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(registry.GetHistogram("moecap_missing").status().code(), absl::StatusCode::kNotFound);
}

TEST(RegistryTest, RegisterFromDefinitions) {
  static constexpr double kBuckets[] = {1, 2};
  static constexpr double kQuantiles[] = {0.5};
  static constexpr MetricDef kDefs[] = {
      {"moecap_d_total", MetricType::kCounter, "C.", "a,b"},
      {"moecap_d_seconds", MetricType::kHistogram, "H.", "", kBuckets},
      {"moecap_d_summary_seconds", MetricType::kSummary, "S.", "a", {}, kQuantiles},
  };
  Registry registry;
  ASSERT_TRUE(registry.Register(kDefs).ok());
  CounterFamily* counter = *registry.GetCounter("moecap_d_total");
  EXPECT_EQ(counter->label_names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(counter->help(), "C.");
  EXPECT_THAT(registry.Render(), HasSubstr("moecap_d_seconds_bucket{le=\"2\"} 0\n"));
  EXPECT_TRUE(registry.GetSummary("moecap_d_summary_seconds").ok());
  // Registering the same table twice fails on the first duplicate.
  EXPECT_EQ(registry.Register(kDefs).code(), absl::StatusCode::kAlreadyExists);
}

TEST(RegistryTest, CollectorsRunBeforeEachRender) {
  Registry registry;
  GaugeFamily* age = *registry.AddGauge("moecap_test_age_seconds", "Age.");
  int renders = 0;
  registry.AddCollector([&] { (*age->WithLabels({}))->Set(++renders * 10); });
  EXPECT_THAT(registry.Render(), HasSubstr("moecap_test_age_seconds 10\n"));
  EXPECT_THAT(registry.Render(), HasSubstr("moecap_test_age_seconds 20\n"));
}

TEST(RegistryConcurrencyTest, ConcurrentUpdatesSumExactly) {
  Registry registry;
  CounterFamily* bytes = *registry.AddCounter("moecap_c_bytes_total", "B.", {"phase"});
  HistogramFamily* steps = *registry.AddHistogram("moecap_c_step_seconds", "S.", {"phase"}, {1});
  GaugeFamily* busy = *registry.AddGauge("moecap_c_busy", "G.", {"agent"});
  constexpr int kThreads = 4;
  constexpr int kIterations = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIterations; ++i) {
        // Look the child up every time, so lookups and creations race with updates.
        (*bytes->WithLabels({"decode"}))->Increment(2);
        (*steps->WithLabels({"decode"}))->Observe(i % 2 == 0 ? 0.5 : 1.5);
        (*busy->WithLabels({absl::StrCat("agent-", t)}))->Increment();
        if (i % 1000 == 0) (void)registry.Render();  // scrapes in the middle of it all
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  // 4 threads x 20000 increments of 2 = 160000 (exact: small integers in a double).
  EXPECT_EQ((*bytes->WithLabels({"decode"}))->Value(), 160000);
  const Histogram::Snapshot snapshot = (*steps->WithLabels({"decode"}))->Read();
  EXPECT_EQ(snapshot.count, 80000u);
  EXPECT_EQ(snapshot.cumulative_counts[0], 40000u);    // the 0.5s, half of them
  EXPECT_EQ(snapshot.sum, 40000 * 0.5 + 40000 * 1.5);  // 80000
  EXPECT_EQ(busy->size(), static_cast<size_t>(kThreads));
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ((*busy->WithLabels({absl::StrCat("agent-", t)}))->Value(), kIterations);
  }
}

}  // namespace
}  // namespace moecap::telemetry
