// The configuration of a parleyd node of a test cluster: its own node id, the test's Redis
// servers and PostgreSQL database (docs/SCALING.md), short reconnect backoffs.
#pragma once

#include <string>
#include <vector>

#include "support/server_process.h"

namespace parley::test {

// A TOML basic string holding `s`.
std::string toml_string(const std::string& s);
// A TOML array of basic strings.
std::string toml_strings(const std::vector<std::string>& items);

// A node of a cluster on these Redis servers and these PostgreSQL servers (shards, in order).
TomlConfig cluster_node_config(int node_id, const std::vector<std::string>& redis,
                               const std::vector<std::string>& postgres);

}  // namespace parley::test
