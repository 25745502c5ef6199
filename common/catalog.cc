// Catalog loading (YAML) and name look-up.
#include "common/catalog.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/catalog_data.h"
#include "common/hf_config.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

// Levenshtein distance (defined below with the name look-ups).
size_t EditDistance(absl::string_view a, absl::string_view b);

// Reads the keys of one YAML mapping, remembering which were read so that unknown (mistyped)
// keys can be reported. Every error names the full field path.
class MappingReader {
 public:
  MappingReader(const YAML::Node& node, std::string origin, std::string prefix)
      : node_(node), origin_(std::move(origin)), prefix_(std::move(prefix)) {}

  absl::Status Error(absl::string_view key, absl::string_view reason) const {
    return absl::InvalidArgumentError(absl::StrCat(origin_, ": field '", Path(key), "': ", reason));
  }
  std::string Path(absl::string_view key) const {
    return prefix_.empty() ? std::string(key) : absl::StrCat(prefix_, ".", key);
  }
  const std::string& origin() const { return origin_; }

  absl::Status Int(absl::string_view key, bool required, int64_t* out) {
    std::optional<YAML::Node> v;
    if (absl::Status s = Get(key, required, &v); !s.ok() || !v) return s;
    if (!v->IsScalar()) return Error(key, "expected an integer");
    try {
      *out = v->as<int64_t>();
    } catch (const YAML::Exception&) {
      return Error(key, absl::StrCat("expected an integer, got '", v->Scalar(), "'"));
    }
    return absl::OkStatus();
  }
  absl::Status Double(absl::string_view key, bool required, double* out) {
    std::optional<YAML::Node> v;
    if (absl::Status s = Get(key, required, &v); !s.ok() || !v) return s;
    if (!v->IsScalar()) return Error(key, "expected a number");
    try {
      *out = v->as<double>();
    } catch (const YAML::Exception&) {
      return Error(key, absl::StrCat("expected a number, got '", v->Scalar(), "'"));
    }
    // YAML spells NaN and infinity (.nan, .inf); no catalog figure may be either: they would
    // pass every range check and poison the metrics.
    if (!std::isfinite(*out)) {
      return Error(key, absl::StrCat("expected a finite number, got '", v->Scalar(), "'"));
    }
    return absl::OkStatus();
  }
  absl::Status String(absl::string_view key, bool required, std::string* out) {
    std::optional<YAML::Node> v;
    if (absl::Status s = Get(key, required, &v); !s.ok() || !v) return s;
    if (!v->IsScalar()) return Error(key, "expected a string");
    *out = v->Scalar();
    return absl::OkStatus();
  }
  absl::Status Bool(absl::string_view key, bool required, bool* out) {
    std::optional<YAML::Node> v;
    if (absl::Status s = Get(key, required, &v); !s.ok() || !v) return s;
    try {
      *out = v->as<bool>();
    } catch (const YAML::Exception&) {
      return Error(key, absl::StrCat("expected true or false, got '", v->Scalar(), "'"));
    }
    return absl::OkStatus();
  }
  absl::Status StringList(absl::string_view key, std::vector<std::string>* out) {
    std::optional<YAML::Node> v;
    if (absl::Status s = Get(key, false, &v); !s.ok() || !v) return s;
    if (!v->IsSequence()) return Error(key, "expected a list of strings");
    for (const YAML::Node& item : *v) {
      if (!item.IsScalar()) return Error(key, "expected a list of strings");
      out->push_back(item.Scalar());
    }
    return absl::OkStatus();
  }
  // A dtype name (ParseDtype's spellings); absent leaves `out` unset.
  absl::Status DtypeField(absl::string_view key, std::optional<Dtype>* out) {
    std::string text;
    MOECAP_RETURN_IF_ERROR(String(key, false, &text));
    if (text.empty()) return absl::OkStatus();
    absl::StatusOr<Dtype> d = ParseDtype(text);
    if (!d.ok()) return Error(key, d.status().message());
    *out = *d;
    return absl::OkStatus();
  }
  // A number of layers, given as a count or as the list of the layers' indices (0-based, each
  // below `layers`, none twice).
  absl::Status LayerCount(absl::string_view key, int64_t layers, int64_t* out) {
    std::optional<YAML::Node> v;
    if (absl::Status s = Get(key, false, &v); !s.ok() || !v) return s;
    if (v->IsScalar()) return Int(key, false, out);
    if (!v->IsSequence()) return Error(key, "expected a layer count or a list of layer indices");
    std::set<int64_t> seen;
    for (const YAML::Node& item : *v) {
      int64_t index = -1;
      try {
        index = item.as<int64_t>();
      } catch (const YAML::Exception&) {
        return Error(key, "expected a list of layer indices (integers)");
      }
      if (index < 0 || index >= layers) {
        return Error(key, absl::StrCat("layer ", index, " is not between 0 and ", layers - 1));
      }
      if (!seen.insert(index).second) return Error(key, absl::StrCat("layer ", index, " twice"));
    }
    *out = static_cast<int64_t>(seen.size());
    return absl::OkStatus();
  }
  // A nested mapping (an empty one when it is absent and not required).
  absl::StatusOr<MappingReader> Child(absl::string_view key, bool required) {
    std::optional<YAML::Node> v;
    MOECAP_RETURN_IF_ERROR(Get(key, required, &v));
    if (v && !v->IsMap()) return Error(key, "expected a mapping");
    return MappingReader(v ? *v : YAML::Node(YAML::NodeType::Map), origin_, Path(key));
  }
  // " ('expertz' is there: a misspelling?)" when a key of the mapping is near `key`: a typo of a
  // required key would otherwise read as a missing key.
  std::string Misspelt(absl::string_view key) const {
    for (const auto& kv : node_) {
      const std::string candidate = kv.first.Scalar();
      if (candidate != key && EditDistance(candidate, key) <= 2) {
        return absl::StrCat(" ('", Path(candidate), "' is there: a misspelling?)");
      }
    }
    return "";
  }

