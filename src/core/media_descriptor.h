// The JSON that describes an attachment: in media messages (docs/MEDIA.md, "Media
// messages") and in upload answers ("HTTP API"). Built only from what the server worked
// out at upload, plus the sender's sanitized file name and caption.
#pragma once

#include <string>

#include "proto/frames.h"
#include "store/types.h"

namespace parley::core {

// {"id","type","kind","size"[,"name"][,"width","height"][,"caption"][,"thumbnail":{...}]}:
// the body the store keeps for a media message.
std::string media_descriptor_json(const store::MediaRecord& record, const proto::MediaSend& send);

// The answer to an upload: {"id","type","kind","size"[,"width","height"][,"thumbnail":
// {"id","type","size","width","height"}]}. `thumb` may be null.
std::string upload_result_json(const store::MediaRecord& record, const store::MediaRecord* thumb);

}  // namespace parley::core
