// Tests of the generic YAML <-> protobuf conversion (common/plan/yaml_proto.h) on API messages:
// type checks, enums, maps, oneofs, the shorthands, error paths and the YAML round trip.
#include "common/plan/yaml_proto.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "google/protobuf/util/message_differencer.h"
#include "moecap/v1/agent.pb.h"
#include "moecap/v1/plan.pb.h"

namespace moecap {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

absl::Status Parse(const std::string& yaml, google::protobuf::Message* msg) {
  return ParseYamlToMessage(yaml, "plan.yaml", YamlProtoOptions{}, msg);
}

std::string ParseError(const std::string& yaml) {
  v1::Plan plan;
  absl::Status s = Parse(yaml, &plan);
  EXPECT_FALSE(s.ok()) << "parsed: " << yaml;
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  return std::string(s.message());
}

TEST(YamlProtoTest, ScalarsNestedMessagesAndLists) {
  v1::Plan plan;
  ASSERT_TRUE(Parse(R"(
name: p
priority: -3
workload:
  batch_sizes: [1, 8, 32]
  prompt_len: 128
  check: yes
  seed: 18446744073709551615
  timeouts: {point_seconds: 1.5e2}
)",
                    &plan)
                  .ok());
  EXPECT_EQ(plan.name(), "p");
  EXPECT_EQ(plan.priority(), -3);
  EXPECT_THAT(plan.workload().batch_sizes(), ::testing::ElementsAre(1, 8, 32));
  EXPECT_TRUE(plan.workload().has_prompt_len());
  EXPECT_EQ(plan.workload().prompt_len(), 128);
  EXPECT_TRUE(plan.workload().check());
  EXPECT_EQ(plan.workload().seed(), 18446744073709551615ull);  // uint64 max
  EXPECT_DOUBLE_EQ(plan.workload().timeouts().point_seconds(), 150);
  EXPECT_FALSE(plan.workload().has_iterations());  // absent stays absent (defaults come later)
}

TEST(YamlProtoTest, KeysAcceptDashesAndCase) {
  v1::Plan plan;
  ASSERT_TRUE(Parse("workload: {Batch-Sizes: [2], PROMPT_LEN: 3}", &plan).ok());
  EXPECT_THAT(plan.workload().batch_sizes(), ::testing::ElementsAre(2));
  EXPECT_EQ(plan.workload().prompt_len(), 3);
}

TEST(YamlProtoTest, ErrorsNameTheFullPath) {
  EXPECT_EQ(ParseError("workload:\n  batch_sizes: [1, 8, x]\n"),
            "plan.yaml: field 'workload.batch_sizes[2]': expected an integer, got 'x'");
  EXPECT_EQ(ParseError("workload:\n  batchsize: [1]\n"),
            "plan.yaml: field 'workload.batchsize': unknown field (did you mean 'batch_sizes'?)");
  EXPECT_EQ(ParseError("workload: [1, 2]\n"),
            "plan.yaml: field 'workload': expected a mapping, got a list");
  EXPECT_EQ(ParseError("workload: {check: maybe}\n"),
            "plan.yaml: field 'workload.check': expected true or false, got 'maybe'");
  EXPECT_EQ(ParseError("workload: {warmup: 3000000000}\n"),
            "plan.yaml: field 'workload.warmup': out of range for a 32-bit integer, got "
            "'3000000000'");
  EXPECT_EQ(ParseError("workload: {seed: -1}\n"),
            "plan.yaml: field 'workload.seed': expected a non-negative integer, got '-1'");
  EXPECT_EQ(ParseError("workload: {prompt_len: 1.5}\n"),
            "plan.yaml: field 'workload.prompt_len': expected an integer, got '1.5'");
  EXPECT_EQ(ParseError("workload:\n  prompt_len:\n"),
            "plan.yaml: field 'workload.prompt_len': expected an integer, got nothing");
  EXPECT_EQ(ParseError("workload: {timeouts: {point_seconds: .inf}}\n"),
            "plan.yaml: field 'workload.timeouts.point_seconds': expected a number, got '.inf'");
  EXPECT_EQ(ParseError("name: [a]\n"), "plan.yaml: field 'name': expected a string, got a list");
  EXPECT_EQ(ParseError("pricing: {usd_per_kwh: 0.1}\npricing: {usd_per_kwh: 0.2}\n"),
            "plan.yaml: field 'pricing': given twice");
  EXPECT_THAT(ParseError("zzzzzzzz: 1\n"),
              HasSubstr("field 'zzzzzzzz': unknown field (known fields: name, description, model"));
}

TEST(YamlProtoTest, SyntaxErrorsGiveTheLine) {
  // The badly indented key is on line 4.
  EXPECT_THAT(ParseError("name: a\nworkload:\n  prompt_len: 5\n iterations: 3\n"),
              MatchesRegex("plan\\.yaml:4: YAML syntax error: .*"));
  EXPECT_EQ(ParseError(""), "plan.yaml: empty document (expected a mapping)");
  EXPECT_EQ(ParseError("- a\n- b\n"), "plan.yaml: expected a mapping at the top level, got a list");
}

