// Parsing one per-pass record with the in-place JSON scanner (nlohmann's tree would halve the
// speed of `analyze --records`, whose target is 500,000 lines/s).
#include "common/records/pass_record.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/records/json_scanner.h"

namespace moecap::records {

absl::string_view ForwardModeName(ForwardMode mode) {
  switch (mode) {
    case ForwardMode::kPrefill:
      return "prefill";
    case ForwardMode::kDecode:
      return "decode";
    case ForwardMode::kMixed:
      return "mixed";
    case ForwardMode::kUnknown:
      return "unknown";
  }
  return "unknown";
}

void PassRecord::Clear() {
  forward_pass_id.reset();
  forward_mode = ForwardMode::kDecode;
  batch_size = 0;
  latency_s = 0;
  latency_key = LatencyKey::kLatency;
  seq_lens_sum.reset();
  scheduled_tokens.reset();
  expert_activation.reset();
  gpu_num.reset();
  has_gpu_raw_type = false;
  gpu_raw_type.clear();
  requests.clear();
  decode_request_ids.clear();
}

namespace {

class RecordParser {
 public:
  RecordParser(absl::string_view line, PassRecord* record, RecordError* error)
      : scanner_(line), record_(record), error_(error) {}

  bool Parse() {
    record_->Clear();
    JsonType type;
    if (!scanner_.PeekType(&type)) return SyntaxError();
    if (type != JsonType::kObject) {
      error_->reason = "not a JSON object";
      error_->message = absl::StrCat("not a JSON object (found ", JsonTypeName(type), ")");
      return false;
    }
    bool done = false;
    if (!scanner_.BeginObject(&done)) return SyntaxError();
    while (!done) {
      absl::string_view key;
      if (!scanner_.ReadKey(&key, &key_scratch_)) return SyntaxError();
      if (!ReadMember(key)) return false;
      if (!scanner_.NextMember(&done)) return SyntaxError();
    }
    if (!scanner_.AtEnd()) {
      error_->reason = "invalid JSON";
      error_->message =
          absl::StrCat("invalid JSON at column ", scanner_.column(), ": text after the object");
      return false;
    }
    return CheckFields();
  }

 private:
  bool SyntaxError() {
    error_->reason = "invalid JSON";
    error_->message = absl::StrCat("invalid JSON at column ", scanner_.error_column(), ": ",
                                   scanner_.error_what());
    return false;
  }

  // `field` names the value in the message ("per_req_info[2].extend_len"); `field_kind` in the
  // reason, without indices ("per_req_info[].extend_len").
  bool KindFieldError(absl::string_view field, absl::string_view field_kind,
                      absl::string_view problem, absl::string_view detail = "") {
    error_->reason = absl::StrCat("field '", field_kind, "': ", problem);
    error_->message = absl::StrCat("field '", field, "': ", problem, detail);
    return false;
  }
  bool FieldError(absl::string_view field, absl::string_view problem,
                  absl::string_view detail = "") {
    return KindFieldError(field, field, problem, detail);
  }

  // Reads a number or null. `*number` is unset for null. Type errors name `field`.
  bool ReadNumberOrNull(absl::string_view field, absl::string_view field_kind, bool integer,
                        std::optional<JsonNumber>* number) {
    JsonType type;
    if (!scanner_.PeekType(&type)) return SyntaxError();
    const absl::string_view expected = integer ? "expected an integer" : "expected a number";
    if (type == JsonType::kNull) {
      number->reset();
      return scanner_.ReadNull() || SyntaxError();
    }
    if (type != JsonType::kNumber) return KindFieldError(field, field_kind, expected);
    JsonNumber n;
    if (!scanner_.ReadNumber(&n)) return SyntaxError();
    if (integer && !n.is_integer) return KindFieldError(field, field_kind, expected);
    *number = n;
    return true;
  }

  bool ReadOptionalInt(absl::string_view field, std::optional<int64_t>* out) {
    std::optional<JsonNumber> n;
    if (!ReadNumberOrNull(field, field, /*integer=*/true, &n)) return false;
    if (n.has_value()) {
      *out = n->integer;
    } else {
      out->reset();
    }
    return true;
  }

