// Tests of the model and hardware catalogs: every built-in entry loads, its parameter counts match
// the published model cards, the raw device names serving systems record resolve, and the YAML
// loader reports bad entries by file, field path and reason.
#include "common/catalog.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/hardware.h"
#include "common/model.h"

namespace moecap {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

const Catalog& Builtin() {
  static const Catalog* catalog = [] {
    absl::StatusOr<Catalog> c = Catalog::Builtin();
    EXPECT_TRUE(c.ok()) << c.status();
    return new Catalog(c.ok() ? *std::move(c) : Catalog());
  }();
  return *catalog;
}

const ModelSpec& Model(absl::string_view name) {
  absl::StatusOr<const ModelSpec*> m = Builtin().FindModel(name);
  EXPECT_TRUE(m.ok()) << m.status();
  static const ModelSpec empty;
  return m.ok() ? **m : empty;
}

// A directory under the test's temp dir, removed when the test ends.
class ScopedDir {
 public:
  ScopedDir() {
    std::string pattern = ::testing::TempDir() + "/moecap_catalog_XXXXXX";
    char* made = mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = pattern;
  }
  ~ScopedDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScopedDir(const ScopedDir&) = delete;
  ScopedDir& operator=(const ScopedDir&) = delete;

  const std::string& path() const { return path_; }
  void Write(const std::string& relative, const std::string& text) const {
    const std::filesystem::path file = std::filesystem::path(path_) / relative;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file) << text;
  }

 private:
  std::string path_;
};

// A small valid model entry; tests break one thing at a time.
constexpr char kToyModel[] = R"(name: toy-moe
layers: 2
hidden_size: 8
vocab_size: 10
attention:
  kind: gqa
  heads: 2
  kv_heads: 1
  head_dim: 4
moe:
  experts: 4
  experts_per_token: 2
  expert_ffn_size: 4
)";

