// Which installation a node is, across restarts: the name under which it claims its node id
// in a shared Registry (registry/registry.h). Kept in the data directory, so that a node that
// restarts after a crash takes its id back at once, while another installation configured
// with the same id is refused until the first one's claim expires.
#pragma once

#include <string>

#include "common/errc.h"

namespace parley::app {

// The instance name stored in `<data_dir>/node-instance`, created (random, 128 bits, hex) on
// first use. Errors: unavailable (the directory or the file cannot be read or written),
// bad_request (the file holds something else than a name this function wrote).
Result<std::string> node_instance(const std::string& data_dir);

}  // namespace parley::app
