// Prints a scenario's results: a readable table, and with --json one JSON object on the
// last line of stdout.
#pragma once

#include <boost/json/object.hpp>

namespace parley::bench {

void print_report(const boost::json::object& results, bool json);

}  // namespace parley::bench
