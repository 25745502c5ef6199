// Per-pass counting and the streamed analysis of a records file, on the toy model of
// testdata/catalog (METRICS.md's worked example: d = 8, V = 10, L = 2 MoE layers, E = 4, k = 2,
// f_e = 4, GQA n_h = 2, n_kv = 1, d_h = 4, bf16) and the toy device (10,000 B/s, 100,000 FLOP/s,
// $36 per hour). Every expected figure is worked out by hand in the comment above it, from:
//   P_attn = 192, P_router = 32, P_expert = 96, LM head V·d = 80, KV elements per token per
//   layer kv = 8, p_w = p_kv = 2 bytes, score FLOPs per query-key pair per layer
//   2·n_h·(d_qk + d_v) = 2·2·8 = 32, linear FLOPs per token F_lin = 2·(2·192 + 2·(32 + 2·96)
//   + 80) = 1824.
#include "common/records/records_analysis.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/records/line_reader.h"
#include "common/records/pass_counts.h"
#include "common/records/phase_stats.h"

namespace moecap::records {
namespace {

constexpr char kTestdata[] = MOECAP_RECORDS_TESTDATA;

const Catalog& ToyCatalog() {
  static const Catalog* const catalog = [] {
    absl::StatusOr<Catalog> c = Catalog::Load({std::string(kTestdata) + "/catalog"});
    EXPECT_TRUE(c.ok()) << c.status();
    return new Catalog(*std::move(c));
  }();
  return *catalog;
}

ModelSpec ToyModel() { return **ToyCatalog().FindModel("toy-moe"); }

RecordsOptions ToyOptions() {
  RecordsOptions o;
  o.origin = "passes.jsonl";
  o.model = ToyModel();
  o.catalog = &ToyCatalog();
  return o;
}

CountedPass Count(const std::string& line) {
  PassRecord record;
  RecordError error;
  EXPECT_TRUE(ParsePassRecord(line, &record, &error)) << error.message;
  CountedPass pass;
  EXPECT_EQ(CountPassRecord(ToyModel(), Precision{2, 2}, record, &pass, &error),
            PassOutcome::kCounted)
      << error.message;
  return pass;
}

TEST(CountPassRecordTest, ChunkedPrefillWithCachedTokens) {
  // Request a adds n = 2 tokens on h = 3 cached (total_len 5), request b is fresh with n = 3:
  // T = 5, Σh = 3, score pairs Σ(n·h + n(n+1)/2) = (6 + 3) + (0 + 6) = 15; Σ_l A_l = 2·3 = 6.
  const CountedPass p = Count(
      R"({"forward_mode": "prefill", "batch_size": 2, "latency": 0.5, "expert_activation": 3,)"
      R"( "per_req_info": [{"extend_len": 2, "total_len": 5}, {"extend_len": 3, "total_len": 3}]})");
  EXPECT_EQ(p.mode, ForwardMode::kPrefill);
  EXPECT_DOUBLE_EQ(p.sequences, 2);
  EXPECT_DOUBLE_EQ(p.tokens, 5);
  EXPECT_DOUBLE_EQ(p.activated_experts_per_layer, 3);
  // Bytes: attention 2·2·192 = 768, router 2·2·32 = 128, routed 2·6·96 = 1152, LM head 2·80 =
  // 160, KV cache p_kv·(T + Σh)·L·kv = 2·8·2·8 = 256 (5 written, 3 read); total 2464.
  EXPECT_DOUBLE_EQ(p.counts[Term::kAttention].bytes, 768);
  EXPECT_DOUBLE_EQ(p.counts[Term::kRouter].bytes, 128);
  EXPECT_DOUBLE_EQ(p.counts[Term::kRoutedExperts].bytes, 1152);
  EXPECT_DOUBLE_EQ(p.counts[Term::kLmHead].bytes, 160);
  EXPECT_DOUBLE_EQ(p.counts[Term::kKvCache].bytes, 256);
  EXPECT_DOUBLE_EQ(p.counts.bytes(), 2464);
  // FLOPs: attention 2·5·384 = 3840, router 2·5·2·32 = 640, routed 2·5·2·2·96 = 3840, LM head
  // for the 2 prompts that complete (no is_last_chunk: all do) 2·2·80 = 320, scores L·32·15 =
  // 960; total 9600 (= 5·1664 + 2·160 + 960).
  EXPECT_DOUBLE_EQ(p.counts[Term::kAttention].flops, 3840);
  EXPECT_DOUBLE_EQ(p.counts[Term::kRouter].flops, 640);
  EXPECT_DOUBLE_EQ(p.counts[Term::kRoutedExperts].flops, 3840);
  EXPECT_DOUBLE_EQ(p.counts[Term::kLmHead].flops, 320);
  EXPECT_DOUBLE_EQ(p.counts[Term::kAttentionScores].flops, 960);
  EXPECT_DOUBLE_EQ(p.counts.flops(), 9600);
}

TEST(CountPassRecordTest, DecodeWithBatchOne) {
  // b = 1, C = 6, Σ_l A_l = 2·2 = 4.
  // Bytes: 768 + 128 + 2·4·96 (768) + 160 + KV 2·6·2·8 (192) = 2016.
  // FLOPs: 1·1824 + L·2·C·n_h·(d_qk + d_v) = 2·32·6 = 384; total 2208.
  const CountedPass p =
      Count(R"({"forward_mode": "decode", "batch_size": 1, "latency": 0.25, "seq_lens_sum": 6,)"
            R"( "expert_activation": 2})");
  EXPECT_EQ(p.mode, ForwardMode::kDecode);
  EXPECT_DOUBLE_EQ(p.sequences, 1);
  EXPECT_DOUBLE_EQ(p.tokens, 1);
  EXPECT_DOUBLE_EQ(p.counts[Term::kRoutedExperts].bytes, 768);
  EXPECT_DOUBLE_EQ(p.counts[Term::kKvCache].bytes, 192);
  EXPECT_DOUBLE_EQ(p.counts.bytes(), 2016);
  EXPECT_DOUBLE_EQ(p.counts[Term::kAttentionScores].flops, 384);
  EXPECT_DOUBLE_EQ(p.counts.flops(), 2208);
}

TEST(CountPassRecordTest, PrefillWithoutPerRequestInfoIsFreshSequences) {
  // scheduled_tokens T = 4 over b = 2: two fresh sequences of 2 tokens (seq_lens_sum 9, SGLang's
  // running context, is not used when scheduled_tokens is there). Score pairs 2·(2·3/2) = 6,
  // Σ_l A_l = 8. Bytes: 768 + 128 + 2·8·96 (1536) + 160 + KV 2·4·2·8 (128) = 2720.
  // FLOPs: 4·1664 + 2·160 (logits of the 2 prompts) + 2·32·6 = 6656 + 320 + 384 = 7360.
  const CountedPass scheduled =
      Count(R"({"forward_mode": "prefill", "batch_size": 2, "latency": 0.4, "seq_lens_sum": 9,)"
            R"( "scheduled_tokens": 4, "expert_activation": 4})");
  EXPECT_DOUBLE_EQ(scheduled.tokens, 4);
  EXPECT_DOUBLE_EQ(scheduled.counts.bytes(), 2720);
  EXPECT_DOUBLE_EQ(scheduled.counts.flops(), 7360);
  // Without scheduled_tokens, seq_lens_sum is the token total.
  const CountedPass from_sum =
      Count(R"({"forward_mode": "prefill", "batch_size": 2, "latency": 0.4, "seq_lens_sum": 4,)"
            R"( "expert_activation": 4})");
  EXPECT_DOUBLE_EQ(from_sum.counts.bytes(), 2720);
  EXPECT_DOUBLE_EQ(from_sum.counts.flops(), 7360);
}

TEST(CountPassRecordTest, SkipsMissingOrNegativeActivationAndRejectsTooMany) {
  PassRecord record;
  RecordError error;
  CountedPass pass;
  const ModelSpec model = ToyModel();
  ASSERT_TRUE(ParsePassRecord(
      R"({"forward_mode": "decode", "batch_size": 1, "latency": 0.1, "seq_lens_sum": 3})", &record,
      &error));
  EXPECT_EQ(CountPassRecord(model, Precision{}, record, &pass, &error), PassOutcome::kSkipped);
  EXPECT_EQ(error.reason, "expert_activation missing or null");
  record.expert_activation = -1;
  EXPECT_EQ(CountPassRecord(model, Precision{}, record, &pass, &error), PassOutcome::kSkipped);
  EXPECT_EQ(error.reason, "expert_activation negative");
  // 0 is what the recorders write when nothing was recorded: a pass with tokens activates k.
  record.expert_activation = 0;
  EXPECT_EQ(CountPassRecord(model, Precision{}, record, &pass, &error), PassOutcome::kSkipped);
  EXPECT_TRUE(absl::StartsWith(error.reason, "expert_activation 0: not recorded")) << error.reason;
  // --uniform-activation: A(1) = k = 2 per layer, estimated.
  CountOptions uniform;
  uniform.uniform_when_unrecorded = true;
  EXPECT_EQ(CountPassRecord(model, Precision{}, record, uniform, nullptr, &pass, &error),
            PassOutcome::kCounted);
  EXPECT_DOUBLE_EQ(pass.activated_experts_per_layer, 2.0);
  EXPECT_TRUE(pass.validity.estimated);
  record.expert_activation = 5;  // the toy model has 4 experts per layer
  EXPECT_EQ(CountPassRecord(model, Precision{}, record, &pass, &error), PassOutcome::kBad);
  EXPECT_EQ(error.message,
            "field 'expert_activation': 5 exceeds the 4 experts per layer of toy-moe");
}

absl::StatusOr<RecordsSummary> AnalyzeText(const std::string& text, const RecordsOptions& o,
                                           const PassCallback& on_pass = {}) {
  std::istringstream in(text);
  return AnalyzeRecords(in, o, on_pass);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(AnalyzeRecordsTest, ToyFileByHand) {
  // testdata/toy_passes.jsonl: 1 chunked prefill (2464 B; 9440 FLOP: b's chunk is not its last,
  // is_last_chunk false, so only a's logits count; 0.5 s), 2 decode b = 1
  // (2016 B, 2208 FLOP, 0.25 s), 3 skipped (null), 4 decode b = 2, C = 13, ā = 3.5 (Σ_l A_l = 7:
  // 768 + 128 + 1344 + 160 + KV 2·13·2·8 = 416 -> 2816 B; 2·1824 + 2·32·13 = 4480 FLOP; 0.4 s),
  // 5 fresh prefill T = 4 (2720 B, 7360 FLOP, 0.4 s), 6 skipped (negative).
  std::vector<PassResult> passes;
  absl::StatusOr<RecordsSummary> s =
      AnalyzeText(ReadFile(std::string(kTestdata) + "/toy_passes.jsonl"), ToyOptions(),
                  [&](const PassResult& p, const RecordsSummary&) { passes.push_back(p); });
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->run.hardware.name, "toy-gpu");  // from gpu_raw_type "TOY-GPU-1GB", an alias
  EXPECT_EQ(s->run.hardware_source, "gpu_raw_type 'TOY-GPU-1GB'");
  EXPECT_EQ(s->run.devices, 1);
  EXPECT_DOUBLE_EQ(s->run.peak_bandwidth_bytes_s, 1e4);
  EXPECT_DOUBLE_EQ(s->run.peak_flops, 1e5);
  EXPECT_EQ(s->records, 6);

  ASSERT_TRUE(s->prefill.has_value());
  const PhaseSummary& pre = *s->prefill;
  EXPECT_EQ(pre.passes, 2);
  EXPECT_DOUBLE_EQ(pre.tokens, 9);              // 5 + 4
  EXPECT_DOUBLE_EQ(pre.counts.bytes(), 5184);   // 2464 + 2720
  EXPECT_DOUBLE_EQ(pre.counts.flops(), 16800);  // 9440 + 7360
  EXPECT_DOUBLE_EQ(pre.time_s, 0.9);            // 0.5 + 0.4
  EXPECT_NEAR(pre.s_mbu, 0.576, 1e-12);         // 5184 / (0.9·1e4)
  EXPECT_NEAR(pre.s_mfu, 16800 / 9e4, 1e-12);   // 0.18666...
  // Per pass: S-MBU 2464/5000 = 0.4928 and 2720/4000 = 0.68; S-MFU 0.1888 and 0.184.
  EXPECT_NEAR(pre.s_mbu_p50, 0.5864, 1e-12);    // 0.4928 + 0.5·0.1872
  EXPECT_NEAR(pre.s_mbu_p90, 0.66128, 1e-12);   // 0.4928 + 0.9·0.1872
  EXPECT_NEAR(pre.s_mbu_p99, 0.678128, 1e-12);  // 0.4928 + 0.99·0.1872
  EXPECT_NEAR(pre.s_mfu_p50, 0.1864, 1e-12);    // 0.184 + 0.5·0.0048
  EXPECT_NEAR(pre.s_mfu_p90, 0.18832, 1e-12);
  EXPECT_NEAR(pre.s_mfu_p99, 0.188752, 1e-12);
  EXPECT_DOUBLE_EQ(pre.mean_batch, 2);                // (2 + 2) / 2
  EXPECT_DOUBLE_EQ(pre.mean_activated_experts, 3.5);  // (3 + 4) / 2
  // The breakdown sums term by term: KV 256 + 128 = 384 bytes; routed 1152 + 1536 = 2688 bytes.
  EXPECT_DOUBLE_EQ(pre.counts[Term::kKvCache].bytes, 384);
  EXPECT_DOUBLE_EQ(pre.counts[Term::kRoutedExperts].bytes, 2688);

  ASSERT_TRUE(s->decode.has_value());
  const PhaseSummary& dec = *s->decode;
  EXPECT_EQ(dec.passes, 2);
  EXPECT_DOUBLE_EQ(dec.counts.bytes(), 4832);  // 2016 + 2816
  EXPECT_DOUBLE_EQ(dec.counts.flops(), 6688);  // 2208 + 4480
  EXPECT_DOUBLE_EQ(dec.time_s, 0.65);
  EXPECT_NEAR(dec.s_mbu, 4832 / 6500.0, 1e-12);  // 0.74338...
  EXPECT_NEAR(dec.s_mfu, 6688 / 65000.0, 1e-12);
  // Per pass: S-MBU 2016/2500 = 0.8064 and 2816/4000 = 0.704.
  EXPECT_NEAR(dec.s_mbu_p50, 0.7552, 1e-12);
  EXPECT_NEAR(dec.s_mbu_p99, 0.805376, 1e-12);  // 0.704 + 0.99·0.1024
  EXPECT_DOUBLE_EQ(dec.mean_batch, 1.5);
  EXPECT_DOUBLE_EQ(dec.mean_activated_experts, 2.75);

  EXPECT_EQ(s->skipped, 2);
  EXPECT_EQ(s->skipped_reasons.at("expert_activation missing or null"), 1);
  EXPECT_EQ(s->skipped_reasons.at("expert_activation negative"), 1);

  ASSERT_EQ(passes.size(), 4u);
  EXPECT_EQ(passes[0].line, 1);
  EXPECT_EQ(passes[2].line, 4);
  // start_s sums the latencies before the pass, skipped records included: 0, 0.5, 0.85, 1.25.
  EXPECT_DOUBLE_EQ(passes[0].start_s, 0);
  EXPECT_DOUBLE_EQ(passes[1].start_s, 0.5);
  EXPECT_DOUBLE_EQ(passes[2].start_s, 0.85);
  EXPECT_DOUBLE_EQ(passes[3].start_s, 1.25);
  EXPECT_NEAR(passes[1].s_mbu, 0.8064, 1e-12);
  EXPECT_NEAR(passes[1].s_mfu, 0.08832, 1e-12);  // 2208 / 25000
  // Pass 1 is memory-bound: bytes need 0.2464 s, FLOPs 0.0944 s; at 0.2464 s S-MBU is 1 and
  // S-MFU 0.0944/0.2464 = 0.38311...
  EXPECT_NEAR(passes[0].roofline_s_mbu, 1, 1e-12);
  EXPECT_NEAR(passes[0].roofline_s_mfu, 0.0944 / 0.2464, 1e-12);
  // $36/h = $0.01/s: pass 2 costs $0.0025 for 1 token, $2500 per million; pass 1 $0.005 for 5.
  ASSERT_TRUE(passes[1].usd_per_million_tokens.has_value());
  EXPECT_NEAR(*passes[1].usd_per_million_tokens, 2500, 1e-9);
  EXPECT_NEAR(*passes[0].usd_per_million_tokens, 1000, 1e-9);
  EXPECT_DOUBLE_EQ(passes[0].tokens_per_s, 10);  // 5 tokens in 0.5 s
}

TEST(AnalyzeRecordsTest, JsonHasThePhaseKeysAndTheBreakdownTerms) {
  absl::StatusOr<RecordsSummary> s =
      AnalyzeText(ReadFile(std::string(kTestdata) + "/toy_passes.jsonl"), ToyOptions());
  ASSERT_TRUE(s.ok()) << s.status();
  const nlohmann::json j = RecordsJson(*s);
  for (const char* key : {"passes", "bytes", "flops", "time_s", "s_mbu", "s_mfu", "s_mbu_p50",
                          "s_mbu_p90", "s_mbu_p99", "s_mfu_p50", "s_mfu_p90", "s_mfu_p99",
                          "mean_batch", "mean_activated_experts", "breakdown"}) {
    EXPECT_TRUE(j["decode"].contains(key)) << key;
    EXPECT_TRUE(j["prefill"].contains(key)) << key;
  }
  EXPECT_EQ(j["decode"]["breakdown"].size(), 8u);
  EXPECT_DOUBLE_EQ(j["decode"]["breakdown"]["kv_cache"]["bytes"].get<double>(), 608);  // 192+416
  EXPECT_EQ(j["skipped"]["count"], 2);
  EXPECT_EQ(j["skipped"]["reasons"]["expert_activation negative"], 1);
}

constexpr char kGoodDecode[] =
    R"({"forward_mode": "decode", "batch_size": 1, "latency": 0.25, "seq_lens_sum": 6, )"
    R"("expert_activation": 2, "gpu_num": 1, "gpu_raw_type": "TOY-GPU-1GB"})";

TEST(AnalyzeRecordsTest, ABadLineFailsWithItsNumberUnlessSkipped) {
  const std::string text = std::string(kGoodDecode) + "\n\n" +
                           R"({"forward_mode": "decode", "batch_size": "32"})" + "\n" +
                           kGoodDecode + "\n";
  absl::StatusOr<RecordsSummary> strict = AnalyzeText(text, ToyOptions());
  ASSERT_FALSE(strict.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(strict.status()));
  // Line 2 is blank; the bad record is line 3.
  EXPECT_EQ(strict.status().message(), "passes.jsonl:3: field 'batch_size': expected an integer");

  RecordsOptions lenient = ToyOptions();
  lenient.skip_bad = true;
  absl::StatusOr<RecordsSummary> s = AnalyzeText(text, lenient);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->records, 3);
  EXPECT_EQ(s->decode->passes, 2);
  EXPECT_EQ(s->skipped, 1);
  EXPECT_EQ(s->skipped_reasons.at("field 'batch_size': expected an integer"), 1);
  ASSERT_EQ(s->first_skipped.size(), 1u);
  EXPECT_EQ(s->first_skipped[0].line, 3);
}

TEST(AnalyzeRecordsTest, EmptyFileAndNoUsablePassAreErrors) {
  absl::StatusOr<RecordsSummary> empty = AnalyzeText("", ToyOptions());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().message(), "passes.jsonl: no records: the file is empty");
  absl::StatusOr<RecordsSummary> blank = AnalyzeText("\n  \n\r\n", ToyOptions());
  EXPECT_EQ(blank.status().message(), "passes.jsonl: no records: the file is empty");