  // Errors on the first key that was never read.
  absl::Status RejectUnknown() const {
    for (const auto& kv : node_) {
      const std::string key = kv.first.Scalar();
      if (!read_.contains(key)) {
        return UnknownFieldError(origin_, prefix_, key, {read_.begin(), read_.end()},
                                 "docs/catalog.md");
      }
    }
    return absl::OkStatus();
  }

 private:
  // Leaves `out` empty when the key is absent or null.
  absl::Status Get(absl::string_view key, bool required, std::optional<YAML::Node>* out) {
    read_.insert(std::string(key));
    const YAML::Node& node = node_;  // const: look-ups must not insert the key
    YAML::Node v = node[std::string(key)];
    if (!v.IsDefined() || v.IsNull()) {
      if (required) return Error(key, absl::StrCat("required but missing", Misspelt(key)));
      out->reset();
      return absl::OkStatus();
    }
    *out = v;
    return absl::OkStatus();
  }

  YAML::Node node_;
  std::string origin_;
  std::string prefix_;
  std::set<std::string> read_;
};

absl::StatusOr<YAML::Node> ParseYamlMapping(absl::string_view yaml, absl::string_view origin) {
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    if (!root.IsMap()) {
      return absl::InvalidArgumentError(absl::StrCat(origin, ": expected a YAML mapping"));
    }
    return root;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ":", e.mark.line + 1, ": YAML syntax error: ", e.msg));
  }
}

absl::Status ReadGqa(MappingReader& r, GqaAttention* a) {
  MOECAP_RETURN_IF_ERROR(r.Int("heads", true, &a->heads));
  MOECAP_RETURN_IF_ERROR(r.Int("kv_heads", true, &a->kv_heads));
  return r.Int("head_dim", true, &a->head_dim);
}

