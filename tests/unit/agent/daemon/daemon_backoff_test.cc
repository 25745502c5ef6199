// Reconnect backoff: the schedule (doubling to the cap, jitter bounds, reset) and the session's
// reconnect loop driven by a fake clock against a scripted coordinator — no sleeping.
#include <gtest/gtest.h>

#include "agent/daemon/backoff.h"
#include "agent/daemon/coordinator_session.h"
#include "tests/fakes/fake_coordinator_client.h"

namespace moecap::agentd {
namespace {

std::function<double()> Always(double u) {
  return [u] { return u; };
}

TEST(BackoffTest, DoublesFromInitialToTheCapWithoutJitterAtTheMidpoint) {
  BackoffOptions o;                 // 0.5 s, ×2, cap 30 s, jitter ±20 %
  Backoff backoff(o, Always(0.5));  // factor 1 − 0.2 + 2·0.2·0.5 = 1
  const double expected[] = {0.5, 1, 2, 4, 8, 16, 30, 30};
  for (double s : expected) EXPECT_EQ(backoff.NextDelay(), absl::Seconds(s));
  backoff.Reset();
  EXPECT_EQ(backoff.NextDelay(), absl::Milliseconds(500));
}

TEST(BackoffTest, JitterStaysWithinItsBounds) {
  BackoffOptions o;
  Backoff low(o, Always(0.0));   // factor 0.8
  Backoff high(o, Always(1.0));  // factor 1.2
  EXPECT_EQ(low.NextDelay(), absl::Milliseconds(400));
  EXPECT_EQ(high.NextDelay(), absl::Milliseconds(600));
  for (int i = 0; i < 10; ++i) {
    low.NextDelay();
    high.NextDelay();
  }
  EXPECT_EQ(low.NextDelay(), absl::Seconds(24));   // 30 s · 0.8
  EXPECT_EQ(high.NextDelay(), absl::Seconds(36));  // 30 s · 1.2
  Backoff random(o);  // real random numbers: always within [0.8, 1.2] of the nominal delay
  for (double nominal : {0.5, 1.0, 2.0, 4.0}) {
    const absl::Duration d = random.NextDelay();
    EXPECT_GE(d, absl::Seconds(nominal * 0.8));
    EXPECT_LE(d, absl::Seconds(nominal * 1.2));
  }
}

TEST(BackoffTest, InvalidOptionsNameTheField) {
  BackoffOptions o;
  o.initial = absl::ZeroDuration();
  EXPECT_NE(ValidateBackoff(o).message().find("initial"), std::string::npos);
  o = BackoffOptions();
  o.max = absl::Milliseconds(100);
  EXPECT_NE(ValidateBackoff(o).message().find("max"), std::string::npos);
  o = BackoffOptions();
  o.multiplier = 0.5;
  EXPECT_NE(ValidateBackoff(o).message().find("multiplier"), std::string::npos);
  o = BackoffOptions();
  o.jitter = 1;
  EXPECT_NE(ValidateBackoff(o).message().find("jitter"), std::string::npos);
  EXPECT_TRUE(ValidateBackoff(BackoffOptions()).ok());
}

class NullHandler : public AssignmentHandler {
 public:
  void OnAssignment(const v1::Assignment&) override {}
  void OnCancel(const v1::Cancel&) override {}
  void OnDrain() override {}
  v1::HeartbeatRequest State() override { return {}; }
};

TEST(SessionReconnectTest, BacksOffWhileTheCoordinatorIsDownThenRegistersWithThePreviousId) {
  FakeClock clock;
  ScriptedClient client;
  NullHandler handler;
  // First connection: registered as agent-7, then the stream ends at once (coordinator gone).
  // Then 4 refused registrations, then it is back.
  client.register_answers.push_back(Registered("agent-7"));
  for (int i = 0; i < 4; ++i) {
    client.register_answers.push_back(absl::UnavailableError("connection refused"));
  }
  client.register_answers.push_back(Registered("agent-7"));
  SessionOptions options;  // 0.5 s initial, cap 30 s, healthy after 10 s
  CoordinatorSession* session_ptr = nullptr;
  int streams = 0;
  client.on_stream = [&] {
    if (++streams == 2) session_ptr->Shutdown();  // end the test after the reconnection
  };
  CoordinatorSession session(client, clock, v1::AgentInfo(), options, handler, nullptr,
                             Always(0.5));
  session_ptr = &session;
  session.Run();

  ASSERT_EQ(client.registers.size(), 6u);
  EXPECT_EQ(client.registers[0].previous_agent_id(), "");
  for (size_t i = 1; i < 6; ++i) EXPECT_EQ(client.registers[i].previous_agent_id(), "agent-7");
  EXPECT_EQ(session.registrations(), 2);
  EXPECT_EQ(session.agent_id(), "agent-7");
  // Pauses before each retry: the connection lasted 0 s (not healthy), so no reset:
  // 0.5, 1, 2, 4, 8 s.
  EXPECT_EQ(clock.waits(),
            (std::vector<absl::Duration>{absl::Seconds(0.5), absl::Seconds(1), absl::Seconds(2),
                                         absl::Seconds(4), absl::Seconds(8)}));
}

TEST(SessionReconnectTest, AConnectionThatLastedResetsTheBackoff) {
  FakeClock clock;
  ScriptedClient client;
  NullHandler handler;
  // Refused, refused, registered (the stream lasts 11 s: healthy), refused, registered.
  client.register_answers.push_back(absl::UnavailableError("refused"));
  client.register_answers.push_back(absl::UnavailableError("refused"));
  client.register_answers.push_back(Registered("agent-1"));
  client.register_answers.push_back(absl::UnavailableError("refused"));
  client.register_answers.push_back(Registered("agent-1"));
  CoordinatorSession* session_ptr = nullptr;
  int streams = 0;
  client.on_stream = [&] {
    if (++streams == 2) session_ptr->Shutdown();
  };
  client.on_stream_read = [&] {
    if (streams == 1) clock.Advance(absl::Seconds(11));
  };
  CoordinatorSession session(client, clock, v1::AgentInfo(), SessionOptions(), handler, nullptr,
                             Always(0.5));
  session_ptr = &session;
  session.Run();
  // 0.5, 1 while refused; after the healthy connection the schedule starts over: 0.5, 1
  // (without the reset it would have gone on with 2, 4).
  EXPECT_EQ(clock.waits(), (std::vector<absl::Duration>{absl::Seconds(0.5), absl::Seconds(1),
                                                        absl::Seconds(0.5), absl::Seconds(1)}));
}

}  // namespace
}  // namespace moecap::agentd
