// Streaming analysis of a per-pass records file.
#include "common/records/records_analysis.h"

#include <optional>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/analysis.h"
#include "common/records/line_reader.h"
#include "common/records/pass_record.h"
#include "common/status_macros.h"

namespace moecap::records {
namespace {

bool IsBlank(absl::string_view line) {
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

// A parsed record waiting for the next one: a prefill may be the first half of a split step.
struct Pending {
  int64_t line = 0;
  PassRecord record;
  PassOutcome outcome = PassOutcome::kCounted;
  CountedPass counted;
  RecordError error;
};

class RecordsAnalyzer {
 public:
  RecordsAnalyzer(const RecordsOptions& options, const PassCallback& on_pass)
      : options_(options),
        on_pass_(on_pass),
        dtypes_(ResolvePrecisions(options.model, options.dtype, options.precision)),
        precision_(BytesOf(dtypes_)) {
    summary_.origin = options.origin;
    summary_.model = options.model;
    summary_.dtype = options.dtype;
    summary_.dtypes = dtypes_;
    summary_.layout = options.layout;
  }

  absl::StatusOr<RecordsSummary> Run(std::istream& in) {
    LineReader reader(in);
    absl::string_view line;
    while (reader.Next(&line)) {
      if (reader.line_number() == 1 && absl::StartsWith(line, kUtf8Bom)) {
        line.remove_prefix(kUtf8Bom.size());  // a UTF-8 BOM some editors add
      }
      if (IsBlank(line)) continue;
      if (line.find('\0') != absl::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat(Where(reader.line_number()),
                         "binary data (a NUL byte): not a JSON-lines records file (gzip is read by "
                         "its header, whatever the name; other archives must be unpacked first)"));
      }
      ++summary_.records;
      MOECAP_RETURN_IF_ERROR(
          HandleLine(reader.line_number(), line, reader.last_line_unterminated()));
    }
    if (!reader.status().ok()) {
      return absl::Status(reader.status().code(),
                          absl::StrCat(options_.origin, ": ", reader.status().message()));
    }
    MOECAP_RETURN_IF_ERROR(FlushPending());
    if (summary_.records == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(options_.origin, ": no records: the file is empty"));
    }
    if (prefill_.passes() == 0 && decode_.passes() == 0 && mixed_.passes() == 0) {
      std::vector<std::string> reasons;
      for (const auto& [reason, count] : summary_.skipped_reasons) {
        reasons.push_back(absl::StrCat(reason, ": ", count));
      }
      return absl::InvalidArgumentError(absl::StrCat(options_.origin, ": no usable pass: all ",
                                                     summary_.records, " records were skipped (",
                                                     absl::StrJoin(reasons, "; "), ")"));
    }
    const RunContext& run = summary_.run;
    const double devices = static_cast<double>(run.devices);
    for (auto [name, accumulator, slot] : {std::tuple{"prefill", &prefill_, &summary_.prefill},
                                           std::tuple{"decode", &decode_, &summary_.decode},
                                           std::tuple{"mixed", &mixed_, &summary_.mixed}}) {
      if (accumulator->passes() == 0) continue;
      *slot = accumulator->Finish(name, devices, run.peak_bandwidth_bytes_s, run.peak_flops);
      if (options_.layout.has_value()) {
        (*slot)->hbm =
            PhysicalTraffic(options_.model, (*slot)->counts, *options_.layout, run.devices,
                            (*slot)->time_s, run.peak_bandwidth_bytes_s, name, &(*slot)->validity);
      }
      summary_.validity.Merge((*slot)->validity);
    }
    if (summary_.merged_steps > 0) {
      summary_.notes.push_back(absl::StrCat(
          summary_.merged_steps,
          " steps split into a prefill and a decode record (same pass id, latency and "
          "expert_activation, as MoE-CAP's vLLM recorder writes a chunked-prefill step) were "
          "merged back into one mixed pass each"));
    }
    return std::move(summary_);
  }

 private:
  static constexpr absl::string_view kUtf8Bom = "\xEF\xBB\xBF";

