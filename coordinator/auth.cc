// Tokens file parsing, bearer and certificate checks, server credentials.
#include "coordinator/auth.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/server_credentials.h"

namespace moecap::coordinator {
namespace {

constexpr size_t kMinTokenLength = 16;

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": cannot read it"));
  std::stringstream text;
  text << in.rdbuf();
  if (!absl::StrContains(text.str(), "-----BEGIN ")) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": not a PEM file"));
  }
  return text.str();
}

std::string Metadata(const grpc::ServerContextBase& context, absl::string_view key, bool* found) {
  const auto& md = context.client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  *found = it != md.end();
  return *found ? std::string(it->second.data(), it->second.size()) : std::string();
}

}  // namespace

absl::string_view RoleName(Role role) { return role == Role::kAdmin ? "admin" : "read-only"; }

absl::StatusOr<std::vector<TokenEntry>> ParseTokens(absl::string_view text,
                                                    absl::string_view source) {
  std::vector<TokenEntry> entries;
  std::set<std::string> seen;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (const size_t hash = line.find('#'); hash != absl::string_view::npos) {
      line = line.substr(0, hash);
    }
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    auto error = [&](absl::string_view reason) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line_number, ": ", reason,
                                                     " (expected `TOKEN ROLE [NAME]`, ROLE "
                                                     "read-only or admin)"));
    };
    if (fields.size() < 2) return error("no role");
    if (fields.size() > 3) return error("more than 3 fields");
    TokenEntry entry;
    entry.token = std::string(fields[0]);
    if (entry.token.size() < kMinTokenLength) {
      return error(absl::StrCat("token shorter than ", kMinTokenLength,
                                " characters (make one with `openssl rand -hex 32`)"));
    }
    if (fields[1] == "admin") {
      entry.role = Role::kAdmin;
    } else if (fields[1] == "read-only") {
      entry.role = Role::kReadOnly;
    } else {
      return error(absl::StrCat("unknown role '", fields[1], "'"));
    }
    entry.name = fields.size() == 3 ? std::string(fields[2]) : absl::StrCat("token-", line_number);
    if (!seen.insert(entry.token).second) return error("the same token is listed twice");
    entries.push_back(std::move(entry));
  }
  return entries;
}

