// MoE-CAP's figures from records, ported from Auto-CAP/MoE-CAP e9e0d88 (file:line in FORMATS.md
// §7). Its sizes are in units of 1e12 parameters and its peaks in TB/s and TFLOP/s; the ratios are
// the same in plain units, which is what is computed here.
#include "common/records/moecap_convention.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/cost.h"
#include "common/records/line_reader.h"
#include "common/records/pass_record.h"

namespace moecap::records {
namespace {

constexpr std::array<absl::string_view, 7> kSections = {"float32", "float16", "bfloat16", "int8",
                                                        "fp8",     "fp4",     "int4"};

// hardware_utils.py MEM_BW_DICT and PEAK_FLOPS_DICT, as they are (an absent entry is 0).
constexpr MoecapGpu kMoecapGpus[] = {
    {"NVIDIA-A100-PCIe-80GB", 1935e9, {312e12, 624e12, 624e12, 1248e12, 1248e12, 1248e12, 2496e12}},
    {"NVIDIA-A100-PCIe-40GB", 1555e9, {312e12, 624e12, 624e12, 1248e12, 1248e12, 0, 2496e12}},
    {"NVIDIA-A100-SXM4-80GB", 2039e9, {312e12, 624e12, 624e12, 1248e12, 1248e12, 1248e12, 2496e12}},
    {"NVIDIA-A100-SXM4-40GB", 1555e9, {312e12, 624e12, 624e12, 1248e12, 1248e12, 1248e12, 2496e12}},
    {"NVIDIA-H100-PCIe-80GB",
     2039e9,
     {756e12, 1513e12, 1513e12, 3026e12, 3026e12, 3026e12, 3026e12}},
    {"NVIDIA-RTX-A5000-24GB", 768e9, {222.2e12, 222.2e12, 222.2e12, 222.2e12, 0, 0, 222.2e12}},
    {"NVIDIA-RTX-A6000-48GB", 768e9, {309.7e12, 309.7e12, 309.7e12, 309.7e12, 0, 0, 309.7e12}},
    {"NVIDIA-H100-HBM3-80GB",
     3350e9,
     {989e12, 1979e12, 1979e12, 3958e12, 3958e12, 3958e12, 3958e12}},
    {"NVIDIA-H200-141GB", 4800e9, {989e12, 1979e12, 1979e12, 3958e12, 3958e12, 3958e12, 3958e12}},
    {"NVIDIA-H200-140GB", 4800e9, {989e12, 1979e12, 1979e12, 3958e12, 3958e12, 3958e12, 3958e12}},
    {"NVIDIA-B200-183GB", 8000e9, {80e12, 2250e12, 2250e12, 4500e12, 4500e12, 9000e12, 9000e12}},
    {"NVIDIA-GH200-96GB", 4096e9, {989e12, 1979e12, 1979e12, 3958e12, 3958e12, 3958e12, 3958e12}},
    {"NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition-96GB",
     1597e9,
     {500e12, 1000e12, 1000e12, 2000e12, 2000e12, 4000e12, 4000e12}},
    {"NVIDIA-GB10-UnknownGB", 273e9, {31e12, 250e12, 250e12, 500e12, 500e12, 1000e12, 1000e12}},
    {"NVIDIA-GB10-128GB", 273e9, {31e12, 250e12, 250e12, 500e12, 500e12, 1000e12, 1000e12}},
    {"AMD-Instinct-MI355X-288GB",
     8000e9,
     {78.6e12, 2500e12, 2500e12, 5050e12, 5050e12, 10100e12, 10100e12}},
    {"AMD-Instinct-MI300X-192GB", 5300e9, {81.7e12, 1307e12, 1307e12, 2614e12, 2614e12, 0, 0}},
    {"AMD-Instinct-MI325X-256GB", 6000e9, {81.7e12, 1307e12, 1307e12, 2614e12, 2614e12, 0, 0}},
    {"AMD-Instinct-MI250X-128GB", 3276e9, {47.9e12, 383e12, 383e12, 383e12, 0, 0, 383e12}},
};

// cost_utils.py GPU_COST_DICT and GPU_TDP_DICT (its formula: common/cost.h).
struct MoecapGpuCost {
  absl::string_view key;
  double usd;
  double tdp_w;
};
constexpr MoecapGpuCost kMoecapCosts[] = {
    {"NVIDIA-A100-PCIe-40GB", 9000, 250},
    {"NVIDIA-A100-PCIe-80GB", 19000, 300},
    {"NVIDIA-A100-SXM4-40GB", 12000, 400},
    {"NVIDIA-A100-SXM4-80GB", 19000, 400},
    {"NVIDIA-H100-PCIe-80GB", 28000, 350},
    {"NVIDIA-H200-141GB", 35000, 350},
    {"NVIDIA-H100-80GB-HBM3", 38000, 700},
    {"NVIDIA-RTX-A5000-24GB", 2400, 230},
    {"NVIDIA-RTX-A6000-48GB", 4500, 300},
    {"NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition-96GB", 8000, 600},
    {"NVIDIA-GB10-UnknownGB", 3999, 140},
    {"NVIDIA-GB10-128GB", 3999, 140},
};
// Per-point sums of one way of counting; a phase's figure is a mean or a ratio of them.
struct Sums {
  int64_t points = 0;
  double mbu_rate = 0;  // Σ bytes_i / t_i
  double mfu_rate = 0;  // Σ flops_i / t_i
  double bytes = 0;     // Σ bytes_i
  double flops = 0;     // Σ flops_i
  double seconds = 0;   // Σ t_i
  void Add(double b, double f, double t) {
    ++points;
    mbu_rate += b / t;
    mfu_rate += f / t;
    bytes += b;
    flops += f;
    seconds += t;
  }
  void Add(const Sums& o) {
    points += o.points;
    mbu_rate += o.mbu_rate;
    mfu_rate += o.mfu_rate;
    bytes += o.bytes;
    flops += o.flops;
    seconds += o.seconds;
  }
};

// The ways of counting a point: MoE-CAP's, and MoE-CAP's with one per-pass term done moecap's way.
enum Way { kTheirs, kPrecisionPerPart, kWeightsCounted, kKvContext, kLinearFlops, kScoreFlops };
constexpr int kNumWays = 6;
struct WayName {
  absl::string_view name;
  absl::string_view explanation;
};
constexpr std::array<WayName, kNumWays> kWayNames = {{
    {"", ""},
    {"precision per part",
     "moecap reads experts, attention, LM head and KV cache each at its own bytes; MoE-CAP one "
     "bytes-per-parameter for all"},
    {"weights counted",
     "moecap adds the router and LM head, counts shared experts as the model has them and dense "
     "and MoE layers as they are"},
    {"KV context",
     "moecap rebuilds the context where the recorder wrote the scheduled-token count, and "
     "bounds sliding-window layers"},
    {"S-MFU linear FLOPs",
     "moecap: k experts per token, the router, the LM head for completing sequences; MoE-CAP: "
     "one expert per token"},
    {"S-MFU attention FLOPs",
     "moecap: per query-key pair (MLA decode absorbed); MoE-CAP: the pass's summed context times "
     "its tokens"},
}};

// One point's terms as MoE-CAP counts them, in bytes (at its one precision) and FLOPs.
struct PointTerms {
  double attention_and_dense = 0;
  double experts_and_shared = 0;
  double kv = 0;
  double linear_flops = 0;
  double score_flops = 0;
};

PointTerms TheirTerms(const MoecapModelSizes& s, double precision, double ctx, double activation,
                      double tokens) {
  PointTerms t;
  t.attention_and_dense = (s.layers * s.attention + s.dense_layers * s.dense_ffn) * precision;
  t.experts_and_shared =
      (s.moe_layers * activation * s.expert + s.shared_layers * s.shared) * precision;
  t.kv = ctx * s.kv_per_token * precision;
  t.linear_flops = 2 *
                   (s.layers * s.attention + s.moe_layers * s.expert + s.shared_layers * s.shared +
                    s.dense_layers * s.dense_ffn) *
                   tokens;
  // Its S-MFU numerator: (parameters + attention_score)·2·tokens/t, the score from the context.
  t.score_flops = 2 * ctx * s.score_per_token * tokens;
  return t;
}

double PartBytes(Term term, const Precision& p) {
  switch (term) {
    case Term::kSharedExperts:
    case Term::kRoutedExperts:
      return p.expert_bytes;
    case Term::kLmHead:
      return p.lm_head_bytes;
    case Term::kKvCache:
      return p.kv_bytes;
    default:
      return p.attention_bytes;
  }
}

constexpr std::array<Term, 6> kWeightTerms = {Term::kAttention,     Term::kRouter,
                                              Term::kDenseFfn,      Term::kSharedExperts,
                                              Term::kRoutedExperts, Term::kLmHead};

// Bytes and FLOPs of a point counted `way`; `ours` is moecap's count of the same record when it
// counted one (the per-pass swaps keep MoE-CAP's terms otherwise).
void Count(Way way, const PointTerms& t, double precision, const Precision& our_precision,
           const Counts* ours, double* bytes, double* flops) {
  double attention_and_dense = t.attention_and_dense, experts = t.experts_and_shared, kv = t.kv;
  double linear = t.linear_flops, score = t.score_flops;
  switch (way) {
    case kTheirs:
      break;
    case kPrecisionPerPart:
      attention_and_dense *= our_precision.attention_bytes / precision;
      experts *= our_precision.expert_bytes / precision;
      kv *= our_precision.kv_bytes / precision;
      break;
    case kWeightsCounted:
      if (ours != nullptr) {
        attention_and_dense = 0;
        experts = 0;
        for (Term term : kWeightTerms) {
          attention_and_dense += (*ours)[term].bytes / PartBytes(term, our_precision) * precision;
        }
      }
      break;
    case kKvContext:
      if (ours != nullptr) {
        kv = (*ours)[Term::kKvCache].bytes / our_precision.kv_bytes * precision;
      }
      break;
    case kLinearFlops:
      if (ours != nullptr) {
        linear = 0;
        for (Term term : kWeightTerms) linear += (*ours)[term].flops;
      }
      break;
    case kScoreFlops:
      if (ours != nullptr) score = (*ours)[Term::kAttentionScores].flops;
      break;
  }
  *bytes = attention_and_dense + experts + kv;
  *flops = linear + score;
}

struct PhaseSums {
  std::array<Sums, kNumWays> ways;
  double latency_sum = 0;  // Σ t over the points, for its ttft / tpot
  void Add(const PointTerms& t, double seconds, double precision, const Precision& our_precision,
           const Counts* ours) {
    for (int w = 0; w < kNumWays; ++w) {
      double b = 0, f = 0;
      Count(static_cast<Way>(w), t, precision, our_precision, ours, &b, &f);
      ways[w].Add(b, f, seconds);
    }
    latency_sum += seconds;
  }
  void Add(const PhaseSums& o) {
    for (int w = 0; w < kNumWays; ++w) ways[w].Add(o.ways[w]);
    latency_sum += o.latency_sum;
  }
};

// The per-request prefill accumulation of continuous_batching_utils.py (its req_prefill_accum).
struct RequestAccumulator {
  double latency_sum = 0;
  int64_t total_tokens = 0;
  int64_t extend_sum = 0;
  double last_activation = 0;
  bool completed = false;
};

std::string RequestKey(const RequestInfo& info) {
  // req_info.get("req_id", req_info.get("req_pool_idx")): the id, else the slot, else None.
  if (!info.req_id.empty()) return absl::StrCat("id:", info.req_id);
  if (info.pool_index.has_value()) return absl::StrCat("pool:", *info.pool_index);
  return "none";
}

std::string Number(double v) { return absl::StrFormat("%.6g", v); }

// GPU names are ASCII; other bytes (not always valid UTF-8 in a damaged file) become '?', so the
// name can go into JSON and a message.
std::string AsciiOnly(absl::string_view name) {
  std::string out(name);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) >= 0x80 || static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  return out;
}

}  // namespace

