// Human-readable numbers and plain-text tables for moecapctl's table and CSV views.
#ifndef MOECAP_CTL_FORMAT_H_
#define MOECAP_CTL_FORMAT_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace moecap::ctl {

// 93.4 GB, 1.23 TB, 512 B (decimal units, as bandwidth figures are quoted).
std::string HumanBytes(double bytes);
// 1.23 TFLOP, 45.6 GFLOP.
std::string HumanFlops(double flops);
// 0.410 s, 23.0 ms, 87 µs.
std::string HumanSeconds(double seconds);
// 42.1 % (one decimal).
std::string Percent(double fraction);
// Fixed decimals.
std::string Fixed(double value, int decimals);
// $1,234.56 style, with `decimals` decimals.
std::string Usd(double usd, int decimals = 2);

// Columns aligned with two spaces; the first row is the header, underlined.
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// RFC 4180 CSV: fields quoted when they hold a comma, quote or newline.
std::string CsvLine(const std::vector<std::string>& fields);
// Shortest round-trip text of a double for CSV/JSON-like output ("0.1", "1e+20").
std::string ExactNumber(double value);

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_FORMAT_H_
