// coordinator/auth.h: the tokens file parser, the bearer/role check, certificate identities and
// the startup check of the transport flags (also through CoordinatorServer::Start).
#include "coordinator/auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/coordinator_server.h"

namespace moecap::coordinator {
namespace {

using ::testing::HasSubstr;

constexpr char kAdminToken[] = "admin-token-0123456789";
constexpr char kReaderToken[] = "reader-token-0123456789";

std::vector<TokenEntry> Table() {
  absl::StatusOr<std::vector<TokenEntry>> tokens =
      ParseTokens(absl::StrCat("# who may call\n", kAdminToken, " admin alice\n\n", kReaderToken,
                               "\tread-only   # trailing comment\n"),
                  "tokens");
  EXPECT_TRUE(tokens.ok()) << tokens.status();
  return tokens.ok() ? *tokens : std::vector<TokenEntry>{};
}

TEST(ParseTokens, ReadsRolesNamesAndSkipsCommentsAndBlankLines) {
  const std::vector<TokenEntry> tokens = Table();
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].token, kAdminToken);
  EXPECT_EQ(tokens[0].role, Role::kAdmin);
  EXPECT_EQ(tokens[0].name, "alice");
  EXPECT_EQ(tokens[1].token, kReaderToken);
  EXPECT_EQ(tokens[1].role, Role::kReadOnly);
  EXPECT_EQ(tokens[1].name, "token-4");  // no NAME: named after its line (line 4)
}

TEST(ParseTokens, RejectsMalformedLinesNamingTheLine) {
  struct Case {
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"# ok\nabcdefghijklmnopq\n", "f:2: no role"},
      {"abcdefghijklmnopq superuser\n", "f:1: unknown role 'superuser'"},
      {"abcdefghijklmnopq admin bob extra\n", "f:1: more than 3 fields"},
      {"short admin\n", "f:1: token shorter than 16 characters"},
      {"abcdefghijklmnopq admin\n\nabcdefghijklmnopq read-only\n",
       "f:3: the same token is listed twice"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<TokenEntry>> tokens = ParseTokens(c.text, "f");
    ASSERT_FALSE(tokens.ok()) << c.text;
    EXPECT_EQ(tokens.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(tokens.status().message(), HasSubstr(c.message));
  }
}

TEST(LoadTokensFile, RefusesAMissingOrEmptyFile) {
  EXPECT_THAT(LoadTokensFile("/nonexistent/tokens").status().message(),
              HasSubstr("--tokens-file /nonexistent/tokens: cannot read it"));
  const std::string path = ::testing::TempDir() + "/empty-tokens";
  std::ofstream(path) << "# nothing yet\n";
  EXPECT_THAT(LoadTokensFile(path).status().message(), HasSubstr("no token in it"));
}

TEST(ConstantTimeEquals, ComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));  // a prefix is not a match
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

TEST(CheckBearer, WithoutATokensFileEveryoneMayCall) {
  absl::StatusOr<std::string> caller = CheckBearer({}, false, std::nullopt, Role::kAdmin);
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(*caller, "");
}

TEST(CheckBearer, RolesDecideWhatATokenMayDo) {
  const std::vector<TokenEntry> tokens = Table();
  const std::string admin = absl::StrCat("Bearer ", kAdminToken);
  const std::string reader = absl::StrCat("Bearer ", kReaderToken);
  // Admin: reads and writes, named after its NAME field.
  EXPECT_EQ(CheckBearer(tokens, true, admin, Role::kAdmin).value_or("?"), "alice");
  EXPECT_EQ(CheckBearer(tokens, true, admin, Role::kReadOnly).value_or("?"), "alice");
  // Read-only: reads only.
  EXPECT_EQ(CheckBearer(tokens, true, reader, Role::kReadOnly).value_or("?"), "token-4");
  absl::StatusOr<std::string> denied = CheckBearer(tokens, true, reader, Role::kAdmin);
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.status().message(), HasSubstr("has role read-only; this call needs admin"));
}

