// The composition root: turns a Config into backends, wires the seams, runs the server
// until SIGTERM/SIGINT, then drains (DESIGN.md §5: the core only sees interfaces).
#pragma once

#include "common/config.h"

namespace parley::app {

// Blocks until the server stops. Returns the process exit code.
int run(const Config& config);

}  // namespace parley::app
