// Which job and point states are final and which hold agents.
#ifndef MOECAP_COORDINATOR_JOB_STATES_H_
#define MOECAP_COORDINATOR_JOB_STATES_H_

#include "moecap/v1/job.pb.h"

namespace moecap::coordinator {

// SUCCEEDED, FAILED or CANCELLED: nothing more happens to it.
inline bool IsTerminal(v1::JobState s) {
  return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED || s == v1::JOB_STATE_CANCELLED;
}

// SCHEDULED through AGGREGATING: placed on agents, running.
inline bool IsActive(v1::JobState s) {
  return s == v1::JOB_STATE_SCHEDULED || s == v1::JOB_STATE_RENDEZVOUS ||
         s == v1::JOB_STATE_RUNNING || s == v1::JOB_STATE_AGGREGATING;
}

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_JOB_STATES_H_