const MoecapGpu* FindMoecapGpu(absl::string_view key) {
  for (const MoecapGpu& gpu : kMoecapGpus) {
    if (gpu.key == key) return &gpu;
  }
  return nullptr;
}

double MoecapPeakFlops(const MoecapGpu& gpu, absl::string_view section) {
  for (size_t i = 0; i < kSections.size(); ++i) {
    if (kSections[i] == section) return gpu.peak_flops[i];
  }
  return 0;
}

std::optional<double> MoecapSystemCostUsd(absl::string_view gpu_key, int64_t gpus, double seconds) {
  for (const MoecapGpuCost& c : kMoecapCosts) {
    if (c.key != gpu_key) continue;
    return MoeCapSystemCostUsd(c.usd, c.tdp_w, static_cast<double>(gpus), seconds / 3600);
  }
  return std::nullopt;
}

absl::string_view MoecapFamilyName(MoecapFamily family) {
  switch (family) {
    case MoecapFamily::kQwen:
      return "qwen";
    case MoecapFamily::kQwen3:
      return "qwen3";
    case MoecapFamily::kDeepSeek:
      return "deepseek";
    case MoecapFamily::kDefault:
      break;
  }
  return "default";
}

MoecapModelSizes MoecapSizesOf(const ModelSpec& m) {
  MoecapModelSizes s;
  s.model_id = m.display_name.empty() ? m.name : m.display_name;
  const std::string& id = s.model_id;
  // basic_utils.py: "Qwen" without "Qwen3", then "Qwen3", then "DeepSeek", case-sensitive.
  if (absl::StrContains(id, "Qwen") && !absl::StrContains(id, "Qwen3")) {
    s.family = MoecapFamily::kQwen;
  } else if (absl::StrContains(id, "Qwen3")) {
    s.family = MoecapFamily::kQwen3;
  } else if (absl::StrContains(id, "DeepSeek")) {
    s.family = MoecapFamily::kDeepSeek;
  }
  const double d = static_cast<double>(m.hidden_size);
  const double layers = static_cast<double>(m.layers);
  s.layers = layers;
  s.expert = 3 * d * static_cast<double>(m.expert_ffn_size);
  if (m.attention == AttentionKind::kMla && s.family == MoecapFamily::kDeepSeek) {
    const MlaAttention& a = m.mla;
    const double h = static_cast<double>(a.heads);
    const double q_head = static_cast<double>(a.qk_rope_head_dim + a.qk_nope_head_dim);
    const double kv_lora = static_cast<double>(a.kv_lora_rank);
    const double rope = static_cast<double>(a.qk_rope_head_dim);
    const double v = static_cast<double>(a.v_head_dim);
    // deepseek_utils.py _calculate_deepseek_attention_size.
    const double base = d * (kv_lora + rope) + kv_lora * h * (q_head - rope + v) + v * h * d;
    const double q = a.q_lora_rank > 0 ? d * static_cast<double>(a.q_lora_rank) +
                                             static_cast<double>(a.q_lora_rank) * h * q_head
                                       : d * h * q_head;
    s.attention = base + q;
    s.kv_per_token = layers * (kv_lora + rope);
    // _calculate_attention_score: ctx·k_size + ctx·v_size, k and v summed over the layers.
    s.score_per_token = layers * h * q_head + layers * h * v;
  } else {
    double h = 0, kv = 0, dh = 0;
    if (m.attention == AttentionKind::kMla) {
      // An MLA model outside its DeepSeek rule (Kimi-K2) takes the default formulas with the
      // config's num_key_value_heads and hidden_size // heads; those configs set the former to
      // the head count and have no head_dim.
      h = static_cast<double>(m.mla.heads);
      kv = h;
      dh = std::floor(d / h);
      s.assumptions.push_back(
          absl::StrCat("MLA model outside MoE-CAP's DeepSeek rule: its default GQA formulas with "
                       "num_key_value_heads = ",
                       Number(kv), " and head_dim = hidden_size // heads = ", Number(dh),
                       " (as the Kimi-K2 and DeepSeek configs give them)"));
    } else {
      h = static_cast<double>(m.gqa.heads);
      kv = static_cast<double>(m.gqa.kv_heads);
      dh = static_cast<double>(m.gqa.head_dim);
    }
    s.attention = d * (h * dh + kv * dh * 2) + h * dh * d;
    s.kv_per_token = 2 * layers * dh * kv;
    s.score_per_token = 2 * layers * h * dh;  // _calculate_attention_score: (ctx·L·n_h·d_h)·2
  }
  const double moe_layers = static_cast<double>(m.MoeLayers());
  const double dense_layers = static_cast<double>(m.dense_layers);
  switch (s.family) {
    case MoecapFamily::kDefault:
      s.moe_layers = layers;  // every layer an MoE layer; no shared or dense FFN
      break;
    case MoecapFamily::kQwen:
      s.moe_layers = layers;
      s.shared_layers = layers;
      s.shared = 3 * d * static_cast<double>(m.shared_experts * m.shared_expert_ffn_size);
      break;
    case MoecapFamily::kQwen3:
      s.moe_layers = moe_layers;
      s.dense_layers = dense_layers;
      s.dense_ffn = 3 * d * static_cast<double>(m.dense_ffn_size);
      break;
    case MoecapFamily::kDeepSeek:
      // deepseek_utils.py: two experts' worth of shared experts whatever n_shared_experts says.
      s.moe_layers = moe_layers;
      s.shared_layers = moe_layers;
      s.shared = 2 * s.expert;
      s.dense_layers = dense_layers;
      s.dense_ffn = 3 * d * static_cast<double>(m.dense_ffn_size);
      break;
  }
  return s;
}

