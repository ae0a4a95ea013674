#include "support/postgres_server.h"

#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/child_process.h"
#include "support/redis_server.h"

namespace parley::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Debian installs the server programs outside PATH, per major version.
std::string find_bin_dir() {
  std::string best;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const fs::path bin = entry.path() / "bin";
    if (fs::exists(bin / "postgres") && fs::exists(bin / "initdb") && bin.string() > best)
      best = bin.string();
  }
  if (best.empty())
    throw std::runtime_error(
        "PostgreSQL server programs not found under /usr/lib/postgresql: install postgresql "
        "(tools/deps.sh --test does)");
  return best;
}

struct Connection {
  PGconn* conn;
  explicit Connection(const std::string& conninfo) : conn(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(conn) != CONNECTION_OK) {
      std::string why = PQerrorMessage(conn);
      PQfinish(conn);
      throw std::runtime_error("cannot connect to the test PostgreSQL: " + why);
    }
  }
  ~Connection() { PQfinish(conn); }
  void execute(const std::string& sql) {
    PGresult* r = PQexec(conn, sql.c_str());
    const auto status = PQresultStatus(r);
    std::string why = PQresultErrorMessage(r);
    PQclear(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
      throw std::runtime_error("test PostgreSQL: `" + sql + "` failed: " + why);
  }
  std::string identifier(const std::string& name) {
    char* quoted = PQescapeIdentifier(conn, name.c_str(), name.size());
    if (!quoted) throw std::runtime_error("bad identifier: " + name);
    std::string out = quoted;
    PQfreemem(quoted);
    return out;
  }
};

}  // namespace

PostgresServer& PostgresServer::shared() {
  static PostgresServer server;
  return server;
}

PostgresServer::PostgresServer() : bin_(find_bin_dir()) {
  char tmpl[] = "/tmp/parley-pg-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  data_ = dir_ / "data";

  // postgres refuses to run as root: then the package's system user runs it.
  as_postgres_user_ = ::geteuid() == 0;
  if (as_postgres_user_) {
    const passwd* pw = ::getpwnam("postgres");
    if (!pw) throw std::runtime_error("running as root and there is no `postgres` user");
    if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0)
      throw std::runtime_error("chown of " + dir_.string() + " failed");
  }

  std::vector<std::string> argv = {bin_ + "/initdb", "-D",           data_.string(), "-U",
                                   "parley",         "--auth=trust", "-E",           "UTF8",
                                   "--locale=C",     "--no-sync"};
  if (as_postgres_user_)
    argv.insert(argv.begin(),
                {"setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--"});
  auto init = ChildProcess::run(argv, {}, std::nullopt, 120s);
  if (!init.status.ok()) {
    fs::remove_all(dir_);
    throw std::runtime_error("initdb failed (" + init.status.describe() + "): " + init.err +
                             init.out);
  }
  for (int attempt = 0;; ++attempt) {
    port_ = free_loopback_port();
    try {
      launch();
      return;
    } catch (const std::exception&) {
      // Another process took the port between our probe and postgres' bind: try another.
      if (attempt >= 3) {
        fs::remove_all(dir_);
        throw;
      }
    }
  }
}

PostgresServer::~PostgresServer() {
  stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string PostgresServer::conninfo(const std::string& dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=parley dbname=" + dbname +
         " connect_timeout=5";
}

void PostgresServer::execute(const std::string& sql, const std::string& dbname) {
  Connection(conninfo(dbname)).execute(sql);
}

void PostgresServer::create_database(const std::string& name) {
  Connection c(conninfo());
  c.execute("CREATE DATABASE " + c.identifier(name) + " TEMPLATE template0 ENCODING 'UTF8'");
}

void PostgresServer::drop_database(const std::string& name) {
  Connection c(conninfo());
  c.execute("DROP DATABASE IF EXISTS " + c.identifier(name) + " WITH (FORCE)");
}

void PostgresServer::launch() {
  // Test settings: see the header. max_connections covers several stores with their pools.
  std::vector<std::string> argv = {bin_ + "/postgres",
                                   "-D",
                                   data_.string(),
                                   "-p",
                                   std::to_string(port_),
                                   "-k",
                                   dir_.string(),
                                   "-c",
                                   "listen_addresses=127.0.0.1",
                                   "-c",
                                   "fsync=off",
                                   "-c",
                                   "full_page_writes=off",
                                   "-c",
                                   "max_connections=300",
                                   "-c",
                                   "shared_buffers=64MB",
                                   "-c",
                                   "log_min_messages=warning",
                                   "-c",
                                   "log_min_error_statement=panic"};
  if (as_postgres_user_)
    argv.insert(argv.begin(),
                {"setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--"});
  child_ = std::make_unique<ChildProcess>(
      ChildProcess::Options{.argv = argv,
                            .out = ChildProcess::Output::file(dir_ / "postgres.log", true),
                            .err = ChildProcess::Output::file(dir_ / "postgres.log", true),
                            .kill_grace = 30s});
  const std::string info = conninfo();
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (PQping(info.c_str()) == PQPING_OK) return;
    if (!child_->running()) break;
    std::this_thread::sleep_for(20ms);
  }
  const std::string why = log();
  child_->kill();
  child_.reset();
  throw std::runtime_error("postgres did not start on port " + std::to_string(port_) + ": " + why);
}

void PostgresServer::stop() {
  if (!child_) return;
  if (child_->running()) {
    child_->signal(SIGINT);  // fast shutdown: disconnects clients, checkpoints, exits
    if (!child_->wait_for(30s)) child_->kill();
  }
  child_.reset();
}

void PostgresServer::kill() {
  if (!child_) return;
  child_->kill();
  child_.reset();
}

void PostgresServer::start() {
  if (child_ && child_->running()) return;
  child_.reset();
  launch();
}

bool PostgresServer::running() { return child_ && child_->running(); }

std::string PostgresServer::log() const {
  std::ifstream in(dir_ / "postgres.log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace parley::test
