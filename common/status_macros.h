// Status propagation across module boundaries, as in Abseil-based codebases (TensorFlow's
// TF_RETURN_IF_ERROR, Arrow's ARROW_ASSIGN_OR_RAISE): one line instead of a hand-written check.
//
//   MOECAP_RETURN_IF_ERROR(store.Put(key, value));
//   MOECAP_ASSIGN_OR_RETURN(const ModelSpec model, catalog.Model(name));
//
// Both return the error unchanged (code, message and payloads) from the enclosing function, which
// returns absl::Status or absl::StatusOr<T>.
#ifndef MOECAP_COMMON_STATUS_MACROS_H_
#define MOECAP_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

#define MOECAP_RETURN_IF_ERROR(expr)                                    \
  do {                                                                  \
    if (::absl::Status moecap_status_ = (expr); !moecap_status_.ok()) { \
      return moecap_status_;                                            \
    }                                                                   \
  } while (false)

#define MOECAP_STATUS_CONCAT_INNER_(a, b) a##b
#define MOECAP_STATUS_CONCAT_(a, b) MOECAP_STATUS_CONCAT_INNER_(a, b)

// `lhs` is a declaration or an lvalue; `rexpr` an expression of type absl::StatusOr<T>.
#define MOECAP_ASSIGN_OR_RETURN(lhs, rexpr) \
  MOECAP_ASSIGN_OR_RETURN_IMPL_(MOECAP_STATUS_CONCAT_(moecap_statusor_, __LINE__), lhs, rexpr)

#define MOECAP_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                  \
  if (!statusor.ok()) return std::move(statusor).status();  \
  lhs = *std::move(statusor)

namespace moecap {

// `status` with "`where`: " before its message, its code and payloads (a FailureCause, say)
// kept. OK stays OK.
inline absl::Status Annotate(const absl::Status& status, absl::string_view where) {
  if (status.ok()) return status;
  absl::Status out(status.code(), absl::StrCat(where, ": ", status.message()));
  status.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace moecap

#endif  // MOECAP_COMMON_STATUS_MACROS_H_