MoecapPrecision MoecapPrecisionOf(const ModelSpec& model, Dtype run_dtype) {
  // An explicit non-bf16 precision wins; else the checkpoint's quantization (moecap's native
  // expert precision stands for its quantization_config); else bfloat16.
  Dtype d = run_dtype;
  if (run_dtype == Dtype::kBf16 && model.expert_dtype.has_value()) d = *model.expert_dtype;
  MoecapPrecision p;
  switch (d) {
    case Dtype::kFp32:
      p = {"float32", "float32", 4};
      break;
    case Dtype::kFp16:
      p = {"float16", "float16", 2};
      break;
    case Dtype::kBf16:
      p = {"bfloat16", "bfloat16", 2};
      break;
    case Dtype::kFp8:
    case Dtype::kFp8Block128:
      p = {"fp8", "fp8", 1};
      break;
    case Dtype::kInt8:
      p = {"int8", "int8", 1};
      break;
    case Dtype::kInt4Group128:
      p = {"int4", "int4", 0.5};
      break;
    case Dtype::kMxfp4:
      p = {"mxfp4", "fp4", 0.5};  // hardware_utils.py PRECISION_ALIASES
      break;
    case Dtype::kNvfp4:
      p = {"nvfp4", "nvfp4", 0.5};  // no section in its table: a peak of 0
      break;
  }
  return p;
}

