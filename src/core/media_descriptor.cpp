#include "core/media_descriptor.h"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "media_inspect/file_name.h"

namespace json = boost::json;

namespace parley::core {
namespace {

json::object common_fields(const store::MediaRecord& r) {
  json::object o{{"id", r.id}, {"type", r.mime}, {"kind", r.kind}, {"size", r.size}};
  if (r.width > 0 && r.height > 0) {
    o["width"] = r.width;
    o["height"] = r.height;
  }
  return o;
}

}  // namespace

std::string media_descriptor_json(const store::MediaRecord& record, const proto::MediaSend& send) {
  json::object o = common_fields(record);
  if (!send.name.empty()) o["name"] = media_inspect::sanitize_file_name(send.name);
  if (!send.caption.empty()) o["caption"] = send.caption;
  if (!record.thumb_id.empty())
    o["thumbnail"] = json::object{
        {"id", record.thumb_id}, {"width", record.thumb_width}, {"height", record.thumb_height}};
  return json::serialize(o);
}

std::string upload_result_json(const store::MediaRecord& record, const store::MediaRecord* thumb) {
  json::object o = common_fields(record);
  if (thumb) o["thumbnail"] = common_fields(*thumb);
  return json::serialize(o);
}

}  // namespace parley::core
