// Streaming analysis of a per-pass records file.
#include "common/records/records_analysis.h"

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
  }

  absl::StatusOr<RecordsSummary> Run(std::istream& in) {
    LineReader reader(in);
    absl::string_view line;
    while (reader.Next(&line)) {
      if (IsBlank(line)) continue;
      ++summary_.records;
      MOECAP_RETURN_IF_ERROR(HandleLine(reader.line_number(), line));
    }
    if (!reader.status().ok()) {
      return absl::Status(reader.status().code(),
                          absl::StrCat(options_.origin, ": ", reader.status().message()));
    }
    if (summary_.records == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(options_.origin, ": no records: the file is empty"));
    }
    if (prefill_.passes() == 0 && decode_.passes() == 0) {
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
    if (prefill_.passes() > 0) {
      summary_.prefill = prefill_.Finish(devices, run.peak_bandwidth_bytes_s, run.peak_flops);
    }
    if (decode_.passes() > 0) {
      summary_.decode = decode_.Finish(devices, run.peak_bandwidth_bytes_s, run.peak_flops);
    }
    return std::move(summary_);
  }

 private:
  absl::Status HandleLine(int64_t line_number, absl::string_view line) {
    RecordError error;
    if (!ParsePassRecord(line, &record_, &error)) return BadLine(line_number, error);
    CountedPass counted;
    switch (CountPassRecord(options_.model, precision_, record_, &counted, &error)) {
      case PassOutcome::kSkipped:
        Skip(line_number, error);
        elapsed_s_ += record_.latency_s;
        return absl::OkStatus();
      case PassOutcome::kBad:
        return BadLine(line_number, error);
      case PassOutcome::kCounted:
        break;
    }
    if (!resolved_) {
      MOECAP_RETURN_IF_ERROR(ResolveRun(line_number));
    } else if (!SameRun(&error)) {
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
    result.forward_pass_id = record_.forward_pass_id;
    result.start_s = elapsed_s_;
    result.latency_s = record_.latency_s;
    result.s_mbu = Utilization(bytes, record_.latency_s, devices, bw);
    result.s_mfu = Utilization(flops, record_.latency_s, devices, peak);
    const double roofline_s = RooflineSeconds(bytes, flops, devices, bw, peak);
    if (roofline_s > 0) {
      result.roofline_s_mbu = Utilization(bytes, roofline_s, devices, bw);
      result.roofline_s_mfu = Utilization(flops, roofline_s, devices, peak);
    }
    result.tokens_per_s = counted.tokens / record_.latency_s;
    if (run.price.has_value() && counted.tokens > 0) {
      result.usd_per_million_tokens = UsdPerMillionTokens(run.price->usd_per_device_hour, devices,
                                                          record_.latency_s, counted.tokens);
    }
    (counted.mode == ForwardMode::kPrefill ? prefill_ : decode_)
        .Add(counted, record_.latency_s, result.s_mbu, result.s_mfu);
    elapsed_s_ += record_.latency_s;
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
  absl::Status ResolveRun(int64_t line_number) {
    RunContext& run = summary_.run;
    if (options_.hardware.has_value()) {
      run.hardware = *options_.hardware;
      run.hardware_source = "--hardware";
    } else {
      if (!record_.has_gpu_raw_type) {
        return absl::FailedPreconditionError(
            absl::StrCat(Where(line_number),
                         "the record has no gpu_raw_type: pass --hardware NAME (`moecapctl "
                         "hardware` lists the names)"));
      }
      absl::StatusOr<const HardwareSpec*> hw =
          options_.catalog == nullptr
              ? absl::StatusOr<const HardwareSpec*>(absl::NotFoundError("no catalog"))
              : options_.catalog->FindHardware(record_.gpu_raw_type);
      if (!hw.ok()) {
        return absl::NotFoundError(absl::StrCat(
            Where(line_number), "field 'gpu_raw_type': unknown device '", record_.gpu_raw_type,
            "': pass --hardware NAME (`moecapctl hardware` lists the names), or add '",
            record_.gpu_raw_type, "' to the aliases of a hardware entry in a --catalog directory"));
      }
      run.hardware = **hw;
      run.hardware_source = absl::StrCat("gpu_raw_type '", record_.gpu_raw_type, "'");
      first_raw_type_ = record_.gpu_raw_type;
      last_checked_raw_type_ = record_.gpu_raw_type;
    }
    if (options_.devices.has_value()) {
      run.devices = *options_.devices;
      run.devices_source = "--gpus";
    } else if (record_.gpu_num.has_value()) {
      run.devices = *record_.gpu_num;
      run.devices_source = "gpu_num";
    } else {
      return absl::FailedPreconditionError(absl::StrCat(
          Where(line_number), "the record has no gpu_num: pass --gpus N (devices serving it)"));
    }
    if (options_.peak_bandwidth_bytes_s.has_value()) {
      run.peak_bandwidth_bytes_s = *options_.peak_bandwidth_bytes_s;
    } else {
      absl::StatusOr<double> bw = PeakBandwidth(run.hardware);
      if (!bw.ok()) return bw.status();
      run.peak_bandwidth_bytes_s = *bw;
    }
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
  bool SameRun(RecordError* error) {
    const RunContext& run = summary_.run;
    if (!options_.hardware.has_value() && record_.has_gpu_raw_type &&
        record_.gpu_raw_type != last_checked_raw_type_) {
      absl::StatusOr<const HardwareSpec*> hw = options_.catalog->FindHardware(record_.gpu_raw_type);
      if (!hw.ok() || (*hw)->name != run.hardware.name) {
        error->reason = "field 'gpu_raw_type': differs from the first pass";
        error->message =
            absl::StrCat("field 'gpu_raw_type': '", record_.gpu_raw_type,
                         "' is not the device of line ", first_line_, " ('", first_raw_type_,
                         "'): pass --hardware to read the file as one device");
        return false;
      }
      last_checked_raw_type_ = record_.gpu_raw_type;
    }
    if (!options_.devices.has_value() && record_.gpu_num.has_value() &&
        *record_.gpu_num != run.devices) {
      error->reason = "field 'gpu_num': differs from the first pass";
      error->message = absl::StrCat("field 'gpu_num': ", *record_.gpu_num, " differs from ",
                                    run.devices, " on line ", first_line_,
                                    ": pass --gpus to read the file as one device count");
      return false;
    }
    return true;
  }

  const RecordsOptions& options_;
  const PassCallback& on_pass_;
  const PartDtypes dtypes_;
  const Precision precision_;
  RecordsSummary summary_;
  PassRecord record_;
  PhaseAccumulator prefill_;
  PhaseAccumulator decode_;
  double elapsed_s_ = 0;
  bool resolved_ = false;
  int64_t first_line_ = 0;
  std::string first_raw_type_;
  std::string last_checked_raw_type_;
};

nlohmann::json PhaseJson(const PhaseSummary& p) {
  return {
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
  };
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
  j["records"] = s.records;
  j["prefill"] = s.prefill.has_value() ? PhaseJson(*s.prefill) : nlohmann::json(nullptr);
  j["decode"] = s.decode.has_value() ? PhaseJson(*s.decode) : nlohmann::json(nullptr);
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
                                   "usd_per_million_tokens"};
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
  return j;
}

}  // namespace moecap::records