absl::Status ReadMla(MappingReader& r, MlaAttention* a) {
  MOECAP_RETURN_IF_ERROR(r.Int("heads", true, &a->heads));
  MOECAP_RETURN_IF_ERROR(r.Int("q_lora_rank", false, &a->q_lora_rank));
  MOECAP_RETURN_IF_ERROR(r.Int("kv_lora_rank", true, &a->kv_lora_rank));
  MOECAP_RETURN_IF_ERROR(r.Int("qk_nope_head_dim", true, &a->qk_nope_head_dim));
  MOECAP_RETURN_IF_ERROR(r.Int("qk_rope_head_dim", true, &a->qk_rope_head_dim));
  return r.Int("v_head_dim", true, &a->v_head_dim);
}

std::string ReadFile(const std::filesystem::path& path, absl::Status* status) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *status = absl::NotFoundError(absl::StrCat("cannot read '", path.string(), "'"));
    return "";
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::vector<std::filesystem::path> FilesIn(const std::filesystem::path& dir, bool with_json) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string ext = entry.path().extension().string();
    if (entry.is_regular_file() &&
        (ext == ".yaml" || ext == ".yml" || (with_json && ext == ".json"))) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

template <typename Entry>
bool MatchesAlias(const Entry& e, const std::string& normalized) {
  for (const std::string& alias : e.aliases) {
    if (NormalizeName(alias) == normalized) return true;
  }
  return false;
}

// Returns whether an entry of the same name was replaced.
template <typename Entry>
bool Upsert(std::vector<Entry>& entries, Entry entry) {
  const std::string key = NormalizeName(entry.name);
  for (Entry& e : entries) {
    if (NormalizeName(e.name) == key) {
      e = std::move(entry);
      return true;
    }
  }
  entries.push_back(std::move(entry));
  return false;
}

template <typename Entry>
absl::StatusOr<const Entry*> Find(const std::vector<Entry>& entries, absl::string_view name,
                                  absl::string_view what, absl::string_view list_command) {
  const std::string normalized = NormalizeName(name);
  // Names before aliases: a user entry named like a built-in alias ("h100") must be reachable.
  for (const Entry& e : entries) {
    if (NormalizeName(e.name) == normalized) return &e;
  }
  for (const Entry& e : entries) {
    if (MatchesAlias(e, normalized)) return &e;
  }
  std::vector<std::string> names;
  for (const Entry& e : entries) names.push_back(e.name);
  std::vector<std::string> nearest = NearestNames(name, names, 3);
  std::string hint =
      nearest.empty() ? "" : absl::StrCat("; did you mean ", absl::StrJoin(nearest, ", "), "?");
  return absl::NotFoundError(absl::StrCat("unknown ", what, " '", name, "'", hint, " (`moecapctl ",
                                          list_command, "` lists them)"));
}

}  // namespace

std::string NormalizeName(absl::string_view name) {
  std::string out = absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
  for (char& c : out) {
    if (c == ' ' || c == '_') c = '-';
  }
  return out;
}