  const std::string skipped =
      R"({"forward_mode": "decode", "batch_size": 1, "latency": 0.1, "seq_lens_sum": 5})"
      "\n"
      R"({"forward_mode": "decode", "batch_size": 1, "latency": 0.1, "seq_lens_sum": 5,)"
      R"( "expert_activation": -1})";
  absl::StatusOr<RecordsSummary> none = AnalyzeText(skipped, ToyOptions());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message(),
            "passes.jsonl: no usable pass: all 2 records were skipped (expert_activation missing "
            "or null: 1; expert_activation negative: 1)");
}

TEST(AnalyzeRecordsTest, HardwareAndDeviceCountNeedTheRecordsOrFlags) {
  const std::string bare =
      R"({"forward_mode": "decode", "batch_size": 1, "latency": 0.25, "seq_lens_sum": 6,)"
      R"( "expert_activation": 2})";
  absl::StatusOr<RecordsSummary> no_device = AnalyzeText(bare, ToyOptions());
  EXPECT_TRUE(absl::IsFailedPrecondition(no_device.status()));
  EXPECT_EQ(no_device.status().message(),
            "passes.jsonl:1: the record has no gpu_raw_type: pass --hardware NAME (`moecapctl "
            "hardware` lists the names)");

  RecordsOptions with_hardware = ToyOptions();
  with_hardware.hardware = **ToyCatalog().FindHardware("toy-gpu");
  absl::StatusOr<RecordsSummary> no_count = AnalyzeText(bare, with_hardware);
  EXPECT_TRUE(absl::IsFailedPrecondition(no_count.status()));
  EXPECT_EQ(no_count.status().message(),
            "passes.jsonl:1: the record has no gpu_num: pass --gpus N (devices serving it)");

  with_hardware.devices = 4;
  absl::StatusOr<RecordsSummary> fixed = AnalyzeText(bare, with_hardware);
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  EXPECT_EQ(fixed->run.devices, 4);
  EXPECT_EQ(fixed->run.hardware_source, "--hardware");
  // 2016 bytes in 0.25 s over 4 devices of 1e4 B/s: 2016 / (0.25·4·1e4) = 0.2016.
  EXPECT_NEAR(fixed->decode->s_mbu, 0.2016, 1e-12);
}

