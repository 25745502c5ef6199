// Gang placement policy (see scheduler.h for the rule).
#include "coordinator/scheduler.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/catalog.h"

namespace moecap::coordinator {
namespace {

std::string BackendWord(v1::Backend b) {
  switch (b) {
    case v1::BACKEND_CPU:
      return "cpu";
    case v1::BACKEND_CUDA:
      return "cuda";
    default:
      return "any";
  }
}

std::vector<v1::Backend> Backends(const GangSpec& spec) {
  if (spec.backend == v1::BACKEND_CPU || spec.backend == v1::BACKEND_CUDA) return {spec.backend};
  return {v1::BACKEND_CUDA, v1::BACKEND_CPU};
}

}  // namespace

std::vector<int32_t> Scheduler::MatchingDevices(const SchedulableAgent& agent, const GangSpec& spec,
                                                v1::Backend backend) {
  std::vector<int32_t> out;
  if (agent.backend != backend) return out;
  const v1::DeviceKind kind =
      backend == v1::BACKEND_CUDA ? v1::DEVICE_KIND_GPU : v1::DEVICE_KIND_CPU;
  const std::string hardware = NormalizeName(spec.hardware);
  for (const v1::Device& d : agent.devices) {
    if (d.kind() != kind) continue;
    if (!hardware.empty() && NormalizeName(d.hardware()) != hardware) continue;
    if (d.memory_bytes() < spec.min_device_memory_bytes) continue;
    out.push_back(d.index());
  }
  return out;
}

std::string Scheduler::Describe(const GangSpec& spec) {
  std::string s = absl::StrCat(spec.nodes, " ", BackendWord(spec.backend), " agent",
                               spec.nodes == 1 ? "" : "s", " with ", spec.devices_per_node, " ",
                               spec.hardware.empty() ? "" : absl::StrCat(spec.hardware, " "),
                               "device", spec.devices_per_node == 1 ? "" : "s");
  if (spec.min_device_memory_bytes > 0) {
    absl::StrAppend(&s, " of >= ", spec.min_device_memory_bytes / (1ull << 20), " MiB");
  }
  return s;
}

ScheduleDecision Scheduler::Schedule(std::vector<QueuedJob> queue,
                                     const std::vector<SchedulableAgent>& agents,
                                     absl::Time now) const {
  std::stable_sort(queue.begin(), queue.end(), [](const QueuedJob& a, const QueuedJob& b) {
    if (a.priority != b.priority) return a.priority > b.priority;
    return a.seq < b.seq;
  });
  ScheduleDecision decision;
  std::set<std::string> taken;  // agents placed in this pass
  // Per (backend, hardware, memory, devices per node): how many agents match (live) and the
  // free ones among them with their first matching devices, in the agents' order.
  struct Matches {
    int live = 0;
    std::vector<NodePlacement> free;
  };
  std::map<std::tuple<int, std::string, uint64_t, int32_t>, Matches> matches;
  const QueuedJob* reserving = nullptr;
  for (const QueuedJob& job : queue) {
    if (reserving != nullptr) {
      v1::PlacementVerdict& v = decision.waits[job.job_id];
      v.set_agents_needed(job.spec.nodes);
      v.set_behind_job_id(reserving->job_id);
      v.set_reason(absl::StrCat("waiting behind job ", reserving->job_id, " (priority ",
                                reserving->priority, "), queued longer than the backfill window (",
                                absl::FormatDuration(options_.backfill_window),
                                "): it gets the next free agents"));
      continue;
    }
    const int32_t dpn = std::max(1, job.spec.devices_per_node);
    bool placed = false;
    int best_live = 0;
    int best_free = 0;
    for (v1::Backend backend : Backends(job.spec)) {
      // Which agents match depends only on the spec: computed once per distinct spec, so a
      // pass is O(jobs + agents x specs), not O(jobs x agents).
      const auto key = std::make_tuple(static_cast<int>(backend), job.spec.hardware,
                                       job.spec.min_device_memory_bytes, dpn);
      auto cached = matches.find(key);
      if (cached == matches.end()) {
        Matches m;
        for (const SchedulableAgent& a : agents) {
          std::vector<int32_t> devices = MatchingDevices(a, job.spec, backend);
          if (static_cast<int32_t>(devices.size()) < dpn) continue;
          ++m.live;
          if (!a.free) continue;
          devices.resize(static_cast<size_t>(dpn));
          m.free.push_back({a.agent_id, std::move(devices)});
        }
        cached = matches.emplace(key, std::move(m)).first;
      }
      std::vector<NodePlacement> nodes;
      const int live = cached->second.live;
      int free = 0;
      for (const NodePlacement& a : cached->second.free) {
        if (taken.count(a.agent_id) > 0) continue;
        ++free;
        if (static_cast<int32_t>(nodes.size()) < job.spec.nodes) nodes.push_back(a);
      }
      if (static_cast<int32_t>(nodes.size()) == job.spec.nodes) {
        for (const NodePlacement& n : nodes) taken.insert(n.agent_id);
        decision.placements.push_back({job.job_id, backend, std::move(nodes)});
        placed = true;
        break;
      }
      if (live > best_live || (live == best_live && free > best_free)) {
        best_live = live;
        best_free = free;
      }
    }
    if (placed) continue;
    const std::string needs = absl::StrCat("needs ", Describe(job.spec), "; ");
    v1::PlacementVerdict& v = decision.waits[job.job_id];
    v.set_agents_needed(job.spec.nodes);
    v.set_agents_matching(best_live);
    v.set_agents_free(best_free);
    v.set_needs(Describe(job.spec));
    if (best_live < job.spec.nodes) {
      v.set_needs_more_agents(true);
      v.set_reason(absl::StrCat(needs, best_live, " registered agent",
                                best_live == 1 ? " matches" : "s match",
                                ": waiting for more agents to register"));
      continue;
    }
    v.set_reason(absl::StrCat(needs, best_live, " registered agents match, ", best_free,
                              " of them free: waiting for running jobs to finish"));
    if (now - job.queued_since >= options_.backfill_window) reserving = &job;
  }
  return decision;
}

}  // namespace moecap::coordinator
