// The shared pieces of the plot scripts.
#include "ctl/plot_style.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace moecap::ctl {

std::string Quoted(absl::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "''";
    } else if (static_cast<unsigned char>(c) >= 0x20) {
      out += c;
    }
  }
  return out + "'";
}

std::string Num(double v) { return absl::StrFormat("%.9g", v); }

std::string Header(absl::string_view title, int height, absl::string_view key, int width) {
  return absl::StrCat("set terminal svg size ", width, ",", height,
                      " dynamic noenhanced font 'sans,11' background '#ffffff'\n", "set output ",
                      Quoted(GnuplotJob::kPlotOutputName), "\n", "set datafile separator '\\t'\n",
                      "set grid lc rgb '#dddddd'\n", "set key ", key, "\n",
                      "set border 3\nset tics nomirror\n", "# ", Quoted(title), "\n");
}

std::vector<std::string> FlaggedSeries(const std::vector<const PlotPoint*>& points,
                                       absl::string_view stem,
                                       const std::function<std::string(const PlotPoint&)>& row,
                                       absl::string_view columns, GnuplotJob& job) {
  std::vector<std::string> series;
  for (const bool invalid : {true, false}) {
    std::string tsv;
    for (const PlotPoint* p : points) {
      if (invalid ? !p->valid : (p->valid && p->estimated)) tsv += row(*p);
    }
    if (tsv.empty()) continue;
    const std::string file = absl::StrCat(stem, invalid ? "_invalid.tsv" : "_estimated.tsv");
    job.data_files.emplace_back(file, tsv);
    series.push_back(absl::StrCat(
        Quoted(file), " using ", columns,
        invalid ? " with points pt 6 ps 1.8 lw 1.5 lc rgb '#d62728' title 'valid: false (over the "
                  "roofline)'"
                : " with points pt 4 ps 1.5 lc rgb '#7f7f7f' title 'estimated'"));
  }
  return series;
}

}  // namespace moecap::ctl
