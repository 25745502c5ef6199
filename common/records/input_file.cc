// Plain and gzip inputs behind one std::istream.
#include "common/records/input_file.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ios>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace moecap::records {
namespace {

// A read-only streambuf over zlib's gz reader (which also reads concatenated members).
class GzipStreambuf : public std::streambuf {
 public:
  explicit GzipStreambuf(gzFile file) : file_(file), buffer_(size_t{256} << 10) {}
  ~GzipStreambuf() override { gzclose(file_); }
  GzipStreambuf(const GzipStreambuf&) = delete;
  GzipStreambuf& operator=(const GzipStreambuf&) = delete;

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    const int got = gzread(file_, buffer_.data(), static_cast<unsigned>(buffer_.size()));
    if (got > 0) {
      setg(buffer_.data(), buffer_.data(), buffer_.data() + got);
      return traits_type::to_int_type(*gptr());
    }
    int errnum = Z_OK;
    const char* what = gzerror(file_, &errnum);
    if (got < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
      // A damaged or cut-short .gz must not read as a shorter file: the istream turns this into
      // badbit (it does not escape the stream), which the readers report as lost data.
      throw std::ios_base::failure(absl::StrCat("gzip: ", what));
    }
    return traits_type::eof();
  }

 private:
  gzFile file_;
  std::vector<char> buffer_;
};

class GzipStream : public std::istream {
 public:
  explicit GzipStream(gzFile file) : std::istream(nullptr), buf_(file) { rdbuf(&buf_); }

 private:
  GzipStreambuf buf_;
};

}  // namespace

absl::StatusOr<InputFile> OpenInputFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ": is a directory: pass the file inside it (MoE-CAP writes "
                     "expert_distribution_record.jsonl and detailed_results_*.jsonl)"));
  }
  auto plain = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!plain->is_open()) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  unsigned char magic[2] = {0, 0};
  plain->read(reinterpret_cast<char*>(magic), 2);
  const bool gzip = plain->gcount() == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  InputFile input;
  if (!gzip) {
    plain->clear();
    plain->seekg(0);
    input.stream = std::move(plain);
    return input;
  }
  plain.reset();
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  input.stream = std::make_unique<GzipStream>(file);
  input.gzip = true;
  return input;
}

absl::StatusOr<std::string> ReadInputFile(const std::string& path) {
  absl::StatusOr<InputFile> input = OpenInputFile(path);
  if (!input.ok()) return input.status();
  std::string text;
  std::vector<char> block(size_t{64} << 10);
  while (*input->stream) {
    input->stream->read(block.data(), static_cast<std::streamsize>(block.size()));
    text.append(block.data(), static_cast<size_t>(input->stream->gcount()));
  }
  if (input->stream->bad()) {
    return absl::DataLossError(
        absl::StrCat(path, ": read error after ", text.size(),
                     " bytes: the file is damaged or cut short (a .gz whose end is missing?)"));
  }
  return text;
}

}  // namespace moecap::records
