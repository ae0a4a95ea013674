#include "store/postgres/pg_connection.h"

#include <charconv>

namespace parley::store::pg {
namespace {

// Array elements are double-quoted, with `"` and `\` escaped (PostgreSQL array syntax).
std::string quote_element(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

// Every statement of the store finds its rows by key, through an index. Two planner
// defaults work against that on the tables a busy chat rewrites all the time (user_logs,
// chats, user_chats: few live rows among many dead versions, whose statistics say "tiny"):
// a sequential scan looks cheaper than the index and then reads every dead version (and
// their multixacts), and `= ANY($1)` statements are planned again at every execution
// instead of reusing their prepared plan. Measured on the cluster benchmark: PostgreSQL's
// CPU per message 1.1 -> 0.6-0.7 ms (docs/BENCHMARKS.md, "The planner, and fewer
// statements"). A sequential scan is
// still used where no index serves; a deployment may override both in its conninfo
// (options=...).
constexpr const char* kSessionOptions =
    "-c enable_seqscan=off -c plan_cache_mode=force_generic_plan";

}  // namespace

PgParam to_param(const PgTextArray& a) {
  std::string out = "{";
  for (size_t i = 0; i < a.values.size(); ++i) {
    if (i) out += ',';
    out += quote_element(a.values[i]);
  }
  return out + "}";
}

PgParam to_param(const PgIntArray& a) {
  std::string out = "{";
  for (size_t i = 0; i < a.values.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(a.values[i]);
  }
  return out + "}";
}

int64_t PgResult::i64(int row, int col) const {
  if (null(row, col)) return 0;
  auto v = view(row, col);
  int64_t out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

std::string PgResult::bytes(int row, int col) const {
  auto v = view(row, col);
  if (v.size() < 2 || v[0] != '\\' || v[1] != 'x') return std::string(v);  // not hex output
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 0;
  };
  std::string out;
  out.reserve((v.size() - 2) / 2);
  for (size_t i = 2; i + 1 < v.size(); i += 2)
    out.push_back(static_cast<char>(nibble(v[i]) << 4 | nibble(v[i + 1])));
  return out;
}

PgConn::PgConn(const std::string& conninfo, int connect_timeout_s, int statement_timeout_ms) {
  // expand_dbname: `conninfo` is a whole connection string (or URI); the keywords after it
  // override what it says.
  std::string timeout = std::to_string(connect_timeout_s > 0 ? connect_timeout_s : 10);
  // Defaults first, which `conninfo` may override: TCP keepalives, so that a server that
  // vanished from the network (no RST) is noticed within about 20 s even while a statement
  // waits for its answer, instead of the kernel's many minutes; and the planner settings of
  // kSessionOptions. connect_timeout last: the configured one wins.
  const char* keys[] = {"keepalives",       "keepalives_idle",  "keepalives_interval",
                        "keepalives_count", "application_name", "options",
                        "dbname",           "connect_timeout",  nullptr};
  const char* values[] = {
      "1", "10", "3", "3", "parleyd", kSessionOptions, conninfo.c_str(), timeout.c_str(), nullptr};
  conn_ = PQconnectdbParams(keys, values, 1);
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    std::string msg = conn_ ? PQerrorMessage(conn_) : "out of memory";
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    throw PgError("connect: " + msg, "08006", true);
  }
  // Notices (IF NOT EXISTS skips and the like) are not errors: not printed.
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
  try {
    run("SET statement_timeout = " + std::to_string(statement_timeout_ms));
  } catch (...) {
    // The server went away right after the connect: a constructor that throws runs no
    // destructor, so the connection is closed here (LeakSanitizer found it leaking).
    PQfinish(conn_);
    conn_ = nullptr;
    throw;
  }
}

std::string PgConn::error_message() const {
  std::string msg = conn_ ? PQerrorMessage(conn_) : "";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg.empty() ? "connection lost" : msg;
}

std::string PgConn::describe() const {
  auto text = [](const char* v) { return std::string(v ? v : ""); };
  if (!conn_) return "?";
  return text(PQhost(conn_)) + ":" + text(PQport(conn_)) + "/" + text(PQdb(conn_));
}

PgConn::~PgConn() {
  if (conn_) PQfinish(conn_);
}

namespace {
// The error a result carries, or nothing if it succeeded.
std::optional<PgError> error_of(PGconn* conn, PGresult* r) {
  auto status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return std::nullopt;
  std::string state;
  if (r)
    if (const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) state = s;
  bool lost = PQstatus(conn) != CONNECTION_OK;
  std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(conn);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (state.empty() && lost) state = "08006";
  return PgError(msg, state, lost);
}

void check_text(const std::vector<PgParam>& params) {
  for (const auto& p : params)
    if (!p.binary && p.value && p.value->find('\0') != std::string::npos)
      throw PgError("a text value holds a NUL byte", "22021", false);
}

struct ParamArrays {
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  explicit ParamArrays(const std::vector<PgParam>& params) {
    for (const auto& p : params) {
      values.push_back(p.value ? p.value->data() : nullptr);
      lengths.push_back(p.value ? static_cast<int>(p.value->size()) : 0);
      formats.push_back(p.binary ? 1 : 0);
    }
  }
  int size() const { return static_cast<int>(values.size()); }
};
}  // namespace

PgResult PgConn::check(PGresult* r) {
  PgResult res(r);
  if (auto e = error_of(conn_, r)) throw *e;
  return res;
}

const std::string& PgConn::statement_name(const std::string& sql, bool* fresh) {
  auto it = prepared_.find(sql);
  *fresh = it == prepared_.end();
  if (*fresh) it = prepared_.emplace(sql, "s" + std::to_string(prepared_.size())).first;
  return it->second;
}

PgResult PgConn::exec(const std::string& sql, const std::vector<PgParam>& params) {
  check_text(params);
  if (!queued_.empty()) return pipeline(Queued{sql, params, true});
  bool fresh = false;
  const std::string& name = statement_name(sql, &fresh);
  if (fresh) {
    ++round_trips_;
    try {
      check(PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr));
    } catch (...) {
      prepared_.erase(sql);
      throw;
    }
  }
  ParamArrays a(params);
  ++round_trips_;
  return check(PQexecPrepared(conn_, name.c_str(), a.size(), a.values.data(), a.lengths.data(),
                              a.formats.data(), 0));
}