  absl::Status HandleLine(int64_t line_number, absl::string_view line, bool unterminated) {
    RecordError error;
    if (!ParsePassRecord(line, &record_, &error)) {
      if (unterminated && error.reason == "invalid JSON") {
        // The writer was stopped mid-line (or is still writing): the last line is cut short.
        error.reason = "truncated last line (no newline, invalid JSON)";
        error.message = absl::StrCat(error.reason, ": ", error.message);
        summary_.notes.push_back(absl::StrCat(Where(line_number), error.message, ": skipped"));
        Skip(line_number, error);
        return absl::OkStatus();
      }
      return BadLine(line_number, error);
    }
    if (pending_.has_value() && IsSecondHalfOfSplitStep(pending_->record, record_)) {
      return MergeWithPending(line_number);
    }
    MOECAP_RETURN_IF_ERROR(FlushPending());
    CountedPass counted;
    const PassOutcome outcome = CountPassRecord(options_.model, precision_, record_,
                                                options_.counting, &tracker_, &counted, &error);
    if (outcome != PassOutcome::kBad && record_.forward_mode == ForwardMode::kPrefill) {
      pending_.emplace();
      pending_->line = line_number;
      std::swap(pending_->record, record_);
      pending_->outcome = outcome;
      pending_->counted = std::move(counted);
      pending_->error = std::move(error);
      return absl::OkStatus();
    }
    return Finish(line_number, record_, outcome, counted, error);
  }

  absl::Status MergeWithPending(int64_t line_number) {
    Pending prefill = *std::move(pending_);
    pending_.reset();
    CountedPass decode;
    RecordError error;
    const PassOutcome outcome = CountPassRecord(options_.model, precision_, record_,
                                                options_.counting, &tracker_, &decode, &error);
    if (outcome == PassOutcome::kBad) return BadLine(line_number, error);
    ++summary_.merged_steps;
    if (prefill.outcome != PassOutcome::kCounted || outcome != PassOutcome::kCounted) {
      // One step: both halves go together, with the reason of the one that could not count.
      const RecordError& why = prefill.outcome != PassOutcome::kCounted ? prefill.error : error;
      Skip(prefill.line, why);
      Skip(line_number, why);
      elapsed_s_ += record_.latency_s;  // the step's time, once
      return absl::OkStatus();
    }
    CountedPass mixed = MergeSplitPass(options_.model, precision_, prefill.counted, decode);
    return Emit(prefill.line, record_, mixed);
  }

  absl::Status FlushPending() {
    if (!pending_.has_value()) return absl::OkStatus();
    Pending p = *std::move(pending_);
    pending_.reset();
    return Finish(p.line, p.record, p.outcome, p.counted, p.error);
  }

  absl::Status Finish(int64_t line_number, const PassRecord& record, PassOutcome outcome,
                      CountedPass& counted, const RecordError& error) {
    switch (outcome) {
      case PassOutcome::kSkipped:
        Skip(line_number, error);
        elapsed_s_ += record.latency_s;
        return absl::OkStatus();
      case PassOutcome::kBad:
        return BadLine(line_number, error);
      case PassOutcome::kCounted:
        break;
    }
    return Emit(line_number, record, counted);
  }