absl::StatusOr<ModelSpec> ParseModelYaml(absl::string_view yaml, absl::string_view origin) {
  absl::StatusOr<YAML::Node> root = ParseYamlMapping(yaml, origin);
  if (!root.ok()) return root.status();
  MappingReader r(*root, std::string(origin), "");
  ModelSpec m;
  std::vector<absl::Status> statuses = {
      r.String("name", true, &m.name),
      r.String("display_name", false, &m.display_name),
      r.StringList("aliases", &m.aliases),
      r.String("source", false, &m.source),
      r.Int("layers", true, &m.layers),
      r.Int("dense_layers", false, &m.dense_layers),
      r.Int("hidden_size", true, &m.hidden_size),
      r.Int("vocab_size", true, &m.vocab_size),
      r.Int("dense_ffn_size", false, &m.dense_ffn_size),
  };
  for (const absl::Status& s : statuses) {
    if (!s.ok()) return s;
  }
  m.name = NormalizeName(m.name);
  if (m.display_name.empty()) m.display_name = m.name;

  absl::StatusOr<MappingReader> attn = r.Child("attention", true);
  if (!attn.ok()) return attn.status();
  std::string kind = "gqa";
  MOECAP_RETURN_IF_ERROR(attn->String("kind", false, &kind));
  kind = absl::AsciiStrToLower(kind);
  if (kind == "gqa" || kind == "mha") {
    m.attention = AttentionKind::kGqa;
    MOECAP_RETURN_IF_ERROR(ReadGqa(*attn, &m.gqa));
  } else if (kind == "mla") {
    m.attention = AttentionKind::kMla;
    MOECAP_RETURN_IF_ERROR(ReadMla(*attn, &m.mla));
  } else {
    return attn->Error(
        "kind", absl::StrCat("unknown attention kind '", kind, "': expected gqa, mha or mla"));
  }
  MOECAP_RETURN_IF_ERROR(attn->Int("sliding_window", false, &m.sliding_window));
  MOECAP_RETURN_IF_ERROR(
      attn->LayerCount("sliding_window_layers", m.layers, &m.sliding_window_layers));
  MOECAP_RETURN_IF_ERROR(attn->RejectUnknown());

  absl::StatusOr<MappingReader> moe = r.Child("moe", true);
  if (!moe.ok()) return moe.status();
  std::string router = "softmax";
  statuses = {
      moe->Int("experts", true, &m.experts),
      moe->Int("experts_per_token", true, &m.experts_per_token),
      moe->Int("expert_ffn_size", true, &m.expert_ffn_size),
      moe->Int("shared_experts", false, &m.shared_experts),
      moe->Int("shared_expert_ffn_size", false, &m.shared_expert_ffn_size),
      moe->String("router", false, &router),
      moe->Bool("normalize_topk", false, &m.normalize_topk),
      moe->Int("layer_step", false, &m.moe_layer_step),
  };
  for (const absl::Status& s : statuses) {
    if (!s.ok()) return s;
  }
  router = absl::AsciiStrToLower(router);
  if (router == "softmax") {
    m.router_scoring = RouterScoring::kSoftmax;
  } else if (router == "sigmoid") {
    m.router_scoring = RouterScoring::kSigmoid;
  } else {
    return moe->Error("router",
                      absl::StrCat("unknown router '", router, "': expected softmax or sigmoid"));
  }
  MOECAP_RETURN_IF_ERROR(moe->RejectUnknown());

  absl::StatusOr<MappingReader> precision = r.Child("precision", false);
  if (!precision.ok()) return precision.status();
  MOECAP_RETURN_IF_ERROR(precision->DtypeField("experts", &m.expert_dtype));
  MOECAP_RETURN_IF_ERROR(precision->DtypeField("attention", &m.attention_dtype));
  MOECAP_RETURN_IF_ERROR(precision->DtypeField("lm_head", &m.lm_head_dtype));
  MOECAP_RETURN_IF_ERROR(precision->RejectUnknown());
  MOECAP_RETURN_IF_ERROR(r.RejectUnknown());
  if (absl::Status s = ValidateModel(m); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": ", s.message()));
  }
  return m;
}

