// moecap.v1.JobService on gRPC's callback API: decodes each call, hands it to the JobManager (or
// the AgentRegistry for ListAgents; SubmitPlan to the SubmissionQueue, whose worker answers it),
// encodes the answer. WatchJob is a QueuedWriter subscribed to
// the JobEventHub until the job ends or the caller goes away.
#ifndef MOECAP_COORDINATOR_JOB_SERVICE_H_
#define MOECAP_COORDINATOR_JOB_SERVICE_H_

#include "coordinator/agent_registry.h"
#include "coordinator/auth.h"
#include "coordinator/job_event_hub.h"
#include "coordinator/job_manager.h"
#include "coordinator/submission_queue.h"
#include "moecap/v1/job_service.grpc.pb.h"

namespace moecap::coordinator {

class JobServiceImpl final : public v1::JobService::CallbackService {
 public:
  // `auth` (kept; null: no checks) decides who may call: reads need a read-only token, Submit
  // and Cancel an admin one.
  JobServiceImpl(JobManager& jobs, SubmissionQueue& submissions, const AgentRegistry& registry,
                 JobEventHub& events, const Authorizer* auth = nullptr)
      : jobs_(jobs),
        submissions_(submissions),
        registry_(registry),
        events_(events),
        auth_(auth != nullptr ? *auth : none_) {}

  grpc::ServerUnaryReactor* SubmitPlan(grpc::CallbackServerContext* context,
                                       const v1::SubmitPlanRequest* request,
                                       v1::SubmitPlanResponse* response) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const v1::GetJobRequest* request,
                                   v1::GetJobResponse* response) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* context,
                                     const v1::ListJobsRequest* request,
                                     v1::ListJobsResponse* response) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* context,
                                      const v1::CancelJobRequest* request,
                                      v1::CancelJobResponse* response) override;
  grpc::ServerWriteReactor<v1::WatchJobResponse>* WatchJob(
      grpc::CallbackServerContext* context, const v1::WatchJobRequest* request) override;
  grpc::ServerUnaryReactor* GetResults(grpc::CallbackServerContext* context,
                                       const v1::GetResultsRequest* request,
                                       v1::GetResultsResponse* response) override;
  grpc::ServerUnaryReactor* ListAgents(grpc::CallbackServerContext* context,
                                       const v1::ListAgentsRequest* request,
                                       v1::ListAgentsResponse* response) override;

 private:
  JobManager& jobs_;
  SubmissionQueue& submissions_;
  const AgentRegistry& registry_;
  JobEventHub& events_;
  const Authorizer none_;
  const Authorizer& auth_;
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_JOB_SERVICE_H_