  absl::Status Emit(int64_t line_number, const PassRecord& record, CountedPass& counted) {
    RecordError error;
    if (!resolved_) {
      MOECAP_RETURN_IF_ERROR(ResolveRun(line_number, record));
    } else if (!SameRun(record, &error)) {
      return BadLine(line_number, error);
    }
    const RunContext& run = summary_.run;
    const double devices = static_cast<double>(run.devices);
    const double bw = run.peak_bandwidth_bytes_s;
    const double peak = run.peak_flops;
    const double bytes = counted.counts.bytes();
    const double flops = counted.counts.flops();
    PassResult result;
    result.line = line_number;
    result.forward_pass_id = record.forward_pass_id;
    result.start_s = elapsed_s_;
    result.latency_s = record.latency_s;
    result.s_mbu = Utilization(bytes, record.latency_s, devices, bw);
    result.s_mfu = Utilization(flops, record.latency_s, devices, peak);
    const double roofline_s = RooflineSeconds(bytes, flops, devices, bw, peak);
    if (roofline_s > 0) {
      result.roofline_s_mbu = Utilization(bytes, roofline_s, devices, bw);
      result.roofline_s_mfu = Utilization(flops, roofline_s, devices, peak);
    }
    result.tokens_per_s = counted.tokens / record.latency_s;
    if (run.price.has_value() && counted.tokens > 0) {
      result.usd_per_million_tokens = UsdPerMillionTokens(run.price->usd_per_device_hour, devices,
                                                          record.latency_s, counted.tokens);
    }
    result.validity = counted.validity;
    const std::string phase(ForwardModeName(counted.mode));
    CheckUtilization(absl::StrCat(phase, " S-MBU"), result.s_mbu, &result.validity);
    CheckUtilization(absl::StrCat(phase, " S-MFU"), result.s_mfu, &result.validity);
    if (counted.context_rebuilt) ++summary_.rebuilt_contexts;
    PhaseAccumulator& phase_acc = counted.mode == ForwardMode::kPrefill ? prefill_
                                  : counted.mode == ForwardMode::kMixed ? mixed_
                                                                        : decode_;
    phase_acc.Add(counted, record.latency_s, result.s_mbu, result.s_mfu, line_number);
    elapsed_s_ += record.latency_s;
    if (on_pass_) {
      result.pass = std::move(counted);
      on_pass_(result, summary_);
    }
    return absl::OkStatus();
  }

  std::string Where(int64_t line_number) const {
    return absl::StrCat(options_.origin, ":", line_number, ": ");
  }

  absl::Status BadLine(int64_t line_number, const RecordError& error) {
    if (!options_.skip_bad) {
      return absl::InvalidArgumentError(absl::StrCat(Where(line_number), error.message));
    }
    Skip(line_number, error);
    return absl::OkStatus();
  }

  void Skip(int64_t line_number, const RecordError& error) {
    ++summary_.skipped;
    ++summary_.skipped_reasons[error.reason];
    if (summary_.first_skipped.size() < RecordsSummary::kMaxListedSkips) {
      summary_.first_skipped.push_back({line_number, error.message});
    }
  }

  // The first counted pass fixes the device, the device count and the peaks for the file.
  absl::Status ResolveRun(int64_t line_number, const PassRecord& record) {
    RunContext& run = summary_.run;
    if (options_.hardware.has_value()) {
      run.hardware = *options_.hardware;
      run.hardware_source = "--hardware";
    } else {
      if (!record.has_gpu_raw_type) {
        return absl::FailedPreconditionError(
            absl::StrCat(Where(line_number),
                         "the record has no gpu_raw_type: pass --hardware NAME (`moecapctl "
                         "hardware` lists the names)"));
      }
      absl::StatusOr<const HardwareSpec*> hw =
          options_.catalog == nullptr
              ? absl::StatusOr<const HardwareSpec*>(absl::NotFoundError("no catalog"))
              : options_.catalog->FindHardware(record.gpu_raw_type);
      if (!hw.ok()) {
        return absl::NotFoundError(absl::StrCat(
            Where(line_number), "field 'gpu_raw_type': unknown device '", record.gpu_raw_type,
            "': pass --hardware NAME (`moecapctl hardware` lists the names), or add '",
            record.gpu_raw_type, "' to the aliases of a hardware entry in a --catalog directory"));
      }
      run.hardware = **hw;
      run.hardware_source = absl::StrCat("gpu_raw_type '", record.gpu_raw_type, "'");
      first_raw_type_ = record.gpu_raw_type;
      last_checked_raw_type_ = record.gpu_raw_type;
    }
    if (options_.devices.has_value()) {
      run.devices = *options_.devices;
      run.devices_source = "--gpus";
    } else if (record.gpu_num.has_value()) {
      run.devices = *record.gpu_num;
      run.devices_source = "gpu_num";
    } else {
      return absl::FailedPreconditionError(absl::StrCat(
          Where(line_number), "the record has no gpu_num: pass --gpus N (devices serving it)"));
    }
    if (options_.layout.has_value()) {
      absl::Status layout = ValidateLayout(*options_.layout, run.devices);
      if (!layout.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(Where(line_number), "--", layout.message(),
                                                       " (", run.devices_source, ")"));
      }
    }
    if (options_.peak_bandwidth_bytes_s.has_value()) {
      run.peak_bandwidth_bytes_s = *options_.peak_bandwidth_bytes_s;
    } else {
      absl::StatusOr<double> bw = PeakBandwidth(run.hardware);
      if (!bw.ok()) return bw.status();
      run.peak_bandwidth_bytes_s = *bw;
    }
    FitComputeToHardware(run.hardware, options_.precision, &dtypes_);
    summary_.dtypes = dtypes_;
    if (options_.peak_flops.has_value()) {
      run.peak_flops = *options_.peak_flops;
    } else {
      absl::StatusOr<double> flops = PeakFlops(run.hardware, dtypes_.compute);
      if (!flops.ok()) return flops.status();
      run.peak_flops = *flops;
    }
    absl::StatusOr<HourlyPrice> price = DeviceHourlyPrice(run.hardware, options_.price);
    if (price.ok()) run.price = *price;
    first_line_ = line_number;
    resolved_ = true;
    return absl::OkStatus();
  }