TEST(CheckBearer, MissingMalformedOrUnknownTokensAreUnauthenticated) {
  const std::vector<TokenEntry> tokens = Table();
  EXPECT_EQ(CheckBearer(tokens, true, std::nullopt, Role::kReadOnly).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(CheckBearer(tokens, true, kAdminToken, Role::kReadOnly).status().code(),
            absl::StatusCode::kUnauthenticated);  // no "Bearer "
  EXPECT_EQ(
      CheckBearer(tokens, true, "Bearer admin-token-01234567", Role::kReadOnly).status().code(),
      absl::StatusCode::kUnauthenticated);  // a prefix of a real token
  EXPECT_EQ(CheckBearer(tokens, true, "Bearer ", Role::kReadOnly).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(IdentityAllows, ExactNamesAndTrailingWildcards) {
  EXPECT_TRUE(IdentityAllows({"node-a"}, "node-a"));
  EXPECT_FALSE(IdentityAllows({"node-a"}, "node-b"));
  EXPECT_FALSE(IdentityAllows({"node-a"}, "node-a2"));
  EXPECT_TRUE(IdentityAllows({"other", "gpu-*"}, "gpu-7"));
  EXPECT_FALSE(IdentityAllows({"gpu-*"}, "cpu-7"));
  EXPECT_TRUE(IdentityAllows({"*"}, "anything"));
  EXPECT_FALSE(IdentityAllows({}, "node-a"));
}

TEST(ValidateCredentials, NeitherTlsNorInsecureSaysWhatToPass) {
  absl::Status s = ValidateCredentials(CredentialsOptions());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("--tls-cert FILE --tls-key FILE"));
  EXPECT_THAT(s.message(), HasSubstr("--insecure"));
}

TEST(ValidateCredentials, ChoicesThatExcludeEachOther) {
  CredentialsOptions both;
  both.insecure = true;
  both.tls_cert_file = "c.pem";
  EXPECT_THAT(ValidateCredentials(both).message(), HasSubstr("exclude each other"));
  CredentialsOptions half;
  half.tls_ca_file = "ca.pem";
  EXPECT_THAT(ValidateCredentials(half).message(), HasSubstr("--tls-cert and --tls-key"));
  CredentialsOptions insecure;
  insecure.insecure = true;
  EXPECT_TRUE(ValidateCredentials(insecure).ok());
  CredentialsOptions tls;
  tls.tls_cert_file = "c.pem";
  tls.tls_key_file = "k.pem";
  EXPECT_TRUE(ValidateCredentials(tls).ok());
}

TEST(MakeServerCredentials, NamesAnUnreadableFile) {
  CredentialsOptions tls;
  tls.tls_cert_file = "/nonexistent/server.pem";
  tls.tls_key_file = "/nonexistent/server.key";
  EXPECT_THAT(MakeServerCredentials(tls).status().message(),
              HasSubstr("--tls-cert /nonexistent/server.pem: cannot read it"));
}

TEST(CoordinatorServerStart, RefusesToStartWithoutAChoiceOfTransport) {
  CoordinatorOptions options;
  options.listen = "127.0.0.1:0";
  options.db_path = "";
  absl::StatusOr<std::unique_ptr<CoordinatorServer>> server = CoordinatorServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(server.status().message(), HasSubstr("--insecure"));

  options.credentials.insecure = true;
  server = CoordinatorServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_GT((*server)->port(), 0);
}

TEST(CoordinatorServerStart, RefusesABadTokensFile) {
  const std::string path = ::testing::TempDir() + "/bad-tokens";
  std::ofstream(path) << "abcdefghijklmnopq root\n";
  CoordinatorOptions options;
  options.listen = "127.0.0.1:0";
  options.db_path = "";
  options.credentials.insecure = true;
  options.credentials.tokens_file = path;
  absl::StatusOr<std::unique_ptr<CoordinatorServer>> server = CoordinatorServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr(":1: unknown role 'root'"));
}

}  // namespace
}  // namespace moecap::coordinator
