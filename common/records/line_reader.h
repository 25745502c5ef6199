// Reads a text stream line by line in large blocks, handing out views into its own buffer, so a
// multi-gigabyte records file streams through a fixed amount of memory (the longest line).
#ifndef MOECAP_COMMON_RECORDS_LINE_READER_H_
#define MOECAP_COMMON_RECORDS_LINE_READER_H_

#include <cstddef>
#include <cstdint>
#include <istream>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace moecap::records {

class LineReader {
 public:
  static constexpr size_t kDefaultBlockBytes = size_t{64} << 10;
  // A line longer than this is an error rather than a reason to buffer without bound.
  static constexpr size_t kDefaultMaxLineBytes = size_t{256} << 20;

  explicit LineReader(std::istream& in, size_t block_bytes = kDefaultBlockBytes,
                      size_t max_line_bytes = kDefaultMaxLineBytes);

  // The next line, without its "\n" or "\r\n"; the view stays valid until the next call. False at
  // the end of the input or on an error (then status() says which).
  bool Next(absl::string_view* line);
  // 1-based number of the line Next returned last.
  int64_t line_number() const { return line_number_; }
  // Whether the line Next returned last ended the input without a newline (a writer stopped
  // mid-line leaves one).
  bool last_line_unterminated() const { return unterminated_; }
  const absl::Status& status() const { return status_; }

 private:
  std::istream& in_;
  size_t max_line_bytes_;
  std::vector<char> buffer_;
  size_t begin_ = 0;    // first unread byte
  size_t end_ = 0;      // one past the last byte read into the buffer
  size_t scanned_ = 0;  // bytes from begin_ known to hold no '\n'
  bool eof_ = false;
  int64_t line_number_ = 0;
  bool unterminated_ = false;
  absl::Status status_;
};

}  // namespace moecap::records

#endif  // MOECAP_COMMON_RECORDS_LINE_READER_H_
