// `moecapctl analyze` for a batch shape: flags -> AnalysisInput -> Analyze -> table/JSON/CSV.
#include "ctl/analyze_command.h"

#include <filesystem>
#include <optional>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/analysis.h"
#include "common/hf_config.h"
#include "common/records/input_file.h"
#include "ctl/accuracy_commands.h"
#include "ctl/analyze_records.h"
#include "ctl/analyze_serving.h"
#include "ctl/format.h"

namespace moecap::ctl {
namespace {

template <typename T>
std::optional<T> IfGiven(const CLI::Option* flag, T value) {
  if (flag != nullptr && flag->count() > 0) return value;
  return std::nullopt;
}

absl::StatusOr<AnalysisInput> BuildInput(const AnalyzeOptions& o, const Catalog& catalog) {
  if (o.model.empty()) return UsageError("--model: required (`moecapctl models` lists them)");
  if (o.hardware.empty()) {
    return UsageError("--hardware: required (`moecapctl hardware` lists them)");
  }
  if (o.prompt_len_flag == nullptr || o.prompt_len_flag->count() == 0) {
    return UsageError("--prompt-len: required (prompt tokens per request)");
  }
  absl::StatusOr<AnalysisInput> common = BuildCommonInput(o, catalog, /*need_hardware=*/true);
  if (!common.ok()) return common.status();
  AnalysisInput in = *std::move(common);
  in.batch = o.batch;
  in.prompt_len = o.prompt_len;
  in.output_len = o.output_len;
  in.ttft_s = IfGiven(o.ttft_flag, o.ttft_s);
  in.tpot_s = IfGiven(o.tpot_flag, o.tpot_s);
  in.prefill_activated_per_layer = IfGiven(o.prefill_activated_flag, o.prefill_activated);
  in.decode_activated_per_layer = IfGiven(o.decode_activated_flag, o.decode_activated);
  if (absl::Status s = ValidateAnalysisInput(in); !s.ok()) {
    return UsageError(absl::StrCat("--", s.message()));
  }
  return in;
}

std::string OptionalUtil(const std::optional<Utilizations>& u, double Utilizations::*field) {
  return u.has_value() ? Percent((*u).*field) : "-";
}

}  // namespace

std::string ValidityWarnings(const Validity& v) {
  std::string out;
  for (const std::string& reason : v.reasons) absl::StrAppend(&out, "warning: ", reason, "\n");
  for (const std::string& a : v.assumptions) absl::StrAppend(&out, "estimated: ", a, "\n");
  return out;
}

absl::Status StrictCheck(const AnalyzeOptions& o, const Validity& v) {
  if (!o.strict || v.valid) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("--strict: ", v.reasons.size(), " invalid figure(s): ", v.reasons.front()));
}

std::string LayoutLine(const ModelSpec& model, const ParallelLayout& layout, int64_t devices) {
  const ReplicationFactors f = ReplicationOf(model, layout, devices);
  return absl::StrFormat(
      "HBM bytes (physical): what the %d devices read with --tp %d%s: attention and LM head read "
      "by each of %g replicas, router/shared/dense FFN %gx, KV cache %gx, routed experts once; "
      "S-MBU counts the model's bytes once\n",
      devices, layout.tensor_parallel, layout.dp_attention ? " --dp-attention" : "", f.attention,
      f.dense, f.kv_cache);
}

