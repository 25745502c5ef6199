// Builders of agent descriptions and reports for the coordinator's tests.
#ifndef MOECAP_TESTS_FAKES_TEST_AGENTS_H_
#define MOECAP_TESTS_FAKES_TEST_AGENTS_H_

#include <string>
#include <vector>

#include "moecap/v1/agent.pb.h"
#include "moecap/v1/report.pb.h"

namespace moecap::coordinator::testing {

// A CPU agent with `devices` CPU devices (each 100 GB/s, 1 TFLOP/s fp32).
inline v1::AgentInfo CpuAgent(const std::string& name, int devices = 1,
                              const std::string& host = "") {
  v1::AgentInfo info;
  info.set_name(name);
  info.set_hostname(host.empty() ? name + ".local" : host);
  info.set_data_plane_host("127.0.0.1");
  info.set_backend(v1::BACKEND_CPU);
  for (int i = 0; i < devices; ++i) {
    v1::Device* d = info.mutable_inventory()->add_devices();
    d->set_index(i);
    d->set_kind(v1::DEVICE_KIND_CPU);
    d->set_name("test cpu");
    d->set_hardware("cpu");
    d->set_memory_bytes(64ull << 30);
    d->set_peak_bandwidth_bytes_per_s(100e9);
    v1::DtypeFlops* f = d->add_peak_flops();
    f->set_dtype(v1::DTYPE_FP32);
    f->set_flops_per_s(1e12);
  }
  return info;
}

// An H100 agent with `gpus` GPUs (catalog peaks: 3.35e12 B/s; bf16 989.4e12 FLOP/s).
inline v1::AgentInfo GpuAgent(const std::string& name, int gpus) {
  v1::AgentInfo info;
  info.set_name(name);
  info.set_hostname(name + ".local");
  info.set_data_plane_host("10.0.0.1");
  info.set_backend(v1::BACKEND_CUDA);
  for (int i = 0; i < gpus; ++i) {
    v1::Device* d = info.mutable_inventory()->add_devices();
    d->set_index(i);
    d->set_kind(v1::DEVICE_KIND_GPU);
    d->set_hardware("h100-sxm");
    d->set_memory_bytes(80ull << 30);
    d->set_peak_bandwidth_bytes_per_s(3.35e12);
    v1::DtypeFlops* f = d->add_peak_flops();
    f->set_dtype(v1::DTYPE_BF16);
    f->set_flops_per_s(989.4e12);
  }
  return info;
}

// One phase of a rank: `bytes`/`flops` counted per step (all in routed_experts), step times.
inline v1::RankPhase Phase(v1::Phase phase, double bytes, double flops,
                           const std::vector<double>& steps) {
  v1::RankPhase p;
  p.set_phase(phase);
  p.set_iterations(static_cast<int64_t>(steps.size()));
  for (double s : steps) p.add_step_seconds(s);
  double sum = 0;
  for (double s : steps) sum += s;
  p.mutable_step_time()->set_mean(steps.empty() ? 0 : sum / steps.size());
  p.mutable_counts()->mutable_routed_experts()->set_bytes(bytes);
  p.mutable_counts()->mutable_routed_experts()->set_flops(flops);
  p.mutable_counts()->set_total_bytes(bytes);
  p.mutable_counts()->set_total_flops(flops);
  p.mutable_dense_counts()->mutable_routed_experts()->set_bytes(2 * bytes);
  p.mutable_dense_counts()->mutable_routed_experts()->set_flops(2 * flops);
  return p;
}

}  // namespace moecap::coordinator::testing

#endif  // MOECAP_TESTS_FAKES_TEST_AGENTS_H_
