// Delivers one report to the coordinator, retrying what may pass: UNAVAILABLE and
// DEADLINE_EXCEEDED until a deadline, NOT_FOUND for a short while (the agent may be registering
// again, and the current id is read again for every try). Pauses double from 200 ms to 5 s on the
// injected clock; a shutdown ends the wait at once.
#ifndef MOECAP_AGENT_DAEMON_REPORT_SENDER_H_
#define MOECAP_AGENT_DAEMON_REPORT_SENDER_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace moecap::agentd {

class ReportSender {
 public:
  // `agent_id` gives the current registration's id; `stopping` ends every wait (the agent shuts
  // down). Both outlive the sender.
  ReportSender(const Clock& clock, std::function<std::string()> agent_id,
               const absl::Notification& stopping)
      : clock_(clock), agent_id_(std::move(agent_id)), stopping_(stopping) {}

  // Calls `send` with the current agent id until it succeeds (true), fails for good, or the
  // window until `until` closes (false, logged with `what`).
  bool Send(absl::string_view what, absl::Time until,
            const std::function<absl::Status(const std::string&)>& send) const;

  // How long NOT_FOUND is retried at most.
  static constexpr absl::Duration kRegisterAgainWindow = absl::Seconds(10);

 private:
  const Clock& clock_;
  const std::function<std::string()> agent_id_;
  const absl::Notification& stopping_;
};

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_REPORT_SENDER_H_