  bool ReadMember(absl::string_view key) {
    if (key == "batch_size") {
      std::optional<int64_t> v;
      if (!ReadOptionalInt(key, &v)) return false;
      if (!v.has_value()) return FieldError(key, "expected an integer");
      record_->batch_size = *v;
      has_batch_size_ = true;
      return true;
    }
    const bool is_ttft = key == "ttft";
    if (key == "latency" || is_ttft || key == "tpot") {
      // detailed_results_*.jsonl: the pass's latency under the name of its phase's figure.
      std::optional<JsonNumber> n;
      if (!ReadNumberOrNull(key, key, /*integer=*/false, &n)) return false;
      if (!n.has_value()) return FieldError(key, "expected a number");
      if (has_latency_) {
        return FieldError(key, "a second pass time",
                          " (a record has one of latency, ttft and tpot)");
      }
      record_->latency_s = n->value;
      record_->latency_key = key == "latency" ? LatencyKey::kLatency
                             : is_ttft        ? LatencyKey::kTtft
                                              : LatencyKey::kTpot;
      latency_field_ = record_->latency_key == LatencyKey::kLatency ? "latency"
                       : is_ttft                                    ? "ttft"
                                                                    : "tpot";
      has_latency_ = true;
      return true;
    }
    if (key == "seq_lens_sum") return ReadOptionalInt(key, &record_->seq_lens_sum);
    if (key == "scheduled_tokens") return ReadOptionalInt(key, &record_->scheduled_tokens);
    if (key == "gpu_num") return ReadOptionalInt(key, &record_->gpu_num);
    if (key == "forward_pass_id") return ReadOptionalInt(key, &record_->forward_pass_id);
    if (key == "expert_activation") {
      std::optional<JsonNumber> n;
      if (!ReadNumberOrNull(key, key, /*integer=*/false, &n)) return false;
      if (n.has_value()) {
        record_->expert_activation = n->value;
      } else {
        record_->expert_activation.reset();
      }
      return true;
    }
    if (key == "forward_mode") return ReadForwardMode();
    if (key == "gpu_raw_type") {
      JsonType type;
      if (!scanner_.PeekType(&type)) return SyntaxError();
      if (type == JsonType::kNull) {
        record_->has_gpu_raw_type = false;
        return scanner_.ReadNull() || SyntaxError();
      }
      if (type != JsonType::kString) return FieldError(key, "expected a string");
      if (!scanner_.ReadString(&record_->gpu_raw_type)) return SyntaxError();
      record_->has_gpu_raw_type = true;
      return true;
    }
    if (key == "per_req_info") return ReadRequests();
    if (key == "req_ids") return ReadRequestIds();
    return scanner_.SkipValue() || SyntaxError();
  }

  bool ReadForwardMode() {
    constexpr absl::string_view kField = "forward_mode";
    constexpr absl::string_view kExpected = "expected \"prefill\", \"decode\" or \"unknown\"";
    JsonType type;
    if (!scanner_.PeekType(&type)) return SyntaxError();
    if (type != JsonType::kString) return FieldError(kField, kExpected);
    if (!scanner_.ReadString(&value_scratch_)) return SyntaxError();
    if (value_scratch_ == "prefill") {
      record_->forward_mode = ForwardMode::kPrefill;
    } else if (value_scratch_ == "decode") {
      record_->forward_mode = ForwardMode::kDecode;
    } else if (value_scratch_ == "unknown") {
      record_->forward_mode = ForwardMode::kUnknown;
    } else {
      return FieldError(kField, kExpected, absl::StrCat(", got '", value_scratch_, "'"));
    }
    has_forward_mode_ = true;
    return true;
  }

  bool ReadRequests() {
    constexpr absl::string_view kField = "per_req_info";
    record_->requests.clear();
    JsonType type;
    if (!scanner_.PeekType(&type)) return SyntaxError();
    if (type == JsonType::kNull) return scanner_.ReadNull() || SyntaxError();
    if (type != JsonType::kArray) return FieldError(kField, "expected an array");
    bool done = false;
    if (!scanner_.BeginArray(&done)) return SyntaxError();
    for (size_t index = 0; !done; ++index) {
      if (!ReadRequest(index)) return false;
      if (!scanner_.NextElement(&done)) return SyntaxError();
    }
    return true;
  }

