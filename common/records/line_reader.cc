// Block-buffered line reading.
#include "common/records/line_reader.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace moecap::records {

LineReader::LineReader(std::istream& in, size_t block_bytes, size_t max_line_bytes)
    : in_(in), max_line_bytes_(max_line_bytes), buffer_(block_bytes > 0 ? block_bytes : 1) {}

bool LineReader::Next(absl::string_view* line) {
  if (!status_.ok()) return false;
  while (true) {
    const char* data = buffer_.data();
    const void* newline = std::memchr(data + begin_ + scanned_, '\n', end_ - begin_ - scanned_);
    if (newline != nullptr || (eof_ && begin_ < end_)) {
      const size_t stop =
          newline != nullptr ? static_cast<size_t>(static_cast<const char*>(newline) - data) : end_;
      size_t length = stop - begin_;
      if (length > 0 && data[begin_ + length - 1] == '\r') --length;
      *line = absl::string_view(data + begin_, length);
      begin_ = newline != nullptr ? stop + 1 : end_;
      unterminated_ = newline == nullptr;
      scanned_ = 0;
      ++line_number_;
      return true;
    }
    if (eof_) return false;
    scanned_ = end_ - begin_;
    if (scanned_ > max_line_bytes_) {
      status_ = absl::ResourceExhaustedError(
          absl::StrCat("line ", line_number_ + 1, " is longer than ", max_line_bytes_, " bytes"));
      return false;
    }
    // Keep the partial line, move it to the front, and make room for at least one more block.
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ == buffer_.size()) buffer_.resize(buffer_.size() * 2);
    in_.read(buffer_.data() + end_, static_cast<std::streamsize>(buffer_.size() - end_));
    const std::streamsize got = in_.gcount();
    if (in_.bad()) {
      status_ = absl::DataLossError(
          absl::StrCat("read error after line ", line_number_,
                       ": the file is damaged or cut short (a .gz whose end is missing?)"));
      return false;
    }
    end_ += static_cast<size_t>(got);
    if (got == 0 || in_.eof()) eof_ = true;
  }
}

}  // namespace moecap::records
