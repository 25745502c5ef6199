// FileKvStore: values, bounded waits, atomic counters across threads, key encoding.
#include "agent/comm/file_kv_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "tests/fakes/fake_clock.h"
#include "tests/unit/agent/test_util.h"

namespace moecap {
namespace {

using ::moecap::testing::TempDir;

TEST(FileKvStoreTest, SetThenGetReturnsTheLatestValue) {
  TempDir dir;
  FileKvStore store(dir.path());
  ASSERT_TRUE(store.Set("job/1/addr", "first").ok());
  ASSERT_TRUE(store.Set("job/1/addr", std::string("sec\0nd", 6)).ok());
  absl::StatusOr<std::string> value = store.Get("job/1/addr", absl::Seconds(1));
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, std::string("sec\0nd", 6));  // binary-safe
}

TEST(FileKvStoreTest, GetOfAMissingKeyPollsWithBackoffUntilItsDeadlineNamingTheKey) {
  TempDir dir;
  FakeClock clock;
  FileKvStore store(dir.path(), clock);
  absl::StatusOr<std::string> value = store.Get("never", absl::Milliseconds(50));
  EXPECT_EQ(value.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(value.status().message().find("'never'"), absl::string_view::npos);
  // Pauses of 200 us doubling to the 20 ms cap: 0.2 + 0.4 + 0.8 + 1.6 + 3.2 + 6.4 + 12.8 = 25.4
  // ms, then 20 ms (45.4), then the 4.6 ms left to the 50 ms deadline; no pause past it.
  const std::vector<absl::Duration> expected = {
      absl::Microseconds(200),   absl::Microseconds(400),  absl::Microseconds(800),
      absl::Microseconds(1600),  absl::Microseconds(3200), absl::Microseconds(6400),
      absl::Microseconds(12800), absl::Milliseconds(20),   absl::Microseconds(4600)};
  EXPECT_EQ(clock.waits(), expected);
}

// Another writer (another process's store on the same directory) sets the keys while Wait
// pauses: "a" during the first pause, "b" during the third; Wait sees each on its next look.
TEST(FileKvStoreTest, WaitReturnsOnceAnotherWriterSetsEveryKey) {
  TempDir dir;
  FakeClock clock;
  FileKvStore store(dir.path(), clock);
  FileKvStore other(dir.path());
  clock.set_on_wait([&](size_t waits) {
    if (waits == 1) {
      ASSERT_TRUE(other.Set("a", "1").ok());
    } else if (waits == 3) {
      ASSERT_TRUE(other.Set("b", "2").ok());
    }
  });
  EXPECT_TRUE(store.Wait({"a", "b"}, absl::Seconds(10)).ok());
  EXPECT_EQ(clock.waits().size(), 3u);  // it returned at its first look after "b" was set
  clock.set_on_wait(nullptr);
  absl::Status missing = store.Wait({"a", "c"}, absl::Milliseconds(30));
  EXPECT_EQ(missing.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(missing.message().find("[c]"), absl::string_view::npos) << missing;
}

TEST(FileKvStoreTest, AddIsAtomicAcrossConcurrentWriters) {
  TempDir dir;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      FileKvStore store(dir.path());
      for (int i = 0; i < 25; ++i) ASSERT_TRUE(store.Add("counter", 2).ok());
    });
  }
  for (std::thread& t : threads) t.join();
  FileKvStore store(dir.path());
  // 4 writers × 25 adds × 2 = 200; one more Add of -1 returns 199.
  absl::StatusOr<int64_t> value = store.Add("counter", -1);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, 199);
}

TEST(FileKvStoreTest, AddOnANonIntegerValueFails) {
  TempDir dir;
  FileKvStore store(dir.path());
  ASSERT_TRUE(store.Set("k", "abc").ok());
  EXPECT_EQ(store.Add("k", 1).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(FileKvStoreTest, KeysMapToFlatSafeFileNames) {
  EXPECT_EQ(FileKvStore::EncodeKey("a/b c"), "a%2Fb%20c");
  EXPECT_EQ(FileKvStore::EncodeKey(".hidden"), "%2Ehidden");  // never a dot file
  EXPECT_EQ(FileKvStore::EncodeKey(""), "%");
  EXPECT_EQ(FileKvStore::EncodeKey("rank-1_x.y"), "rank-1_x.y");
}

}  // namespace
}  // namespace moecap