void PrintAnalysisTable(const AnalysisInput& in, const AnalysisResult& r, bool explain,
                        std::ostream& out) {
  out << ValidityWarnings(AnalysisValidity(r));
  out << absl::StrFormat("%s on %d x %s, %s, batch %d, prompt %d, output %d tokens\n",
                         in.model.display_name, in.devices, in.hardware.display_name,
                         DtypeName(in.dtype), in.batch, in.prompt_len, in.output_len);
  out << absl::StrFormat(
      "precisions: experts %s, attention %s, LM head %s, KV cache %s; compute %s\n",
      DtypeName(r.dtypes.experts), DtypeName(r.dtypes.attention), DtypeName(r.dtypes.lm_head),
      DtypeName(r.dtypes.kv_cache), DtypeName(r.dtypes.compute));
  out << absl::StrFormat("peaks per device: %s/s memory, %s/s %s\n\n",
                         HumanBytes(r.peak_bandwidth_bytes_s), HumanFlops(r.peak_flops),
                         DtypeName(r.dtypes.compute));
  std::vector<std::string> header = {"", "prefill"};
  if (r.decode.has_value()) header.push_back("decode (mean step)");
  TextTable table(header);
  auto row = [&](const std::string& name, auto value_of) {
    std::vector<std::string> cells = {name, value_of(r.prefill)};
    if (r.decode.has_value()) cells.push_back(value_of(*r.decode));
    table.AddRow(cells);
  };
  row("tokens", [](const PhaseAnalysis& p) { return Fixed(p.tokens, 0); });
  row("activated experts/layer",
      [](const PhaseAnalysis& p) { return Fixed(p.activated_experts_per_layer, 2); });
  row("bytes", [](const PhaseAnalysis& p) { return HumanBytes(p.counts.bytes()); });
  row("FLOPs", [](const PhaseAnalysis& p) { return HumanFlops(p.counts.flops()); });
  row("time (measured)", [](const PhaseAnalysis& p) {
    return p.time_s.has_value() ? HumanSeconds(*p.time_s) : std::string("-");
  });
  row("S-MBU",
      [](const PhaseAnalysis& p) { return OptionalUtil(p.measured, &Utilizations::s_mbu); });
  row("S-MFU",
      [](const PhaseAnalysis& p) { return OptionalUtil(p.measured, &Utilizations::s_mfu); });
  row("dense MBU (contrast)",
      [](const PhaseAnalysis& p) { return OptionalUtil(p.measured, &Utilizations::dense_mbu); });
  row("dense MFU (contrast)",
      [](const PhaseAnalysis& p) { return OptionalUtil(p.measured, &Utilizations::dense_mfu); });
  row("roofline time", [](const PhaseAnalysis& p) {
    return absl::StrCat(HumanSeconds(p.roofline_s), p.memory_bound ? " (memory)" : " (compute)");
  });
  row("S-MBU at roofline", [](const PhaseAnalysis& p) { return Percent(p.at_roofline.s_mbu); });
  row("S-MFU at roofline", [](const PhaseAnalysis& p) { return Percent(p.at_roofline.s_mfu); });
  if (r.prefill.hbm.has_value()) {
    row("HBM bytes (physical)", [](const PhaseAnalysis& p) { return HumanBytes(p.hbm->bytes()); });
    row("  of which replication",
        [](const PhaseAnalysis& p) { return HumanBytes(p.hbm->replication_bytes); });
    row("HBM utilisation", [](const PhaseAnalysis& p) {
      return p.hbm->utilization.has_value() ? Percent(*p.hbm->utilization) : "-";
    });
  }
  out << table.Render();
  out << "dense: every expert read and computing for every token, what an MoE-unaware tool "
         "reports; dense MFU may exceed 100%\n";
  if (in.layout.has_value()) out << LayoutLine(in.model, *in.layout, in.devices);

  if (r.cost.has_value()) {
    const CostAnalysis& c = *r.cost;
    out << absl::StrFormat(
        "\ncost: %s per 1M output tokens, %s per 1M total tokens (%s per device-hour, %s; %s "
        "times)\n",
        Usd(c.usd_per_million_output_tokens, 4), Usd(c.usd_per_million_total_tokens, 4),
        Usd(c.price.usd_per_device_hour), c.price.basis, c.at_roofline ? "roofline" : "measured");
    out << absl::StrFormat("system purchase cost: %s (MoE-CAP system cost for this batch: %s)\n",
                           Usd(c.system_purchase_usd, 0), Usd(c.moecap_system_cost_usd, 0));
  } else {
    out << "\ncost: unavailable: " << r.cost_unavailable_reason << "\n";
  }
  if (!explain) return;
  std::vector<std::pair<std::string, const Counts*>> phases = {{"prefill", &r.prefill.counts}};
  if (r.decode.has_value()) phases.emplace_back("decode", &r.decode->counts);
  out << "\nbreakdown (METRICS.md terms; share of the phase total)\n" << BreakdownTable(phases);
}

