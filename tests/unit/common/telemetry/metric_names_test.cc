// Tests of the declared metric list (metric_names.h): it registers, follows Prometheus naming
// conventions, and matches the table in docs/monitoring.md row for row.
#include "common/telemetry/metric_names.h"

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/telemetry/registry.h"
#include "common/telemetry/text_format.h"
#include "gtest/gtest.h"

namespace moecap::telemetry {
namespace {

std::vector<MetricDef> AllDefs() {
  std::vector<MetricDef> defs(std::begin(kCoordinatorMetrics), std::end(kCoordinatorMetrics));
  defs.insert(defs.end(), std::begin(kAgentMetrics), std::end(kAgentMetrics));
  return defs;
}

TEST(MetricNamesTest, BothTablesRegisterTogether) {
  Registry registry;
  EXPECT_TRUE(registry.Register(kCoordinatorMetrics).ok());
  EXPECT_TRUE(registry.Register(kAgentMetrics).ok());
}

TEST(MetricNamesTest, NamesFollowPrometheusConventions) {
  for (const MetricDef& def : AllDefs()) {
    SCOPED_TRACE(std::string(def.name));
    EXPECT_TRUE(ValidateMetricName(def.name).ok());
    EXPECT_TRUE(absl::StartsWith(def.name, "moecap_"));
    EXPECT_EQ(absl::EndsWith(def.name, "_total"), def.type == MetricType::kCounter)
        << "counters, and only counters, end in _total";
    if (def.type == MetricType::kHistogram || def.type == MetricType::kSummary) {
      EXPECT_TRUE(absl::EndsWith(def.name, "_seconds")) << "our distributions are all times";
    }
    // Base units only: seconds and bytes, never their multiples (promtool lints the same).
    for (absl::string_view token : absl::StrSplit(def.name, '_')) {
      static const std::set<absl::string_view> kNonBaseUnits = {
          "ms", "us", "ns", "milliseconds", "microseconds", "nanoseconds", "minutes", "hours",
          "kb", "mb", "gb", "kilobytes",    "megabytes",    "gigabytes",   "bits",    "percent"};
      EXPECT_FALSE(kNonBaseUnits.count(token)) << token;
    }
    EXPECT_FALSE(absl::string_view(def.help).empty());
    EXPECT_TRUE(absl::EndsWith(def.help, ".") || absl::EndsWith(def.help, ")"));
    for (absl::string_view label : absl::StrSplit(def.labels, ',', absl::SkipEmpty())) {
      EXPECT_TRUE(ValidateLabelName(label).ok()) << label;
      // Prometheus sets `job` and `instance` on every scraped series; ours would be renamed.
      EXPECT_NE(label, "job");
      EXPECT_NE(label, "instance");
    }
  }
}

TEST(MetricNamesTest, AgentMetricsAllCarryTheAgentLabel) {
  // Dashboards break results down per node with `sum by (agent)`; every agent series needs it.
  for (const MetricDef& def : kAgentMetrics) {
    std::vector<absl::string_view> labels = absl::StrSplit(def.labels, ',');
    EXPECT_EQ(labels.front(), absl::string_view("agent")) << def.name;
  }
}

// One row of the metrics table in docs/monitoring.md:
// | `moecap_agents` | gauge | `state` | Registered agents ... |
struct DocRow {
  std::string type;
  std::string labels;  // comma-joined, as in MetricDef
};

std::map<std::string, DocRow> ReadDocTable(const std::string& path) {
  std::ifstream file(path);
  std::map<std::string, DocRow> rows;
  std::string line;
  while (std::getline(file, line)) {
    if (!absl::StartsWith(line, "| `moecap_")) continue;
    std::vector<std::string> cells = absl::StrSplit(line, '|');
    if (cells.size() < 5) continue;
    auto clean = [](std::string cell) {
      absl::string_view view = absl::StripAsciiWhitespace(cell);
      std::string out;
      for (char c : view) {
        if (c != '`' && c != ' ') out += c;
      }
      return out;
    };
    DocRow row{clean(cells[2]), clean(cells[3])};
    if (row.labels == "—" || row.labels == "-") row.labels.clear();
    rows[clean(cells[1])] = row;
  }
  return rows;
}

TEST(MetricNamesTest, DocsTableListsExactlyTheDeclaredMetrics) {
  // StrCat, not std::string + "...": GCC 12 reports a false -Warray-bounds on the latter here.
  const std::string path = absl::StrCat(MOECAP_SOURCE_DIR, "/docs/monitoring.md");
  std::map<std::string, DocRow> doc = ReadDocTable(path);
  ASSERT_FALSE(doc.empty()) << "no metric rows found in " << path;
  std::set<std::string> declared;
  for (const MetricDef& def : AllDefs()) {
    const std::string name(def.name);
    declared.insert(name);
    auto it = doc.find(name);
    if (it == doc.end()) {
      ADD_FAILURE() << name << " is declared in metric_names.h but missing from " << path;
      continue;
    }
    EXPECT_EQ(it->second.type, std::string(MetricTypeName(def.type))) << name;
    EXPECT_EQ(it->second.labels, std::string(def.labels)) << name;
  }
  for (const auto& [name, row] : doc) {
    EXPECT_TRUE(declared.count(name))
        << name << " is in " << path << " but not declared in metric_names.h";
  }
}

}  // namespace
}  // namespace moecap::telemetry
