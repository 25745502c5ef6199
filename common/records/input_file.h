// Opens a file a user hands `analyze` as it is: plain or gzip-compressed (by its magic bytes, so a
// .jsonl.gz read without its suffix works too), refusing a directory or an unreadable path with
// the reason. The stream decompresses as it is read, so a large .gz streams in constant memory.
#ifndef MOECAP_COMMON_RECORDS_INPUT_FILE_H_
#define MOECAP_COMMON_RECORDS_INPUT_FILE_H_

#include <istream>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace moecap::records {

struct InputFile {
  std::unique_ptr<std::istream> stream;
  bool gzip = false;
};

// NotFound for a missing or unreadable path, InvalidArgument for a directory; messages start
// with the path. "-" is not handled here (the caller reads stdin).
absl::StatusOr<InputFile> OpenInputFile(const std::string& path);

// Reads a whole input (for the one-object formats: serving summaries, config.json), decompressing
// gzip. The same errors.
absl::StatusOr<std::string> ReadInputFile(const std::string& path);

}  // namespace moecap::records

#endif  // MOECAP_COMMON_RECORDS_INPUT_FILE_H_
