// The records files users have, read as they are: tests/fixtures/real/moecap_records/ holds
// MoE-CAP e9e0d88's vLLM and SGLang recorder layouts and its runner's detailed_results file
// (tests/fixtures/real/README.md says where each comes from). Qwen3-30B-A3B on one H100.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/catalog.h"
#include "common/records/input_file.h"
#include "common/records/records_analysis.h"

namespace moecap::records {
namespace {

constexpr char kReal[] = MOECAP_REAL_FIXTURES "/moecap_records";

const Catalog& Builtin() {
  static const Catalog* const catalog = new Catalog(*Catalog::Builtin());
  return *catalog;
}

RecordsOptions Qwen3Options(const std::string& origin) {
  RecordsOptions o;
  o.origin = origin;
  o.model = **Builtin().FindModel("qwen3-30b-a3b");
  o.catalog = &Builtin();
  return o;
}

std::string Read(const std::string& name) {
  std::ifstream in(std::string(kReal) + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Analysis {
  absl::StatusOr<RecordsSummary> summary;
  std::vector<PassResult> passes;
};

Analysis Analyze(const std::string& text, const RecordsOptions& o) {
  Analysis run;
  std::istringstream in(text);
  run.summary = AnalyzeRecords(
      in, o, [&](const PassResult& p, const RecordsSummary&) { run.passes.push_back(p); });
  return run;
}

TEST(RealRecordsTest, VllmSplitStepsAreMergedAndScheduledTokenContextsAreNotUsed) {
  // 12 lines: prefill 1, 2; step 3 split (prefill + decode); decode 4-6; step 7 split;
  // decode 8-10. Every decode record has seq_lens_sum == batch_size.
  Analysis run = Analyze(Read("vllm_expert_distribution_record.jsonl"),
                         Qwen3Options("vllm_expert_distribution_record.jsonl"));
  ASSERT_TRUE(run.summary.ok()) << run.summary.status();
  const RecordsSummary& s = *run.summary;
  EXPECT_EQ(s.records, 12);
  EXPECT_EQ(s.run.hardware.name, "h100-sxm");  // from NVIDIA-H100-HBM3-80GB
  EXPECT_EQ(s.merged_steps, 2);
  // Without lengths the decode contexts cannot be rebuilt: those passes (and the split steps,
  // whose halves go together) are skipped with the reason; only prefills 1 and 2 count.
  EXPECT_EQ(s.skipped, 10);
  EXPECT_FALSE(s.decode.has_value());
  EXPECT_FALSE(s.mixed.has_value());
  ASSERT_TRUE(s.prefill.has_value());
  EXPECT_EQ(s.prefill->passes, 2);
  bool named = false;
  for (const auto& [reason, count] : s.skipped_reasons) {
    named = named || absl::StartsWith(reason, "decode context missing: seq_lens_sum equals");
  }
  EXPECT_TRUE(named);
  // Pass 1 is the first 2048-token chunk of a 3000-token prompt: nothing cached (vLLM's
  // total_len is the prompt length, not the running total), no logits (not its last chunk).
  ASSERT_GE(run.passes.size(), 1u);
  const PrefillPass& first = *run.passes[0].pass.prefill_part;
  EXPECT_DOUBLE_EQ(first.cached_tokens, 0);
  EXPECT_DOUBLE_EQ(first.completed_sequences, 0);
  EXPECT_DOUBLE_EQ(run.passes[0].pass.counts[Term::kLmHead].flops, 0);
  // Pass 2: request 8d3f's first chunk (1096, fresh) and 5b0e's last (952 on its 2048 cached).
  const PrefillPass& second = *run.passes[1].pass.prefill_part;
  EXPECT_DOUBLE_EQ(second.cached_tokens, 2048);
  EXPECT_DOUBLE_EQ(second.completed_sequences, 1);
}

TEST(RealRecordsTest, VllmDecodeContextsFromPromptAndOutputLengths) {
  RecordsOptions o = Qwen3Options("vllm.jsonl");
  o.counting.prompt_len = 3000;
  o.counting.output_len = 8;
  Analysis run = Analyze(Read("vllm_expert_distribution_record.jsonl"), o);
  ASSERT_TRUE(run.summary.ok()) << run.summary.status();
  const RecordsSummary& s = *run.summary;
  EXPECT_EQ(s.skipped, 0);
  ASSERT_TRUE(s.mixed.has_value());
  EXPECT_EQ(s.mixed->passes, 2);  // steps 3 and 7, one pass each
  ASSERT_TRUE(s.decode.has_value());
  EXPECT_EQ(s.decode->passes, 6);
  EXPECT_EQ(s.prefill->passes, 2);
  EXPECT_EQ(s.rebuilt_contexts, 8);  // 6 decode passes and the 2 mixed passes' decode parts
  EXPECT_TRUE(s.validity.estimated);
  EXPECT_TRUE(s.decode->validity.estimated);
  EXPECT_FALSE(s.prefill->validity.estimated);
  // Pass 4 (b = 2): C = 2·(3000 + 8/2) = 6008, not the recorded 2.
  const PassResult* pass4 = nullptr;
  for (const PassResult& p : run.passes) {
    if (p.forward_pass_id == 4) pass4 = &p;
  }
  ASSERT_NE(pass4, nullptr);
  EXPECT_DOUBLE_EQ(pass4->pass.decode_part->context_sum, 6008);
  EXPECT_TRUE(pass4->validity.estimated);
  // The merged step 3 takes its time once: Σ time over phases = Σ distinct step latencies.
  double step_time = 0;
  for (const PassResult& p : run.passes) step_time += p.latency_s;
  EXPECT_DOUBLE_EQ(s.prefill->time_s + s.decode->time_s + s.mixed->time_s, step_time);
  EXPECT_EQ(run.passes.size(), 10u);  // 12 records, 2 merged pairs
  // The mixed pass reads the weights once: its bytes are less than its halves counted apart.
  const PassResult& mixed = run.passes[2];
  EXPECT_EQ(mixed.pass.mode, ForwardMode::kMixed);
  EXPECT_EQ(mixed.line, 3);
  const Precision p = MakePrecision(Dtype::kBf16);
  const Counts apart = CountPrefillPass(o.model, p, *mixed.pass.prefill_part);
  Counts decode_apart = CountDecodePass(o.model, p, *mixed.pass.decode_part);
  EXPECT_LT(mixed.pass.counts.bytes(), apart.bytes() + decode_apart.bytes());
  EXPECT_DOUBLE_EQ(mixed.pass.counts.flops(), apart.flops() + decode_apart.flops());
}

TEST(RealRecordsTest, DetailedResultsNeedTheDeviceAndRebuildContextsFromRequestIds) {
  const std::string text = Read("detailed_results_example.jsonl");
  // No gpu fields in the runner's file: the flag is named.
  Analysis bare = Analyze(text, Qwen3Options("detailed_results.jsonl"));
  ASSERT_TRUE(absl::IsFailedPrecondition(bare.summary.status())) << bare.summary.status();
  EXPECT_TRUE(absl::StrContains(bare.summary.status().message(), "pass --hardware"));
  RecordsOptions o = Qwen3Options("detailed_results.jsonl");
  o.hardware = **Builtin().FindHardware("h100-sxm");
  o.devices = 1;
  Analysis run = Analyze(text, o);
  ASSERT_TRUE(run.summary.ok()) << run.summary.status();
  const RecordsSummary& s = *run.summary;
  // Index 2 (prefill, ttft) and 3 (decode, tpot) share latency and activation: one step.
  EXPECT_EQ(s.merged_steps, 1);
  ASSERT_TRUE(s.mixed.has_value());
  ASSERT_EQ(run.passes.size(), 5u);
  // The decode contexts come from the requests' prompts (3000 each, seen in the prefills) and
  // their tokens so far: index 3 decodes 5b0e's first token (3001); index 4: 3002 + 3001;
  // index 5: 3003 + 3002.
  EXPECT_DOUBLE_EQ(run.passes[2].pass.decode_part->context_sum, 3001);
  EXPECT_DOUBLE_EQ(run.passes[3].pass.decode_part->context_sum, 6003);
  EXPECT_DOUBLE_EQ(run.passes[4].pass.decode_part->context_sum, 6005);
  EXPECT_TRUE(s.decode->validity.estimated);
  EXPECT_TRUE(absl::StrContains(s.decode->validity.assumptions.front(), "prompt length"));
}

TEST(RealRecordsTest, SglangWarmupIsSkippedAndRunningTotalsAreCached) {
  Analysis run =
      Analyze(Read("sglang_expert_distribution_record.jsonl"), Qwen3Options("sglang.jsonl"));
  ASSERT_TRUE(run.summary.ok()) << run.summary.status();
  const RecordsSummary& s = *run.summary;
  // Passes 1-8 are the server's warm-up with expert_activation 0: not recorded, skipped.
  EXPECT_EQ(s.skipped, 8);
  EXPECT_EQ(s.merged_steps, 0);
  ASSERT_EQ(run.passes.size(), 5u);
  // Pass 10: request 2_0's last chunk of 3904 on a running total of 4000: 96 cached.
  EXPECT_DOUBLE_EQ(run.passes[1].pass.prefill_part->cached_tokens, 96);
  EXPECT_DOUBLE_EQ(run.passes[1].pass.prefill_part->completed_sequences, 1);
  // Pass 9: 1_0 completes, 2_0's first chunk does not.
  EXPECT_DOUBLE_EQ(run.passes[0].pass.prefill_part->completed_sequences, 1);
  // SGLang's decode seq_lens_sum is the real context: used as it is, not estimated.
  EXPECT_DOUBLE_EQ(run.passes[2].pass.decode_part->context_sum, 8002);
  EXPECT_FALSE(s.validity.estimated);
  EXPECT_TRUE(s.validity.valid) << s.validity.reasons.front();
}

TEST(RealRecordsTest, GzipBomAndATruncatedLastLineAreReadAsTheyAre) {
  const std::string text = Read("sglang_expert_distribution_record.jsonl");
  // gzip, as `gzip records.jsonl` leaves it.
  const std::string gz_path =
      (std::filesystem::temp_directory_path() / "moecap_real_records.jsonl.gz").string();
  gzFile gz = gzopen(gz_path.c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, text.data(), static_cast<unsigned>(text.size())),
            static_cast<int>(text.size()));
  gzclose(gz);
  absl::StatusOr<InputFile> input = OpenInputFile(gz_path);
  ASSERT_TRUE(input.ok()) << input.status();
  EXPECT_TRUE(input->gzip);
  absl::StatusOr<RecordsSummary> from_gz =
      AnalyzeRecords(*input->stream, Qwen3Options("records.jsonl.gz"));
  ASSERT_TRUE(from_gz.ok()) << from_gz.status();
  Analysis plain = Analyze(text, Qwen3Options("records.jsonl"));
  ASSERT_TRUE(plain.summary.ok());
  EXPECT_EQ(from_gz->records, plain.summary->records);
  EXPECT_DOUBLE_EQ(from_gz->decode->s_mbu, plain.summary->decode->s_mbu);

  // The same .gz cut short (a copy stopped mid-way) is lost data, not a shorter file.
  std::string whole;
  {
    std::ifstream in(gz_path, std::ios::binary);
    whole.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::string cut_path = gz_path + ".cut.gz";
  {
    std::ofstream out(cut_path, std::ios::binary);
    out.write(whole.data(), static_cast<std::streamsize>(whole.size() / 2));
  }
  absl::StatusOr<InputFile> cut_gz = OpenInputFile(cut_path);
  ASSERT_TRUE(cut_gz.ok()) << cut_gz.status();
  absl::StatusOr<RecordsSummary> from_cut =
      AnalyzeRecords(*cut_gz->stream, Qwen3Options("cut.jsonl.gz"));
  EXPECT_EQ(from_cut.status().code(), absl::StatusCode::kDataLoss) << from_cut.status();
  EXPECT_TRUE(absl::StrContains(from_cut.status().message(), "damaged or cut short"))
      << from_cut.status();
  EXPECT_EQ(ReadInputFile(cut_path).status().code(), absl::StatusCode::kDataLoss);
  std::remove(cut_path.c_str());
  std::remove(gz_path.c_str());

  // A UTF-8 BOM before the first record.
  Analysis bom = Analyze("\xEF\xBB\xBF" + text, Qwen3Options("bom.jsonl"));
  ASSERT_TRUE(bom.summary.ok()) << bom.summary.status();
  EXPECT_EQ(bom.summary->records, 13);

  // The writer stopped mid-line: the last line is skipped with a note, not an error.
  Analysis cut =
      Analyze(text + R"({"forward_pass_id": 14, "batch_size": 2, "lat)", Qwen3Options("cut.jsonl"));
  ASSERT_TRUE(cut.summary.ok()) << cut.summary.status();
  EXPECT_EQ(cut.summary->skipped, 9);
  ASSERT_FALSE(cut.summary->notes.empty());
  EXPECT_TRUE(absl::StrContains(cut.summary->notes.back(), "cut.jsonl:14: truncated last line"));
  // The same cut in the middle of the file is an error naming the line.
  Analysis middle = Analyze(R"({"forward_pass_id": 14, "batch_size": 2, "lat)"
                            "\n" +
                                text,
                            Qwen3Options("mid.jsonl"));
  EXPECT_TRUE(absl::StartsWith(middle.summary.status().message(), "mid.jsonl:1: invalid JSON"))
      << middle.summary.status();

  // A directory and a binary file are named as such.
  absl::StatusOr<InputFile> dir = OpenInputFile(kReal);
  EXPECT_TRUE(absl::StrContains(dir.status().message(), "is a directory")) << dir.status();
  Analysis binary = Analyze(std::string("\x7f"
                                        "ELF\x02\x01\x01\0\0\0",
                                        10),
                            Qwen3Options("a.out"));
  EXPECT_TRUE(absl::StrContains(binary.summary.status().message(), "a.out:1: binary data"))
      << binary.summary.status();
}

TEST(RealRecordsTest, AnImpossiblyFastPassIsFlagged) {
  // One decode pass of the SGLang file with its latency cut 1000-fold (a time in ms read as s
  // the other way round): over 100 % S-MBU, flagged, the figure still printed.
  const std::string line =
      R"({"forward_pass_id": 11, "batch_size": 2, "latency": 0.000012117749988101422,)"
      R"( "seq_lens_sum": 8002, "forward_mode": "decode", "expert_activation": 15.3125,)"
      R"( "gpu_num": 1, "gpu_raw_type": "NVIDIA-H100-HBM3-80GB"})";
  Analysis run = Analyze(line, Qwen3Options("fast.jsonl"));
  ASSERT_TRUE(run.summary.ok()) << run.summary.status();
  EXPECT_GT(run.summary->decode->s_mbu, 1.0);
  EXPECT_FALSE(run.summary->validity.valid);
  EXPECT_FALSE(run.passes[0].validity.valid);
  EXPECT_EQ(run.summary->decode->invalid_passes, 1);
  EXPECT_TRUE(absl::StrContains(run.summary->validity.reasons.front(), "decode S-MBU"));
}

}  // namespace
}  // namespace moecap::records