  bool ReadRequestIds() {
    constexpr absl::string_view kField = "req_ids";
    record_->decode_request_ids.clear();
    JsonType type;
    if (!scanner_.PeekType(&type)) return SyntaxError();
    if (type == JsonType::kNull) return scanner_.ReadNull() || SyntaxError();
    if (type != JsonType::kArray) return FieldError(kField, "expected an array");
    bool done = false;
    if (!scanner_.BeginArray(&done)) return SyntaxError();
    while (!done) {
      if (!scanner_.PeekType(&type)) return SyntaxError();
      if (type == JsonType::kString) {
        record_->decode_request_ids.emplace_back();
        if (!scanner_.ReadString(&record_->decode_request_ids.back())) return SyntaxError();
      } else if (type == JsonType::kNumber) {
        if (!scanner_.SkipValue()) return SyntaxError();  // SGLang's pool slots
      } else {
        return KindFieldError("req_ids", "req_ids[]", "expected strings or integers");
      }
      if (!scanner_.NextElement(&done)) return SyntaxError();
    }
    return true;
  }

  // An integer or null member of per_req_info[index]; `slot` is unset for null.
  bool ReadRequestInt(size_t index, absl::string_view name, std::optional<int64_t>* slot) {
    JsonType type;
    if (!scanner_.PeekType(&type)) return SyntaxError();
    if (type == JsonType::kNull) {
      slot->reset();
      return scanner_.ReadNull() || SyntaxError();
    }
    JsonNumber n;
    if (type == JsonType::kNumber && !scanner_.ReadNumber(&n)) return SyntaxError();
    if (type != JsonType::kNumber || !n.is_integer) {
      return KindFieldError(absl::StrCat("per_req_info[", index, "].", name),
                            absl::StrCat("per_req_info[].", name), "expected an integer");
    }
    *slot = n.integer;
    return true;
  }

  bool ReadRequest(size_t index) {
    // Field names are built only for an error message: this runs for every request of a prefill.
    auto element = [index] { return absl::StrCat("per_req_info[", index, "]"); };
    JsonType type;
    if (!scanner_.PeekType(&type)) return SyntaxError();
    if (type != JsonType::kObject) {
      return KindFieldError(element(), "per_req_info[]", "expected an object");
    }
    record_->requests.emplace_back();
    RequestInfo& info = record_->requests.back();
    std::optional<int64_t> extend_len;
    bool done = false;
    if (!scanner_.BeginObject(&done)) return SyntaxError();
    while (!done) {
      absl::string_view key;
      if (!scanner_.ReadKey(&key, &key_scratch_)) return SyntaxError();
      if (key == "extend_len") {
        if (!ReadRequestInt(index, key, &extend_len)) return false;
      } else if (key == "total_len") {
        if (!ReadRequestInt(index, key, &info.total_len)) return false;
      } else if (key == "prompt_len") {
        if (!ReadRequestInt(index, key, &info.prompt_len)) return false;
      } else if (key == "req_pool_idx") {
        info.has_pool_index = true;
        if (!scanner_.PeekType(&type)) return SyntaxError();
        JsonNumber n;
        if (type == JsonType::kNumber) {
          if (!scanner_.ReadNumber(&n)) return SyntaxError();
          if (n.is_integer) info.pool_index = n.integer;
        } else if (!scanner_.SkipValue()) {
          return SyntaxError();
        }
      } else if (key == "is_last_chunk") {
        if (!scanner_.PeekType(&type)) return SyntaxError();
        if (type == JsonType::kNull) {
          if (!scanner_.ReadNull()) return SyntaxError();
        } else {
          bool last = false;
          if (type != JsonType::kTrue && type != JsonType::kFalse) {
            return KindFieldError(absl::StrCat(element(), ".is_last_chunk"),
                                  "per_req_info[].is_last_chunk", "expected true or false");
          }
          if (!scanner_.ReadBool(&last)) return SyntaxError();
          info.is_last_chunk = last;
        }
      } else if (key == "req_id") {
        if (!scanner_.PeekType(&type)) return SyntaxError();
        if (type == JsonType::kString) {
          if (!scanner_.ReadString(&info.req_id)) return SyntaxError();
        } else if (!scanner_.SkipValue()) {
          return SyntaxError();
        }
      } else if (!scanner_.SkipValue()) {
        return SyntaxError();
      }
      if (!scanner_.NextMember(&done)) return SyntaxError();
    }
    if (!extend_len.has_value()) {
      return KindFieldError(absl::StrCat(element(), ".extend_len"), "per_req_info[].extend_len",
                            "missing");
    }
    if (*extend_len < 0) {
      return KindFieldError(absl::StrCat(element(), ".extend_len"), "per_req_info[].extend_len",
                            "must not be negative", absl::StrCat(", got ", *extend_len));
    }
    info.extend_len = *extend_len;
    // SGLang's total_len counts this chunk; vLLM's is the prompt, which holds every chunk too.
    if (info.total_len.has_value() && *info.total_len < *extend_len) {
      return KindFieldError(absl::StrCat(element(), ".total_len"), "per_req_info[].total_len",
                            "must be at least extend_len",
                            absl::StrCat(", got ", *info.total_len, " < ", *extend_len));
    }
    return true;
  }