  // A later pass must come from the same device and device count, unless flags fixed them.
  bool SameRun(const PassRecord& record, RecordError* error) {
    const RunContext& run = summary_.run;
    if (!options_.hardware.has_value() && record.has_gpu_raw_type &&
        record.gpu_raw_type != last_checked_raw_type_) {
      absl::StatusOr<const HardwareSpec*> hw = options_.catalog->FindHardware(record.gpu_raw_type);
      if (!hw.ok() || (*hw)->name != run.hardware.name) {
        error->reason = "field 'gpu_raw_type': differs from the first pass";
        error->message =
            absl::StrCat("field 'gpu_raw_type': '", record.gpu_raw_type,
                         "' is not the device of line ", first_line_, " ('", first_raw_type_,
                         "'): pass --hardware to read the file as one device");
        return false;
      }
      last_checked_raw_type_ = record.gpu_raw_type;
    }
    if (!options_.devices.has_value() && record.gpu_num.has_value() &&
        *record.gpu_num != run.devices) {
      error->reason = "field 'gpu_num': differs from the first pass";
      error->message = absl::StrCat("field 'gpu_num': ", *record.gpu_num, " differs from ",
                                    run.devices, " on line ", first_line_,
                                    ": pass --gpus to read the file as one device count");
      return false;
    }
    return true;
  }

  const RecordsOptions& options_;
  const PassCallback& on_pass_;
  PartDtypes dtypes_;
  const Precision precision_;
  RecordsSummary summary_;
  PassRecord record_;
  std::optional<Pending> pending_;
  RequestTracker tracker_;
  PhaseAccumulator prefill_;
  PhaseAccumulator decode_;
  PhaseAccumulator mixed_;
  double elapsed_s_ = 0;
  bool resolved_ = false;
  int64_t first_line_ = 0;
  std::string first_raw_type_;
  std::string last_checked_raw_type_;
};

nlohmann::json PhaseJson(const PhaseSummary& p) {
  nlohmann::json j = {
      {"passes", p.passes},
      {"tokens", p.tokens},
      {"bytes", p.counts.bytes()},
      {"flops", p.counts.flops()},
      {"time_s", p.time_s},
      {"s_mbu", p.s_mbu},
      {"s_mfu", p.s_mfu},
      {"s_mbu_p50", p.s_mbu_p50},
      {"s_mbu_p90", p.s_mbu_p90},
      {"s_mbu_p99", p.s_mbu_p99},
      {"s_mfu_p50", p.s_mfu_p50},
      {"s_mfu_p90", p.s_mfu_p90},
      {"s_mfu_p99", p.s_mfu_p99},
      {"mean_batch", p.mean_batch},
      {"mean_activated_experts", p.mean_activated_experts},
      {"breakdown", BreakdownJson(p.counts)},
      {"invalid_passes", p.invalid_passes},
      {"estimated_passes", p.estimated_passes},
      {"valid", p.validity.valid},
      {"estimated", p.validity.estimated},
      {"reasons", p.validity.reasons},
      {"assumptions", p.validity.assumptions},
  };
  if (p.hbm.has_value()) {
    j["hbm"] = HbmTrafficJson(*p.hbm);
    j["breakdown"]["replication"] = {{"bytes", p.hbm->replication_bytes}, {"flops", 0}};
  }
  return j;
}

