// The scenarios of parley-bench (issue 3). Each is bounded in count and time, stops by
// itself and returns the process exit code: 0 fine, 1 a correctness count or a failed
// connection is not zero, 2 bad options or setup, 3 not supported by this server.
#pragma once

#include "options.h"

namespace parley::bench {

int run_connections(const CommonOptions& common, const ConnectionsOptions& o);
int run_direct(const CommonOptions& common, const DirectOptions& o);
int run_sync(const CommonOptions& common, const SyncOptions& o);
int run_group(const CommonOptions& common, const GroupOptions& o);
int run_presence(const CommonOptions& common, const PresenceOptions& o);

}  // namespace parley::bench
