// The tests' own PostgreSQL and Redis servers (postgres_server.h, redis_server.h): they
// start on loopback in temporary directories, survive a crash and a restart on the same
// port and data, and leave nothing behind.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <filesystem>

#include "support/postgres_server.h"
#include "support/redis_server.h"

namespace parley::test {
namespace {

std::string query_one(const std::string& conninfo, const std::string& sql) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  EXPECT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
  PGresult* r = PQexec(c, sql.c_str());
  std::string out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                        ? PQgetvalue(r, 0, 0)
                        : std::string("error: ") + PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(c);
  return out;
}

TEST(PostgresServer, StartsCreatesDatabasesAndSurvivesACrash) {
  std::filesystem::path dir;
  {
    PostgresServer pg;
    dir = pg.directory();
    EXPECT_TRUE(pg.running());
    pg.create_database("fixture_db");
    pg.execute("CREATE TABLE t (v int)", "fixture_db");
    pg.execute("INSERT INTO t VALUES (42)", "fixture_db");
    EXPECT_EQ(query_one(pg.conninfo("fixture_db"), "SELECT v FROM t"), "42");
    EXPECT_THROW(pg.create_database("fixture_db"), std::runtime_error);  // exists

    pg.kill();  // a crash: committed rows survive recovery
    EXPECT_FALSE(pg.running());
    EXPECT_EQ(PQping(pg.conninfo().c_str()), PQPING_NO_RESPONSE);
    pg.start();
    EXPECT_EQ(query_one(pg.conninfo("fixture_db"), "SELECT v FROM t"), "42");

    pg.stop();
    pg.start();
    pg.drop_database("fixture_db");
    PGconn* gone = PQconnectdb(pg.conninfo("fixture_db").c_str());
    EXPECT_NE(PQstatus(gone), CONNECTION_OK);
    EXPECT_NE(std::string(PQerrorMessage(gone)).find("does not exist"), std::string::npos);
    PQfinish(gone);
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(PostgresServer, SharedIsOnePerProcess) {
  EXPECT_EQ(&PostgresServer::shared(), &PostgresServer::shared());
  EXPECT_EQ(query_one(PostgresServer::shared().conninfo(), "SELECT current_user"), "parley");
}

TEST(RedisServer, StartsStopsAndComesBackOnItsPort) {
  RedisServer redis;
  const int port = redis.port();
  EXPECT_TRUE(redis.running());
  EXPECT_EQ(redis.address(), "127.0.0.1:" + std::to_string(port));
  redis.kill();
  EXPECT_FALSE(redis.running());
  redis.start();
  EXPECT_TRUE(redis.running());
  EXPECT_EQ(redis.port(), port);
  redis.stop();
  EXPECT_FALSE(redis.running());
}

}  // namespace
}  // namespace parley::test
