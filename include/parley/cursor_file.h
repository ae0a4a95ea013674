// A cursor (local pts) persisted in a small text file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace parley {

// Reads the decimal pts in `path`; nullopt if the file does not exist or does not hold one.
std::optional<int64_t> LoadCursorFile(const std::string& path);

// Writes `pts` to `path` atomically (temporary file + rename), mode 0600. Throws Error{"io_error"}.
void SaveCursorFile(const std::string& path, int64_t pts);

}  // namespace parley
