// --convention moecap against a hand port of MoE-CAP e9e0d88's formulas, written here the way its
// Python is (dict records, sizes in units of 1e12, peaks in TB/s and TFLOP/s, the `/2` on the
// peak), on the real record fixtures and a few written from its recorder's layout.
#include "common/records/moecap_convention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/catalog.h"
#include "nlohmann/json.hpp"

namespace moecap::records {
namespace {

using nlohmann::json;

const Catalog& Builtin() {
  static const Catalog* const catalog = new Catalog(*Catalog::Builtin());
  return *catalog;
}

std::string ReadFixture(const std::string& name) {
  std::ifstream in(std::string(MOECAP_REAL_FIXTURES) + "/moecap_records/" + name);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<json> Lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

// The hand port. `cfg` holds the config.json fields its loader reads.
struct PortResult {
  double prefill_smbu = 0, prefill_smfu = 0, decoding_smbu = 0, decoding_smfu = 0;
};

struct PortModel {
  std::string family;  // "qwen3", "deepseek", "default"
  double n_layers, d_model, n_attn_heads, n_kv_heads, d_head, d_ff;
  // qwen3
  double intermediate_size = 0, num_moe_layers = 0, num_dense_layers = 0;
  // deepseek
  double kv_lora_rank = 0, qk_rope_head_dim = 0, qk_nope_head_dim = 0, v_head_dim = 0;
  double q_lora_rank = 0, first_k_dense_replace = 0;
};

PortResult Port(const PortModel& m, const std::vector<json>& output_data, double bw_b_s,
                double peak_flops, double precision, double num_gpus) {
  const double peak_bandwidth_tb = bw_b_s / 1e12, peak_flops_tf = peak_flops / 1e12;
  double per_token_kv_size, attention_size_per_token;
  double expert_size = m.d_ff * 3 * m.d_model / 1e12, shared = 0, dense = 0, sparse_l = 0,
         dense_l = 0;
  if (m.family == "deepseek") {
    per_token_kv_size = m.n_layers * (m.kv_lora_rank + m.qk_rope_head_dim);
    const double q_head_dim = m.qk_rope_head_dim + m.qk_nope_head_dim;
    const double base =
        (m.d_model * (m.kv_lora_rank + m.qk_rope_head_dim)) +
        (m.kv_lora_rank * m.n_attn_heads * (q_head_dim - m.qk_rope_head_dim + m.v_head_dim)) +
        (m.v_head_dim * m.n_attn_heads * m.d_model);
    const double q_size =
        m.q_lora_rank > 0
            ? (m.d_model * m.q_lora_rank + m.q_lora_rank * m.n_attn_heads * q_head_dim)
            : m.d_model * m.n_attn_heads * q_head_dim;
    attention_size_per_token = (base + q_size) / 1e12;
    shared = m.d_ff * 3 * m.d_model * 2 / 1e12;
    dense = m.intermediate_size * 3 * m.d_model / 1e12;
    sparse_l = m.n_layers - m.first_k_dense_replace;
    dense_l = m.first_k_dense_replace;
  } else {
    per_token_kv_size = 2 * m.n_layers * m.d_head * m.n_kv_heads;
    attention_size_per_token =
        (m.d_model * (m.n_attn_heads * m.d_head + m.n_kv_heads * m.d_head * 2) +
         m.n_attn_heads * m.d_head * m.d_model) /
        1e12;
    if (m.family == "qwen3") dense = m.intermediate_size * 3 * m.d_model / 1e12;
  }
  auto attention_score = [&](double ctx_len) {
    if (m.family == "deepseek") {
      const double k = m.n_layers * m.n_attn_heads * (m.qk_rope_head_dim + m.qk_nope_head_dim);
      const double v = m.n_layers * m.n_attn_heads * m.v_head_dim;
      return (ctx_len * k + 0 * k / 2 + ctx_len * v + 0 * v / 2) / 1e12;
    }
    const double kv = m.n_layers * m.n_attn_heads * m.d_head;
    return (ctx_len * kv + 0 * kv / 2) * 2 / 1e12;
  };
  // One data point: (smbu, smfu) for activation a, context ctx, time t, throughput tp.
  auto metrics = [&](double a, double ctx, double t, double tp) {
    const double kv_size = ctx * per_token_kv_size / 1e12;
    double mbu_num, mfu_num;
    if (m.family == "qwen3") {
      mbu_num = (m.num_moe_layers * a * expert_size + m.num_dense_layers * dense +
                 m.n_layers * attention_size_per_token + kv_size) *
                precision / t;
      mfu_num = (m.num_moe_layers * expert_size + m.num_dense_layers * dense +
                 m.n_layers * attention_size_per_token + attention_score(ctx)) *
                2 * tp;
    } else if (m.family == "deepseek") {
      mbu_num = (m.n_layers * attention_size_per_token + sparse_l * (a * expert_size + shared) +
                 dense_l * dense + kv_size) *
                precision / t;
      mfu_num = (m.n_layers * attention_size_per_token + sparse_l * (expert_size + shared) +
                 dense_l * dense + attention_score(ctx)) *
                2 * tp;
    } else {
      mbu_num =
          (m.n_layers * (a * expert_size + attention_size_per_token) + kv_size) * precision / t;
      mfu_num =
          (m.n_layers * (attention_size_per_token + expert_size) + attention_score(ctx)) * 2 * tp;
    }
    return std::pair{mbu_num / (num_gpus * peak_bandwidth_tb),
                     mfu_num / (num_gpus * peak_flops_tf / 2)};
  };
  std::vector<double> p_mbu, p_mfu, d_mbu, d_mfu;
  bool has_per_req_info = false;
  for (const json& out : output_data) {
    if (out.value("forward_mode", "") == "prefill" && out.contains("per_req_info") &&
        !out["per_req_info"].empty()) {
      has_per_req_info = true;
    }
  }
  struct Accum {
    double latency_sum = 0, total_tokens = 0, seq_lens_sum = 0, last = 0;
    bool completed = false;
  };
  std::map<std::string, Accum> accum;
  for (const json& out : output_data) {
    if (!out.contains("expert_activation") || out["expert_activation"].is_null() ||
        out["expert_activation"].get<double>() < 0) {
      continue;
    }
    const std::string mode = out["forward_mode"];
    const double latency = out.contains("latency") ? out["latency"].get<double>()
                           : mode == "prefill"     ? out["ttft"].get<double>()
                                                   : out["tpot"].get<double>();
    if (mode == "prefill" && out.value("seq_lens_sum", 0) <= 10) continue;
    const double a = out["expert_activation"];
    if (mode != "prefill") {
      const double bs = out["batch_size"];
      auto [mbu, mfu] = metrics(a, out["seq_lens_sum"].get<double>(), latency, bs / latency);
      d_mbu.push_back(mbu);
      d_mfu.push_back(mfu);
      continue;
    }
    if (!has_per_req_info || !out.contains("per_req_info") || out["per_req_info"].empty()) {
      const double ctx = out["seq_lens_sum"];
      auto [mbu, mfu] = metrics(a, ctx, latency, ctx / latency);
      p_mbu.push_back(mbu);
      p_mfu.push_back(mfu);
      continue;
    }
    for (const json& r : out["per_req_info"]) {
      const std::string key = r.contains("req_id") ? r["req_id"].dump() : r["req_pool_idx"].dump();
      Accum& acc = accum[key];
      acc.latency_sum += latency;
      acc.seq_lens_sum += r.value("extend_len", 0);
      if (r.contains("total_len")) acc.total_tokens = r["total_len"];
      acc.last = a;
      if (r.value("is_last_chunk", false)) acc.completed = true;
    }
  }
  for (const auto& [key, acc] : accum) {
    if (!acc.completed) continue;
    const double tokens = acc.total_tokens > 0 ? acc.total_tokens : acc.seq_lens_sum;
    auto [mbu, mfu] = metrics(acc.last, tokens, acc.latency_sum, tokens / acc.latency_sum);
    p_mbu.push_back(mbu);
    p_mfu.push_back(mfu);
  }
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / static_cast<double>(v.size());
  };
  return {mean(p_mbu), mean(p_mfu), mean(d_mbu), mean(d_mfu)};
}

PortModel Qwen3_30B_A3B() {
  // tests/fixtures/real/hf_configs/Qwen3-30B-A3B/config.json: no mlp_only_layers, step 1.
  PortModel m{"qwen3", 48, 2048, 32, 4, 128, 768};
  m.intermediate_size = 6144;
  m.num_moe_layers = 48;
  m.num_dense_layers = 0;
  return m;
}

struct BothFigures {
  RecordsSummary ours;
  MoecapFigures theirs;
};

BothFigures Analyze(const std::string& text, const std::string& model,
                    std::optional<HardwareSpec> hw = {}, std::optional<int64_t> gpus = {},
                    CountOptions counting = {}) {
  RecordsOptions o;
  o.origin = "test.jsonl";
  o.model = **Builtin().FindModel(model);
  o.catalog = &Builtin();
  o.hardware = hw;
  o.devices = gpus;
  o.counting = counting;
  std::istringstream in(text);
  absl::StatusOr<RecordsSummary> ours = AnalyzeRecords(in, o);
  EXPECT_TRUE(ours.ok()) << ours.status();
  MoecapOptions m;
  m.origin = o.origin;
  m.model = o.model;
  m.hardware = hw;
  m.devices = gpus;
  m.counting = counting;
  std::istringstream again(text);
  absl::StatusOr<MoecapFigures> theirs = MoecapFromRecords(again, m, ours->run);
  EXPECT_TRUE(theirs.ok()) << theirs.status();
  return {*std::move(ours), *std::move(theirs)};
}

void ExpectRelNear(double actual, double expected, const char* what) {
  EXPECT_NEAR(actual, expected, 1e-12 * std::fabs(expected)) << what;
}

TEST(MoecapConventionTest, VllmRecordsMatchTheHandPortOnItsPerRequestPath) {
  const std::string text = ReadFixture("vllm_expert_distribution_record.jsonl");
  const BothFigures run = Analyze(text, "qwen3-30b-a3b");
  // NVIDIA-H100-HBM3-80GB: 3350e9 B/s, bfloat16 1979e12 (halved in S-MFU); bf16 is 2 bytes.
  const PortResult want = Port(Qwen3_30B_A3B(), Lines(text), 3350e9, 1979e12, 2, 1);
  const MoecapFigures& t = run.theirs;
  EXPECT_EQ(t.gpu_key, "NVIDIA-H100-HBM3-80GB");
  EXPECT_EQ(t.sizes.family, MoecapFamily::kQwen3);
  EXPECT_TRUE(t.per_request_prefill);
  ASSERT_TRUE(t.prefill.has_value());
  ASSERT_TRUE(t.decode.has_value());
  ExpectRelNear(t.prefill->s_mbu, want.prefill_smbu, "prefill S-MBU");
  ExpectRelNear(t.prefill->s_mfu, want.prefill_smfu, "prefill S-MFU");
  ExpectRelNear(t.decode->s_mbu, want.decoding_smbu, "decode S-MBU");
  ExpectRelNear(t.decode->s_mfu, want.decoding_smfu, "decode S-MFU");
  // The fixture's prompts complete as three requests (FORMATS.md §5.1: A, B, C), and its eight
  // non-prefill records (the split halves included) are decode points to MoE-CAP.
  EXPECT_EQ(t.prefill->points, 3);
  EXPECT_EQ(t.decode->points, 8);
  // Its tpot: the plain mean latency of those 8 records (FORMATS.md: 0.020641902502511248 s).
  EXPECT_NEAR(t.decode->mean_latency_s, 0.020641902502511248, 1e-15);
  // Its ttft: the per-request sums (FORMATS.md: 0.11225627332653666 s).
  EXPECT_NEAR(t.prefill->mean_latency_s, 0.11225627332653666, 1e-15);
}

const MoecapVariant* FindVariant(const MoecapPhase& phase, const std::string& name) {
  for (const MoecapVariant& v : phase.variants) {
    if (v.difference == name) return &v;
  }
  return nullptr;
}

TEST(MoecapConventionTest, ThePointsItTakesAreUndoneOneAtATime) {
  const std::string text = ReadFixture("vllm_expert_distribution_record.jsonl");
  const BothFigures run = Analyze(text, "qwen3-30b-a3b");
  // Per pass instead of per request: its own per-record branch, as the port computes it when no
  // record carries per_req_info.
  std::vector<json> lines = Lines(text);
  for (json& j : lines) j.erase("per_req_info");
  const PortResult per_pass = Port(Qwen3_30B_A3B(), lines, 3350e9, 1979e12, 2, 1);
  const MoecapVariant* v = FindVariant(*run.theirs.prefill, "per-pass prefill points");
  ASSERT_NE(v, nullptr);
  ExpectRelNear(v->s_mbu, per_pass.prefill_smbu, "per-pass prefill S-MBU");
  // Split steps merged: its decode points less the decode halves of ids 3 and 7 (6 of 8 left).
  std::vector<json> unsplit;
  const std::vector<json> all = Lines(text);
  for (size_t i = 0; i < all.size(); ++i) {
    const bool half = i > 0 && all[i]["forward_mode"] == "decode" &&
                      all[i - 1]["forward_mode"] == "prefill" &&
                      all[i]["forward_pass_id"] == all[i - 1]["forward_pass_id"];
    if (!half) unsplit.push_back(all[i]);
  }
  const PortResult merged = Port(Qwen3_30B_A3B(), unsplit, 3350e9, 1979e12, 2, 1);
  v = FindVariant(*run.theirs.decode, "split steps merged");
  ASSERT_NE(v, nullptr);
  ExpectRelNear(v->s_mbu, merged.decoding_smbu, "decode S-MBU without the split halves");
}

TEST(MoecapConventionTest, SglangRecordsSkipTheWarmUpAndKeyRequestsBySlot) {
  const std::string text = ReadFixture("sglang_expert_distribution_record.jsonl");
  const BothFigures run = Analyze(text, "qwen3-30b-a3b");
  const PortResult want = Port(Qwen3_30B_A3B(), Lines(text), 3350e9, 1979e12, 2, 1);
  ASSERT_TRUE(run.theirs.prefill.has_value());
  ExpectRelNear(run.theirs.prefill->s_mbu, want.prefill_smbu, "prefill S-MBU");
  ExpectRelNear(run.theirs.prefill->s_mfu, want.prefill_smfu, "prefill S-MFU");
  ExpectRelNear(run.theirs.decode->s_mbu, want.decoding_smbu, "decode S-MBU");
  // FORMATS.md §5.1: the SGLang fixture's per-request ttft is 0.2348242899798788 s.
  EXPECT_NEAR(run.theirs.prefill->mean_latency_s, 0.2348242899798788, 1e-15);
  EXPECT_EQ(run.theirs.skipped_warmup, 1);
}

TEST(MoecapConventionTest, DeepSeekFormulasTwoSharedExpertsFp8PeakAndPerRecordPrefill) {
  // Written from its SGLang recorder's layout, without per_req_info: one point per record.
  const std::string text =
      R"({"forward_pass_id": 1, "batch_size": 4, "latency": 0.5, "seq_lens_sum": 8000, )"
      R"("forward_mode": "prefill", "expert_activation": 200.5, "gpu_num": 8, )"
      R"("gpu_raw_type": "NVIDIA-H200-140GB"})"
      "\n"
      R"({"forward_pass_id": 2, "batch_size": 4, "latency": 0.04, "seq_lens_sum": 8004, )"
      R"("forward_mode": "decode", "expert_activation": 30.25, "gpu_num": 8, )"
      R"("gpu_raw_type": "NVIDIA-H200-140GB"})"
      "\n"
      R"({"forward_pass_id": 3, "batch_size": 4, "latency": 0.05, "seq_lens_sum": 8008, )"
      R"("forward_mode": "decode", "expert_activation": 31.75, "gpu_num": 8, )"
      R"("gpu_raw_type": "NVIDIA-H200-140GB"})"
      "\n";
  const BothFigures run = Analyze(text, "deepseek-v3");
  // DeepSeek-V3's config.json: 61 layers, d 7168, 128 heads, MLA 1536/512/128/64/128, moe 2048,
  // intermediate 18432, first_k_dense_replace 3; fp8 (its quantization_config) is 1 byte and
  // the fp8 section's 3958e12 on H200.
  PortModel m{"deepseek", 61, 7168, 128, 128, 56, 2048};
  m.kv_lora_rank = 512;
  m.qk_rope_head_dim = 64;
  m.qk_nope_head_dim = 128;
  m.v_head_dim = 128;
  m.q_lora_rank = 1536;
  m.first_k_dense_replace = 3;
  m.intermediate_size = 18432;
  const PortResult want = Port(m, Lines(text), 4800e9, 3958e12, 1, 8);
  const MoecapFigures& t = run.theirs;
  EXPECT_EQ(t.sizes.family, MoecapFamily::kDeepSeek);
  EXPECT_EQ(t.precision.section, "fp8");
  EXPECT_EQ(t.precision.bytes, 1);
  EXPECT_EQ(t.gpus, 8);
  EXPECT_FALSE(t.per_request_prefill);
  ExpectRelNear(t.prefill->s_mbu, want.prefill_smbu, "prefill S-MBU");
  ExpectRelNear(t.prefill->s_mfu, want.prefill_smfu, "prefill S-MFU");
  ExpectRelNear(t.decode->s_mbu, want.decoding_smbu, "decode S-MBU");
  ExpectRelNear(t.decode->s_mfu, want.decoding_smfu, "decode S-MFU");
  // Two shared experts' worth (2·3·7168·2048), though DeepSeek-V3 has one.
  EXPECT_EQ(t.sizes.shared, 2.0 * 3 * 7168 * 2048);
  // The time-weighted variant of decode is Σ bytes / Σ t: by hand from the port's terms, the
  // plain mean of 2 points differs from it whenever the two latencies differ.
  const MoecapVariant* weighted = nullptr;
  for (const MoecapVariant& v : t.decode->variants) {
    if (v.difference.rfind("time-weighted", 0) == 0) weighted = &v;
  }
  ASSERT_NE(weighted, nullptr);
  EXPECT_NE(weighted->s_mbu, t.decode->s_mbu);
}

TEST(MoecapConventionTest, TheKvContextExplainsMostOfTheVllmDecodeGap) {
  // vLLM's decode seq_lens_sum is the scheduled-token count; moecap rebuilds the context from
  // the request ids or, as here where the records have none, from --prompt-len/--output-len.
  // Undoing that one difference must move MoE-CAP's decode S-MBU up, toward moecap's.
  CountOptions lengths;
  lengths.prompt_len = 3000;
  lengths.output_len = 8;
  const BothFigures run = Analyze(ReadFixture("vllm_expert_distribution_record.jsonl"),
                                  "qwen3-30b-a3b", {}, {}, lengths);
  ASSERT_TRUE(run.theirs.decode.has_value());
  const double base = run.theirs.decode->s_mbu;
  double kv = 0;
  for (const MoecapVariant& v : run.theirs.decode->variants) {
    if (v.difference.rfind("KV context", 0) == 0) kv = v.s_mbu - base;
  }
  EXPECT_GT(kv, 0);
  const json j = MoecapComparisonJson(run.theirs, run.ours);
  ASSERT_TRUE(j["decode"].contains("shares_of_gap"));
  double sum = 0;
  for (const json& s : j["decode"]["shares_of_gap"]) sum += s["s_mbu"].get<double>();
  EXPECT_NEAR(sum, 1.0, 1e-9);  // the rest closes the gap
  EXPECT_EQ(j["decode"]["moe_cap"]["points"], 8);
}

TEST(MoecapConventionTest, CostIsItsSystemCostAndMissingForItsMismatchedH100Key) {
  // 1.25·(38000·2 + 7214) + 1.2·((700·2 + 350)/1000 · 0.15 · 1 h) = 104017.5 + 0.315.
  EXPECT_NEAR(*MoecapSystemCostUsd("NVIDIA-H100-80GB-HBM3", 2, 3600), 104017.815, 1e-9);
  // The name its recorders write for an H100 SXM is not a key of its cost table.
  EXPECT_FALSE(MoecapSystemCostUsd("NVIDIA-H100-HBM3-80GB", 1, 3600).has_value());
  const BothFigures run =
      Analyze(ReadFixture("vllm_expert_distribution_record.jsonl"), "qwen3-30b-a3b");
  EXPECT_FALSE(run.theirs.cost_usd.has_value());
}

TEST(MoecapConventionTest, AGpuItsTablesLackGivesNoFigureAndSaysWhy) {
  std::string text = ReadFixture("vllm_expert_distribution_record.jsonl");
  for (size_t at = text.find("NVIDIA-H100-HBM3-80GB"); at != std::string::npos;
       at = text.find("NVIDIA-H100-HBM3-80GB")) {
    text.replace(at, 21, "NVIDIA-L40S-45GB");
  }
  const BothFigures run = Analyze(text, "qwen3-30b-a3b");
  EXPECT_FALSE(run.theirs.prefill.has_value());
  EXPECT_FALSE(run.theirs.decode.has_value());
  bool said = false;
  for (const std::string& n : run.theirs.notes) {
    said = said || n.find("no bandwidth for 'NVIDIA-L40S-45GB'") != std::string::npos;
  }
  EXPECT_TRUE(said);
}

TEST(MoecapConventionTest, Mxfp4IsLookedUpAsFp4AndNvfp4HasNoPeak) {
  const ModelSpec gpt_oss = **Builtin().FindModel("gpt-oss-120b");
  const MoecapPrecision p = MoecapPrecisionOf(gpt_oss, Dtype::kBf16);
  EXPECT_EQ(p.used_dtype, "mxfp4");
  EXPECT_EQ(p.section, "fp4");
  EXPECT_EQ(p.bytes, 0.5);
  const MoecapGpu* b200 = FindMoecapGpu("NVIDIA-B200-183GB");
  ASSERT_NE(b200, nullptr);
  EXPECT_EQ(MoecapPeakFlops(*b200, "fp4"), 9000e12);
  EXPECT_EQ(MoecapPeakFlops(*b200, "nvfp4"), 0);
  // An explicit non-bf16 precision wins over the checkpoint's.
  EXPECT_EQ(MoecapPrecisionOf(gpt_oss, Dtype::kFp8).section, "fp8");
  // Kimi-K2 is MLA but not "DeepSeek": the default formulas.
  ModelSpec kimi = **Builtin().FindModel("deepseek-v3");
  kimi.display_name = "Kimi-K2-Instruct";
  const MoecapModelSizes sizes = MoecapSizesOf(kimi);
  EXPECT_EQ(sizes.family, MoecapFamily::kDefault);
  // Its GQA formula with num_key_value_heads = 128 and head_dim = 7168 // 128 = 56.
  EXPECT_EQ(sizes.kv_per_token, 2.0 * 61 * 56 * 128);
}

}  // namespace
}  // namespace moecap::records