absl::StatusOr<std::vector<TokenEntry>> LoadTokensFile(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return absl::InvalidArgumentError(absl::StrCat("--tokens-file ", path, ": cannot read it"));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::vector<TokenEntry>> tokens = ParseTokens(text.str(), path);
  if (!tokens.ok())
    return absl::InvalidArgumentError(absl::StrCat("--tokens-file ", tokens.status().message()));
  if (tokens->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tokens-file ", path, ": no token in it (every call would be refused)"));
  }
  return tokens;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  // Walk the longer length whatever the contents; a length mismatch is folded into the result.
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

absl::StatusOr<std::string> CheckBearer(const std::vector<TokenEntry>& tokens, bool tokens_required,
                                        std::optional<absl::string_view> authorization,
                                        Role needed) {
  if (!tokens_required) return std::string();
  if (!authorization.has_value()) {
    return absl::UnauthenticatedError(
        "no bearer token: pass moecapctl --token, --token-file or $MOECAP_TOKEN");
  }
  absl::string_view value = absl::StripAsciiWhitespace(*authorization);
  if (!absl::ConsumePrefix(&value, "Bearer ") && !absl::ConsumePrefix(&value, "bearer ")) {
    return absl::UnauthenticatedError("metadata 'authorization': expected 'Bearer TOKEN'");
  }
  value = absl::StripAsciiWhitespace(value);
  // Every entry is compared, so the time taken does not say which one matched.
  const TokenEntry* match = nullptr;
  for (const TokenEntry& entry : tokens) {
    if (ConstantTimeEquals(entry.token, value)) match = &entry;
  }
  if (match == nullptr) return absl::UnauthenticatedError("unknown bearer token");
  if (static_cast<int>(match->role) < static_cast<int>(needed)) {
    return absl::PermissionDeniedError(absl::StrCat("token '", match->name, "' has role ",
                                                    RoleName(match->role), "; this call needs ",
                                                    RoleName(needed)));
  }
  return match->name;
}

bool IdentityAllows(const std::vector<std::string>& identities, absl::string_view agent_name) {
  for (const std::string& id : identities) {
    if (id == agent_name) return true;
    if (absl::EndsWith(id, "*") &&
        absl::StartsWith(agent_name, absl::string_view(id).substr(0, id.size() - 1))) {
      return true;
    }
  }
  return false;
}

absl::Status ValidateCredentials(const CredentialsOptions& options) {
  const bool any_tls = !options.tls_cert_file.empty() || !options.tls_key_file.empty() ||
                       !options.tls_ca_file.empty();
  if (options.insecure && any_tls) {
    return absl::InvalidArgumentError(
        "--insecure and --tls-cert/--tls-key/--tls-ca exclude each other: pass one of them");
  }
  if (!options.insecure && !any_tls) {
    return absl::InvalidArgumentError(
        "no transport security chosen: pass --tls-cert FILE --tls-key FILE [--tls-ca FILE] "
        "(TLS; with --tls-ca agents must present certificates) or --insecure (plaintext, for "
        "trusted networks only)");
  }
  if (any_tls && (options.tls_cert_file.empty() || options.tls_key_file.empty())) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key: give both (the server's certificate chain and its key)");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const CredentialsOptions& options) {
  MOECAP_RETURN_IF_ERROR(ValidateCredentials(options));
  if (options.insecure) return grpc::InsecureServerCredentials();
  absl::StatusOr<std::string> cert = ReadPem(options.tls_cert_file, "--tls-cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(options.tls_key_file, "--tls-key");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  ssl.pem_key_cert_pairs.push_back({*std::move(key), *std::move(cert)});
  if (!options.tls_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(options.tls_ca_file, "--tls-ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
    // Not REQUIRE: moecapctl users connect without a certificate and show a token; a
    // certificate that is presented must verify, and agent calls need one (Authorizer).
    ssl.client_certificate_request = GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::Create(const CredentialsOptions& options) {
  auto authorizer = std::make_unique<Authorizer>();
  if (!options.tokens_file.empty()) {
    absl::StatusOr<std::vector<TokenEntry>> tokens = LoadTokensFile(options.tokens_file);
    if (!tokens.ok()) return tokens.status();
    authorizer->tokens_ = *std::move(tokens);
    authorizer->tokens_required_ = true;
  }
  authorizer->agent_certs_required_ = !options.insecure && !options.tls_ca_file.empty();
  return authorizer;
}

absl::StatusOr<std::string> Authorizer::CheckUser(const grpc::ServerContextBase& context,
                                                  Role needed) const {
  if (!tokens_required_) return std::string();
  bool found = false;
  std::string value = Metadata(context, "authorization", &found);
  return CheckBearer(tokens_, tokens_required_,
                     found ? std::optional<absl::string_view>(value) : std::nullopt, needed);
}

absl::StatusOr<std::vector<std::string>> Authorizer::PeerIdentities(
    const grpc::ServerContextBase& context) const {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    return absl::UnauthenticatedError(
        "agent calls need a client certificate signed by the coordinator's --tls-ca: start "
        "moecap-agent with --tls-cert, --tls-key and --tls-ca");
  }
  std::vector<std::string> names;
  for (const char* property :
       {GRPC_X509_CN_PROPERTY_NAME, GRPC_X509_SAN_PROPERTY_NAME, GRPC_PEER_DNS_PROPERTY_NAME}) {
    for (const grpc::string_ref& v : auth->FindPropertyValues(property)) {
      names.emplace_back(v.data(), v.size());
    }
  }
  return names;
}

absl::Status Authorizer::CheckAgentName(const grpc::ServerContextBase& context,
                                        absl::string_view agent_name) const {
  if (!agent_certs_required_) return absl::OkStatus();
  absl::StatusOr<std::vector<std::string>> ids = PeerIdentities(context);
  if (!ids.ok()) return ids.status();
  if (!IdentityAllows(*ids, agent_name)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "field 'agent.name': '", agent_name, "' is not the agent the client certificate names (",
        ids->empty() ? std::string("no CN or DNS SAN") : ids->front(),
        "); register under the certificate's name"));
  }
  return absl::OkStatus();
}

absl::Status Authorizer::CheckAgent(const grpc::ServerContextBase& context,
                                    absl::string_view agent_id,
                                    const std::optional<std::string>& registered_name) const {
  if (!agent_certs_required_) return absl::OkStatus();
  absl::StatusOr<std::vector<std::string>> ids = PeerIdentities(context);
  if (!ids.ok()) return ids.status();
  if (registered_name.has_value() && !IdentityAllows(*ids, *registered_name)) {
    return absl::PermissionDeniedError(
        absl::StrCat("agent ", agent_id, " is '", *registered_name,
                     "', not the agent the client certificate names"));
  }
  return absl::OkStatus();
}

absl::Status Authorizer::CheckAgentId(const grpc::ServerContextBase& context,
                                      absl::string_view agent_id,
                                      const AgentRegistry& registry) const {
  if (!agent_certs_required_) return absl::OkStatus();
  std::optional<AgentView> view = registry.Find(agent_id);
  return CheckAgent(
      context, agent_id,
      view.has_value() ? std::optional<std::string>(view->info.name()) : std::nullopt);
}

}  // namespace moecap::coordinator
