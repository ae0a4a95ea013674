#include "common/json_text.h"

#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>

#include "common/utf8.h"

namespace parley {

std::string json_quote(std::string_view s) {
  if (valid_utf8(s)) return boost::json::serialize(boost::json::string_view(s.data(), s.size()));
  const std::string clean = utf8_replace_invalid(s);
  return boost::json::serialize(boost::json::string_view(clean.data(), clean.size()));
}

}  // namespace parley
