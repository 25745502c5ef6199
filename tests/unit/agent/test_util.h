// Helpers for agent/ tests: temporary directories and multi-rank runs on threads of this process
// (real Gloo over loopback, rendezvous through a FileKvStore), so that expert-parallel behaviour
// is tested without starting processes.
#ifndef MOECAP_TESTS_UNIT_AGENT_TEST_UTIL_H_
#define MOECAP_TESTS_UNIT_AGENT_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/comm/file_kv_store.h"
#include "agent/comm/gloo_communicator.h"
#include "agent/compute/cpu_backend.h"
#include "agent/workload/harness.h"
#include "common/catalog.h"

namespace moecap::testing {

// A fresh directory under the test temp dir, removed when the object goes.
class TempDir {
 public:
  TempDir() {
    std::string templ = absl::StrCat(::testing::TempDir(), "/moecap-agent-XXXXXX");
    path_ = mkdtemp(templ.data()) != nullptr ? templ : std::string();
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline ModelSpec CatalogModel(const std::string& name) {
  absl::StatusOr<Catalog> catalog = Catalog::Builtin();
  EXPECT_TRUE(catalog.ok()) << catalog.status();
  absl::StatusOr<const ModelSpec*> model = catalog->FindModel(name);
  EXPECT_TRUE(model.ok()) << model.status();
  return **model;
}

// Connects `world` Gloo communicators on threads; fn(rank, comm) runs on each rank's thread.
template <typename Fn>
void RunOnRanks(int world, Fn&& fn, absl::Duration timeout = absl::Seconds(20)) {
  TempDir dir;
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      FileKvStore store(dir.path());
      GlooOptions options;
      options.rank = r;
      options.size = world;
      options.timeout = timeout;
      absl::StatusOr<std::unique_ptr<GlooCommunicator>> comm =
          GlooCommunicator::Connect(store, options);
      ASSERT_TRUE(comm.ok()) << comm.status();
      fn(r, **comm);
    });
  }
  for (std::thread& t : threads) t.join();
}

// RunRank on every rank of an in-process world; results in rank order. `Backend` is the
// ComputeBackend each rank uses (constructed with one thread).
template <typename Backend = CpuBackend>
std::vector<RankResult> RunWorkloadOnThreads(const WorkloadConfig& config, int world) {
  std::vector<RankResult> results(static_cast<size_t>(world));
  RunOnRanks(world, [&](int rank, Communicator& comm) {
    Backend backend(1);
    RankContext context;
    context.ranks_on_host = world;
    absl::StatusOr<RankResult> result = RunRank(config, context, comm, backend);
    ASSERT_TRUE(result.ok()) << result.status();
    results[static_cast<size_t>(rank)] = *std::move(result);
  });
  return results;
}

}  // namespace moecap::testing

#endif  // MOECAP_TESTS_UNIT_AGENT_TEST_UTIL_H_