TEST(YamlProtoTest, EnumsByNameCaseInsensitiveWithOrWithoutPrefix) {
  v1::Plan plan;
  ASSERT_TRUE(Parse(R"(
hardware: {backend: CUDA, peak_source: Peak-Source-Measured}
workload: {dtype: DTYPE_BF16, phases: [Decode, phase_prefill]}
)",
                    &plan)
                  .ok());
  EXPECT_EQ(plan.hardware().backend(), v1::BACKEND_CUDA);
  EXPECT_EQ(plan.hardware().peak_source(), v1::PEAK_SOURCE_MEASURED);
  EXPECT_EQ(plan.workload().dtype(), v1::DTYPE_BF16);
  EXPECT_THAT(plan.workload().phases(),
              ::testing::ElementsAre(v1::PHASE_DECODE, v1::PHASE_PREFILL));

  EXPECT_EQ(ParseError("workload: {dtype: bf17}\n"),
            "plan.yaml: field 'workload.dtype': expected one of fp32, bf16, fp16, fp8, "
            "fp8_block128, int8, int4_g128, mxfp4, nvfp4, got 'bf17'");
  // UNSPECIFIED is the "not given" marker, never a value a user writes.
  EXPECT_EQ(ParseError("workload: {dtype: unspecified}\n"),
            "plan.yaml: field 'workload.dtype': expected one of fp32, bf16, fp16, fp8, "
            "fp8_block128, int8, int4_g128, mxfp4, nvfp4, got 'unspecified'");
  EXPECT_EQ(
      ParseError("workload: {phases: [prefill, {a: 1}]}\n"),
      "plan.yaml: field 'workload.phases[1]': expected one of prefill, decode, got a mapping");
}

TEST(YamlProtoTest, EnumAliasHook) {
  YamlProtoOptions options;
  options.enum_alias = [](const google::protobuf::EnumDescriptor& e,
                          absl::string_view text) -> std::optional<int> {
    if (&e == v1::Dtype_descriptor() && text == "half") return v1::DTYPE_FP16;
    return std::nullopt;
  };
  v1::Plan plan;
  ASSERT_TRUE(ParseYamlToMessage("workload: {dtype: half}", "p", options, &plan).ok());
  EXPECT_EQ(plan.workload().dtype(), v1::DTYPE_FP16);
}

TEST(YamlProtoTest, SingleValueIsAOneElementList) {
  v1::Plan plan;
  ASSERT_TRUE(Parse("workload: {phases: decode, batch_sizes: 8}", &plan).ok());
  EXPECT_THAT(plan.workload().phases(), ::testing::ElementsAre(v1::PHASE_DECODE));
  EXPECT_THAT(plan.workload().batch_sizes(), ::testing::ElementsAre(8));
  EXPECT_EQ(ParseError("workload:\n  batch_sizes:\n"),
            "plan.yaml: field 'workload.batch_sizes': expected a list, got nothing");
}

TEST(YamlProtoTest, Maps) {
  v1::Plan plan;
  ASSERT_TRUE(Parse("labels: {team: inference, run: 3, 'with space': 'x y'}", &plan).ok());
  ASSERT_EQ(plan.labels().size(), 3u);
  EXPECT_EQ(plan.labels().at("team"), "inference");
  EXPECT_EQ(plan.labels().at("run"), "3");
  EXPECT_EQ(plan.labels().at("with space"), "x y");
  EXPECT_EQ(ParseError("labels: {team: [a]}\n"),
            "plan.yaml: field 'labels.team': expected a string, got a list");
  EXPECT_EQ(ParseError("labels: [a]\n"),
            "plan.yaml: field 'labels': expected a mapping, got a list");
  EXPECT_EQ(ParseError("labels: {a: 1, a: 2}\n"), "plan.yaml: field 'labels.a': given twice");

  // A map with a non-string value type (agent labels use the same code path).
  v1::AgentInfo agent;
  ASSERT_TRUE(Parse("labels: {zone: a}\ndata_plane_port_min: 5000\n", &agent).ok());
  EXPECT_EQ(agent.labels().at("zone"), "a");
}

TEST(YamlProtoTest, OneofsAndTheirShorthands) {
  v1::Plan plan;
  ASSERT_TRUE(
      Parse("workload: {routing: {zipf: {exponent: 1.2, shuffle_experts: true}}}", &plan).ok());
  ASSERT_TRUE(plan.workload().routing().has_zipf());
  EXPECT_DOUBLE_EQ(plan.workload().routing().zipf().exponent(), 1.2);
  EXPECT_TRUE(plan.workload().routing().zipf().shuffle_experts());

  // A member name alone selects it, empty.
  ASSERT_TRUE(Parse("workload: {routing: uniform}", &plan).ok());
  EXPECT_TRUE(plan.workload().routing().has_uniform());
  // So does a member with an empty value.
  ASSERT_TRUE(Parse("workload:\n  routing:\n    gate:\n", &plan).ok());
  EXPECT_TRUE(plan.workload().routing().has_gate());

  EXPECT_EQ(ParseError("workload:\n  routing:\n    uniform: {}\n    zipf: {exponent: 1}\n"),
            "plan.yaml: field 'workload.routing.zipf': 'uniform' and 'zipf' are alternatives "
            "(kind); give only one");
  EXPECT_EQ(ParseError("workload: {routing: bogus}\n"),
            "plan.yaml: field 'workload.routing': expected a mapping or one of gate, uniform, "
            "zipf, histogram, got 'bogus'");
}

