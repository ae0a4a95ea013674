// Finding programs the tests start (node for s3rver and the push receivers).
#pragma once

#include <string>

namespace parley::test {

// The full path of executable `name` on PATH, or "" when there is none.
std::string find_in_path(const std::string& name);

}  // namespace parley::test