std::string ToyWith(const std::string& from, const std::string& to) {
  std::string text = kToyModel;
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

// ---------------------------------------------------------------------------------------------
// Built-in entries.

TEST(CatalogBuiltinTest, EveryEntryParsesAndValidates) {
  absl::StatusOr<Catalog> catalog = Catalog::Builtin();
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  EXPECT_EQ(catalog->models().size(), 13u);
  EXPECT_EQ(catalog->hardware().size(), 9u);
  for (const ModelSpec& m : catalog->models()) {
    EXPECT_TRUE(ValidateModel(m).ok()) << m.name << ": " << ValidateModel(m);
    EXPECT_THAT(m.source, StartsWith("https://huggingface.co/")) << m.name;
    EXPECT_FALSE(m.aliases.empty()) << m.name;
  }
  for (const HardwareSpec& hw : catalog->hardware()) {
    EXPECT_TRUE(ValidateHardware(hw).ok()) << hw.name << ": " << ValidateHardware(hw);
    EXPECT_FALSE(hw.source.empty()) << hw.name;
  }
}

TEST(CatalogBuiltinTest, EveryIssueListedModelIsThere) {
  for (const char* name : {"mixtral-8x7b", "mixtral-8x22b", "dbrx", "deepseek-v2-lite",
                           "deepseek-v2", "deepseek-v3", "qwen1.5-moe-a2.7b", "qwen2-57b-a14b",
                           "qwen3-30b-a3b", "qwen3-235b-a22b", "olmoe-1b-7b", "gpt-oss-120b"}) {
    EXPECT_TRUE(Builtin().FindModel(name).ok()) << name;
  }
}

// Two entries answering to the same name would make a look-up silently pick the first.
TEST(CatalogBuiltinTest, NoNameOrAliasIsSharedByTwoEntries) {
  auto check = [](const auto& entries, const char* what) {
    std::map<std::string, std::string> owner;
    for (const auto& e : entries) {
      std::vector<std::string> names = {e.name};
      names.insert(names.end(), e.aliases.begin(), e.aliases.end());
      for (const std::string& n : names) {
        const std::string key = NormalizeName(n);
        auto [it, inserted] = owner.emplace(key, e.name);
        EXPECT_TRUE(inserted || it->second == e.name)
            << what << " name '" << n << "' is used by both " << it->second << " and " << e.name;
      }
    }
  };
  check(Builtin().models(), "model");
  check(Builtin().hardware(), "hardware");
}

// Published parameter counts (model cards, in the comments) against TotalParams and
// ActiveParamsPerToken, which count matrices only: the gaps below 3% come from what the catalog
// leaves out (norms, biases, Qwen's shared-expert gate vector, DeepSeek-V3's 14B MTP module) and
// from the cards rounding. Some authors leave the input embedding (V·d) out of their "active"
// count; for those the embedding is subtracted before comparing.
struct Published {
  const char* name;
  double total;
  double active;
  bool active_excludes_embedding;
};

TEST(CatalogBuiltinTest, ParameterCountsMatchModelCards) {
  const Published kPublished[] = {
      // mistral.ai/news/mixtral-of-experts: 46.7B total, 12.9B used per token.
      {"mixtral-8x7b", 46.7e9, 12.9e9, false},
      // mistral.ai/news/mixtral-8x22b: 141B total, 39B active.
      {"mixtral-8x22b", 141e9, 39e9, false},
      // huggingface.co/databricks/dbrx-base: 132B total, 36B active on any input.
      {"dbrx", 132e9, 36e9, false},
      // huggingface.co/deepseek-ai/DeepSeek-V2-Lite: 15.7B total, 2.4B activated (without the
      // embedding: with it the count is 2.66B).
      {"deepseek-v2-lite", 15.7e9, 2.4e9, true},
      // huggingface.co/deepseek-ai/DeepSeek-V2: 236B total, 21B activated.
      {"deepseek-v2", 236e9, 21e9, true},
      // huggingface.co/deepseek-ai/DeepSeek-V3: 671B main model (685B with the MTP module),
      // 37B activated.
      {"deepseek-v3", 671e9, 37e9, true},
      // huggingface.co/Qwen/Qwen1.5-MoE-A2.7B: 14.3B total, 2.7B activated.
      {"qwen1.5-moe-a2.7b", 14.3e9, 2.7e9, false},
      // huggingface.co/Qwen/Qwen2-57B-A14B: 57B total, 14B activated.
      {"qwen2-57b-a14b", 57e9, 14e9, false},
      // huggingface.co/Qwen/Qwen3-30B-A3B: 30.5B total, 3.3B activated.
      {"qwen3-30b-a3b", 30.5e9, 3.3e9, false},
      // huggingface.co/Qwen/Qwen3-235B-A22B: 235B total, 22B activated.
      {"qwen3-235b-a22b", 235e9, 22e9, false},
      // huggingface.co/allenai/OLMoE-1B-7B-0924 and arXiv 2409.02060: 6.9B total, 1.3B active.
      {"olmoe-1b-7b", 6.9e9, 1.3e9, false},
      // huggingface.co/openai/gpt-oss-120b model card (arXiv 2508.10925): 116.83B total, 5.13B
      // active, which counts the unembedding but not the embedding.
      {"gpt-oss-120b", 116.83e9, 5.13e9, true},
      // huggingface.co/openai/gpt-oss-20b, same card: 20.91B total, 3.61B active.
      {"gpt-oss-20b", 20.91e9, 3.61e9, true},
  };
  constexpr double kTolerance = 0.03;
  ASSERT_EQ(std::size(kPublished), Builtin().models().size());
  for (const Published& p : kPublished) {
    const ModelSpec& m = Model(p.name);
    const double total = static_cast<double>(TotalParams(m));
    double active = static_cast<double>(ActiveParamsPerToken(m));
    if (p.active_excludes_embedding) active -= static_cast<double>(LmHeadParams(m));
    EXPECT_NEAR(total / p.total, 1.0, kTolerance) << p.name << " total " << total;
    EXPECT_NEAR(active / p.active, 1.0, kTolerance) << p.name << " active " << active;
  }
}

// Mixtral-8x7B: GQA, no dense layers, no shared expert.
TEST(CatalogBuiltinTest, Mixtral8x7bCountedByHand) {
  const ModelSpec& m = Model("mixtral-8x7b");
  // d=4096, n_h=32, n_kv=8, d_h=128: P_attn = 4096·4096 + 2·4096·1024 + 4096·4096
  //   = 16,777,216 + 8,388,608 + 16,777,216 = 41,943,040.
  EXPECT_EQ(AttentionParamsPerLayer(m), 41'943'040);
  // P_router = d·E = 4096·8 = 32,768; P_expert = 3·4096·14336 = 176,160,768; V·d = 131,072,000.
  EXPECT_EQ(RouterParamsPerLayer(m), 32'768);
  EXPECT_EQ(ParamsPerExpert(m), 176'160'768);
  EXPECT_EQ(SharedParamsPerLayer(m), 0);
  EXPECT_EQ(LmHeadParams(m), 131'072'000);
  // Total = 32·41,943,040 + 32·(32,768 + 8·176,160,768) + 2·131,072,000
  //       = 1,342,177,280 + 45,098,205,184 + 262,144,000 = 46,702,526,464 (card: 46.7B).
  EXPECT_EQ(TotalParams(m), 46'702'526'464);
  // Active = 1,342,177,280 + 32·(32,768 + 2·176,160,768) + 262,144,000
  //        = 1,342,177,280 + 11,275,337,728 + 262,144,000 = 12,879,659,008 (card: 12.9B).
  EXPECT_EQ(ActiveParamsPerToken(m), 12'879'659'008);
  // KV per token per layer: 2·n_kv·d_h = 2·8·128 = 2048.
  EXPECT_EQ(KvElementsPerTokenPerLayer(m), 2048);
}

// DeepSeek-V3: MLA with a query LoRA, 3 dense layers, one shared expert.
TEST(CatalogBuiltinTest, DeepSeekV3CountedByHand) {
  const ModelSpec& m = Model("deepseek-v3");
  EXPECT_EQ(m.MoeLayers(), 58);  // 61 − first_k_dense_replace 3
  // d=7168, n_h=128, q_lora=1536, kv_lora=512, qk_nope=128, qk_rope=64, v_head=128:
  //   Q      = 7168·1536 + 1536·128·(128+64) = 11,010,048 + 37,748,736 = 48,758,784
  //   kv_a   = 7168·(512+64)                  = 4,128,768
  //   kv_b   = 512·128·(128+128)              = 16,777,216
  //   o      = 128·128·7168                   = 117,440,512
  //   P_attn = 48,758,784 + 4,128,768 + 16,777,216 + 117,440,512 = 187,105,280.
  EXPECT_EQ(AttentionParamsPerLayer(m), 187'105'280);
  // P_dense = 3·7168·18432 = 396,361,728.
  EXPECT_EQ(DenseFfnParamsPerLayer(m), 396'361'728);
  // P_router = 7168·256 = 1,835,008; P_expert = 3·7168·2048 = 44,040,192 = P_shared (S=1).
  EXPECT_EQ(RouterParamsPerLayer(m), 1'835'008);
  EXPECT_EQ(ParamsPerExpert(m), 44'040'192);
  EXPECT_EQ(SharedParamsPerLayer(m), 44'040'192);
  // V·d = 129,280·7168 = 926,679,040.
  EXPECT_EQ(LmHeadParams(m), 926'679'040);
  // Total = 61·187,105,280 + 3·396,361,728 + 58·(1,835,008 + 44,040,192 + 256·44,040,192)
  //         + 2·926,679,040
  //       = 11,413,422,080 + 1,189,085,184 + 58·11,320,164,352 + 1,853,358,080
  //       = 11,413,422,080 + 1,189,085,184 + 656,569,532,416 + 1,853,358,080
  //       = 671,025,397,760 (card: 671B without the MTP module).
  EXPECT_EQ(TotalParams(m), 671'025'397'760);
  // Active = 11,413,422,080 + 1,189,085,184 + 58·(1,835,008 + 44,040,192 + 8·44,040,192)
  //          + 1,853,358,080 = ... + 58·398,196,736 = ... + 23,095,410,688 + ...
  //        = 37,551,276,032 (card: 37B).
  EXPECT_EQ(ActiveParamsPerToken(m), 37'551'276'032);
  // KV per token per layer: kv_lora_rank + qk_rope = 512 + 64 = 576.
  EXPECT_EQ(KvElementsPerTokenPerLayer(m), 576);
  EXPECT_EQ(m.router_scoring, RouterScoring::kSigmoid);
  EXPECT_TRUE(m.normalize_topk);
}

// Qwen3-30B-A3B: GQA whose n_h·d_h (4096) exceeds d (2048), many small experts.
TEST(CatalogBuiltinTest, Qwen3_30bA3bCountedByHand) {
  const ModelSpec& m = Model("qwen3-30b-a3b");
  // d=2048, n_h=32, n_kv=4, d_h=128: P_attn = 2048·4096 + 2·2048·512 + 4096·2048
  //   = 8,388,608 + 2,097,152 + 8,388,608 = 18,874,368.
  EXPECT_EQ(AttentionParamsPerLayer(m), 18'874'368);
  // P_router = 2048·128 = 262,144; P_expert = 3·2048·768 = 4,718,592; V·d = 151,936·2048
  //   = 311,164,928.
  EXPECT_EQ(RouterParamsPerLayer(m), 262'144);
  EXPECT_EQ(ParamsPerExpert(m), 4'718'592);
  EXPECT_EQ(LmHeadParams(m), 311'164'928);
  // Total = 48·18,874,368 + 48·(262,144 + 128·4,718,592) + 2·311,164,928
  //       = 905,969,664 + 48·604,241,920 + 622,329,856
  //       = 905,969,664 + 29,003,612,160 + 622,329,856 = 30,531,911,680 (card: 30.5B).
  EXPECT_EQ(TotalParams(m), 30'531'911'680);
  // Active = 905,969,664 + 48·(262,144 + 8·4,718,592) + 622,329,856
  //        = 905,969,664 + 1,824,522,240 + 622,329,856 = 3,352,821,760 (card: 3.3B).
  EXPECT_EQ(ActiveParamsPerToken(m), 3'352'821'760);
  // KV per token per layer: 2·4·128 = 1024.
  EXPECT_EQ(KvElementsPerTokenPerLayer(m), 1024);
}

TEST(CatalogBuiltinTest, ConventionsOfTheBrief) {
  // MLA without a query LoRA: V2-Lite's q_lora_rank is null in its config.
  const ModelSpec& lite = Model("deepseek-v2-lite");
  EXPECT_EQ(lite.attention, AttentionKind::kMla);
  EXPECT_EQ(lite.mla.q_lora_rank, 0);
  EXPECT_EQ(lite.dense_layers, 1);
  EXPECT_EQ(lite.shared_experts, 2);
  EXPECT_FALSE(lite.normalize_topk);
  // One shared expert of shared_expert_intermediate_size for Qwen1.5-MoE and Qwen2-MoE.
  EXPECT_EQ(Model("qwen1.5-moe-a2.7b").shared_experts, 1);
  EXPECT_EQ(Model("qwen1.5-moe-a2.7b").shared_expert_ffn_size, 5632);
  EXPECT_EQ(Model("qwen2-57b-a14b").shared_expert_ffn_size, 20480);
  // Renormalised top-k: Mixtral, DBRX (moe_normalize_expert_weights 1), gpt-oss.
  EXPECT_TRUE(Model("mixtral-8x22b").normalize_topk);
  EXPECT_TRUE(Model("dbrx").normalize_topk);
  EXPECT_TRUE(Model("gpt-oss-120b").normalize_topk);
  EXPECT_FALSE(Model("olmoe-1b-7b").normalize_topk);
  // Every router but DeepSeek-V3's is a softmax.
  for (const ModelSpec& m : Builtin().models()) {
    EXPECT_EQ(m.router_scoring == RouterScoring::kSigmoid, m.name == "deepseek-v3") << m.name;
  }
  // head_dim from the config where it has one (gpt-oss: 64, not 2880/64 = 45).
  EXPECT_EQ(Model("gpt-oss-120b").gqa.head_dim, 64);
}

TEST(CatalogBuiltinTest, HardwarePeaksAreDensePerDtype) {
  for (const HardwareSpec& hw : Builtin().hardware()) {
    if (hw.kind == DeviceKind::kCpu) continue;
    SCOPED_TRACE(hw.name);
    EXPECT_GT(hw.memory_bytes, 0);
    EXPECT_GT(hw.peak_bandwidth_bytes_s, 0);
    EXPECT_GT(hw.tdp_watts, 0);
    EXPECT_GT(hw.purchase_usd, 0);
    EXPECT_GT(hw.cloud_usd_per_hour, 0);
    ASSERT_TRUE(PeakFlops(hw, Dtype::kFp32).ok());
    ASSERT_TRUE(PeakFlops(hw, Dtype::kBf16).ok());
    EXPECT_EQ(*PeakFlops(hw, Dtype::kBf16), *PeakFlops(hw, Dtype::kFp16));
    EXPECT_LT(*PeakFlops(hw, Dtype::kFp32), *PeakFlops(hw, Dtype::kBf16));
    // Where FP8 exists it runs at twice the BF16 rate (the datasheets round: L40S 733 vs
    // 2·362.05, MI300X 2,614.9 vs 2·1,307.4).
    if (absl::StatusOr<double> fp8 = PeakFlops(hw, Dtype::kFp8); fp8.ok()) {
      EXPECT_NEAR(*fp8 / (2 * *PeakFlops(hw, Dtype::kBf16)), 1.0, 0.02);
    }
  }
  // Dense figures: half the datasheets' 2:4-sparse 1,979 (H100 SXM BF16) and 1,513 (PCIe).
  EXPECT_DOUBLE_EQ(*PeakFlops(**Builtin().FindHardware("h100-sxm"), Dtype::kBf16), 989.5e12);
  EXPECT_DOUBLE_EQ(*PeakFlops(**Builtin().FindHardware("h100-pcie"), Dtype::kBf16), 756.5e12);
  // 141 GB as the datasheet gives it (memory_gb: 10^9 bytes); 4.8 TB/s in bytes/s.
  const HardwareSpec& h200 = **Builtin().FindHardware("h200");
  EXPECT_DOUBLE_EQ(h200.memory_bytes, 141e9);
  // MoE-CAP's get_gpu_details() names resolve.
  for (const auto& [raw, name] :
       {std::pair{"NVIDIA-H100-HBM3-80GB", "h100-sxm"}, std::pair{"NVIDIA-H200-140GB", "h200"},
        std::pair{"NVIDIA-B200-183GB", "b200"}, std::pair{"NVIDIA-B200-179GB", "b200"},
        std::pair{"NVIDIA-A100-80GB", "a100-sxm-80gb"}, std::pair{"NVIDIA-L40S-45GB", "l40s"}}) {
    absl::StatusOr<const HardwareSpec*> hw = Builtin().FindHardware(raw);
    ASSERT_TRUE(hw.ok()) << raw;
    EXPECT_EQ((*hw)->name, name) << raw;
  }
  // B200 at NVIDIA's current HGX figure: 62 TB/s over 8 GPUs, 7.7 TB/s each.
  EXPECT_DOUBLE_EQ((**Builtin().FindHardware("b200")).peak_bandwidth_bytes_s, 7.7e12);
  EXPECT_DOUBLE_EQ(h200.peak_bandwidth_bytes_s, 4.8e12);
  // Ampere has no FP8.
  for (const char* name : {"a100-sxm-80gb", "rtx-a6000"}) {
    absl::StatusOr<double> fp8 = PeakFlops(**Builtin().FindHardware(name), Dtype::kFp8);
    EXPECT_EQ(fp8.status().code(), absl::StatusCode::kFailedPrecondition) << name;
  }
}

TEST(CatalogBuiltinTest, GenericCpuPeaksMustBeMeasuredOrGiven) {
  absl::StatusOr<const HardwareSpec*> cpu = Builtin().FindHardware("cpu");
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_EQ((*cpu)->kind, DeviceKind::kCpu);
  EXPECT_TRUE((*cpu)->peak_flops.empty());
  EXPECT_EQ(PeakBandwidth(**cpu).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(PeakFlops(**cpu, Dtype::kFp32).status().code(), absl::StatusCode::kFailedPrecondition);
}

// ---------------------------------------------------------------------------------------------
// Look-up.

// The raw device names of issue 9 (MoE-CAP's recorders' gpu_raw_type, nvidia-smi and
// torch.cuda.get_device_name spellings) and the short forms users type.
TEST(CatalogLookupTest, RawGpuNamesResolve) {
  const std::vector<std::pair<const char*, const char*>> kRaw = {
      {"NVIDIA-H100-80GB-HBM3", "h100-sxm"},
      {"NVIDIA H100 80GB HBM3", "h100-sxm"},
      {"NVIDIA-A100-SXM4-80GB", "a100-sxm-80gb"},
      {"NVIDIA A100-SXM4-80GB", "a100-sxm-80gb"},
      {"NVIDIA-H200-141GB", "h200"},
      {"NVIDIA H200", "h200"},
      {"NVIDIA-H100-PCIe-80GB", "h100-pcie"},
      {"NVIDIA H100 PCIe", "h100-pcie"},
      {"NVIDIA B200", "b200"},
      {"NVIDIA L40S", "l40s"},
      {"NVIDIA RTX A6000", "rtx-a6000"},
      {"AMD Instinct MI300X", "mi300x"},
      {"a100", "a100-sxm-80gb"},
      {"h100", "h100-sxm"},
      {"h200", "h200"},
      {"b200", "b200"},
      {"l40s", "l40s"},
      {"a6000", "rtx-a6000"},
      {"mi300x", "mi300x"},
      {"cpu", "cpu"},
      {"nvidia_h100_80gb_hbm3", "h100-sxm"},
  };
  for (const auto& [raw, want] : kRaw) {
    absl::StatusOr<const HardwareSpec*> hw = Builtin().FindHardware(raw);
    ASSERT_TRUE(hw.ok()) << raw << ": " << hw.status();
    EXPECT_EQ((*hw)->name, want) << raw;
  }
}

TEST(CatalogLookupTest, ModelNamesAreCaseInsensitiveAndAliasesResolve) {
  const std::vector<std::pair<const char*, const char*>> kNames = {
      {"Mixtral-8x7B", "mixtral-8x7b"},
      {"MIXTRAL_8X7B", "mixtral-8x7b"},
      {"mistralai/Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b"},
      {"deepseek-ai/DeepSeek-V3", "deepseek-v3"},
      {"deepseek-ai/DeepSeek-R1", "deepseek-v3"},
      {"Qwen/Qwen3-30B-A3B", "qwen3-30b-a3b"},
      {"Qwen/Qwen3-235B-A22B-Instruct-2507", "qwen3-235b-a22b"},
      {"Qwen/Qwen1.5-MoE-A2.7B-Chat", "qwen1.5-moe-a2.7b"},
      {"databricks/dbrx-instruct", "dbrx"},
      {"allenai/OLMoE-1B-7B-0924", "olmoe-1b-7b"},
      {"openai/gpt-oss-120b", "gpt-oss-120b"},
      {"  DeepSeek-V2-Lite  ", "deepseek-v2-lite"},
  };
  for (const auto& [query, want] : kNames) {
    absl::StatusOr<const ModelSpec*> m = Builtin().FindModel(query);
    ASSERT_TRUE(m.ok()) << query << ": " << m.status();
    EXPECT_EQ((*m)->name, want) << query;
  }
}

TEST(CatalogLookupTest, UnknownNameSuggestsTheNearest) {
  absl::StatusOr<const ModelSpec*> m = Builtin().FindModel("mixtral-8x7");
  ASSERT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(m.status().message(), HasSubstr("unknown model 'mixtral-8x7'"));
  EXPECT_THAT(m.status().message(), HasSubstr("did you mean mixtral-8x7b"));
  EXPECT_THAT(m.status().message(), HasSubstr("moecapctl models"));

  // A typo, not a prefix: edit distance 1 from qwen3-30b-a3b.
  m = Builtin().FindModel("qwen3-30b-a4b");
  ASSERT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(m.status().message(), HasSubstr("qwen3-30b-a3b"));

  absl::StatusOr<const HardwareSpec*> hw = Builtin().FindHardware("h20");
  ASSERT_EQ(hw.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(hw.status().message(), HasSubstr("h200"));
  EXPECT_THAT(hw.status().message(), HasSubstr("moecapctl hardware"));
}

// ---------------------------------------------------------------------------------------------
// Loader errors: each names the file, the field path and the reason.

TEST(CatalogLoaderTest, ToyModelParses) {
  absl::StatusOr<ModelSpec> m = ParseModelYaml(kToyModel, "toy.yaml");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->name, "toy-moe");
  EXPECT_EQ(m->display_name, "toy-moe");  // defaults to the name
  EXPECT_EQ(m->router_scoring, RouterScoring::kSoftmax);
  EXPECT_TRUE(m->normalize_topk);
  // METRICS.md's toy model: 2·192 + 2·(32 + 4·96) + 2·80 = 1376 with every expert.
  EXPECT_EQ(TotalParams(*m), 1376);
}

TEST(CatalogLoaderTest, UnknownKeyNamesItsPath) {
  absl::StatusOr<ModelSpec> m = ParseModelYaml(
      ToyWith("  expert_ffn_size: 4\n", "  expert_ffn_size: 4\n  expertz: 8\n"), "my.yaml");
  ASSERT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  // The nearest known key is offered.
  EXPECT_THAT(m.status().message(),
              HasSubstr("my.yaml: unknown field 'moe.expertz' (did you mean 'moe.experts'?)"));

  m = ParseModelYaml(ToyWith("layers: 2", "layer: 2\nlayers: 2"), "my.yaml");
  EXPECT_THAT(m.status().message(), HasSubstr("unknown field 'layer' (did you mean"));

  // A required key typed wrong reads as missing: the near key present is pointed at.
  m = ParseModelYaml(ToyWith("  experts: 4\n", "  expertz: 4\n"), "my.yaml");
  EXPECT_THAT(m.status().message(),
              HasSubstr("field 'moe.experts': required but missing ('moe.expertz' is there: a "
                        "misspelling?)"));
  // ... but not a longer key that merely starts the same.
  m = ParseModelYaml(ToyWith("  experts: 4\n", ""), "my.yaml");
  EXPECT_THAT(m.status().message(), Not(HasSubstr("misspelling")));

  absl::StatusOr<HardwareSpec> hw =
      ParseHardwareYaml("name: x\npeak_tflops:\n  bf16: 100\n  int3: 200\n", "hw.yaml");
  EXPECT_THAT(hw.status().message(), HasSubstr("hw.yaml: unknown field 'peak_tflops.int3'"));
}

TEST(CatalogLoaderTest, WrongTypeSaysWhatWasExpected) {
  absl::StatusOr<ModelSpec> m = ParseModelYaml(ToyWith("layers: 2", "layers: many"), "my.yaml");
  ASSERT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m.status().message(),
              HasSubstr("my.yaml: field 'layers': expected an integer, got 'many'"));

  m = ParseModelYaml(ToyWith("experts: 4", "experts: eight"), "my.yaml");
  EXPECT_THAT(m.status().message(), HasSubstr("field 'moe.experts': expected an integer"));

  m = ParseModelYaml(ToyWith("  expert_ffn_size: 4\n",
                             "  expert_ffn_size: 4\n"
                             "  normalize_topk: maybe\n"),
                     "my.yaml");
  EXPECT_THAT(m.status().message(),
              HasSubstr("field 'moe.normalize_topk': expected true or false, got 'maybe'"));

  m = ParseModelYaml(ToyWith("attention:\n  kind: gqa\n  heads: 2\n  kv_heads: 1\n  head_dim: 4\n",
                             "attention: [gqa]\n"),
                     "my.yaml");
  EXPECT_THAT(m.status().message(), HasSubstr("field 'attention': expected a mapping"));

  absl::StatusOr<HardwareSpec> hw =
      ParseHardwareYaml("name: x\nmemory_bandwidth_gb_s: fast\n", "hw.yaml");
  EXPECT_THAT(hw.status().message(),
              HasSubstr("field 'memory_bandwidth_gb_s': expected a number, got 'fast'"));
}

TEST(CatalogLoaderTest, MissingRequiredField) {
  absl::StatusOr<ModelSpec> m = ParseModelYaml(ToyWith("hidden_size: 8\n", ""), "my.yaml");
  ASSERT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m.status().message(),
              HasSubstr("my.yaml: field 'hidden_size': required but missing"));

  m = ParseModelYaml(ToyWith("  head_dim: 4\n", ""), "my.yaml");
  EXPECT_THAT(m.status().message(), HasSubstr("field 'attention.head_dim': required but missing"));

  absl::StatusOr<HardwareSpec> hw = ParseHardwareYaml("memory_gib: 80\n", "hw.yaml");
  EXPECT_THAT(hw.status().message(), HasSubstr("hw.yaml: field 'name': required but missing"));
}

TEST(CatalogLoaderTest, BadAttentionKindRouterAndDeviceKind) {
  absl::StatusOr<ModelSpec> m = ParseModelYaml(ToyWith("kind: gqa", "kind: mqa"), "my.yaml");
  ASSERT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m.status().message(),
              HasSubstr("field 'attention.kind': unknown attention kind 'mqa': expected gqa, mha "
                        "or mla"));

  m = ParseModelYaml(ToyWith("  expert_ffn_size: 4\n", "  expert_ffn_size: 4\n  router: relu\n"),
                     "my.yaml");
  EXPECT_THAT(m.status().message(), HasSubstr("field 'moe.router': unknown router 'relu'"));

  absl::StatusOr<HardwareSpec> hw = ParseHardwareYaml("name: x\nkind: tpu\n", "hw.yaml");
  EXPECT_THAT(hw.status().message(), HasSubstr("field 'kind': unknown device kind 'tpu'"));
}

TEST(CatalogLoaderTest, ValidationErrorsNameTheField) {
  // k > E.
  absl::StatusOr<ModelSpec> m =
      ParseModelYaml(ToyWith("experts_per_token: 2", "experts_per_token: 9"), "my.yaml");
  ASSERT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m.status().message(),
              HasSubstr("my.yaml: model 'toy-moe': field 'moe.experts_per_token': 9 exceeds "
                        "moe.experts (4)"));

  // Dense layers need their FFN size; shared experts theirs.
  m = ParseModelYaml(ToyWith("layers: 2", "layers: 2\ndense_layers: 1"), "my.yaml");
  EXPECT_THAT(m.status().message(), HasSubstr("field 'dense_ffn_size': 0 must be positive"));
  m = ParseModelYaml(ToyWith("  expert_ffn_size: 4\n",
                             "  expert_ffn_size: 4\n"
                             "  shared_experts: 1\n"),
                     "my.yaml");
  EXPECT_THAT(m.status().message(),
              HasSubstr("field 'moe.shared_expert_ffn_size': 0 must be positive"));

  // kv_heads must divide heads.
  m = ParseModelYaml(ToyWith("kv_heads: 1", "kv_heads: 3"), "my.yaml");
  EXPECT_THAT(m.status().message(), HasSubstr("field 'attention.kv_heads': 3 does not divide"));

  absl::StatusOr<HardwareSpec> hw =
      ParseHardwareYaml("name: x\npeak_tflops:\n  bf16: -1\n", "hw.yaml");
  EXPECT_THAT(hw.status().message(), HasSubstr("field 'peak_tflops.bf16': must be positive"));
}

TEST(CatalogLoaderTest, YamlSyntaxErrorGivesTheLine) {
  // Line 3 is indented as if it belonged to line 2's scalar value.
  absl::StatusOr<ModelSpec> m =
      ParseModelYaml("name: x\nlayers: 2\n  hidden_size: 8\n", "indent.yaml");
  ASSERT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m.status().message(), HasSubstr("indent.yaml:3: YAML syntax error"));
  // An unclosed flow sequence opened on line 3 is reported where the file ends, line 4.
  m = ParseModelYaml("name: x\nlayers: 2\naliases: [a, b\nhidden_size: 8\n", "broken.yaml");
  EXPECT_THAT(m.status().message(), HasSubstr("broken.yaml:4: YAML syntax error"));

  m = ParseModelYaml("- just\n- a list\n", "list.yaml");
  EXPECT_THAT(m.status().message(), HasSubstr("list.yaml: expected a YAML mapping"));
  m = ParseModelYaml("", "empty.yaml");
  EXPECT_THAT(m.status().message(), HasSubstr("empty.yaml: expected a YAML mapping"));
}

// ---------------------------------------------------------------------------------------------
// User directories.

constexpr char kUserHardware[] = R"(name: my-gpu
aliases: [ACME Accel 9000]
memory_gib: 32
memory_bandwidth_gb_s: 1000
peak_tflops:
  bf16: 100
tdp_watts: 250
)";

TEST(CatalogUserDirTest, AddsEntriesAndReplacesBuiltinOnes) {
  ScopedDir dir;
  dir.Write("models/toy.yaml", kToyModel);
  // Same name as a built-in entry, different shape: the user's entry wins.
  dir.Write("models/mixtral-fixed.yml",
            ToyWith("name: toy-moe", "name: Mixtral-8x7B\ndisplay_name: My Mixtral"));
  dir.Write("hardware/my-gpu.yaml", kUserHardware);
  dir.Write("hardware/README.txt", "not a yaml file: ignored");

  absl::StatusOr<Catalog> catalog = Catalog::Builtin();
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  const size_t models_before = catalog->models().size();
  const size_t hardware_before = catalog->hardware().size();
  ASSERT_TRUE(catalog->AddDirectory(dir.path()).ok());

  EXPECT_EQ(catalog->models().size(), models_before + 1);
  EXPECT_EQ(catalog->hardware().size(), hardware_before + 1);
  absl::StatusOr<const ModelSpec*> toy = catalog->FindModel("toy-moe");
  ASSERT_TRUE(toy.ok()) << toy.status();
  EXPECT_EQ((*toy)->experts, 4);
  absl::StatusOr<const ModelSpec*> mixtral = catalog->FindModel("mixtral-8x7b");
  ASSERT_TRUE(mixtral.ok());
  EXPECT_EQ((*mixtral)->display_name, "My Mixtral");
  EXPECT_EQ((*mixtral)->layers, 2);
  absl::StatusOr<const HardwareSpec*> gpu = catalog->FindHardware("acme accel 9000");
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  EXPECT_EQ((*gpu)->name, "my-gpu");
  EXPECT_DOUBLE_EQ(*PeakFlops(**gpu, Dtype::kBf16), 100e12);
}

TEST(CatalogUserDirTest, BadUserFileNamesItsPath) {
  ScopedDir dir;
  dir.Write("models/bad.yaml", ToyWith("layers: 2", "layers: many"));
  absl::StatusOr<Catalog> catalog = Catalog::Load({dir.path()});
  ASSERT_EQ(catalog.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(catalog.status().message(), HasSubstr(dir.path() + "/models/bad.yaml: field "
                                                                 "'layers'"));

  catalog = Catalog::Load({dir.path() + "/does-not-exist"});
  EXPECT_EQ(catalog.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(catalog.status().message(), HasSubstr("does-not-exist"));
}

// A user entry whose name is a built-in's alias wins that name; the built-in keeps its own.
TEST(CatalogUserDirTest, UserNameShadowsBuiltinAlias) {
  ScopedDir dir;
  std::string h100 = kUserHardware;
  h100.replace(h100.find("name: my-gpu"), 12, "name: H100");
  dir.Write("hardware/h100.yaml", h100);
  absl::StatusOr<Catalog> catalog = Catalog::Load({dir.path()});
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  EXPECT_EQ((*catalog->FindHardware("h100"))->name, "h100");
  EXPECT_EQ((*catalog->FindHardware("h100-sxm"))->name, "h100-sxm");
  EXPECT_EQ((*catalog->FindHardware("NVIDIA H100 80GB HBM3"))->name, "h100-sxm");
}

// Sets an environment variable for one test and restores the old value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_.has_value()) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(CatalogUserDirTest, MoecapCatalogEnvironmentVariableIsHonoured) {
  ScopedDir first, second;
  first.Write("models/toy.yaml", kToyModel);
  second.Write("hardware/my-gpu.yaml", kUserHardware);
  {
    // Two directories, ':'-separated, with an empty element that is skipped.
    ScopedEnv env("MOECAP_CATALOG", first.path() + "::" + second.path());
    absl::StatusOr<Catalog> catalog = Catalog::Load({});
    ASSERT_TRUE(catalog.ok()) << catalog.status();
    EXPECT_TRUE(catalog->FindModel("toy-moe").ok());
    EXPECT_TRUE(catalog->FindHardware("my-gpu").ok());
    EXPECT_TRUE(catalog->FindModel("deepseek-v3").ok());  // the built-ins stay
  }
  absl::StatusOr<Catalog> without = Catalog::Load({});
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_FALSE(without->FindModel("toy-moe").ok());
}

// Found by tests/fuzz/hardware_yaml_fuzz: YAML's .nan and .inf passed every range check (NaN <
// 0 is false) and reached the metric formulas; a finite figure too large for its unit did too.
TEST(CatalogFuzzRegressionTest, NonFiniteHardwareFiguresAreRefused) {
  absl::StatusOr<HardwareSpec> hw = ParseHardwareYaml("name: x\nmemory_gib: .nan\n", "hw.yaml");
  ASSERT_FALSE(hw.ok());
  EXPECT_EQ(hw.status().message(),
            "hw.yaml: field 'memory_gib': expected a finite number, got '.nan'");
  hw = ParseHardwareYaml("name: x\npeak_tflops: {bf16: .inf}\n", "hw.yaml");
  ASSERT_FALSE(hw.ok());
  EXPECT_NE(hw.status().message().find("field 'peak_tflops.bf16': expected a finite number"),
            std::string::npos)
      << hw.status();
  // 1e300 TFLOP/s is 1e312 FLOP/s: not a double.
  hw = ParseHardwareYaml("name: x\npeak_tflops: {fp32: 1e300}\n", "hw.yaml");
  ASSERT_FALSE(hw.ok());
  EXPECT_EQ(hw.status().message(), "hw.yaml: field 'peak_tflops.fp32': too large");
  hw = ParseHardwareYaml("name: x\nmemory_gib: 1e300\n", "hw.yaml");
  ASSERT_FALSE(hw.ok());
  EXPECT_EQ(hw.status().message(), "hw.yaml: field 'memory_gib': too large");
}

}  // namespace
}  // namespace moecap
