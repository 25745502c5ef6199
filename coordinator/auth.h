// Who may call the coordinator (docs/security.md): transport credentials from
// CredentialsOptions (TLS, or plaintext only when asked for), bearer tokens of moecapctl users
// with their roles (the --tokens-file table), and agent identities from verified client
// certificates.
//
// Scheme: with --tls-ca the server requests a client certificate and verifies any it gets
// (GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY): moecapctl users may connect without one and
// authenticate with a bearer token, while AgentService and RendezvousService calls without a
// verified certificate are UNAUTHENTICATED. A certificate names the agent it may act as (its CN
// or a DNS SAN equals AgentInfo.name; "*" names any agent, "prefix*" those starting with prefix).
#ifndef MOECAP_COORDINATOR_AUTH_H_
#define MOECAP_COORDINATOR_AUTH_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coordinator/agent_registry.h"
#include "coordinator/coordinator_options.h"

namespace grpc {
class ServerContextBase;
class ServerCredentials;
}  // namespace grpc

namespace moecap::coordinator {

enum class Role { kReadOnly = 1, kAdmin = 2 };  // admin includes read-only

absl::string_view RoleName(Role role);

struct TokenEntry {
  std::string token;
  Role role = Role::kReadOnly;
  std::string name;  // who holds it (logs, Job.submitted_by); default "token-LINE"
};

// Parses a tokens file: one `TOKEN ROLE [NAME]` per line (ROLE read-only or admin), blank lines
// and '#' comments ignored. InvalidArgument names `source`, the line number and the reason
// (unknown role, missing role, extra fields, duplicate token, token shorter than 16 characters).
absl::StatusOr<std::vector<TokenEntry>> ParseTokens(absl::string_view text,
                                                    absl::string_view source);
absl::StatusOr<std::vector<TokenEntry>> LoadTokensFile(const std::string& path);

// Equal strings, compared in time that depends on their lengths only.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// The check behind every JobService call. `tokens` empty and `tokens_required` false: anyone
// passes (no --tokens-file). Otherwise `authorization` must be "Bearer TOKEN" with a known
// token (UNAUTHENTICATED) whose role covers `needed` (PERMISSION_DENIED). Returns the caller's
// name ("" when no token is checked).
absl::StatusOr<std::string> CheckBearer(const std::vector<TokenEntry>& tokens, bool tokens_required,
                                        std::optional<absl::string_view> authorization,
                                        Role needed);

// Whether an agent called `agent_name` may act under a certificate naming `identities`.
bool IdentityAllows(const std::vector<std::string>& identities, absl::string_view agent_name);

// The startup check of the transport flags: TLS (cert and key, optionally a CA) or --insecure,
// exactly one of them. InvalidArgument says what to pass.
absl::Status ValidateCredentials(const CredentialsOptions& options);

// Reads the PEM files of `options` (valid ones) into server credentials.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const CredentialsOptions& options);

// The checks the gRPC services apply to each call, from the server's CredentialsOptions.
class Authorizer {
 public:
  // No checks at all (tests and embedders that serve loopback only).
  Authorizer() = default;
  // Loads the tokens file, if any.
  static absl::StatusOr<std::unique_ptr<Authorizer>> Create(const CredentialsOptions& options);

  // JobService: the caller's bearer token must carry `needed`. Returns the caller's name.
  absl::StatusOr<std::string> CheckUser(const grpc::ServerContextBase& context, Role needed) const;
  // AgentService.Register: the caller's certificate must name `agent_name`.
  absl::Status CheckAgentName(const grpc::ServerContextBase& context,
                              absl::string_view agent_name) const;
  // Every later agent call: a verified certificate is required and, when the agent id is
  // registered (`registered_name` set), must name that agent.
  absl::Status CheckAgent(const grpc::ServerContextBase& context, absl::string_view agent_id,
                          const std::optional<std::string>& registered_name) const;

  // CheckAgent with the name `registry` knows for `agent_id`.
  absl::Status CheckAgentId(const grpc::ServerContextBase& context, absl::string_view agent_id,
                            const AgentRegistry& registry) const;

  bool tokens_required() const { return tokens_required_; }
  bool agent_certs_required() const { return agent_certs_required_; }

 private:
  // The verified certificate's names; UNAUTHENTICATED without one.
  absl::StatusOr<std::vector<std::string>> PeerIdentities(
      const grpc::ServerContextBase& context) const;

  std::vector<TokenEntry> tokens_;
  bool tokens_required_ = false;
  bool agent_certs_required_ = false;
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_AUTH_H_