absl::StatusOr<HardwareSpec> ParseHardwareYaml(absl::string_view yaml, absl::string_view origin) {
  absl::StatusOr<YAML::Node> root = ParseYamlMapping(yaml, origin);
  if (!root.ok()) return root.status();
  MappingReader r(*root, std::string(origin), "");
  HardwareSpec hw;
  std::string kind = "gpu";
  double memory_gib = 0, memory_gb = 0, bandwidth_gb_s = 0;
  std::vector<absl::Status> statuses = {
      r.String("name", true, &hw.name),
      r.String("display_name", false, &hw.display_name),
      r.StringList("aliases", &hw.aliases),
      r.String("source", false, &hw.source),
      r.String("kind", false, &kind),
      r.Double("memory_gib", false, &memory_gib),
      r.Double("memory_gb", false, &memory_gb),
      r.Double("memory_bandwidth_gb_s", false, &bandwidth_gb_s),
      r.Double("tdp_watts", false, &hw.tdp_watts),
      r.Double("purchase_usd", false, &hw.purchase_usd),
      r.Double("cloud_usd_per_hour", false, &hw.cloud_usd_per_hour),
  };
  for (const absl::Status& s : statuses) {
    if (!s.ok()) return s;
  }
  hw.name = NormalizeName(hw.name);
  if (hw.display_name.empty()) hw.display_name = hw.name;
  kind = absl::AsciiStrToLower(kind);
  if (kind == "gpu") {
    hw.kind = DeviceKind::kGpu;
  } else if (kind == "cpu") {
    hw.kind = DeviceKind::kCpu;
  } else {
    return r.Error("kind", absl::StrCat("unknown device kind '", kind, "': expected gpu or cpu"));
  }
  if (memory_gib != 0 && memory_gb != 0) {
    return r.Error("memory_gb", "give memory_gb (10^9 bytes) or memory_gib (2^30), not both");
  }
  // Datasheets give memory in their own unit (NVIDIA: GB for HBM3e parts); keep it as printed.
  hw.memory_bytes = memory_gb != 0 ? memory_gb * 1e9 : memory_gib * 1024.0 * 1024.0 * 1024.0;
  hw.peak_bandwidth_bytes_s = bandwidth_gb_s * 1e9;
  if (!std::isfinite(hw.memory_bytes)) return r.Error("memory_gib", "too large");
  if (!std::isfinite(hw.peak_bandwidth_bytes_s)) {
    return r.Error("memory_bandwidth_gb_s", "too large");
  }

  absl::StatusOr<MappingReader> peaks = r.Child("peak_tflops", false);
  if (!peaks.ok()) return peaks.status();
  for (Dtype dtype :
       {Dtype::kFp32, Dtype::kBf16, Dtype::kFp16, Dtype::kFp8, Dtype::kInt8, Dtype::kNvfp4}) {
    const std::string key(DtypeName(dtype));
    double tflops = 0;
    MOECAP_RETURN_IF_ERROR(peaks->Double(key, false, &tflops));
    if (!std::isfinite(tflops * 1e12)) return peaks->Error(key, "too large");
    if (tflops != 0) hw.peak_flops[dtype] = tflops * 1e12;
  }
  MOECAP_RETURN_IF_ERROR(peaks->RejectUnknown());
  MOECAP_RETURN_IF_ERROR(r.RejectUnknown());
  if (absl::Status s = ValidateHardware(hw); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": ", s.message()));
  }
  return hw;
}

absl::StatusOr<Catalog> Catalog::Builtin() {
  Catalog catalog;
  for (const EmbeddedFile& file : BuiltinCatalogFiles()) {
    const std::string origin = absl::StrCat("builtin:", file.path);
    if (absl::StartsWith(file.path, "models/")) {
      absl::StatusOr<ModelSpec> m = ParseModelYaml(file.content, origin);
      if (!m.ok()) return m.status();
      catalog.origins_[absl::StrCat("model:", NormalizeName(m->name))] = "";
      catalog.AddModel(*std::move(m));
    } else if (absl::StartsWith(file.path, "hardware/")) {
      absl::StatusOr<HardwareSpec> h = ParseHardwareYaml(file.content, origin);
      if (!h.ok()) return h.status();
      catalog.origins_[absl::StrCat("hardware:", NormalizeName(h->name))] = "";
      catalog.AddHardware(*std::move(h));
    }
  }
  return catalog;
}

absl::StatusOr<Catalog> Catalog::Load(const std::vector<std::string>& extra_dirs) {
  absl::StatusOr<Catalog> catalog = Builtin();
  if (!catalog.ok()) return catalog;
  for (const std::string& dir : CatalogDirectories(extra_dirs)) {
    MOECAP_RETURN_IF_ERROR(catalog->AddDirectory(dir));
  }
  return catalog;
}

std::vector<std::string> CatalogDirectories(const std::vector<std::string>& extra_dirs) {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("MOECAP_CATALOG"); env != nullptr && *env != '\0') {
    for (absl::string_view d : absl::StrSplit(env, ':', absl::SkipEmpty())) {
      dirs.emplace_back(d);
    }
  }
  dirs.insert(dirs.end(), extra_dirs.begin(), extra_dirs.end());
  return dirs;
}