std::string BreakdownTable(const std::vector<std::pair<std::string, const Counts*>>& phases) {
  std::vector<std::string> header = {"term"};
  for (const auto& [name, counts] : phases) {
    for (const std::string& h : {absl::StrCat(name, " bytes"), std::string("share"),
                                 absl::StrCat(name, " FLOPs"), std::string("share")}) {
      header.push_back(h);
    }
  }
  TextTable table(header);
  auto share = [](double part, double total) { return total > 0 ? Percent(part / total) : "-"; };
  for (Term t : kAllTerms) {
    std::vector<std::string> cells = {std::string(TermName(t))};
    for (const auto& [name, counts] : phases) {
      const TermCount& c = (*counts)[t];
      for (const std::string& cell : {HumanBytes(c.bytes), share(c.bytes, counts->bytes()),
                                      HumanFlops(c.flops), share(c.flops, counts->flops())}) {
        cells.push_back(cell);
      }
    }
    table.AddRow(cells);
  }
  return table.Render();
}

namespace {

std::string NumberOrEmpty(const nlohmann::json& j) {
  if (j.is_null()) return "";
  if (j.is_number()) return ExactNumber(j.get<double>());
  if (j.is_string()) return j.get<std::string>();
  return j.dump();
}

}  // namespace

// One header row and one value row: inputs, then the headline figures of each phase and cost.
void PrintAnalysisCsv(const nlohmann::json& j,
                      const std::vector<std::pair<std::string, std::string>>& extra,
                      std::ostream& out) {
  std::vector<std::string> header, values;
  for (const auto& [key, value] : j["inputs"].items()) {
    header.push_back(key);
    values.push_back(NumberOrEmpty(value));
  }
  const std::vector<std::pair<std::string, std::vector<std::string>>> phases = {
      {"prefill",
       {"tokens", "activated_experts_per_layer", "bytes", "flops", "time_s", "s_mbu", "s_mfu",
        "dense_mbu", "dense_mfu", "valid", "estimated"}},
      {"decode",
       {"tokens_per_step", "activated_experts_per_layer", "bytes_per_step", "flops_per_step",
        "time_s", "s_mbu", "s_mfu", "dense_mbu", "dense_mfu", "valid", "estimated"}}};
  for (const auto& [phase, keys] : phases) {
    for (const std::string& key : keys) {
      header.push_back(absl::StrCat(phase, ".", key));
      values.push_back(j[phase].is_null() ? "" : NumberOrEmpty(j[phase][key]));
    }
    header.push_back(absl::StrCat(phase, ".roofline_s"));
    values.push_back(j[phase].is_null() ? "" : NumberOrEmpty(j[phase]["roofline"]["time_s"]));
    // Why a figure is invalid or estimated, one cell: "reason; reason".
    header.push_back(absl::StrCat(phase, ".reasons"));
    std::vector<std::string> reasons;
    if (!j[phase].is_null()) {
      for (const char* list : {"reasons", "assumptions"}) {
        if (!j[phase].contains(list)) continue;
        for (const auto& r : j[phase][list]) reasons.push_back(r.get<std::string>());
      }
    }
    values.push_back(absl::StrJoin(reasons, "; "));
    if (!j[phase].is_null() && j[phase].contains("hbm")) {
      for (const char* key : {"hbm_bytes", "replication_bytes", "hbm_utilization"}) {
        header.push_back(absl::StrCat(phase, ".", key));
        values.push_back(NumberOrEmpty(j[phase]["hbm"][key]));
      }
    }
  }
  for (const char* key : {"usd_per_million_output_tokens", "usd_per_million_total_tokens",
                          "usd_per_device_hour", "time_basis"}) {
    header.push_back(absl::StrCat("cost.", key));
    values.push_back(j["cost"].contains(key) ? NumberOrEmpty(j["cost"][key]) : "");
  }
  for (const auto& [key, value] : extra) {
    header.push_back(key);
    values.push_back(value);
  }
  out << CsvLine(header) << CsvLine(values);
}

