// The read side of the JobService: views, results, ListJobs' page request and filters.
#include "coordinator/job_queries.h"

#include <gtest/gtest.h>

namespace moecap::coordinator {
namespace {

v1::Job AJob() {
  v1::Job job;
  job.set_id("job-000003");
  job.set_name("n");
  job.set_model("mixtral-8x7b");
  job.set_state(v1::JOB_STATE_RUNNING);
  job.set_plan_yaml("name: n\n");
  job.mutable_plan()->set_name("n");
  (*job.mutable_labels())["team"] = "perf";
  job.add_history();
  job.add_points()->mutable_result()->set_point_index(0);
  job.add_points();  // no result yet
  return job;
}

TEST(JobQueriesTest, TheBasicViewDropsPlanPointsAndHistory) {
  const v1::Job basic = JobInView(AJob(), v1::JOB_VIEW_BASIC);
  EXPECT_FALSE(basic.has_plan());
  EXPECT_TRUE(basic.plan_yaml().empty());
  EXPECT_EQ(basic.points_size(), 0);
  EXPECT_EQ(basic.history_size(), 0);
  EXPECT_EQ(basic.labels().at("team"), "perf");
  EXPECT_EQ(JobInView(AJob(), v1::JOB_VIEW_FULL).points_size(), 2);
}

TEST(JobQueriesTest, ResultsHoldOnlyPointsThatHaveOne) {
  const v1::GetResultsResponse r = ResultsOf(AJob());
  EXPECT_EQ(r.job_id(), "job-000003");
  EXPECT_EQ(r.results_size(), 1);
  EXPECT_EQ(r.labels().at("team"), "perf");
  EXPECT_EQ(r.plan().name(), "n");
  EXPECT_FALSE(r.has_placement());
  v1::Job queued = AJob();
  queued.mutable_placement()->set_reason("needs 2 cpu agents");
  EXPECT_EQ(ResultsOf(queued).placement().reason(), "needs 2 cpu agents");
}

TEST(JobQueriesTest, PageSizeAndTokenAreCheckedAndBounded) {
  v1::ListJobsRequest req;
  EXPECT_EQ(ParseJobPage(req)->page_size, 100);
  EXPECT_EQ(ParseJobPage(req)->before, INT64_MAX);
  req.set_page_size(5000);
  EXPECT_EQ(ParseJobPage(req)->page_size, 1000);
  req.set_page_token("42");
  EXPECT_EQ(ParseJobPage(req)->before, 42);
  req.set_page_token("soon");
  EXPECT_NE(ParseJobPage(req).status().message().find("field 'page_token'"), std::string::npos);
  req.set_page_token("0");
  EXPECT_FALSE(ParseJobPage(req).ok());
  req.clear_page_token();
  req.set_page_size(-1);
  EXPECT_NE(ParseJobPage(req).status().message().find("field 'page_size'"), std::string::npos);
}

TEST(JobQueriesTest, FiltersMatchStatesAndEveryLabel) {
  v1::ListJobsRequest req;
  EXPECT_TRUE(MatchesFilters(AJob(), req));
  req.add_states(v1::JOB_STATE_QUEUED);
  EXPECT_FALSE(MatchesFilters(AJob(), req));
  req.add_states(v1::JOB_STATE_RUNNING);
  EXPECT_TRUE(MatchesFilters(AJob(), req));
  (*req.mutable_labels())["team"] = "perf";
  EXPECT_TRUE(MatchesFilters(AJob(), req));
  (*req.mutable_labels())["owner"] = "x";
  EXPECT_FALSE(MatchesFilters(AJob(), req));
}

}  // namespace
}  // namespace moecap::coordinator
