#include "presence/presence.h"

namespace parley::presence {

std::string_view to_string(Visibility v) {
  switch (v) {
    case Visibility::contacts:
      return "contacts";
    case Visibility::nobody:
      return "nobody";
    default:
      return "everyone";
  }
}

std::optional<Visibility> parse_visibility(std::string_view name) {
  if (name == "everyone") return Visibility::everyone;
  if (name == "contacts") return Visibility::contacts;
  if (name == "nobody") return Visibility::nobody;
  return std::nullopt;
}

}  // namespace parley::presence