absl::StatusOr<ModelSpec> ResolveModel(const std::string& arg, const Catalog& catalog) {
  std::error_code ec;
  const bool is_file = absl::EndsWith(arg, ".json") || std::filesystem::is_regular_file(arg, ec);
  if (!is_file) {
    absl::StatusOr<const ModelSpec*> model = catalog.FindModel(arg);
    if (!model.ok()) {
      return AsUsageError(
          "--model", absl::Status(model.status().code(),
                                  absl::StrCat(model.status().message(),
                                               "; a Hugging Face config.json path works too")));
    }
    return **model;
  }
  absl::StatusOr<std::string> text = records::ReadInputFile(arg);
  if (!text.ok()) return AsUsageError("--model", text.status());
  absl::StatusOr<ModelSpec> model = absl::EndsWith(arg, ".yaml") || absl::EndsWith(arg, ".yml")
                                        ? ParseModelYaml(*text, arg)
                                        : ModelFromHfConfig(*text, arg);
  if (!model.ok()) return AsUsageError("--model", model.status());
  return model;
}

absl::StatusOr<AnalysisInput> BuildCommonInput(const AnalyzeOptions& o, const Catalog& catalog,
                                               bool need_hardware) {
  if (o.model.empty()) return UsageError("--model: required (`moecapctl models` lists them)");
  if (need_hardware && o.hardware.empty()) {
    return UsageError("--hardware: required (`moecapctl hardware` lists them)");
  }
  absl::StatusOr<ModelSpec> model = ResolveModel(o.model, catalog);
  if (!model.ok()) return model.status();
  AnalysisInput in;
  in.model = *std::move(model);
  if (!o.hardware.empty()) {
    absl::StatusOr<const HardwareSpec*> hardware = catalog.FindHardware(o.hardware);
    if (!hardware.ok()) return AsUsageError("--hardware", hardware.status());
    in.hardware = **hardware;
  }
  absl::StatusOr<Dtype> dtype = ParseDtype(o.dtype);
  if (!dtype.ok()) return AsUsageError("--dtype", dtype.status());
  in.devices = o.gpus;
  in.dtype = *dtype;
  for (const auto& [flag, text, slot] :
       {std::tuple{"--kv-dtype", &o.kv_dtype, &in.precision.kv_cache},
        std::tuple{"--expert-dtype", &o.expert_dtype, &in.precision.experts},
        std::tuple{"--attention-dtype", &o.attention_dtype, &in.precision.attention},
        std::tuple{"--lm-head-dtype", &o.lm_head_dtype, &in.precision.lm_head},
        std::tuple{"--compute-dtype", &o.compute_dtype, &in.precision.compute}}) {
    if (text->empty()) continue;
    absl::StatusOr<Dtype> parsed = ParseDtype(*text);
    if (!parsed.ok()) return AsUsageError(flag, parsed.status());
    *slot = *parsed;
  }
  if (auto bw = IfGiven(o.peak_bandwidth_flag, o.peak_bandwidth_gb_s)) {
    in.peak_bandwidth_bytes_s = *bw * 1e9;
  }
  if (auto tf = IfGiven(o.peak_tflops_flag, o.peak_tflops)) in.peak_flops = *tf * 1e12;
  in.price.usd_per_device_hour = IfGiven(o.usd_per_hour_flag, o.usd_per_hour);
  in.price.amortize_hours = IfGiven(o.amortize_hours_flag, o.amortize_hours);
  in.price.usd_per_kwh = o.usd_per_kwh;
  if (o.tp_flag != nullptr && o.tp_flag->count() > 0) {
    in.layout = ParallelLayout{o.tp, o.dp_attention};
  } else if (o.dp_attention) {
    return UsageError("--dp-attention: give --tp too (the attention's tensor-parallel degree)");
  }
  // The range checks of the flags given here; the batch shape is checked by its mode, and the
  // layout against the device count, which records may give.
  AnalysisInput shape_free = in;
  shape_free.prompt_len = 1;
  shape_free.layout.reset();
  if (absl::Status s = ValidateAnalysisInput(shape_free); !s.ok()) {
    return UsageError(absl::StrCat("--", s.message()));
  }
  return in;
}

