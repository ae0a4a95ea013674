#include "support/cluster_helpers.h"

namespace parley::test {

std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string toml_strings(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + toml_string(items[i]);
  return out + "]";
}

TomlConfig cluster_node_config(int node_id, const std::vector<std::string>& redis,
                               const std::vector<std::string>& postgres) {
  auto c = TomlConfig::test_defaults();
  c.set("server", "node_id", std::to_string(node_id));
  c.set("cluster", "redis", toml_strings(redis));
  c.set("cluster", "postgres", toml_strings(postgres));
  c.set("cluster", "reconnect_min_ms", "20");
  c.set("cluster", "reconnect_max_ms", "500");
  return c;
}

}  // namespace parley::test
