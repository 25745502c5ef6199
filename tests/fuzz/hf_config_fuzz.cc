// Fuzzes the config.json reader (ModelFromHfConfig, what a user's `config.json` goes through) and
// ModelYaml. Besides crashes and sanitizer findings it checks: a rejection is InvalidArgument
// naming the origin; an accepted config gives a spec with a normalised, non-empty name and the
// origin as its source that passes the core's validation; and its catalog YAML reads back
// through ParseModelYaml to the same spec (the same YAML again).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "common/catalog.h"
#include "common/hf_config.h"
#include "common/model.h"

namespace {

using namespace moecap;  // NOLINT: a fuzz target, not a library

void Check(bool condition) {
  if (!condition) std::abort();
}

void FuzzOne(const std::string& text) {
  absl::StatusOr<ModelSpec> model = ModelFromHfConfig(text, "fuzz.json");
  if (!model.ok()) {
    Check(model.status().code() == absl::StatusCode::kInvalidArgument);
    Check(absl::StartsWith(model.status().message(), "fuzz.json: "));
    Check(model.status().message().size() > std::string("fuzz.json: ").size());
    return;
  }
  Check(!model->name.empty());
  Check(NormalizeName(model->name) == model->name);
  Check(model->source == "fuzz.json");
  Check(ValidateModel(*model).ok());
  Check(model->experts_per_token <= model->experts);

  const std::string yaml = ModelYaml(*model);
  absl::StatusOr<ModelSpec> back = ParseModelYaml(yaml, "roundtrip.yaml");
  Check(back.ok());
  Check(back->name == model->name && back->display_name == model->display_name);
  Check(back->layers == model->layers && back->dense_layers == model->dense_layers);
  Check(back->experts == model->experts && back->moe_layer_step == model->moe_layer_step);
  Check(back->sliding_window_layers == model->sliding_window_layers);
  Check(back->expert_dtype == model->expert_dtype);
  Check(ModelYaml(*back) == yaml);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzOne(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
