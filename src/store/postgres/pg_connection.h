// libpq wrappers of the PostgreSQL backend: an owned connection (PgConn) and result
// (PgResult), and parameterised statements. Values only ever travel as parameters
// (PQexecPrepared / PQexecParams), never inside SQL text.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace parley::store::pg {

// SQLSTATEs the backend acts on.
inline constexpr std::string_view kUniqueViolation = "23505";
inline constexpr std::string_view kDeadlock = "40P01";
inline constexpr std::string_view kSerialization = "40001";
inline constexpr std::string_view kLockTimeout = "55P03";  // lock_not_available

// A failed statement. `connection_lost`: the connection is unusable (the op is retryable
// on another connection, and nothing of its transaction committed).
class PgError : public std::runtime_error {
 public:
  PgError(std::string message, std::string sqlstate, bool connection_lost)
      : std::runtime_error(std::move(message)),
        sqlstate_(std::move(sqlstate)),
        connection_lost_(connection_lost) {}
  const std::string& sqlstate() const { return sqlstate_; }
  bool connection_lost() const { return connection_lost_; }
  // Deadlock or serialization failure: the whole transaction may be run again.
  bool retryable() const { return sqlstate_ == kDeadlock || sqlstate_ == kSerialization; }

 private:
  std::string sqlstate_;
  bool connection_lost_;
};

// A text array parameter ('{"a","b"}'), for `= ANY($n)` and unnest().
struct PgTextArray {
  std::vector<std::string> values;
};
struct PgIntArray {
  std::vector<int64_t> values;
};

// Bytes sent as they are (binary format, for a bytea column): message bodies may hold any
// byte, NUL included, which a text parameter cannot carry.
struct PgBytes {
  std::string_view data;
};

// One parameter: text format unless `binary`; no value is SQL NULL. A text parameter that
// holds a NUL byte is refused (PgError 22021, a bad request) instead of being cut short.
struct PgParam {
  std::optional<std::string> value;
  bool binary = false;
  PgParam() = default;
  PgParam(std::string v) : value(std::move(v)) {}  // NOLINT: implicit by design
  PgParam(std::nullopt_t) {}                       // NOLINT
};

inline PgParam to_param(const std::string& s) { return s; }
inline PgParam to_param(std::string_view s) { return std::string(s); }
inline PgParam to_param(const char* s) { return std::string(s); }
inline PgParam to_param(bool b) { return std::string(b ? "t" : "f"); }
inline PgParam to_param(int64_t v) { return std::to_string(v); }
inline PgParam to_param(int32_t v) { return std::to_string(v); }
// Unsigned ids and counters are stored as bigint: the same 64 bits, read back unchanged.
inline PgParam to_param(uint64_t v) { return std::to_string(static_cast<int64_t>(v)); }
inline PgParam to_param(uint32_t v) { return std::to_string(v); }
PgParam to_param(const PgTextArray& a);
PgParam to_param(const PgIntArray& a);
inline PgParam to_param(const PgBytes& b) {
  PgParam p(std::string(b.data));
  p.binary = true;
  return p;
}
template <class T>
PgParam to_param(const std::optional<T>& v) {
  if (!v) return std::nullopt;
  return to_param(*v);
}

class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* r) : r_(r, &PQclear) {}
  int rows() const { return r_ ? PQntuples(r_.get()) : 0; }
  bool empty() const { return rows() == 0; }
  bool null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string_view view(int row, int col) const {
    return {PQgetvalue(r_.get(), row, col), static_cast<size_t>(PQgetlength(r_.get(), row, col))};
  }
  std::string str(int row, int col) const { return std::string(view(row, col)); }
  // A bytea column (text result format: \x and hex digits).
  std::string bytes(int row, int col) const;
  int64_t i64(int row, int col) const;  // NULL reads as 0
  uint64_t u64(int row, int col) const { return static_cast<uint64_t>(i64(row, col)); }
  bool boolean(int row, int col) const { return view(row, col) == "t"; }

 private:
  std::shared_ptr<PGresult> r_;
};

class PgConn {
 public:
  // Connects; throws PgError (connection_lost) with libpq's message on failure.
  // `connect_timeout_s` and `statement_timeout_ms` (0: none) apply to this session.
  PgConn(const std::string& conninfo, int connect_timeout_s, int statement_timeout_ms);
  ~PgConn();
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }
  // Reads what the server sent meanwhile: false if it closed the connection (a restart, an
  // administrator's kill), so that a stale connection is replaced before it fails an op.
  bool alive() { return PQconsumeInput(conn_) != 0 && ok(); }
  // libpq's message about the connection's latest failure ("connection lost" if none).
  std::string error_message() const;
  // Which server and database this is, for messages: host:port/dbname (never the password).
  std::string describe() const;
  // A statement with parameters, prepared once per connection and reused.
  PgResult exec(const std::string& sql, const std::vector<PgParam>& params);
  template <class... Args>
  PgResult q(const std::string& sql, const Args&... args) {
    return exec(sql, std::vector<PgParam>{to_param(args)...});
  }
  // Statements without parameters (BEGIN, COMMIT, migrations' DDL): simple protocol.
  PgResult run(const std::string& sql);

  // A statement whose answer nobody reads (BEGIN, SAVEPOINT, an INSERT without RETURNING):
  // queued, and sent with the next statement that is awaited (exec, q, run or flush) in one
  // round trip (libpq's pipeline mode). PostgreSQL runs them in order; the first error of
  // any of them is thrown there. So a queued statement must be one whose error its caller
  // would not catch (the ops never catch PgError: it fails the op or its savepoint).
  // At most kMaxQueued wait: the next one sends them first (a blocking connection that sent
  // without reading could otherwise fill both sockets' buffers and wait on the server
  // forever, libpq's pipeline warning), so an error may also come out of later() itself.
  void later(const std::string& sql, std::vector<PgParam> params = {});
  static constexpr size_t kMaxQueued = 256;
  template <class... Args>
  void later_q(const std::string& sql, const Args&... args) {
    later(sql, std::vector<PgParam>{to_param(args)...});
  }
  // Sends what is queued and waits for it (nothing queued: no round trip).
  void flush();
  // Round trips to the server so far (a pipeline counts once): for benchmarks and tests.
  uint64_t round_trips() const { return round_trips_; }

 private:
  struct Queued {
    std::string sql;
    std::vector<PgParam> params;
    bool prepared = true;  // false: a parameterless one-off (BEGIN, SAVEPOINT ...)
  };
  PgResult check(PGresult* r);
  // Runs the queued statements and then `last` (if any) in one pipeline; returns the result
  // of `last`.
  PgResult pipeline(std::optional<Queued> last);
  const std::string& statement_name(const std::string& sql, bool* fresh);
  PGconn* conn_ = nullptr;
  std::unordered_map<std::string, std::string> prepared_;  // sql -> statement name
  std::vector<Queued> queued_;
  uint64_t round_trips_ = 0;
};

}  // namespace parley::store::pg