nlohmann::json Optional(const std::optional<double>& v) {
  return v.has_value() ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

absl::StatusOr<RecordsSummary> AnalyzeRecords(std::istream& in, const RecordsOptions& options,
                                              const PassCallback& on_pass) {
  return RecordsAnalyzer(options, on_pass).Run(in);
}

nlohmann::json RecordsJson(const RecordsSummary& s) {
  nlohmann::json j;
  j["mode"] = "records";
  j["source"] = s.origin;
  j["model"] = s.model.name;
  j["hardware"] = s.run.hardware.name;
  j["hardware_from"] = s.run.hardware_source;
  j["gpus"] = s.run.devices;
  j["gpus_from"] = s.run.devices_source;
  j["dtype"] = std::string(DtypeName(s.dtype));
  j["kv_dtype"] = std::string(DtypeName(s.dtypes.kv_cache));
  j["precisions"] = PartDtypesJson(s.dtypes);
  j["peaks"] = {{"bandwidth_bytes_per_s", s.run.peak_bandwidth_bytes_s},
                {"flops_per_s", s.run.peak_flops},
                {"dtype", std::string(DtypeName(s.dtypes.compute))}};
  j["layout"] = s.layout.has_value() ? LayoutJson(s.model, *s.layout, s.run.devices)
                                     : nlohmann::json(nullptr);
  j["records"] = s.records;
  j["prefill"] = s.prefill.has_value() ? PhaseJson(*s.prefill) : nlohmann::json(nullptr);
  j["decode"] = s.decode.has_value() ? PhaseJson(*s.decode) : nlohmann::json(nullptr);
  j["mixed"] = s.mixed.has_value() ? PhaseJson(*s.mixed) : nlohmann::json(nullptr);
  j["merged_steps"] = s.merged_steps;
  j["rebuilt_contexts"] = s.rebuilt_contexts;
  j["notes"] = s.notes;
  AddValidityJson(s.validity, j);
  nlohmann::json reasons = nlohmann::json::object();
  for (const auto& [reason, count] : s.skipped_reasons) reasons[reason] = count;
  j["skipped"] = {{"count", s.skipped}, {"reasons", reasons}};
  return j;
}

const std::vector<std::string>& PassJsonKeys() {
  static const std::vector<std::string>* const kKeys =
      new std::vector<std::string>{"model",
                                   "hardware",
                                   "gpus",
                                   "line",
                                   "forward_pass_id",
                                   "phase",
                                   "start_s",
                                   "latency_s",
                                   "batch",
                                   "tokens",
                                   "activated_experts",
                                   "bytes",
                                   "flops",
                                   "s_mbu",
                                   "s_mfu",
                                   "roofline_s_mbu",
                                   "roofline_s_mfu",
                                   "tokens_per_s",
                                   "usd_per_million_tokens",
                                   "valid",
                                   "estimated"};
  return *kKeys;
}

nlohmann::json PassJson(const PassResult& p, const RecordsSummary& s) {
  nlohmann::json j;
  j["model"] = s.model.name;
  j["hardware"] = s.run.hardware.name;
  j["gpus"] = s.run.devices;
  j["line"] = p.line;
  j["forward_pass_id"] =
      p.forward_pass_id.has_value() ? nlohmann::json(*p.forward_pass_id) : nlohmann::json(nullptr);
  j["phase"] = std::string(ForwardModeName(p.pass.mode));
  j["start_s"] = p.start_s;
  j["latency_s"] = p.latency_s;
  j["batch"] = p.pass.sequences;
  j["tokens"] = p.pass.tokens;
  j["activated_experts"] = p.pass.activated_experts_per_layer;
  j["bytes"] = p.pass.counts.bytes();
  j["flops"] = p.pass.counts.flops();
  j["s_mbu"] = p.s_mbu;
  j["s_mfu"] = p.s_mfu;
  j["roofline_s_mbu"] = p.roofline_s_mbu;
  j["roofline_s_mfu"] = p.roofline_s_mfu;
  j["tokens_per_s"] = p.tokens_per_s;
  j["usd_per_million_tokens"] = Optional(p.usd_per_million_tokens);
  j["valid"] = p.validity.valid;
  j["estimated"] = p.validity.estimated;
  return j;
}

}  // namespace moecap::records
