// JobService client.
#include "ctl/coordinator_client.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace moecap::ctl {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": cannot read it"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::string(value) : std::string();
}

// TLS credentials from the options' PEM files (the CA is required, the client pair optional).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> TlsCredentials(
    const ClientOptions& options, const std::string& ca_file) {
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> ca = ReadFile(ca_file, "--tls-ca");
  if (!ca.ok()) return ca.status();
  ssl.pem_root_certs = *std::move(ca);
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key: give both or neither");
  }
  if (!options.tls_cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadFile(options.tls_cert_file, "--tls-cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile(options.tls_key_file, "--tls-key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::string> ResolveToken(const ClientOptions& options) {
  if (!options.token.empty()) return options.token;
  if (!options.token_file.empty()) {
    absl::StatusOr<std::string> text = ReadFile(options.token_file, "--token-file");
    if (!text.ok()) return text.status();
    std::string token(absl::StripAsciiWhitespace(text->substr(0, text->find('\n'))));
    if (token.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--token-file ", options.token_file, ": its first line is empty"));
    }
    return token;
  }
  return std::string(absl::StripAsciiWhitespace(Env("MOECAP_TOKEN")));
}

bool IsLocalAddress(const std::string& address) {
  if (absl::StartsWith(address, "unix:")) return true;
  std::string host = address;
  if (absl::StartsWith(host, "ipv4:")) host = host.substr(5);
  if (absl::StartsWith(host, "ipv6:")) host = host.substr(5);
  if (absl::StartsWith(host, "[")) {
    host = host.substr(
        1, host.find(']') == std::string::npos ? std::string::npos : host.find(']') - 1);
  } else if (const size_t colon = host.rfind(':'); colon != std::string::npos) {
    host = host.substr(0, colon);
  }
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

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
                                           "or MOECAP_COORDINATOR; if it serves TLS, pass "
                                           "--tls-ca FILE)"));
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
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  const std::string ca_file = !options_.tls_ca_file.empty() ? options_.tls_ca_file
                              : options_.insecure           ? std::string()
                                                            : Env("MOECAP_TLS_CA");
  if (options_.insecure && !ca_file.empty()) {
    setup_ = absl::InvalidArgumentError("--insecure and --tls-ca exclude each other");
  } else if (!ca_file.empty()) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> tls =
        TlsCredentials(options_, ca_file);
    if (tls.ok()) {
      credentials = *std::move(tls);
    } else {
      setup_ = tls.status();
    }
    if (!options_.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options_.tls_server_name);
    }
  } else if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
    setup_ = absl::InvalidArgumentError(
        "--tls-cert/--tls-key: TLS needs --tls-ca FILE too (the CA that signed the coordinator)");
  }
  if (setup_.ok()) {
    absl::StatusOr<std::string> token = ResolveToken(options_);
    if (!token.ok()) {
      setup_ = token.status();
    } else {
      token_ = *std::move(token);
    }
  }
  // A token sent in plaintext over a network can be replayed by anyone who sees it.
  if (setup_.ok() && !token_.empty() && ca_file.empty() && !options_.insecure &&
      !IsLocalAddress(address_)) {
    setup_ = absl::FailedPreconditionError(absl::StrCat(
        "a bearer token is not sent in plaintext to ", address_,
        ": pass --tls-ca FILE (the CA of the coordinator's certificate), or --insecure to send "
        "it anyway"));
  }
  stub_ = v1::JobService::NewStub(grpc::CreateCustomChannel(address_, credentials, args));
}

void CoordinatorClient::Prepare(grpc::ClientContext& context) const {
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  if (!token_.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token_));
}

namespace {
template <typename Response, typename Call>
absl::StatusOr<Response> Unary(const absl::Status& setup, const std::string& address,
                               grpc::ClientContext& context, Call call) {
  if (!setup.ok()) return setup;
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
  return Unary<v1::SubmitPlanResponse>(setup_, address_, context, [&](auto* ctx, auto* response) {
    return stub_->SubmitPlan(ctx, request, response);
  });
}

absl::StatusOr<v1::GetJobResponse> CoordinatorClient::GetJob(const v1::GetJobRequest& request) {
  grpc::ClientContext context;
  Prepare(context);
  return Unary<v1::GetJobResponse>(setup_, address_, context, [&](auto* ctx, auto* response) {
    return stub_->GetJob(ctx, request, response);
  });
}

absl::StatusOr<v1::ListJobsResponse> CoordinatorClient::ListJobs(
    const v1::ListJobsRequest& request) {
  grpc::ClientContext context;
  Prepare(context);
  return Unary<v1::ListJobsResponse>(setup_, address_, context, [&](auto* ctx, auto* response) {
    return stub_->ListJobs(ctx, request, response);
  });
}

absl::StatusOr<v1::CancelJobResponse> CoordinatorClient::CancelJob(
    const v1::CancelJobRequest& request) {
  grpc::ClientContext context;
  Prepare(context);
  return Unary<v1::CancelJobResponse>(setup_, address_, context, [&](auto* ctx, auto* response) {
    return stub_->CancelJob(ctx, request, response);
  });
}

absl::StatusOr<v1::GetResultsResponse> CoordinatorClient::GetResults(
    const v1::GetResultsRequest& request) {
  grpc::ClientContext context;
  Prepare(context);
  return Unary<v1::GetResultsResponse>(setup_, address_, context, [&](auto* ctx, auto* response) {
    return stub_->GetResults(ctx, request, response);
  });
}

absl::StatusOr<v1::ListAgentsResponse> CoordinatorClient::ListAgents(
    const v1::ListAgentsRequest& request) {
  grpc::ClientContext context;
  Prepare(context);
  return Unary<v1::ListAgentsResponse>(setup_, address_, context, [&](auto* ctx, auto* response) {
    return stub_->ListAgents(ctx, request, response);
  });
}

absl::Status CoordinatorClient::WatchJob(
    const v1::WatchJobRequest& request, absl::Duration deadline,
    const std::function<bool(const v1::WatchJobResponse&)>& on_event) {
  if (!setup_.ok()) return setup_;
  grpc::ClientContext context;
  Prepare(context);
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
