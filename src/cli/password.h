// Reading a password: $PARLEY_PASSWORD, else a prompt with echo off on a terminal, else one
// line of standard input.
#pragma once

#include <string>

namespace parley::cli {

// Throws UsageError when there is no password to be had.
std::string ReadPassword(const std::string& prompt);

}  // namespace parley::cli