absl::StatusOr<MoecapFigures> MoecapFromRecords(std::istream& in, const MoecapOptions& options,
                                                const RunContext& ours) {
  MoecapFigures out;
  out.sizes = MoecapSizesOf(options.model);
  out.precision = MoecapPrecisionOf(options.model, options.dtype);
  const double precision = out.precision.bytes;
  const Precision our_precision =
      BytesOf(ResolvePrecisions(options.model, options.dtype, options.precision));

  RequestTracker tracker;
  PassRecord record;
  PhaseSums decode, prefill_records, prefill_records_without_info;
  // Its decode points less the decode halves of split steps (which moecap merges into one pass).
  PhaseSums decode_unsplit;
  PassRecord previous_prefill;
  bool previous_is_prefill = false;
  std::map<std::string, RequestAccumulator> requests;
  bool any_prefill_info = false;
  bool first = true;
  std::optional<std::string> first_gpu;
  std::optional<int64_t> first_gpu_num;

  LineReader reader(in);
  absl::string_view line;
  while (reader.Next(&line)) {
    if (reader.line_number() == 1 && absl::StartsWith(line, "\xEF\xBB\xBF")) line.remove_prefix(3);
    if (line.find_first_not_of(" \t\r") == absl::string_view::npos) continue;
    RecordError error;
    if (!ParsePassRecord(line, &record, &error)) {
      if (options.skip_bad || reader.last_line_unterminated()) continue;
      return absl::InvalidArgumentError(
          absl::StrCat(options.origin, ":", reader.line_number(), ": ", error.message));
    }
    ++out.records;
    out.run_seconds += record.latency_s;
    const bool split_half = previous_is_prefill && record.forward_mode != ForwardMode::kPrefill &&
                            IsSecondHalfOfSplitStep(previous_prefill, record);
    previous_is_prefill = record.forward_mode == ForwardMode::kPrefill;
    if (previous_is_prefill) previous_prefill = record;
    if (first) {
      first = false;
      if (record.has_gpu_raw_type) first_gpu = record.gpu_raw_type;
      first_gpu_num = record.gpu_num;
    }
    // moecap's count of the same record, unmerged, for the per-pass comparisons.
    CountedPass counted;
    const bool have_ours = CountPassRecord(options.model, our_precision, record, options.counting,
                                           &tracker, &counted, &error) == PassOutcome::kCounted;
    const Counts* our_counts = have_ours ? &counted.counts : nullptr;

    if (!record.expert_activation.has_value() || *record.expert_activation < 0) {
      ++out.skipped_no_activation;
      continue;
    }
    const double activation = *record.expert_activation;
    const bool prefill = record.forward_mode == ForwardMode::kPrefill;
    const double ctx = static_cast<double>(record.seq_lens_sum.value_or(0));
    if (prefill && ctx <= 10) {  // its warm-up / health-check probe skip
      ++out.skipped_warmup;
      continue;
    }
    if (!prefill) {  // every mode other than "prefill" is decode to it
      const double tokens = static_cast<double>(record.batch_size);
      const PointTerms terms = TheirTerms(out.sizes, precision, ctx, activation, tokens);
      decode.Add(terms, record.latency_s, precision, our_precision, our_counts);
      if (!split_half) {
        decode_unsplit.Add(terms, record.latency_s, precision, our_precision, our_counts);
      }
      continue;
    }
    const PointTerms terms = TheirTerms(out.sizes, precision, ctx, activation, ctx);
    prefill_records.Add(terms, record.latency_s, precision, our_precision, our_counts);
    if (record.requests.empty()) {
      prefill_records_without_info.Add(terms, record.latency_s, precision, our_precision,
                                       our_counts);
      continue;
    }
    any_prefill_info = true;
    for (const RequestInfo& info : record.requests) {
      RequestAccumulator& acc = requests[RequestKey(info)];
      acc.latency_sum += record.latency_s;
      acc.extend_sum += info.extend_len;
      if (info.total_len.has_value()) acc.total_tokens = *info.total_len;
      acc.last_activation = activation;
      if (info.is_last_chunk.value_or(false)) acc.completed = true;
    }
  }
  if (!reader.status().ok()) {
    return absl::Status(reader.status().code(),
                        absl::StrCat(options.origin, ": ", reader.status().message()));
  }

  // Its has_per_req_info is about the records it keeps; a prefill with info that it skipped
  // (warm-up) does not count, as here.
  out.per_request_prefill = any_prefill_info;
  PhaseSums prefill;
  if (out.per_request_prefill) {
    prefill.Add(prefill_records_without_info);
    for (const auto& [key, acc] : requests) {
      if (!acc.completed) continue;
      const double ttft = acc.latency_sum;
      const double tokens =
          static_cast<double>(acc.total_tokens > 0 ? acc.total_tokens : acc.extend_sum);
      if (!(ttft > 0)) continue;
      prefill.Add(TheirTerms(out.sizes, precision, tokens, acc.last_activation, tokens), ttft,
                  precision, our_precision, nullptr);
    }
  } else {
    prefill = prefill_records;
  }

  // The first record's gpu_raw_type and gpu_num, as its runner takes them.
  if (first_gpu.has_value()) {
    out.gpu_key = AsciiOnly(*first_gpu);
    out.gpu_source = "gpu_raw_type of the first record";
  } else if (options.hardware.has_value()) {
    std::vector<std::string> names = {options.hardware->name};
    names.insert(names.end(), options.hardware->aliases.begin(), options.hardware->aliases.end());
    for (const std::string& name : names) {
      if (FindMoecapGpu(name) != nullptr) {
        out.gpu_key = name;
        out.gpu_source =
            absl::StrCat("--hardware ", options.hardware->name, " (the records name no GPU)");
        break;
      }
    }
    if (out.gpu_key.empty()) {
      out.notes.push_back(
          absl::StrCat("--hardware ", options.hardware->name, " has no name in MoE-CAP's tables"));
    }
  }
  if (first_gpu_num.has_value()) {
    out.gpus = *first_gpu_num;
  } else if (options.devices.has_value()) {
    out.gpus = *options.devices;
    out.notes.push_back(absl::StrCat("the records carry no gpu_num: MoE-CAP would take 1; --gpus ",
                                     out.gpus, " is used"));
  }

  const MoecapGpu* gpu = FindMoecapGpu(out.gpu_key);
  if (gpu != nullptr) {
    out.peak_bandwidth_bytes_s = gpu->bandwidth_bytes_s;
    out.peak_flops = MoecapPeakFlops(*gpu, out.precision.section);
  }
  out.cost_usd = MoecapSystemCostUsd(out.gpu_key, out.gpus, out.run_seconds);
  out.notes.push_back(absl::StrCat(
      "MoE-CAP's cost is a system cost over the client's makespan, which the records do not "
      "carry: the records' summed pass time (",
      Number(out.run_seconds), " s) stands in for it"));
  if (!out.cost_usd.has_value()) {
    out.notes.push_back(absl::StrCat("MoE-CAP gives no cost: '", out.gpu_key,
                                     "' is not a key of its GPU cost table"));
  }
  if (!(out.peak_bandwidth_bytes_s > 0) || !(out.peak_flops > 0)) {
    out.notes.push_back(absl::StrCat(
        "MoE-CAP gives no S-MBU/S-MFU: its tables have no ",
        !(out.peak_bandwidth_bytes_s > 0) ? "bandwidth" : "peak FLOP/s", " for '",
        out.gpu_key.empty() ? "(no GPU name)" : out.gpu_key, "'",
        out.peak_bandwidth_bytes_s > 0 ? absl::StrCat(" at ", out.precision.section) : "",
        " (it divides by zero, catches the error and drops the figures)"));
    return out;
  }

  const double g = static_cast<double>(out.gpus);
  const double bw = out.peak_bandwidth_bytes_s;
  const double pf = out.peak_flops / 2;  // every S-MFU of its divides by half its peak
  const double our_g = static_cast<double>(ours.devices);
  for (auto [sums, slot] : {std::pair{&prefill, &out.prefill}, std::pair{&decode, &out.decode}}) {
    const Sums& theirs = sums->ways[kTheirs];
    if (theirs.points == 0) continue;
    const double n = static_cast<double>(theirs.points);
    MoecapPhase phase;
    phase.points = theirs.points;
    phase.s_mbu = theirs.mbu_rate / n / (g * bw);
    phase.s_mfu = theirs.mfu_rate / n / (g * pf);
    phase.mean_latency_s = sums->latency_sum / n;
    if (ours.peak_bandwidth_bytes_s > 0 && ours.peak_flops > 0 && our_g > 0) {
      phase.variants.push_back(
          {"peaks and device count",
           "moecap: its catalog's dense peaks for the compute precision and its device count; "
           "MoE-CAP: its table, the FLOP/s halved",
           theirs.mbu_rate / n / (our_g * ours.peak_bandwidth_bytes_s),
           theirs.mfu_rate / n / (our_g * ours.peak_flops)});
    }
    phase.variants.push_back(
        {"time-weighted mean",
         "moecap: Σ bytes / (Σ time · G · BW); MoE-CAP: the plain mean of per-pass figures",
         theirs.bytes / (theirs.seconds * g * bw), theirs.flops / (theirs.seconds * g * pf)});
    for (int w = kTheirs + 1; w < kNumWays; ++w) {
      const Sums& s = sums->ways[w];
      phase.variants.push_back({std::string(kWayNames[w].name),
                                std::string(kWayNames[w].explanation), s.mbu_rate / n / (g * bw),
                                s.mfu_rate / n / (g * pf)});
    }
    *slot = std::move(phase);
  }
  // Two differences in which points it takes, where the records show them.
  auto plain_mean = [&](const Sums& s) {
    const double n = static_cast<double>(s.points);
    return std::pair{s.mbu_rate / n / (g * bw), s.mfu_rate / n / (g * pf)};
  };
  if (out.decode.has_value() && decode_unsplit.ways[kTheirs].points > 0 &&
      decode_unsplit.ways[kTheirs].points < decode.ways[kTheirs].points) {
    const auto [mbu, mfu] = plain_mean(decode_unsplit.ways[kTheirs]);
    out.decode->variants.push_back(
        {"split steps merged",
         "moecap merges a chunked-prefill step's decode half into one mixed pass; MoE-CAP counts "
         "it as a decode point with the whole step's latency",
         mbu, mfu});
  }
  if (out.prefill.has_value() && out.per_request_prefill &&
      prefill_records.ways[kTheirs].points > 0) {
    const auto [mbu, mfu] = plain_mean(prefill_records.ways[kTheirs]);
    out.prefill->variants.push_back(
        {"per-pass prefill points",
         "moecap counts each prefill pass once; MoE-CAP, with per_req_info, makes a point of each "
         "request, its TTFT the sum of its passes and each pass's weights charged to it",
         mbu, mfu});
  }
  return out;
}

