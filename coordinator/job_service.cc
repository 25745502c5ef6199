// JobService: thin gRPC layer over the JobManager.
#include "coordinator/job_service.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/proto_util.h"
#include "coordinator/queued_writer.h"

namespace moecap::coordinator {
namespace {

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

absl::Status NeedJobId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("field 'job_id': empty");
  return absl::OkStatus();
}

// A WatchJob stream: a QueuedWriter fed by the JobEventHub.
class WatchStream final : public QueuedWriter<v1::WatchJobResponse>, public JobEventHub::Watcher {
 public:
  explicit WatchStream(JobEventHub& events) : QueuedWriter(/*max_queue=*/65536), events_(events) {}

  void OnEvent(const v1::WatchJobResponse& event) override { Enqueue(event); }
  void OnEnd(const absl::Status& status) override { FinishAfterQueue(ToGrpcStatus(status)); }

  // The subscription to drop when the stream ends (it may have ended already).
  void SetSubscription(JobEventHub::SubscriptionId id) {
    bool unsubscribe = false;
    {
      absl::MutexLock lock(&mu_);
      subscription_ = id;
      unsubscribe = done_;
    }
    if (unsubscribe && id != 0) events_.Unsubscribe(id);
  }

 private:
  void OnStreamDone() override {
    JobEventHub::SubscriptionId id = 0;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      id = subscription_;
    }
    if (id != 0) events_.Unsubscribe(id);
  }

  JobEventHub& events_;
  absl::Mutex mu_;
  JobEventHub::SubscriptionId subscription_ ABSL_GUARDED_BY(mu_) = 0;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerUnaryReactor* JobServiceImpl::SubmitPlan(grpc::CallbackServerContext* context,
                                                     const v1::SubmitPlanRequest* request,
                                                     v1::SubmitPlanResponse* response) {
  absl::StatusOr<std::string> caller = auth_.CheckUser(*context, Role::kAdmin);
  if (!caller.ok()) return Done(context, caller.status());
  Submission submission;
  submission.plan.origin = request->origin().empty() ? "plan" : request->origin();
  switch (request->source_case()) {
    case v1::SubmitPlanRequest::kPlan:
      submission.plan.plan = request->plan();
      break;
    case v1::SubmitPlanRequest::kPlanYaml:
      submission.plan.plan_yaml = request->plan_yaml();
      break;
    default:
      return Done(context, absl::InvalidArgumentError(
                               "fields 'plan'/'plan_yaml': give the plan, as a message or YAML"));
  }
  submission.dry_run = request->dry_run();
  submission.submitted_by = *std::move(caller);
  // Parsed and committed on a submission worker, which answers; this thread is free at once.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status queued =
      submissions_.Post(std::move(submission), [reactor, response](absl::StatusOr<v1::Job> job) {
        if (job.ok()) {
          response->set_job_id(job->id());
          *response->mutable_job() = *std::move(job);
        }
        reactor->Finish(ToGrpcStatus(job.status()));
      });
  if (!queued.ok()) reactor->Finish(ToGrpcStatus(queued));
  return reactor;
}

grpc::ServerUnaryReactor* JobServiceImpl::GetJob(grpc::CallbackServerContext* context,
                                                 const v1::GetJobRequest* request,
                                                 v1::GetJobResponse* response) {
  if (absl::Status s = auth_.CheckUser(*context, Role::kReadOnly).status(); !s.ok()) {
    return Done(context, s);
  }
  if (absl::Status s = NeedJobId(request->job_id()); !s.ok()) return Done(context, s);
  absl::StatusOr<v1::Job> job = jobs_.GetJob(request->job_id(), request->view());
  if (job.ok()) *response->mutable_job() = *std::move(job);
  return Done(context, job.status());
}

grpc::ServerUnaryReactor* JobServiceImpl::ListJobs(grpc::CallbackServerContext* context,
                                                   const v1::ListJobsRequest* request,
                                                   v1::ListJobsResponse* response) {
  if (absl::Status s = auth_.CheckUser(*context, Role::kReadOnly).status(); !s.ok()) {
    return Done(context, s);
  }
  absl::StatusOr<v1::ListJobsResponse> list = jobs_.ListJobs(*request);
  if (list.ok()) *response = *std::move(list);
  return Done(context, list.status());
}

grpc::ServerUnaryReactor* JobServiceImpl::CancelJob(grpc::CallbackServerContext* context,
                                                    const v1::CancelJobRequest* request,
                                                    v1::CancelJobResponse* response) {
  if (absl::Status s = auth_.CheckUser(*context, Role::kAdmin).status(); !s.ok()) {
    return Done(context, s);
  }
  if (absl::Status s = NeedJobId(request->job_id()); !s.ok()) return Done(context, s);
  absl::StatusOr<v1::Job> job = jobs_.Cancel(request->job_id(), request->reason());
  if (job.ok()) *response->mutable_job() = *std::move(job);
  return Done(context, job.status());
}

grpc::ServerWriteReactor<v1::WatchJobResponse>* JobServiceImpl::WatchJob(
    grpc::CallbackServerContext* context, const v1::WatchJobRequest* request) {
  auto stream = std::make_shared<WatchStream>(events_);
  stream->Own(stream);
  absl::Status valid = auth_.CheckUser(*context, Role::kReadOnly).status();
  if (valid.ok()) valid = NeedJobId(request->job_id());
  if (!valid.ok()) {
    stream->FinishAfterQueue(ToGrpcStatus(valid), /*drain=*/false);
    return stream.get();
  }
  absl::StatusOr<JobEventHub::SubscriptionId> id =
      jobs_.Watch(request->job_id(), request->include_progress(), stream);
  if (!id.ok()) {
    stream->FinishAfterQueue(ToGrpcStatus(id.status()), /*drain=*/false);
  } else {
    stream->SetSubscription(*id);
  }
  return stream.get();
}

grpc::ServerUnaryReactor* JobServiceImpl::GetResults(grpc::CallbackServerContext* context,
                                                     const v1::GetResultsRequest* request,
                                                     v1::GetResultsResponse* response) {
  if (absl::Status s = auth_.CheckUser(*context, Role::kReadOnly).status(); !s.ok()) {
    return Done(context, s);
  }
  if (absl::Status s = NeedJobId(request->job_id()); !s.ok()) return Done(context, s);
  absl::StatusOr<v1::GetResultsResponse> results = jobs_.GetResults(request->job_id());
  if (results.ok()) *response = *std::move(results);
  return Done(context, results.status());
}

grpc::ServerUnaryReactor* JobServiceImpl::ListAgents(grpc::CallbackServerContext* context,
                                                     const v1::ListAgentsRequest* request,
                                                     v1::ListAgentsResponse* response) {
  if (absl::Status s = auth_.CheckUser(*context, Role::kReadOnly).status(); !s.ok()) {
    return Done(context, s);
  }
  std::vector<v1::AgentState> states;
  for (int s : request->states()) states.push_back(static_cast<v1::AgentState>(s));
  for (v1::Agent& a : registry_.List(states)) *response->add_agents() = std::move(a);
  return Done(context, absl::OkStatus());
}

}  // namespace moecap::coordinator
