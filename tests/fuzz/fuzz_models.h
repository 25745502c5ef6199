// The fixed model and device the fuzz targets count with: METRICS.md's toy model on a device of
// round peaks, so that no input needs a catalog.
#ifndef MOECAP_TESTS_FUZZ_FUZZ_MODELS_H_
#define MOECAP_TESTS_FUZZ_FUZZ_MODELS_H_

#include "common/hardware.h"
#include "common/model.h"

namespace moecap::fuzz {

inline ModelSpec ToyModel() {
  ModelSpec m;
  m.name = "toy-moe";
  m.layers = 2;
  m.hidden_size = 8;
  m.vocab_size = 10;
  m.gqa = {2, 1, 4};
  m.experts = 4;
  m.experts_per_token = 2;
  m.expert_ffn_size = 4;
  return m;
}

inline HardwareSpec ToyDevice() {
  HardwareSpec hw;
  hw.name = "toy-gpu";
  hw.peak_bandwidth_bytes_s = 1e4;
  hw.peak_flops[Dtype::kBf16] = 1e5;
  hw.cloud_usd_per_hour = 36;
  return hw;
}

}  // namespace moecap::fuzz

#endif  // MOECAP_TESTS_FUZZ_FUZZ_MODELS_H_
