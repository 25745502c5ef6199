// What every `moecapctl plot` script shares: gnuplot quoting, number text, the SVG header, the
// palette and the rings that mark flagged points. One copy, so that every kind looks alike.
#ifndef MOECAP_CTL_PLOT_STYLE_H_
#define MOECAP_CTL_PLOT_STYLE_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "ctl/plot_data.h"
#include "ctl/plot_script.h"

namespace moecap::ctl {

// Colours of the Dark2 palette: readable on white and for most colour-blind readers.
inline constexpr const char* kPrefillColour = "#d95f02";
inline constexpr const char* kDecodeColour = "#1b9e77";
inline constexpr const char* kOtherColour = "#7570b3";
// Series colours in order, for plots with one series per model and precision.
inline constexpr const char* kSeriesColours[] = {"#1b9e77", "#d95f02", "#7570b3", "#e7298a",
                                                 "#66a61e", "#e6ab02", "#a6761d", "#666666"};
// The legend below the panels of a two-panel plot.
inline constexpr const char* kPanelKey = "below center horizontal";

// A gnuplot single-quoted string: a quote is doubled, control characters dropped.
std::string Quoted(absl::string_view text);

// A number as data files and scripts write it (%.9g).
std::string Num(double value);

// The script's first lines: the SVG terminal of `width` x `height` pixels writing GnuplotJob's
// output, tab separated data, the grid, and the legend placed by `key`.
std::string Header(absl::string_view title, int height, absl::string_view key, int width = 960);

// Rings around the points whose figures are flagged — over the roofline (valid: false) or built
// on an estimate — so that no picture shows them as plain measurements. Writes `<stem>_invalid.tsv`
// and `<stem>_estimated.tsv` with `row`'s columns and returns the series to plot, `columns` the
// `using` clause ("1:2").
std::vector<std::string> FlaggedSeries(const std::vector<const PlotPoint*>& points,
                                       absl::string_view stem,
                                       const std::function<std::string(const PlotPoint&)>& row,
                                       absl::string_view columns, GnuplotJob& job);

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_PLOT_STYLE_H_