TEST(AnalyzeRecordsTest, UnknownRawDeviceNameSaysHowToPassHardware) {
  const std::string text =
      R"({"forward_mode": "decode", "batch_size": 1, "latency": 0.25, "seq_lens_sum": 6,)"
      R"( "expert_activation": 2, "gpu_num": 1, "gpu_raw_type": "NVIDIA-B300-SXM6-288GB"})";
  absl::StatusOr<RecordsSummary> s = AnalyzeText(text, ToyOptions());
  ASSERT_TRUE(absl::IsNotFound(s.status())) << s.status();
  EXPECT_EQ(s.status().message(),
            "passes.jsonl:1: field 'gpu_raw_type': unknown device 'NVIDIA-B300-SXM6-288GB': pass "
            "--hardware NAME (`moecapctl hardware` lists the names), or add "
            "'NVIDIA-B300-SXM6-288GB' to the aliases of a hardware entry in a --catalog directory");
  // --hardware takes precedence over the raw name.
  RecordsOptions o = ToyOptions();
  o.hardware = **ToyCatalog().FindHardware("toy-gpu");
  EXPECT_TRUE(AnalyzeText(text, o).ok());
}

TEST(AnalyzeRecordsTest, ADifferentDeviceOrCountLaterIsABadLine) {
  const std::string other_count =
      std::string(kGoodDecode) + "\n" +
      R"({"forward_mode": "decode", "batch_size": 1, "latency": 0.25, "seq_lens_sum": 6,)"
      R"( "expert_activation": 2, "gpu_num": 2})";
  absl::StatusOr<RecordsSummary> s = AnalyzeText(other_count, ToyOptions());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(),
            "passes.jsonl:2: field 'gpu_num': 2 differs from 1 on line 1: pass --gpus to read "
            "the file as one device count");
  RecordsOptions fixed = ToyOptions();
  fixed.devices = 1;
  EXPECT_TRUE(AnalyzeText(other_count, fixed).ok());

  const std::string other_device =
      std::string(kGoodDecode) + "\n" +
      R"({"forward_mode": "decode", "batch_size": 1, "latency": 0.25, "seq_lens_sum": 6,)"
      R"( "expert_activation": 2, "gpu_raw_type": "NVIDIA-H100-80GB-HBM3"})";
  s = AnalyzeText(other_device, ToyOptions());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(),
            "passes.jsonl:2: field 'gpu_raw_type': 'NVIDIA-H100-80GB-HBM3' is not the device of "
            "line 1 ('TOY-GPU-1GB'): pass --hardware to read the file as one device");
}