absl::Status Catalog::AddDirectory(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("catalog directory '", dir, "' does not exist"));
  }
  const std::filesystem::path root(dir);
  for (const auto& path : FilesIn(root / "models", /*with_json=*/true)) {
    MOECAP_RETURN_IF_ERROR(AddModelFile(path.string()));
  }
  for (const auto& path : FilesIn(root / "hardware", /*with_json=*/false)) {
    MOECAP_RETURN_IF_ERROR(AddHardwareFile(path.string()));
  }
  return absl::OkStatus();
}

absl::Status Catalog::AddModelFile(const std::string& path) {
  absl::Status read_status;
  const std::string text = ReadFile(path, &read_status);
  if (!read_status.ok()) return read_status;
  absl::StatusOr<ModelSpec> m =
      absl::EndsWith(path, ".json") ? ModelFromHfConfig(text, path) : ParseModelYaml(text, path);
  if (!m.ok()) return m.status();
  NoteReplacement("model", m->name, path);
  AddModel(*std::move(m));
  return absl::OkStatus();
}

absl::Status Catalog::AddHardwareFile(const std::string& path) {
  absl::Status read_status;
  const std::string text = ReadFile(path, &read_status);
  if (!read_status.ok()) return read_status;
  absl::StatusOr<HardwareSpec> h = ParseHardwareYaml(text, path);
  if (!h.ok()) return h.status();
  NoteReplacement("hardware", h->name, path);
  AddHardware(*std::move(h));
  return absl::OkStatus();
}

void Catalog::NoteReplacement(absl::string_view kind, const std::string& name,
                              const std::string& path) {
  const std::string key = absl::StrCat(kind, ":", NormalizeName(name));
  auto it = origins_.find(key);
  if (it != origins_.end()) {
    notes_.push_back(absl::StrCat(path, ": ", kind, " '", NormalizeName(name), "' replaces the ",
                                  it->second.empty() ? std::string("built-in entry")
                                                     : absl::StrCat("entry from ", it->second)));
  }
  origins_[key] = path;
}

void Catalog::AddModel(ModelSpec model) { Upsert(models_, std::move(model)); }
void Catalog::AddHardware(HardwareSpec hardware) { Upsert(hardware_, std::move(hardware)); }

absl::StatusOr<const ModelSpec*> Catalog::FindModel(absl::string_view name) const {
  return Find(models_, name, "model", "models");
}

absl::StatusOr<const HardwareSpec*> Catalog::FindHardware(absl::string_view name) const {
  return Find(hardware_, name, "hardware", "hardware");
}

absl::Status UnknownFieldError(absl::string_view origin, absl::string_view prefix,
                               absl::string_view key, const std::vector<std::string>& known,
                               absl::string_view doc) {
  const auto path = [&](absl::string_view k) {
    return prefix.empty() ? std::string(k) : absl::StrCat(prefix, ".", k);
  };
  const std::vector<std::string> nearest = NearestNames(key, known, 1);
  return absl::InvalidArgumentError(
      absl::StrCat(origin, ": unknown field '", path(key), "'",
                   nearest.empty() ? std::string()
                                   : absl::StrCat(" (did you mean '", path(nearest.front()), "'?)"),
                   "; see ", doc));
}

std::vector<std::string> NearestNames(absl::string_view query,
                                      const std::vector<std::string>& candidates, size_t limit) {
  const std::string q = NormalizeName(query);
  struct Scored {
    size_t score;
    std::string name;
  };
  std::vector<Scored> scored;
  for (const std::string& c : candidates) {
    const std::string n = NormalizeName(c);
    size_t score;
    if (!q.empty() && (absl::StartsWith(n, q) || absl::StrContains(n, q))) {
      score = 0;  // a partial name ("mixtral") ranks its completions first
    } else {
      score = EditDistance(q, n);
      if (score > std::max<size_t>(3, n.size() / 2)) continue;
    }
    scored.push_back({score, c});
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const Scored& a, const Scored& b) { return a.score < b.score; });
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && i < limit; ++i) out.push_back(scored[i].name);
  return out;
}

}  // namespace moecap
