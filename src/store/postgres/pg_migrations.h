// Versioned schema migrations of the PostgreSQL backend: an ordered list in code, applied at
// start in one transaction under an advisory lock, recorded in parley_schema_migrations.
#pragma once

#include <string>
#include <vector>

#include "common/errc.h"
#include "store/postgres/pg_connection.h"

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

}  // namespace parley::store::pg