CLI::App* RegisterAnalyzeCommand(CLI::App& app, AnalyzeOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "analyze", "MoE-CAP calculator: bytes, FLOPs, S-MBU, S-MFU, roofline and cost of a batch");
  cmd->add_option("--model", o.model,
                  "model name (see `moecapctl models`), or the path of a Hugging Face "
                  "config.json (or a catalog .yaml)");
  cmd->add_option("--hardware", o.hardware, "hardware name (see `moecapctl hardware`)");
  o.gpus_flag = cmd->add_option("--gpus", o.gpus,
                                "devices serving the batch (G); with --records: default gpu_num")
                    ->capture_default_str();
  o.batch_flag =
      cmd->add_option("--batch", o.batch, "requests in the batch (B)")->capture_default_str();
  o.prompt_len_flag = cmd->add_option("--prompt-len", o.prompt_len, "prompt tokens (P)");
  o.output_len_flag = cmd->add_option("--output-len", o.output_len, "output tokens per request (O)")
                          ->capture_default_str();
  cmd->add_option("--dtype", o.dtype,
                  "the run's dtype: fp32, bf16, fp16, fp8, fp8_block128, int8, int4_g128, mxfp4, "
                  "nvfp4 (weights the model names no native precision for)")
      ->capture_default_str();
  cmd->add_option("--kv-dtype", o.kv_dtype,
                  "KV-cache dtype (default: bf16 for fp8 or narrower --dtype, else --dtype)");
  cmd->add_option("--expert-dtype", o.expert_dtype,
                  "expert weights' dtype (default: the model's native, else --dtype)");
  cmd->add_option("--attention-dtype", o.attention_dtype,
                  "attention, router and dense-FFN weights' dtype (default: native, else --dtype)");
  cmd->add_option("--lm-head-dtype", o.lm_head_dtype,
                  "LM head's dtype (default: native, else --dtype)");
  cmd->add_option("--compute-dtype", o.compute_dtype,
                  "the matrix units' dtype, which picks the peak FLOP/s (default: fp8 for fp8 "
                  "experts, bf16 for int8/int4/fp4 ones, else the experts' dtype)");
  cmd->add_flag("--strict", o.strict,
                "fail (exit 1) when a figure is invalid (over the roofline), after printing it");
  o.ttft_flag = cmd->add_option("--ttft-s", o.ttft_s, "measured time to first token, seconds");
  o.tpot_flag = cmd->add_option("--tpot-s", o.tpot_s, "measured time per output token, seconds");
  o.prefill_activated_flag = cmd->add_option(
      "--prefill-activated", o.prefill_activated,
      "measured mean activated experts per MoE layer in prefill (default: uniform routing)");
  o.decode_activated_flag = cmd->add_option(
      "--decode-activated", o.decode_activated,
      "measured mean activated experts per MoE layer per decode step (default: uniform)");
  o.peak_bandwidth_flag = cmd->add_option("--peak-bandwidth-gb-s", o.peak_bandwidth_gb_s,
                                          "per-device peak memory bandwidth, GB/s (overrides)");
  o.peak_tflops_flag = cmd->add_option("--peak-tflops", o.peak_tflops,
                                       "per-device dense peak TFLOP/s for --dtype (overrides)");
  o.usd_per_hour_flag =
      cmd->add_option("--usd-per-hour", o.usd_per_hour, "price of one device-hour, USD");
  o.amortize_hours_flag =
      cmd->add_option("--amortize-hours", o.amortize_hours,
                      "price a device-hour as purchase price / this lifetime + energy at TDP");
  cmd->add_option("--usd-per-kwh", o.usd_per_kwh, "energy price for --amortize-hours")
      ->capture_default_str();
  cmd->add_option("-o,--output", o.output, "table, json or csv")->capture_default_str();
  cmd->add_flag("--explain", o.explain, "print each term of the byte and FLOP counts");
  cmd->add_option("--records", o.records,
                  "analyze per-pass records: MoE-CAP's expert_distribution_record.jsonl or "
                  "detailed_results_*.jsonl, vLLM or SGLang (JSON lines, .gz read; - reads "
                  "stdin)");
  cmd->add_option("--serving-result,--vllm-result", o.serving_result,
                  "estimate from a serving benchmark's summary: vLLM `bench serve` --save-result "
                  "JSON or its printed block, SGLang `bench_serving` JSONL or its block, AIPerf "
                  "profile_export_aiperf.json (- reads stdin); needs --hardware and --gpus");
  o.tp_flag = cmd->add_option(
      "--tp", o.tp,
      "attention tensor-parallel degree t (G/t attention replicas, experts over all G): adds the "
      "physical HBM traffic and its replication term beside the model bytes");
  cmd->add_flag("--dp-attention", o.dp_attention,
                "with --tp: data-parallel attention (SGLang --enable-dp-attention): the router, "
                "shared experts and dense FFN are replicated with the attention");
  cmd->add_option("--convention", o.convention,
                  "with --records: moecap prints MoE-CAP's own S-MBU, S-MFU and cost (its code at "
                  "e9e0d88) beside moecap's, and each difference's share of the gap")
      ->check(CLI::IsMember({"moecap"}));
  cmd->add_flag("--per-pass", o.per_pass,
                "with --records: stream one row per pass (-o csv or -o json: JSON lines)");
  cmd->add_flag("--uniform-activation", o.uniform_activation,
                "with --records: count passes whose expert_activation is 0 (not recorded) at the "
                "uniform-routing expectation, marked estimated, instead of skipping them");
  cmd->add_flag("--skip-bad", o.skip_bad,
                "with --records: count malformed lines in `skipped` instead of failing");
  return cmd;
}

