// parleyd: the Parley chat server.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "app/app.h"
#include "common/config.h"

int main(int argc, char** argv) {
  CLI::App cli{"parleyd: the Parley chat server"};
  std::string config_file, listen, data_dir, log_level, web_root;
  uint32_t threads = 0;
  cli.add_option("--config", config_file, "TOML configuration file (docs/CONFIG.md)");
  cli.add_option("--listen", listen,
                 "HOST:PORT to listen on (default 127.0.0.1:8080; port 0 = any)");
  cli.add_option("--data-dir", data_dir, "data directory (default ./data)");
  cli.add_option("--web-root", web_root, "serve the web client from this directory");
  cli.add_option("--threads", threads, "I/O threads (default: one per core)");
  cli.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  CLI11_PARSE(cli, argc, argv);

  auto logger = spdlog::stderr_color_mt("parleyd");
  spdlog::set_default_logger(logger);

  parley::Config config;
  if (!config_file.empty()) {
    auto loaded = parley::load_config_file(config_file);
    if (!loaded) {
      spdlog::error("{}", loaded.error().message);
      return 2;
    }
    config = std::move(loaded.value());
  }
  if (!listen.empty()) config.server.listen = listen;
  if (!data_dir.empty()) config.server.data_dir = data_dir;
  if (!web_root.empty()) config.server.web_root = web_root;
  if (threads) config.server.threads = threads;
  if (!log_level.empty()) config.log_level = log_level;
  auto level = spdlog::level::from_str(config.log_level);
  if (level == spdlog::level::off && config.log_level != "off") {
    spdlog::error("unknown log level {}", config.log_level);
    return 2;
  }
  spdlog::set_level(level);
  return parley::app::run(config);
}