namespace {

nlohmann::json Side(double s_mbu, double s_mfu) { return {{"s_mbu", s_mbu}, {"s_mfu", s_mfu}}; }

}  // namespace

nlohmann::json MoecapComparisonJson(const MoecapFigures& t, const RecordsSummary& ours) {
  nlohmann::json j;
  j["reference"] = "Auto-CAP/MoE-CAP e9e0d88 (moe_cap/utils/continuous_batching_utils.py)";
  j["gpu"] = t.gpu_key;
  j["gpu_source"] = t.gpu_source;
  j["gpus"] = t.gpus;
  j["model_id"] = t.sizes.model_id;
  j["formulas"] = MoecapFamilyName(t.sizes.family);
  j["used_dtype"] = t.precision.used_dtype;
  j["bytes_per_parameter"] = t.precision.bytes;
  j["peak_bandwidth_bytes_s"] = t.peak_bandwidth_bytes_s;
  j["peak_flops_table"] = t.peak_flops;
  j["per_request_prefill"] = t.per_request_prefill;
  j["records"] = t.records;
  j["skipped"] = {{"warmup_prefill", t.skipped_warmup},
                  {"no_expert_activation", t.skipped_no_activation}};
  j["cost"] = {{"usd", t.cost_usd.has_value() ? nlohmann::json(*t.cost_usd) : nullptr},
               {"basis",
                "1.25·(GPU price·N + 7214) + 1.2·((TDP·N + 350 W)/1000 · 0.15 $/kWh · hours): a "
                "system cost, not a price per token"},
               {"run_seconds", t.run_seconds}};
  j["assumptions"] = t.sizes.assumptions;
  std::vector<std::string> notes = t.notes;
  if (ours.mixed.has_value()) {
    notes.push_back(absl::StrCat("moecap merged ", ours.mixed->passes,
                                 " split steps into mixed passes, which neither phase of the "
                                 "comparison holds; MoE-CAP counts each "
                                 "step's halves as a prefill and a decode point"));
  }
  j["notes"] = notes;
  for (auto [name, theirs, mine] : {std::tuple{"prefill", &t.prefill, &ours.prefill},
                                    std::tuple{"decode", &t.decode, &ours.decode}}) {
    if (!theirs->has_value()) {
      j[name] = nullptr;
      continue;
    }
    const MoecapPhase& p = **theirs;
    nlohmann::json phase;
    phase["moe_cap"] = Side(p.s_mbu, p.s_mfu);
    phase["moe_cap"]["points"] = p.points;
    phase["moe_cap"][std::string(name) == "prefill" ? "ttft_s" : "tpot_s"] = p.mean_latency_s;
    nlohmann::json variants = nlohmann::json::array();
    for (const MoecapVariant& v : p.variants) {
      variants.push_back({{"difference", v.difference},
                          {"explanation", v.explanation},
                          {"s_mbu", v.s_mbu},
                          {"s_mfu", v.s_mfu}});
    }
    phase["moe_cap_with_one_difference_undone"] = variants;
    if (mine->has_value()) {
      const PhaseSummary& m = **mine;
      phase["moecap"] = Side(m.s_mbu, m.s_mfu);
      const double gap_mbu = m.s_mbu - p.s_mbu, gap_mfu = m.s_mfu - p.s_mfu;
      phase["gap"] = Side(gap_mbu, gap_mfu);
      // A share is the change one difference makes, over the gap; undefined for a zero gap.
      // Under a tenth of a point the shares of a gap say nothing: only the changes are given.
      auto share = [](double delta, double gap) {
        return std::fabs(gap) >= 1e-3 ? nlohmann::json(delta / gap) : nlohmann::json(nullptr);
      };
      nlohmann::json shares = nlohmann::json::array();
      double rest_mbu = gap_mbu, rest_mfu = gap_mfu;
      for (const MoecapVariant& v : p.variants) {
        const double d_mbu = v.s_mbu - p.s_mbu, d_mfu = v.s_mfu - p.s_mfu;
        rest_mbu -= d_mbu;
        rest_mfu -= d_mfu;
        shares.push_back({{"difference", v.difference},
                          {"explanation", v.explanation},
                          {"s_mbu_change", d_mbu},
                          {"s_mfu_change", d_mfu},
                          {"s_mbu", share(d_mbu, gap_mbu)},
                          {"s_mfu", share(d_mfu, gap_mfu)}});
      }
      shares.push_back({{"difference", "rest"},
                        {"explanation",
                         "the passes counted (split steps merged, passes skipped, per-request "
                         "prefill points) and the differences' interactions"},
                        {"s_mbu_change", rest_mbu},
                        {"s_mfu_change", rest_mfu},
                        {"s_mbu", share(rest_mbu, gap_mbu)},
                        {"s_mfu", share(rest_mfu, gap_mfu)}});
      phase["shares_of_gap"] = shares;
    }
    j[name] = phase;
  }
  return j;
}

}  // namespace moecap::records