TEST(YamlProtoTest, ListShorthandForSingleListMessages) {
  v1::Plan plan;
  ASSERT_TRUE(Parse(R"(
sweeps:
  - prompt_len: [128, 512]
  - dtype: [fp32, bf16]
  - layers: {values: [1, 2]}
workload:
  routing:
    histogram:
      layers:
        - [1, 2, 3]
        - {weights: [4, 5, 6]}
)",
                    &plan)
                  .ok());
  ASSERT_EQ(plan.sweeps_size(), 3);
  EXPECT_THAT(plan.sweeps(0).prompt_len().values(), ::testing::ElementsAre(128, 512));
  EXPECT_THAT(plan.sweeps(1).dtype().values(),
              ::testing::ElementsAre(v1::DTYPE_FP32, v1::DTYPE_BF16));
  EXPECT_THAT(plan.sweeps(2).layers().values(), ::testing::ElementsAre(1, 2));
  const auto& h = plan.workload().routing().histogram();
  ASSERT_EQ(h.layers_size(), 2);
  EXPECT_THAT(h.layers(1).weights(), ::testing::ElementsAre(4, 5, 6));

  // The short form's paths index the message directly.
  EXPECT_EQ(ParseError("sweeps:\n  - prompt_len: [128, big]\n"),
            "plan.yaml: field 'sweeps[0].prompt_len[1]': expected an integer, got 'big'");
  EXPECT_EQ(ParseError("sweeps:\n  - prompt_len: [1]\n    dtype: [fp32]\n"),
            "plan.yaml: field 'sweeps[0].dtype': 'prompt_len' and 'dtype' are alternatives "
            "(axis); give only one");
}

TEST(YamlProtoTest, ByteSizes) {
  v1::Plan plan;
  ASSERT_TRUE(Parse("hardware: {min_device_memory_bytes: 80GiB}", &plan).ok());
  EXPECT_EQ(plan.hardware().min_device_memory_bytes(), 80ull << 30);  // 85899345920
  ASSERT_TRUE(Parse("hardware: {min_device_memory_bytes: 1.5 GB}", &plan).ok());
  EXPECT_EQ(plan.hardware().min_device_memory_bytes(), 1500000000ull);
  ASSERT_TRUE(Parse("hardware: {min_device_memory_bytes: 12}", &plan).ok());
  EXPECT_EQ(plan.hardware().min_device_memory_bytes(), 12ull);
  EXPECT_EQ(ParseError("hardware: {min_device_memory_bytes: 80 parsecs}\n"),
            "plan.yaml: field 'hardware.min_device_memory_bytes': expected a non-negative integer "
            "or a size like 80GiB, got '80 parsecs'");
  // Only *_bytes fields take units.
  EXPECT_EQ(ParseError("workload: {prompt_len: 1KiB}\n"),
            "plan.yaml: field 'workload.prompt_len': expected an integer, got '1KiB'");
}

TEST(YamlProtoTest, MessageToYamlRoundTrips) {
  v1::Plan plan;
  ASSERT_TRUE(Parse(R"(
name: "round: trip"
description: "two\nlines"
labels: {b: "2", a: "1"}
workload:
  phases: [decode]
  batch_sizes: [1, 2]
  prompt_len: 0
  dtype: fp8
  routing: {histogram: {layers: [[0.1, 0.2, 0.30000000000000004]]}}
  timeouts: {point_seconds: 1e-7}
sweeps:
  - routing: [uniform, {zipf: {exponent: 2}}]
)",
                    &plan)
                  .ok());
  const std::string yaml = MessageToYaml(plan);
  v1::Plan again;
  ASSERT_TRUE(Parse(yaml, &again).ok()) << yaml;
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(plan, again)) << yaml;
  // Presence survives: an explicit 0 in an optional field is written out.
  EXPECT_TRUE(again.workload().has_prompt_len());
  // Enums are written by their short names; the list shorthand is used.
  EXPECT_THAT(yaml, HasSubstr("dtype: fp8"));
  EXPECT_THAT(yaml, HasSubstr("phases: [decode]"));
}

TEST(YamlProtoTest, EnumValueShortName) {
  EXPECT_EQ(EnumValueShortName(*v1::Dtype_descriptor()->FindValueByNumber(v1::DTYPE_BF16)), "bf16");
  EXPECT_EQ(EnumValueShortName(
                *v1::AttentionKind_descriptor()->FindValueByNumber(v1::ATTENTION_KIND_MLA)),
            "mla");
}

}  // namespace
}  // namespace moecap
