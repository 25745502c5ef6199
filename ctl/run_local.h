// `moecapctl run PLAN --local N`: a whole cluster on this host for one command. It embeds a
// coordinator (in-process, on a free loopback port), starts N moecap-agent processes against it,
// submits the plan, shows its progress and prints the results; then it stops everything. It is
// what scripts/demo.sh runs.
#ifndef MOECAP_CTL_RUN_LOCAL_H_
#define MOECAP_CTL_RUN_LOCAL_H_

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "coordinator/scheduler.h"
#include "ctl/command.h"

namespace moecap::ctl {

struct RunLocalOptions {
  std::string plan_path;
  int local_agents = 0;                 // --local N
  int devices_per_agent = 1;            // rank slots each CPU agent offers
  std::string agent_binary;             // default: moecap-agent next to moecapctl, then $PATH
  std::vector<std::string> agent_args;  // extra flags for every agent
  std::string db_path;                  // default: in memory (the run's jobs are not kept)
  std::string work_dir;                 // default: a fresh temporary directory, removed afterwards
  std::string output = "table";
  bool explain = false;
  double timeout_s = 3600;
};

// Whether `agents` local CPU agents of `devices_per_agent` rank slots each can ever run a job
// that needs `spec`: a usage error (exit 2) naming what is short (nodes, devices per node, the
// backend) and the flag to pass, checked before anything starts.
absl::Status CheckLocalFit(const coordinator::GangSpec& spec, int agents, int devices_per_agent);

CLI::App* RegisterRunCommand(CLI::App& app, RunLocalOptions& options);
absl::Status RunRunCommand(const RunLocalOptions& options, const GlobalOptions& global,
                           const CommandIo& io);

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_RUN_LOCAL_H_
