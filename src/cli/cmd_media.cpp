// parley download MEDIA_ID -o PATH [--name NAME] [--force] [--resume] (docs/MEDIA.md).
#include <sys/stat.h>

#include <filesystem>

#include <boost/json/serialize.hpp>

#include "cli/cli.h"
#include "cli/one_shot.h"
#include "cli/output.h"
#include "cli/profile.h"
#include "parley/http_api.h"

namespace parley::cli {

int RunDownload(const Globals& g, const DownloadArgs& args) {
  auto timeout = Seconds(args.timeout_s, "--timeout");
  std::string path = args.output;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    // Into a directory: the --name (its last component only: never a path) or the id.
    std::string file = std::filesystem::path(args.name).filename().string();
    if (file.empty() || file == "." || file == "..") file = args.media_id;
    path = (std::filesystem::path(path) / file).string();
  }
  Profile profile = RequireLogin(g);
  MediaDownloadOptions download;
  download.overwrite = args.force;
  download.resume = args.resume;
  download.name = args.name;
  HttpOptions http;
  http.timeout = timeout;
  MediaDownload d =
      DownloadMedia(profile.server, profile.token, args.media_id, path, download, http);
  if (g.json) {
    PrintLine(boost::json::serialize(boost::json::object{{"id", args.media_id},
                                                         {"path", d.path},
                                                         {"size", d.size},
                                                         {"received", d.received},
                                                         {"type", d.content_type},
                                                         {"resumed", d.resumed}}));
  } else {
    // downloaded 9f86d0... to cat.jpg: 48213 bytes (image/jpeg)
    std::string line = "downloaded " + args.media_id + " to " + EscapeControl(d.path) + ": " +
                       std::to_string(d.size) + " bytes";
    if (!d.content_type.empty()) line += " (" + EscapeControl(d.content_type) + ")";
    if (d.resumed) line += ", resumed: " + std::to_string(d.received) + " bytes received now";
    PrintLine(line);
  }
  return kExitOk;
}

}  // namespace parley::cli