TEST(AnalyzeRecordsTest, AMissingPeakIsForAFlagToGive) {
  RecordsOptions o = ToyOptions();
  o.precision.compute = Dtype::kFp8;  // the toy device lists bf16 only
  absl::StatusOr<RecordsSummary> s = AnalyzeText(kGoodDecode, o);
  EXPECT_TRUE(absl::IsFailedPrecondition(s.status())) << s.status();
  o.peak_flops = 2e5;
  EXPECT_TRUE(AnalyzeText(kGoodDecode, o).ok());
}

TEST(AnalyzeRecordsTest, ExampleFileFromTheDocs) {
  // examples/records/mixtral-8x7b-h100x2.jsonl (docs/analyze.md): 24 records, one with a null
  // expert_activation; 4 prefill passes (one chunked with 2048 cached tokens) and 19 decode.
  absl::StatusOr<Catalog> catalog = Catalog::Builtin();
  ASSERT_TRUE(catalog.ok());
  RecordsOptions o;
  o.origin = "example";
  o.model = **catalog->FindModel("mixtral-8x7b");
  o.catalog = &*catalog;
  absl::StatusOr<RecordsSummary> s =
      AnalyzeText(ReadFile(std::string(MOECAP_EXAMPLES_RECORDS) + "/mixtral-8x7b-h100x2.jsonl"), o);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->run.hardware.name, "h100-sxm");
  EXPECT_EQ(s->run.devices, 2);
  EXPECT_EQ(s->records, 24);
  EXPECT_EQ(s->prefill->passes, 4);
  EXPECT_EQ(s->decode->passes, 19);
  EXPECT_EQ(s->skipped, 1);
  // Prefill tokens: 4·512 + 2048 + 952 + 8·256 = 7096.
  EXPECT_DOUBLE_EQ(s->prefill->tokens, 7096);
}

TEST(LineReaderTest, LinesAcrossBlocksCrLfAndNoFinalNewline) {
  std::istringstream in("abc\r\n\ndefghij\nxy");
  LineReader reader(in, /*block_bytes=*/4, /*max_line_bytes=*/64);
  absl::string_view line;
  std::vector<std::string> lines;
  while (reader.Next(&line)) lines.emplace_back(line);
  EXPECT_TRUE(reader.status().ok());
  EXPECT_EQ(lines, (std::vector<std::string>{"abc", "", "defghij", "xy"}));
  EXPECT_EQ(reader.line_number(), 4);
}

TEST(LineReaderTest, ALineLongerThanTheLimitIsAnError) {
  std::istringstream in("short\n" + std::string(100, 'x') + "\n");
  LineReader reader(in, 8, 32);
  absl::string_view line;
  ASSERT_TRUE(reader.Next(&line));
  EXPECT_FALSE(reader.Next(&line));
  EXPECT_TRUE(absl::IsResourceExhausted(reader.status()));
  EXPECT_EQ(reader.status().message(), "line 2 is longer than 32 bytes");
}

}  // namespace
}  // namespace moecap::records
