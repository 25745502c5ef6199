// CoordinatorMetrics: the series docs/monitoring.md promises, with the values given.
#include "coordinator/coordinator_metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace moecap::coordinator {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

v1::PointResult Result(int point, double s_mbu) {
  v1::PointResult r;
  r.set_point_index(point);
  r.set_hardware("h100-sxm");
  r.set_devices(8);
  v1::PhaseResult* decode = r.add_phases();
  decode->set_phase(v1::PHASE_DECODE);
  decode->set_s_mbu(s_mbu);
  decode->set_s_mfu(0.01);
  decode->mutable_step_time()->set_mean(0.02);
  decode->mutable_step_time()->set_count(10);
  decode->mutable_step_time()->set_p50(0.019);
  decode->set_rank_step_time_ratio(1.25);
  v1::PhaseResult* prefill = r.add_phases();
  prefill->set_phase(v1::PHASE_PREFILL);
  prefill->mutable_step_time()->set_mean(0.5);
  r.mutable_cost()->set_usd_per_million_output_tokens(1.5);
  v1::NodeResult* n = r.add_nodes();
  n->set_agent_name("gpu-node-1");
  n->add_phases()->set_phase(v1::PHASE_DECODE);
  n->mutable_phases(0)->set_s_mbu(0.5);
  return r;
}

TEST(CoordinatorMetricsTest, ExportsResultsStatesAndCalls) {
  telemetry::Registry registry;
  std::unique_ptr<CoordinatorMetrics> m = *CoordinatorMetrics::Create(registry, 2);
  v1::PointWorkload w;
  w.set_batch_size(8);
  w.set_output_len(11);
  m->SetPointResult("job-000001", "mixtral-8x7b", w, Result(0, 0.42));
  m->JobSubmitted();
  m->JobFinished(v1::JOB_STATE_SUCCEEDED);
  m->RpcHandled("moecap.v1.JobService", "SubmitPlan", "unary", "OK", 0.003);
  m->SetAgents({{v1::AGENT_STATE_IDLE, 2}, {v1::AGENT_STATE_LOST, 1}},
               {{"a", true}, {"b", true}, {"c", false}});
  JobStats stats;
  stats.by_state[v1::JOB_STATE_QUEUED] = 3;
  stats.queue_depth = 3;
  stats.oldest_queued = absl::Seconds(12);
  stats.waiting_by_why = {{"needs_agents", 2}, {"agents_busy", 1}, {"behind_job", 0}};
  m->SetJobs(stats);
  const std::string text = registry.Render();
  const std::string labels =
      "job_id=\"job-000001\",point=\"0\",model=\"mixtral-8x7b\",hardware=\"h100-sxm\","
      "phase=\"decode\",batch=\"8\"";
  EXPECT_TRUE(Has(text, "moecap_result_sparse_mbu{" + labels + "} 0.42")) << text;
  EXPECT_TRUE(Has(text, "moecap_result_step_seconds{" + labels + ",quantile=\"0.5\"} 0.019"));
  EXPECT_TRUE(Has(text, "moecap_result_step_seconds_count{" + labels + "} 10"));
  EXPECT_TRUE(Has(text,
                  "moecap_result_imbalance_ratio{job_id=\"job-000001\",point=\"0\","
                  "phase=\"decode\",batch=\"8\"} 1.25"));
  EXPECT_TRUE(Has(text,
                  "moecap_result_usd_per_million_output_tokens{job_id=\"job-000001\",point=\"0\","
                  "model=\"mixtral-8x7b\",hardware=\"h100-sxm\",batch=\"8\"} 1.5"));
  // B·O / (TTFT + (O − 1)·TPOT) = 88 / (0.5 + 10 · 0.02) = 125.71...
  EXPECT_TRUE(Has(text, "moecap_result_output_tokens_per_second{")) << text;
  EXPECT_TRUE(Has(text,
                  "moecap_result_node_sparse_mbu{job_id=\"job-000001\",point=\"0\","
                  "phase=\"decode\",batch=\"8\",agent=\"gpu-node-1\"} 0.5"));
  EXPECT_TRUE(Has(text, "moecap_jobs_finished_total{state=\"failed\"} 0"));
  EXPECT_TRUE(Has(text, "moecap_jobs_waiting{why=\"needs_agents\"} 2")) << text;
  EXPECT_TRUE(Has(text, "moecap_jobs_waiting{why=\"agents_busy\"} 1")) << text;
  EXPECT_TRUE(Has(text, "moecap_jobs_waiting{why=\"behind_job\"} 0")) << text;
  EXPECT_TRUE(Has(text, "moecap_jobs_finished_total{state=\"succeeded\"} 1"));
  EXPECT_TRUE(Has(text, "moecap_jobs{state=\"queued\"} 3"));
  EXPECT_TRUE(Has(text, "moecap_jobs{state=\"interrupted\"} 0"));
  EXPECT_TRUE(Has(text, "moecap_job_queue_oldest_age_seconds 12"));
  EXPECT_TRUE(Has(text, "moecap_agents{state=\"lost\"} 1"));
  EXPECT_TRUE(Has(text, "moecap_agents{state=\"busy\"} 0"));
  EXPECT_TRUE(Has(text, "moecap_agent_up{agent=\"c\"} 0"));
  EXPECT_TRUE(Has(text,
                  "moecap_grpc_server_handled_total{grpc_service=\"moecap.v1.JobService\","
                  "grpc_method=\"SubmitPlan\",grpc_type=\"unary\",grpc_code=\"OK\"} 1"));

  // Only the 2 most recent jobs keep result series.
  m->SetPointResult("job-000002", "m", w, Result(0, 0.1));
  m->SetPointResult("job-000003", "m", w, Result(0, 0.2));
  const std::string later = registry.Render();
  EXPECT_FALSE(Has(later, "job_id=\"job-000001\""));
  EXPECT_TRUE(Has(later, "job_id=\"job-000003\""));
  // A forgotten agent's up series goes away.
  m->SetAgents({}, {{"a", true}});
  EXPECT_FALSE(Has(registry.Render(), "moecap_agent_up{agent=\"c\"}"));
}

}  // namespace
}  // namespace moecap::coordinator
