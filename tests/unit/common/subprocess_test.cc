// Subprocess: exit statuses, a program that cannot run, redirects, process groups, the grace
// before SIGKILL (on a fake clock, so no test waits it out) and the child dying with the thread
// that started it.
#include "common/subprocess.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"

namespace moecap {
namespace {

using ::testing::HasSubstr;

class SubprocessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = absl::StrCat(::testing::TempDir(), "/moecap-subprocess-XXXXXX");
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string Path(const std::string& name) const { return absl::StrCat(dir_, "/", name); }

  static std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::string dir_;
};

// Generous bounds for waits on real children that end by themselves (they end in milliseconds).
constexpr absl::Duration kBound = absl::Seconds(30);

TEST_F(SubprocessTest, ReportsTheExitStatus) {
  absl::StatusOr<Subprocess> child = Subprocess::Spawn({"/bin/sh", "-c", "exit 3"});
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_GT(child->pid(), 0);
  const std::optional<int> status = child->Wait(kBound);
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 3);
  EXPECT_FALSE(child->running());
  EXPECT_EQ(child->Poll(), status);  // reaped once, remembered
}

TEST_F(SubprocessTest, AProgramThatCannotRunExitsWith127) {
  absl::StatusOr<Subprocess> child = Subprocess::Spawn({Path("no-such-program")});
  ASSERT_TRUE(child.ok()) << child.status();
  const std::optional<int> status = child->Wait(kBound);
  ASSERT_TRUE(status.has_value() && WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 127);
}

TEST_F(SubprocessTest, RefusesAnEmptyArgvAndAnUncreatableRedirect) {
  EXPECT_EQ(Subprocess::Spawn({}).status().code(), absl::StatusCode::kInvalidArgument);
  SpawnOptions options;
  options.stdout_path = Path("missing-dir/out.log");
  const absl::Status status = Subprocess::Spawn({"/bin/true"}, options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr("missing-dir/out.log"));
}

TEST_F(SubprocessTest, RedirectsBothStreamsToOneFileInOrder) {
  SpawnOptions options;
  options.stdout_path = Path("both.log");
  options.stderr_path = Path("both.log");
  {
    std::ofstream stale(options.stdout_path);
    stale << "left from an earlier run, longer than what comes now\n";
  }
  absl::StatusOr<Subprocess> child =
      Subprocess::Spawn({"/bin/sh", "-c", "echo out; echo err >&2; echo out2"}, options);
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE(child->Wait(kBound).has_value());
  EXPECT_EQ(Read(options.stdout_path), "out\nerr\nout2\n");  // one offset, truncated first
}

TEST_F(SubprocessTest, RedirectsTheStreamsToSeparateFiles) {
  SpawnOptions options;
  options.stdout_path = Path("out.log");
  options.stderr_path = Path("err.log");
  absl::StatusOr<Subprocess> child =
      Subprocess::Spawn({"/bin/sh", "-c", "echo to-out; echo to-err >&2"}, options);
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE(child->Wait(kBound).has_value());
  EXPECT_EQ(Read(options.stdout_path), "to-out\n");
  EXPECT_EQ(Read(options.stderr_path), "to-err\n");
}

TEST_F(SubprocessTest, PutsChildrenInTheProcessGroupAsked) {
  SpawnOptions leader_options;
  leader_options.process_group = 0;
  absl::StatusOr<Subprocess> leader = Subprocess::Spawn({"/bin/sleep", "30"}, leader_options);
  ASSERT_TRUE(leader.ok()) << leader.status();
  SpawnOptions member_options;
  member_options.process_group = leader->pid();
  absl::StatusOr<Subprocess> member = Subprocess::Spawn({"/bin/sleep", "30"}, member_options);
  ASSERT_TRUE(member.ok()) << member.status();
  // Set by the time Spawn returns (by the parent, or by the child before it exec'd).
  EXPECT_EQ(getpgid(leader->pid()), leader->pid());
  EXPECT_EQ(getpgid(member->pid()), leader->pid());
  EXPECT_NE(getpgid(leader->pid()), getpgrp());
  kill(-leader->pid(), SIGKILL);  // one signal reaches the group
  for (Subprocess* child : {&*leader, &*member}) {
    const std::optional<int> status = child->Wait(kBound);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
  }
}

// The polite signal is SIGWINCH, which a process ignores unless it asks for it: the child
// certainly outlives the grace (a trap for SIGTERM in a shell could race the signal).
TEST_F(SubprocessTest, StopKillsAChildThatOutlivesTheGrace) {
  FakeClock clock;
  absl::StatusOr<Subprocess> child = Subprocess::Spawn({"/bin/sleep", "30"}, {}, clock);
  ASSERT_TRUE(child.ok()) << child.status();
  const absl::Time start = clock.Now();
  const int status = child->Stop(absl::Seconds(2), SIGWINCH);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_EQ(clock.Now() - start, absl::Seconds(2));  // the whole grace, on the clock
  // The pauses between polls grow, and none waits past the grace.
  const std::vector<absl::Duration> waits = clock.waits();
  ASSERT_GE(waits.size(), 2u);
  EXPECT_EQ(waits[0], absl::Milliseconds(1));
  EXPECT_EQ(waits[1], absl::Milliseconds(2));
  EXPECT_FALSE(child->running());
}

TEST_F(SubprocessTest, StopEndsAChildThatGoesOnTheSignalWithoutSigkill) {
  absl::StatusOr<Subprocess> child = Subprocess::Spawn({"/bin/sleep", "30"});
  ASSERT_TRUE(child.ok()) << child.status();
  const int status = child->Stop(kBound);  // SIGTERM ends sleep long before the bound
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
}

TEST_F(SubprocessTest, WaitGivesUpAtTheTimeoutOnTheClock) {
  FakeClock clock;
  absl::StatusOr<Subprocess> child = Subprocess::Spawn({"/bin/sleep", "30"}, {}, clock);
  ASSERT_TRUE(child.ok()) << child.status();
  const absl::Time start = clock.Now();
  EXPECT_FALSE(child->Wait(absl::Milliseconds(100)).has_value());
  EXPECT_EQ(clock.Now() - start, absl::Milliseconds(100));
  EXPECT_TRUE(child->running());
  const int status = child->Kill();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

// PR_SET_PDEATHSIG follows the starting thread: when it ends, the child is killed, though this
// process (its parent) lives on.
TEST_F(SubprocessTest, TheChildDiesWithTheThreadThatStartedIt) {
  std::optional<Subprocess> child;
  std::thread starter([&] {
    SpawnOptions options;
    options.stdout_path = Path("ready");
    absl::StatusOr<Subprocess> spawned =
        Subprocess::Spawn({"/bin/sh", "-c", "echo ready; exec sleep 30"}, options);
    ASSERT_TRUE(spawned.ok()) << spawned.status();
    // Once the child prints, it has exec'd, so it asked to follow this thread before this
    // thread ends (a thread ending in between would leave it running: see Spawn).
    const absl::Time deadline = absl::Now() + kBound;
    while (Read(options.stdout_path).empty() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    ASSERT_EQ(Read(options.stdout_path), "ready\n");
    child = *std::move(spawned);
  });
  starter.join();
  ASSERT_TRUE(child.has_value());
  const std::optional<int> status = child->Wait(kBound);
  ASSERT_TRUE(status.has_value()) << "the child outlived the thread that started it";
  ASSERT_TRUE(WIFSIGNALED(*status)) << *status;
  EXPECT_EQ(WTERMSIG(*status), SIGKILL);
}

}  // namespace
}  // namespace moecap
