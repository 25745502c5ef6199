// Report delivery on a fake clock (no sleeping): transient answers are retried with doubling
// pauses until the window closes, NOT_FOUND only for a short while, a permanent error not at all,
// and the id is read again for every try.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/daemon/report_sender.h"
#include "tests/fakes/fake_clock.h"

namespace moecap::agentd {
namespace {

TEST(ReportSenderTest, RetriesTransientAnswersWithDoublingPausesAndTheCurrentId) {
  FakeClock clock;
  absl::Notification stopping;
  int registrations = 0;
  ReportSender sender(
      clock, [&] { return "agent-" + std::to_string(registrations); }, stopping);
  std::vector<std::string> ids;
  const bool delivered =
      sender.Send("ReportNode", clock.Now() + absl::Seconds(60), [&](const std::string& id) {
        ids.push_back(id);
        ++registrations;  // the session registered again
        return ids.size() < 4 ? absl::UnavailableError("down") : absl::OkStatus();
      });
  EXPECT_TRUE(delivered);
  EXPECT_EQ(ids, (std::vector<std::string>{"agent-0", "agent-1", "agent-2", "agent-3"}));
  EXPECT_EQ(clock.waits(),
            (std::vector<absl::Duration>{absl::Milliseconds(200), absl::Milliseconds(400),
                                         absl::Milliseconds(800)}));
}

TEST(ReportSenderTest, GivesUpAtTheWindowAndOnPermanentErrors) {
  FakeClock clock;
  absl::Notification stopping;
  ReportSender sender(
      clock, [] { return std::string("a"); }, stopping);
  int tries = 0;
  // 0.2 + 0.4 + 0.8 = 1.4 s of pauses fit in 2 s; the next (1.6 s) would not.
  EXPECT_FALSE(sender.Send("ReportRank", clock.Now() + absl::Seconds(2), [&](const std::string&) {
    ++tries;
    return absl::DeadlineExceededError("slow");
  }));
  EXPECT_EQ(tries, 4);
  tries = 0;
  EXPECT_FALSE(sender.Send("ReportRank", clock.Now() + absl::Seconds(60), [&](const std::string&) {
    ++tries;
    return absl::InvalidArgumentError("bad report");
  }));
  EXPECT_EQ(tries, 1);
}

TEST(ReportSenderTest, NotFoundIsRetriedForTheRegisterAgainWindowOnly) {
  FakeClock clock;
  absl::Notification stopping;
  ReportSender sender(
      clock, [] { return std::string("a"); }, stopping);
  const absl::Time start = clock.Now();
  EXPECT_FALSE(sender.Send("ReportNode", start + absl::Hours(1), [](const std::string&) {
    return absl::NotFoundError("unknown agent");
  }));
  EXPECT_LE(clock.Now() - start, ReportSender::kRegisterAgainWindow);
  EXPECT_GT(clock.Now() - start, ReportSender::kRegisterAgainWindow / 2);
}

TEST(ReportSenderTest, AShutdownEndsTheWait) {
  FakeClock clock;
  absl::Notification stopping;
  stopping.Notify();
  ReportSender sender(
      clock, [] { return std::string("a"); }, stopping);
  int tries = 0;
  EXPECT_FALSE(sender.Send("ReportNode", clock.Now() + absl::Seconds(60), [&](const std::string&) {
    ++tries;
    return absl::UnavailableError("down");
  }));
  EXPECT_EQ(tries, 1);
  EXPECT_TRUE(clock.waits().empty());
}

}  // namespace
}  // namespace moecap::agentd
