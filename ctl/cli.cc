// Subcommand registration and error-to-exit-code mapping.
#include "ctl/cli.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <functional>

#include "ctl/accuracy_commands.h"
#include "ctl/analyze_command.h"
#include "ctl/catalog_commands.h"
#include "ctl/job_commands.h"
#include "ctl/plot_command.h"
#include "ctl/run_local.h"

namespace moecap::ctl {

int RunCtl(const std::vector<std::string>& args, const CommandIo& io) {
  CLI::App app{"moecapctl: measure Mixture-of-Experts serving by S-MBU, S-MFU and cost (MoE-CAP)",
               "moecapctl"};
  app.require_subcommand(1);
  app.fallthrough();  // top-level flags (--catalog) may follow the subcommand too
  GlobalOptions global;
  app.add_option("--catalog", global.catalog_dirs,
                 "extra catalog directory holding models/*.yaml, hardware/*.yaml and "
                 "accuracy/*.json (repeatable; also $MOECAP_CATALOG)");
  app.add_flag("--check-args", global.check_args,
               "parse the arguments, say whether they are accepted and exit without running the "
               "command (checks a deployment's command line)");

  AccuracyOptions accuracy;
  AnalyzeOptions analyze;
  CatalogListOptions models, hardware;
  PlotOptions plot;
  SubmitOptions submit;
  WatchOptions watch;
  StatusOptions status_options;
  ResultsOptions results;
  CancelOptions cancel;
  AgentsOptions agents;
  RunLocalOptions run_local;
  // Each subcommand and the function that runs it once parsing succeeded.
  std::vector<std::pair<CLI::App*, std::function<absl::Status()>>> commands = {
      {RegisterAnalyzeCommand(app, analyze),
       [&] { return RunAnalyzeCommand(analyze, global, io); }},
      {RegisterModelsCommand(app, models), [&] { return RunModelsCommand(models, global, io); }},
      {RegisterHardwareCommand(app, hardware),
       [&] { return RunHardwareCommand(hardware, global, io); }},
      {RegisterAccuracyCommand(app, accuracy),
       [&] { return RunAccuracyCommand(accuracy, global, io); }},
      {RegisterPlotCommand(app, plot), [&] { return RunPlotCommand(plot, global, io); }},
      {RegisterSubmitCommand(app, submit), [&] { return RunSubmitCommand(submit, global, io); }},
      {RegisterWatchCommand(app, watch), [&] { return RunWatchCommand(watch, io); }},
      {RegisterStatusCommand(app, status_options),
       [&] { return RunStatusCommand(status_options, io); }},
      {RegisterResultsCommand(app, results),
       [&] { return RunResultsCommand(results, global, io); }},
      {RegisterCancelCommand(app, cancel), [&] { return RunCancelCommand(cancel, io); }},
      {RegisterAgentsCommand(app, agents), [&] { return RunAgentsCommand(agents, io); }},
      {RegisterRunCommand(app, run_local), [&] { return RunRunCommand(run_local, global, io); }},
  };

  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    io.out << app.help();
    return kExitOk;
  } catch (const CLI::CallForAllHelp&) {
    io.out << app.help("", CLI::AppFormatMode::All);
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    // A subcommand's --help is also delivered as CallForHelp, by the subcommand that got it.
    io.err << "moecapctl: error: " << e.what() << "\n"
           << "run `moecapctl --help` or `moecapctl COMMAND --help` for usage\n";
    return kExitUsage;
  }
  for (auto& [cmd, run] : commands) {
    if (!cmd->parsed()) continue;
    if (global.check_args) {
      io.out << "moecapctl " << cmd->get_name() << ": arguments accepted\n";
      return kExitOk;
    }
    const absl::Status status = run();
    if (status.ok()) return kExitOk;
    io.err << "moecapctl " << cmd->get_name() << ": error: " << status.message() << "\n";
    if (IsUsageError(status)) return kExitUsage;
    return IsUnplaceable(status) ? kExitUnplaceable : kExitError;
  }
  return kExitUsage;
}

}  // namespace moecap::ctl