  bool CheckFields() {
    PassRecord& r = *record_;
    if (!has_forward_mode_) return FieldError("forward_mode", "missing");
    if (!has_batch_size_) return FieldError("batch_size", "missing");
    if (!has_latency_) {
      return FieldError("latency", "missing", " (nor ttft or tpot, as detailed_results has)");
    }
    // A step without requests: its other fields are placeholders; counting skips it.
    if (r.forward_mode == ForwardMode::kUnknown) return true;
    if (r.batch_size < 1) {
      return FieldError("batch_size", "must be at least 1", absl::StrCat(", got ", r.batch_size));
    }
    if (!(r.latency_s > 0) || !std::isfinite(r.latency_s)) {
      return FieldError(latency_field_, "must be a positive number of seconds",
                        absl::StrCat(", got ", r.latency_s));
    }
    for (const auto& [name, value] : {std::pair{"seq_lens_sum", r.seq_lens_sum},
                                      std::pair{"scheduled_tokens", r.scheduled_tokens}}) {
      if (value.has_value() && *value < 0) {
        return FieldError(name, "must not be negative", absl::StrCat(", got ", *value));
      }
    }
    if (r.gpu_num.has_value() && *r.gpu_num < 1) {
      return FieldError("gpu_num", "must be at least 1", absl::StrCat(", got ", *r.gpu_num));
    }
    if (r.forward_mode == ForwardMode::kDecode) {
      if (!r.seq_lens_sum.has_value()) {
        return FieldError("seq_lens_sum", "missing",
                          " (a decode pass needs the sum of its context lengths)");
      }
      if (*r.seq_lens_sum < r.batch_size) {
        return FieldError("seq_lens_sum", "must be at least batch_size",
                          absl::StrCat(" (each context counts its decoded token), got ",
                                       *r.seq_lens_sum, " < ", r.batch_size));
      }
    } else if (r.requests.empty() && !r.scheduled_tokens.has_value() &&
               !r.seq_lens_sum.has_value()) {
      return FieldError("seq_lens_sum", "missing",
                        " (a prefill pass needs per_req_info, scheduled_tokens or seq_lens_sum)");
    }
    return true;
  }

  JsonScanner scanner_;
  PassRecord* record_;
  RecordError* error_;
  std::string key_scratch_;
  std::string value_scratch_;
  bool has_forward_mode_ = false;
  bool has_batch_size_ = false;
  bool has_latency_ = false;
  absl::string_view latency_field_ = "latency";
};

}  // namespace

bool ParsePassRecord(absl::string_view line, PassRecord* record, RecordError* error) {
  return RecordParser(line, record, error).Parse();
}

}  // namespace moecap::records
