#include "core/media_descriptor.h"

#include <fmt/format.h>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include "media_inspect/file_name.h"

namespace parley::core {
namespace {

std::string quoted(std::string_view s) {
  return boost::json::serialize(boost::json::string_view(s.data(), s.size()));
}

std::string common_fields(const store::MediaRecord& r) {
  std::string out = fmt::format(R"("id":"{}","type":{},"kind":{},"size":{})", r.id, quoted(r.mime),
                                quoted(r.kind), r.size);
  if (r.width > 0 && r.height > 0)
    out += fmt::format(R"(,"width":{},"height":{})", r.width, r.height);
  return out;
}

}  // namespace

std::string media_descriptor_json(const store::MediaRecord& record, const proto::MediaSend& send) {
  std::string out = "{";
  out += common_fields(record);
  if (!send.name.empty())
    out += fmt::format(R"(,"name":{})", quoted(media_inspect::sanitize_file_name(send.name)));
  if (!send.caption.empty()) out += fmt::format(R"(,"caption":{})", quoted(send.caption));
  if (!record.thumb_id.empty())
    out += fmt::format(R"(,"thumbnail":{{"id":"{}","width":{},"height":{}}})", record.thumb_id,
                       record.thumb_width, record.thumb_height);
  out += '}';
  return out;
}

std::string upload_result_json(const store::MediaRecord& record, const store::MediaRecord* thumb) {
  std::string out = "{";
  out += common_fields(record);
  if (thumb) out += R"(,"thumbnail":{)" + common_fields(*thumb) + "}";
  out += '}';
  return out;
}

}  // namespace parley::core
