// Fuzzes the model and hardware catalog loaders (ParseModelYaml / ParseHardwareYaml, what
// `Catalog::AddDirectory` runs on a user's files). One source, two targets: MOECAP_FUZZ_HARDWARE
// picks the loader. Besides crashes and sanitizer findings it checks: a rejection is
// InvalidArgument naming the origin; an accepted entry has a normalised, non-empty name, passes
// the core's own validation, and (hardware) has finite figures, so that no NaN or infinity
// reaches the metric formulas.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "common/catalog.h"
#include "common/hardware.h"
#include "common/model.h"

namespace {

using namespace moecap;  // NOLINT: a fuzz target, not a library

void Check(bool condition) {
  if (!condition) std::abort();
}

void CheckRejection(const absl::Status& status) {
  Check(status.code() == absl::StatusCode::kInvalidArgument);
  Check(absl::StartsWith(status.message(), "fuzz.yaml"));
  Check(status.message().size() > std::string("fuzz.yaml: ").size());
}

void CheckName(const std::string& name) {
  Check(!name.empty());
  Check(NormalizeName(name) == name);
}

#ifdef MOECAP_FUZZ_HARDWARE
void FuzzOne(const std::string& text) {
  absl::StatusOr<HardwareSpec> hw = ParseHardwareYaml(text, "fuzz.yaml");
  if (!hw.ok()) return CheckRejection(hw.status());
  CheckName(hw->name);
  Check(ValidateHardware(*hw).ok());
  for (double v : {hw->memory_bytes, hw->peak_bandwidth_bytes_s, hw->tdp_watts, hw->purchase_usd,
                   hw->cloud_usd_per_hour}) {
    Check(std::isfinite(v) && v >= 0);
  }
  for (const auto& [dtype, flops] : hw->peak_flops) Check(std::isfinite(flops) && flops > 0);
  Catalog catalog;
  catalog.AddHardware(*hw);
  Check(catalog.FindHardware(hw->name).ok());
}
#else
void FuzzOne(const std::string& text) {
  absl::StatusOr<ModelSpec> model = ParseModelYaml(text, "fuzz.yaml");
  if (!model.ok()) return CheckRejection(model.status());
  CheckName(model->name);
  Check(ValidateModel(*model).ok());
  Check(model->experts_per_token <= model->experts);
  Catalog catalog;
  catalog.AddModel(*model);
  Check(catalog.FindModel(model->name).ok());
}
#endif

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzOne(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
