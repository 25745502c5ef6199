// Report delivery with bounded retries.
#include "agent/daemon/report_sender.h"

#include <algorithm>
#include <optional>

#include "spdlog/spdlog.h"

namespace moecap::agentd {
namespace {

bool Transient(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status) ||
         absl::IsNotFound(status);
}

}  // namespace

bool ReportSender::Send(absl::string_view what, absl::Time until,
                        const std::function<absl::Status(const std::string&)>& send) const {
  absl::Duration pause = absl::Milliseconds(200);
  std::optional<absl::Time> unknown_until;  // how long NOT_FOUND may last
  while (true) {
    const absl::Status status = send(agent_id_());
    if (status.ok()) return true;
    const absl::Time now = clock_.Now();
    // NOT_FOUND: the coordinator does not know the agent (it is registering again, which takes a
    // moment) or the job (it restarted without it): worth a short wait, not the whole window.
    if (absl::IsNotFound(status) && !unknown_until.has_value()) {
      unknown_until = now + kRegisterAgainWindow;
    }
    const absl::Time give_up = unknown_until.has_value() ? std::min(until, *unknown_until) : until;
    if (!Transient(status) || now + pause > give_up) {
      spdlog::warn("{} not delivered: {}", std::string(what), status.ToString());
      return false;
    }
    spdlog::info("{} not delivered yet (will retry): {}", std::string(what), status.ToString());
    if (clock_.WaitUntil(now + pause, stopping_)) {
      spdlog::warn("{} not delivered (shutting down): {}", std::string(what), status.ToString());
      return false;
    }
    pause = std::min(pause * 2, absl::Seconds(5));
  }
}

}  // namespace moecap::agentd
