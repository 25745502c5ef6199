// Runs gnuplot as a child process on a GnuplotJob in a private temporary directory and copies
// the SVG it writes to the requested path. The wait is bounded; gnuplot's stderr becomes the
// error message when it fails.
#ifndef MOECAP_CTL_GNUPLOT_H_
#define MOECAP_CTL_GNUPLOT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ctl/plot_script.h"

namespace moecap::ctl {

struct GnuplotOptions {
  std::string program = "gnuplot";  // a name looked up on PATH, or a path
  absl::Duration timeout = absl::Seconds(120);
};

// FailedPrecondition when gnuplot is missing ("... install gnuplot-nox (apt-get install
// gnuplot-nox)"), Internal when it fails, DeadlineExceeded when it outlives the timeout.
absl::Status RenderSvg(const GnuplotJob& job, const std::string& out_path,
                       const GnuplotOptions& options);

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_GNUPLOT_H_