absl::Status RunAnalyzeCommand(const AnalyzeOptions& o, const GlobalOptions& global,
                               const CommandIo& io) {
  if (!o.convention.empty() && o.records.empty()) {
    return UsageError(
        "--convention: only with --records FILE (MoE-CAP's figures are per-pass figures)");
  }
  if (!o.records.empty() && !o.serving_result.empty()) {
    return UsageError("--records, --serving-result: give one input, not both");
  }
  if (!o.records.empty()) return RunRecordsAnalysis(o, global, io);
  if (!o.serving_result.empty()) return RunServingAnalysis(o, global, io);
  if (o.per_pass) return UsageError("--per-pass: only with --records FILE");
  if (o.skip_bad) return UsageError("--skip-bad: only with --records FILE");
  if (o.uniform_activation) return UsageError("--uniform-activation: only with --records FILE");
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(o.output);
  if (!format.ok()) return format.status();
  absl::StatusOr<Catalog> catalog = LoadCatalog(global);
  if (!catalog.ok()) return catalog.status();
  absl::StatusOr<AnalysisInput> input = BuildInput(o, *catalog);
  if (!input.ok()) return input.status();
  absl::StatusOr<AnalysisResult> result = Analyze(*input);
  if (absl::IsFailedPrecondition(result.status())) {
    return UsageError(result.status().message());  // a peak the catalog lacks: a flag gives it
  }
  if (!result.ok()) return result.status();
  // The A of CAP beside the C and P: the scores of this model at its experts' precision.
  absl::StatusOr<RunAccuracy> accuracy =
      AccuracyOfRun(global, input->model, result->dtypes.experts, input->dtype);
  if (!accuracy.ok()) return accuracy.status();
  switch (*format) {
    case OutputFormat::kJson: {
      nlohmann::json j = AnalysisJson(*input, *result);
      j["accuracy"] = AccuracyJson(*accuracy);
      io.out << j.dump(2) << "\n";
      break;
    }
    case OutputFormat::kCsv:
      PrintAnalysisCsv(AnalysisJson(*input, *result), {}, io.out);
      break;
    case OutputFormat::kTable:
      PrintAnalysisTable(*input, *result, o.explain, io.out);
      io.out << AccuracyLines(*accuracy);
      break;
  }
  return StrictCheck(o, AnalysisValidity(*result));
}

}  // namespace moecap::ctl
