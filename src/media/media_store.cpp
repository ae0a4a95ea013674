#include "media/media_store.h"

namespace parley::media {

bool is_valid_id(std::string_view id) {
  if (id.size() != 64) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Status check_id(std::string_view id) {
  if (is_valid_id(id)) return ok_status();
  return Error{Errc::bad_request, "media: an id is 64 lowercase hex characters"};
}

}  // namespace parley::media
