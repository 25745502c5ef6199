// The record parser: every field it reads, and every way a line can be bad (the message names
// the field and the reason; `reason` groups equal causes without values).
#include "common/records/pass_record.h"

#include <gtest/gtest.h>

#include <string>

namespace moecap::records {
namespace {

RecordError ParseError(const std::string& line) {
  PassRecord record;
  RecordError error;
  EXPECT_FALSE(ParsePassRecord(line, &record, &error)) << line;
  return error;
}

std::string Message(const std::string& line) { return ParseError(line).message; }

// A decode record with every field, to be broken one field at a time.
constexpr char kDecode[] =
    R"({"forward_pass_id": 7, "forward_mode": "decode", "batch_size": 4, "latency": 0.02, )"
    R"("seq_lens_sum": 40, "expert_activation": 2.5, "gpu_num": 2, )"
    R"("gpu_raw_type": "NVIDIA-H100-80GB-HBM3"})";

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(PassRecordTest, ParsesADecodeRecord) {
  PassRecord r;
  RecordError error;
  ASSERT_TRUE(ParsePassRecord(kDecode, &r, &error)) << error.message;
  EXPECT_EQ(r.forward_mode, ForwardMode::kDecode);
  EXPECT_EQ(r.forward_pass_id, 7);
  EXPECT_EQ(r.batch_size, 4);
  EXPECT_DOUBLE_EQ(r.latency_s, 0.02);
  EXPECT_EQ(r.seq_lens_sum, 40);
  EXPECT_FALSE(r.scheduled_tokens.has_value());
  EXPECT_EQ(r.expert_activation, 2.5);
  EXPECT_EQ(r.gpu_num, 2);
  EXPECT_TRUE(r.has_gpu_raw_type);
  EXPECT_EQ(r.gpu_raw_type, "NVIDIA-H100-80GB-HBM3");
  EXPECT_TRUE(r.requests.empty());
}

TEST(PassRecordTest, ParsesPerRequestInfoOfAChunkedPrefill) {
  // Request a: 2 new tokens on 3 cached (total_len 5); b: fresh 3; c: no total_len, so fresh.
  PassRecord r;
  RecordError error;
  ASSERT_TRUE(ParsePassRecord(
      R"({"forward_mode": "prefill", "batch_size": 3, "latency": 0.5, "expert_activation": 3,)"
      R"( "per_req_info": [{"req_id": "a", "extend_len": 2, "total_len": 5, "x": {"y": [1]}},)"
      R"( {"extend_len": 3, "total_len": 3}, {"extend_len": 1, "total_len": null}]})",
      &r, &error))
      << error.message;
  EXPECT_EQ(r.forward_mode, ForwardMode::kPrefill);
  ASSERT_EQ(r.requests.size(), 3u);
  EXPECT_EQ(r.requests[0].extend_len, 2);
  EXPECT_EQ(r.requests[0].total_len, 5);
  EXPECT_EQ(r.requests[0].req_id, "a");
  EXPECT_EQ(r.requests[1].extend_len, 3);
  EXPECT_EQ(r.requests[1].total_len, 3);
  EXPECT_EQ(r.requests[2].extend_len, 1);
  EXPECT_FALSE(r.requests[2].total_len.has_value());
  EXPECT_FALSE(r.requests[2].is_last_chunk.has_value());
  EXPECT_FALSE(r.seq_lens_sum.has_value());
}

TEST(PassRecordTest, ReadsEachRecordersKeys) {
  PassRecord r;
  RecordError error;
  // SGLang's per_req_info (req_pool_idx first) and vLLM's (prompt_len, is_last_chunk).
  ASSERT_TRUE(ParsePassRecord(
      R"({"forward_mode": "prefill", "batch_size": 2, "latency": 0.5, "expert_activation": 3,)"
      R"( "per_req_info": [{"req_pool_idx": 4, "req_id": "4_0", "extend_len": 8, "total_len": 8,)"
      R"( "is_last_chunk": false}, {"req_id": "cmpl-a-0", "extend_len": 5, "total_len": 9,)"
      R"( "prompt_len": 9, "is_last_chunk": true}]})",
      &r, &error))
      << error.message;
  EXPECT_TRUE(r.requests[0].has_pool_index);
  EXPECT_EQ(r.requests[0].is_last_chunk, false);
  EXPECT_FALSE(r.requests[1].has_pool_index);
  EXPECT_EQ(r.requests[1].prompt_len, 9);
  EXPECT_EQ(r.requests[1].is_last_chunk, true);
  // detailed_results_*.jsonl: the pass time under `tpot` (or `ttft`), req_ids of a decode.
  ASSERT_TRUE(ParsePassRecord(
      R"({"index": 3, "forward_mode": "decode", "expert_activation": 12.5, "batch_size": 2,)"
      R"( "seq_lens_sum": 2, "tpot": 0.01, "req_ids": ["cmpl-a-0", "cmpl-b-0"]})",
      &r, &error))
      << error.message;
  EXPECT_EQ(r.latency_key, LatencyKey::kTpot);
  EXPECT_DOUBLE_EQ(r.latency_s, 0.01);
  EXPECT_EQ(r.decode_request_ids, (std::vector<std::string>{"cmpl-a-0", "cmpl-b-0"}));
  // vLLM's step without requests.
  ASSERT_TRUE(ParsePassRecord(
      R"({"forward_pass_id": 9, "batch_size": 0, "latency": 0.001, "seq_lens_sum": 0,)"
      R"( "forward_mode": "unknown", "expert_activation": 0, "scheduled_tokens": 0})",
      &r, &error))
      << error.message;
  EXPECT_EQ(r.forward_mode, ForwardMode::kUnknown);
  // Two times in one record are refused, naming the second.
  EXPECT_FALSE(
      ParsePassRecord(R"({"forward_mode": "decode", "batch_size": 1, "latency": 0.1, "tpot": 0.1,)"
                      R"( "seq_lens_sum": 4})",
                      &r, &error));
  EXPECT_EQ(error.message,
            "field 'tpot': a second pass time (a record has one of latency, ttft and tpot)");
}

TEST(PassRecordTest, IgnoresUnknownFieldsAndTakesNullAsAbsent) {
  PassRecord r;
  RecordError error;
  ASSERT_TRUE(ParsePassRecord(
      R"({"forward_mode": "decode", "batch_size": 1, "latency": 1e-2, "seq_lens_sum": 6,)"
      R"( "expert_activation": null, "gpu_num": null, "gpu_raw_type": null,)"
      R"( "raw_probe_source": "recorder_dump", "extra": [{"a": "\u00e9"}, true, false]})",
      &r, &error))
      << error.message;
  EXPECT_FALSE(r.expert_activation.has_value());
  EXPECT_FALSE(r.gpu_num.has_value());
  EXPECT_FALSE(r.has_gpu_raw_type);
  EXPECT_DOUBLE_EQ(r.latency_s, 0.01);
}

TEST(PassRecordTest, ALaterDuplicateKeyWins) {
  PassRecord r;
  RecordError error;
  ASSERT_TRUE(ParsePassRecord(
      Replace(kDecode, R"("batch_size": 4)", R"("batch_size": 9, "batch_size": 4)"), &r, &error));
  EXPECT_EQ(r.batch_size, 4);
}

TEST(PassRecordTest, ReusedRecordForgetsThePreviousLine) {
  PassRecord r;
  RecordError error;
  ASSERT_TRUE(ParsePassRecord(kDecode, &r, &error));
  ASSERT_TRUE(ParsePassRecord(
      R"({"forward_mode": "decode", "batch_size": 1, "latency": 0.1, "seq_lens_sum": 1})", &r,
      &error));
  EXPECT_FALSE(r.expert_activation.has_value());
  EXPECT_FALSE(r.has_gpu_raw_type);
  EXPECT_FALSE(r.forward_pass_id.has_value());
}

TEST(PassRecordTest, SyntaxErrorsGiveTheColumn) {
  // {"a": 1,} : the '}' at column 9 is not a member name.
  const RecordError e = ParseError(R"({"a": 1,})");
  EXPECT_EQ(e.message, "invalid JSON at column 9: expected a member name in double quotes");
  EXPECT_EQ(e.reason, "invalid JSON");
  // kDecode is 183 bytes; " x" puts the x at column 185.
  EXPECT_EQ(Message(std::string(kDecode) + " x"),
            "invalid JSON at column 185: text after the object");
  EXPECT_EQ(Message(""), "invalid JSON at column 1: expected a value, found the end of the line");
  EXPECT_EQ(Message("[1, 2]"), "not a JSON object (found an array)");
  EXPECT_EQ(ParseError("[1, 2]").reason, "not a JSON object");
}

TEST(PassRecordTest, WrongTypesNameTheField) {
  EXPECT_EQ(Message(Replace(kDecode, R"("batch_size": 4)", R"("batch_size": "4")")),
            "field 'batch_size': expected an integer");
  EXPECT_EQ(Message(Replace(kDecode, R"("batch_size": 4)", R"("batch_size": 2.5)")),
            "field 'batch_size': expected an integer");
  EXPECT_EQ(Message(Replace(kDecode, R"("batch_size": 4)", R"("batch_size": null)")),
            "field 'batch_size': expected an integer");
  EXPECT_EQ(Message(Replace(kDecode, R"("latency": 0.02)", R"("latency": "fast")")),
            "field 'latency': expected a number");
  EXPECT_EQ(Message(Replace(kDecode, R"("seq_lens_sum": 40)", R"("seq_lens_sum": [40])")),
            "field 'seq_lens_sum': expected an integer");
  EXPECT_EQ(
      Message(Replace(kDecode, R"("expert_activation": 2.5)", R"("expert_activation": "2.5")")),
      "field 'expert_activation': expected a number");
  EXPECT_EQ(Message(Replace(kDecode, R"("gpu_num": 2)", R"("gpu_num": true)")),
            "field 'gpu_num': expected an integer");
  EXPECT_EQ(Message(Replace(kDecode, R"("gpu_raw_type": "NVIDIA-H100-80GB-HBM3")",
                            R"("gpu_raw_type": 100)")),
            "field 'gpu_raw_type': expected a string");
  EXPECT_EQ(Message(Replace(kDecode, R"("forward_pass_id": 7)", R"("forward_pass_id": "7")")),
            "field 'forward_pass_id': expected an integer");
  EXPECT_EQ(Message(Replace(kDecode, R"("forward_mode": "decode")", R"("forward_mode": 1)")),
            "field 'forward_mode': expected \"prefill\", \"decode\" or \"unknown\"");
  EXPECT_EQ(Message(Replace(kDecode, R"("forward_mode": "decode")", R"("forward_mode": "extend")")),
            "field 'forward_mode': expected \"prefill\", \"decode\" or \"unknown\", got 'extend'");
}

TEST(PassRecordTest, MissingFieldsAreNamed) {
  EXPECT_EQ(Message(Replace(kDecode, R"("forward_mode": "decode", )", "")),
            "field 'forward_mode': missing");
  EXPECT_EQ(Message(Replace(kDecode, R"("batch_size": 4, )", "")), "field 'batch_size': missing");
  EXPECT_EQ(Message(Replace(kDecode, R"("latency": 0.02, )", "")),
            "field 'latency': missing (nor ttft or tpot, as detailed_results has)");
  EXPECT_EQ(Message(Replace(kDecode, R"("seq_lens_sum": 40, )", "")),
            "field 'seq_lens_sum': missing (a decode pass needs the sum of its context lengths)");
  EXPECT_EQ(ParseError(Replace(kDecode, R"("seq_lens_sum": 40, )", "")).reason,
            "field 'seq_lens_sum': missing");
  EXPECT_EQ(Message(R"({"forward_mode": "prefill", "batch_size": 2, "latency": 0.1})"),
            "field 'seq_lens_sum': missing (a prefill pass needs per_req_info, scheduled_tokens "
            "or seq_lens_sum)");
}

TEST(PassRecordTest, ValuesOutOfRange) {
  EXPECT_EQ(Message(Replace(kDecode, R"("batch_size": 4)", R"("batch_size": 0)")),
            "field 'batch_size': must be at least 1, got 0");
  EXPECT_EQ(ParseError(Replace(kDecode, R"("batch_size": 4)", R"("batch_size": 0)")).reason,
            "field 'batch_size': must be at least 1");
  EXPECT_EQ(Message(Replace(kDecode, R"("latency": 0.02)", R"("latency": 0)")),
            "field 'latency': must be a positive number of seconds, got 0");
  EXPECT_EQ(Message(Replace(kDecode, R"("latency": 0.02)", R"("latency": -0.5)")),
            "field 'latency': must be a positive number of seconds, got -0.5");
  EXPECT_EQ(Message(Replace(kDecode, R"("seq_lens_sum": 40)", R"("seq_lens_sum": -1)")),
            "field 'seq_lens_sum': must not be negative, got -1");
  // Four sequences each count at least the token being decoded: C >= b.
  EXPECT_EQ(Message(Replace(kDecode, R"("seq_lens_sum": 40)", R"("seq_lens_sum": 3)")),
            "field 'seq_lens_sum': must be at least batch_size (each context counts its decoded "
            "token), got 3 < 4");
  EXPECT_EQ(Message(Replace(kDecode, R"("gpu_num": 2)", R"("gpu_num": 0)")),
            "field 'gpu_num': must be at least 1, got 0");
}

TEST(PassRecordTest, BadPerRequestInfoNamesTheElement) {
  const std::string prefill =
      R"({"forward_mode": "prefill", "batch_size": 2, "latency": 0.1, "per_req_info": )";
  EXPECT_EQ(Message(prefill + R"({"extend_len": 1}})"), "field 'per_req_info': expected an array");
  EXPECT_EQ(Message(prefill + R"([{"extend_len": 1}, 7]})"),
            "field 'per_req_info[1]': expected an object");
  EXPECT_EQ(Message(prefill + R"([{"total_len": 4}]})"),
            "field 'per_req_info[0].extend_len': missing");
  EXPECT_EQ(Message(prefill + R"([{"extend_len": "4"}]})"),
            "field 'per_req_info[0].extend_len': expected an integer");
  EXPECT_EQ(Message(prefill + R"([{"extend_len": -4}]})"),
            "field 'per_req_info[0].extend_len': must not be negative, got -4");
  const RecordError shorter = ParseError(prefill + R"([{"extend_len": 1}, {"extend_len": 5, )"
                                                   R"("total_len": 3}]})");
  EXPECT_EQ(shorter.message,
            "field 'per_req_info[1].total_len': must be at least extend_len, "
            "got 3 < 5");
  EXPECT_EQ(shorter.reason, "field 'per_req_info[].total_len': must be at least extend_len");
}

}  // namespace
}  // namespace moecap::records