PgResult PgConn::run(const std::string& sql) {
  if (!queued_.empty()) {
    // Several statements in one string need the simple protocol: send the queue first.
    if (sql.find(';') != std::string::npos) {
      flush();
    } else {
      return pipeline(Queued{sql, {}, false});
    }
  }
  ++round_trips_;
  return check(PQexec(conn_, sql.c_str()));
}

void PgConn::later(const std::string& sql, std::vector<PgParam> params) {
  check_text(params);
  if (queued_.size() >= kMaxQueued) flush();
  const bool prepared = !params.empty();
  queued_.push_back(Queued{sql, std::move(params), prepared});
}

void PgConn::flush() {
  if (!queued_.empty()) pipeline(std::nullopt);
}

PgResult PgConn::pipeline(std::optional<Queued> last) {
  std::vector<Queued> items = std::move(queued_);
  queued_.clear();
  if (last) items.push_back(std::move(*last));
  auto lost = [this](const std::string& what) {
    return PgError(what + ": " + error_message(), "08006", true);
  };
  if (PQenterPipelineMode(conn_) != 1) throw lost("pipeline");
  // Each entry is one command whose result comes back in order: a Prepare (of a statement
  // new to this connection), or a statement.
  struct Sent {
    const std::string* prepared_sql = nullptr;  // a Prepare: recorded once it succeeded
    bool last = false;
  };
  std::vector<Sent> sent;
  std::unordered_map<std::string, std::string> fresh;  // prepared in this pipeline
  for (size_t i = 0; i < items.size(); ++i) {
    const Queued& q = items[i];
    int ok = 1;
    if (!q.prepared) {
      ok = PQsendQueryParams(conn_, q.sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0);
    } else {
      std::string name;
      if (auto it = prepared_.find(q.sql); it != prepared_.end()) {
        name = it->second;
      } else if (auto f = fresh.find(q.sql); f != fresh.end()) {
        name = f->second;
      } else {
        name = "s" + std::to_string(prepared_.size() + fresh.size());
        fresh.emplace(q.sql, name);
        ok = PQsendPrepare(conn_, name.c_str(), q.sql.c_str(), 0, nullptr);
        sent.push_back(Sent{&q.sql, false});
      }
      ParamArrays a(q.params);
      if (ok)
        ok = PQsendQueryPrepared(conn_, name.c_str(), a.size(), a.values.data(), a.lengths.data(),
                                 a.formats.data(), 0);
    }
    if (!ok) throw lost("pipeline send");
    sent.push_back(Sent{nullptr, last && i + 1 == items.size()});
  }
  if (PQpipelineSync(conn_) != 1) throw lost("pipeline sync");
  ++round_trips_;
  std::optional<PgError> first_error;
  PgResult result;
  for (const Sent& s : sent) {
    PGresult* r = PQgetResult(conn_);
    if (!r) throw lost("pipeline");
    PgResult held(r);
    if (PQresultStatus(r) != PGRES_PIPELINE_ABORTED) {
      if (auto e = error_of(conn_, r)) {
        if (!first_error) first_error = std::move(e);
      } else if (s.prepared_sql) {
        prepared_.emplace(*s.prepared_sql, fresh.at(*s.prepared_sql));
      }
    }
    if (s.last) result = held;
    // Each command's results end with a NULL.
    if (PGresult* extra = PQgetResult(conn_)) {
      PQclear(extra);
      throw lost("pipeline out of step");
    }
  }
  PGresult* sync = PQgetResult(conn_);
  const bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  if (sync) PQclear(sync);
  if (!synced || PQexitPipelineMode(conn_) != 1) throw lost("pipeline end");
  if (first_error) throw *first_error;
  return result;
}

}  // namespace parley::store::pg
