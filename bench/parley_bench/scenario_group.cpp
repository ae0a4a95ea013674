// group: G groups of M members at an aggregate rate R. Needs group chats, which parleyd
// does not have yet (only direct chats, docs/PROTOCOL.md): the options are parsed and
// checked so that scripts can be written now, and the run stops with exit code 3.
#include <cstdio>

#include <boost/json/object.hpp>

#include "report.h"
#include "scenarios.h"

namespace parley::bench {

int run_group(const CommonOptions& common, const GroupOptions& o) {
  if (o.groups == 0 || o.members < 2 || o.duration_s <= 0) {
    std::fprintf(stderr, "group: --groups > 0, --members >= 2 and --duration > 0 required\n");
    return 2;
  }
  std::fprintf(stderr,
               "group: not supported by this server yet: parleyd has only direct chats "
               "(protocol v1 has no group create/send); nothing was sent\n");
  if (common.json) {
    boost::json::object r;
    r["scenario"] = "group";
    r["error"] = "not supported by this server yet";
    r["groups"] = o.groups;
    r["members"] = o.members;
    r["offered_rate"] = o.rate;
    print_report(r, true);
  }
  return 3;
}

}  // namespace parley::bench
