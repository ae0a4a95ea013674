// Versioned schema migrations of the PostgreSQL backend: an ordered list in code, applied at
// start in one transaction under an advisory lock, recorded in parley_schema_migrations.
#pragma once

#include <string>
#include <vector>

#include "common/errc.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_placement.h"

namespace parley::store::pg {

struct Migration {
  int version;       // 1, 2, 3, ... in order, never reused
  const char* name;  // what it does, for the table and the logs
  const char* sql;   // DDL only (no values), run as one multi-statement string
};

const std::vector<Migration>& migrations();

// Brings the database to the latest version. Two nodes starting at once serialise on the
// advisory lock; the second finds nothing left to do. A database whose version is newer than
// the newest migration here is refused (an older parleyd must not write a newer schema).
Status migrate(PgConn& conn);

// The server's place in the list of servers (parley_shard): every node must list the servers
// in the same order. With `record` (after migrate) the first open records `p`; otherwise the
// place is only read (a database not migrated yet has none). unavailable, saying what is
// recorded and what was listed, if the server holds another place or list size.
Status check_place(PgConn& conn, const Placement& p, bool record);

}  // namespace parley::store::pg
