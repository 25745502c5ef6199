// Fuzzes the input-file layer (plain or gzip by the magic bytes, zlib's reader behind a
// streambuf) with LineReader on top, as `analyze --records FILE.gz` reads. Besides crashes and
// sanitizer findings it checks: a plain file reads back byte for byte; a gzip one either reads to
// its end or reports lost data, never a silent short read that ReadInputFile and the line reader
// disagree on.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/records/input_file.h"
#include "common/records/line_reader.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string* const path = new std::string(
      (std::filesystem::temp_directory_path() / absl::StrCat("moecap_input_fuzz_", getpid()))
          .string());
  {
    std::ofstream out(*path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  const std::string original(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::string> whole = moecap::records::ReadInputFile(*path);
  absl::StatusOr<moecap::records::InputFile> input = moecap::records::OpenInputFile(*path);
  Check(input.ok());
  if (!input->gzip) {
    Check(whole.ok() && *whole == original);
  }
  moecap::records::LineReader reader(*input->stream);
  absl::string_view line;
  size_t bytes = 0;
  int64_t lines = 0;
  while (reader.Next(&line)) {
    bytes += line.size();
    ++lines;
  }
  // The two readers agree on whether the file could be read to its end.
  Check(reader.status().ok() == whole.ok());
  if (whole.ok()) Check(bytes <= whole->size());
  return 0;
}
