// JobService client.
#include "ctl/coordinator_client.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace moecap::ctl {

std::string ResolveCoordinatorAddress(const ClientOptions& options) {
  if (!options.address.empty()) return options.address;
  if (const char* env = std::getenv("MOECAP_COORDINATOR"); env != nullptr && *env != '\0') {
    return env;
  }
  return kDefaultCoordinator;
}

absl::Status FromGrpc(const grpc::Status& status, const std::string& address) {
  if (status.ok()) return absl::OkStatus();
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return absl::Status(code, absl::StrCat("cannot reach the coordinator at ", address, ": ",
                                           status.error_message(),
                                           " (is moecap-coordinator running? set --coordinator "
                                           "or MOECAP_COORDINATOR)"));
  }
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::Status(code, absl::StrCat("the coordinator at ", address,
                                           " did not answer in time: ", status.error_message()));
  }
  return absl::Status(code, status.error_message());
}

CoordinatorClient::CoordinatorClient(ClientOptions options)
    : options_(std::move(options)), address_(ResolveCoordinatorAddress(options_)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  stub_ = v1::JobService::NewStub(
      grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args));
}

void CoordinatorClient::Prepare(grpc::ClientContext& context) const {
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
}

namespace {
template <typename Response, typename Call>
absl::StatusOr<Response> Unary(const std::string& address, grpc::ClientContext& context,
                               Call call) {
  Response response;
  grpc::Status status = call(&context, &response);
  if (!status.ok()) return FromGrpc(status, address);
  return response;
}
}  // namespace

absl::StatusOr<v1::SubmitPlanResponse> CoordinatorClient::SubmitPlan(
    const v1::SubmitPlanRequest& request) {
  grpc::ClientContext context;
  Prepare(context);
  return Unary<v1::SubmitPlanResponse>(address_, context, [&](auto* ctx, auto* response) {
    return stub_->SubmitPlan(ctx, request, response);
  });
}

absl::StatusOr<v1::GetJobResponse> CoordinatorClient::GetJob(const v1::GetJobRequest& request) {
  grpc::ClientContext context;
  Prepare(context);
  return Unary<v1::GetJobResponse>(address_, context, [&](auto* ctx, auto* response) {
    return stub_->GetJob(ctx, request, response);
  });
}

absl::StatusOr<v1::ListJobsResponse> CoordinatorClient::ListJobs(
    const v1::ListJobsRequest& request) {
  grpc::ClientContext context;
  Prepare(context);
  return Unary<v1::ListJobsResponse>(address_, context, [&](auto* ctx, auto* response) {
    return stub_->ListJobs(ctx, request, response);
  });
}

absl::StatusOr<v1::CancelJobResponse> CoordinatorClient::CancelJob(
    const v1::CancelJobRequest& request) {
  grpc::ClientContext context;
  Prepare(context);
  return Unary<v1::CancelJobResponse>(address_, context, [&](auto* ctx, auto* response) {
    return stub_->CancelJob(ctx, request, response);
  });
}

absl::StatusOr<v1::GetResultsResponse> CoordinatorClient::GetResults(
    const v1::GetResultsRequest& request) {
  grpc::ClientContext context;
  Prepare(context);
  return Unary<v1::GetResultsResponse>(address_, context, [&](auto* ctx, auto* response) {
    return stub_->GetResults(ctx, request, response);
  });
}

absl::StatusOr<v1::ListAgentsResponse> CoordinatorClient::ListAgents(
    const v1::ListAgentsRequest& request) {
  grpc::ClientContext context;
  Prepare(context);
  return Unary<v1::ListAgentsResponse>(address_, context, [&](auto* ctx, auto* response) {
    return stub_->ListAgents(ctx, request, response);
  });
}

absl::Status CoordinatorClient::WatchJob(
    const v1::WatchJobRequest& request, absl::Duration deadline,
    const std::function<bool(const v1::WatchJobResponse&)>& on_event) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  std::unique_ptr<grpc::ClientReader<v1::WatchJobResponse>> reader =
      stub_->WatchJob(&context, request);
  v1::WatchJobResponse event;
  while (reader->Read(&event)) {
    if (!on_event(event)) {
      context.TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if (status.error_code() == grpc::StatusCode::CANCELLED) return absl::OkStatus();
  return FromGrpc(status, address_);
}

}  // namespace moecap::ctl
