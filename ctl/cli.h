// moecapctl's command line: parses the arguments, runs one subcommand and returns the exit code
// (0 ok, 1 error, 2 usage). Kept out of main() so tests can run it in-process.
#ifndef MOECAP_CTL_CLI_H_
#define MOECAP_CTL_CLI_H_

#include <string>
#include <vector>

#include "ctl/command.h"

namespace moecap::ctl {

// `args` excludes the program name.
int RunCtl(const std::vector<std::string>& args, const CommandIo& io);

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_CLI_H_
