#include "media_inspect/thumbnail.h"

#include <vips/vips.h>

#include <cstdio>
#include <fstream>
#include <mutex>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace parley::media_inspect {
namespace {

// The loaders left usable. Every other loader is blocked: ImageMagick, poppler, rsvg, TIFF,
// HEIF and friends are a large attack surface a chat server has no use for.
constexpr const char* kAllowedLoaders[] = {"VipsForeignLoadJpeg", "VipsForeignLoadPng",
                                           "VipsForeignLoadNsgif", "VipsForeignLoadWebp"};

// Owns one GObject reference (VipsImage, VipsSource, ...).
template <class T>
class Ref {
 public:
  Ref() = default;
  explicit Ref(T* p) : p_(p) {}
  ~Ref() { reset(); }
  Ref(const Ref&) = delete;
  Ref& operator=(const Ref&) = delete;
  Ref& operator=(Ref&& other) noexcept {
    if (this != &other) {
      reset();
      p_ = std::exchange(other.p_, nullptr);
    }
    return *this;
  }
  T* get() const { return p_; }
  T** out() {
    reset();
    return &p_;
  }
  void reset() {
    if (p_ != nullptr) g_object_unref(p_);
    p_ = nullptr;
  }

 private:
  T* p_ = nullptr;
};

// libvips keeps one error buffer for the whole process: take (and clear) what is there, for
// the server log only. It may hold another thread's message, so it never reaches a client.
std::string take_vips_error() {
  char* text = vips_error_buffer_copy();
  std::string out = text != nullptr ? text : "";
  g_free(text);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

Error vips_failure(Errc code, std::string_view message) {
  spdlog::debug("media: {}: {}", message, take_vips_error());
  return Error{code, std::string(message)};
}

// Library warnings (truncated data, bad markers, ...) go to the debug log, not to stderr.
void log_vips_message(const gchar* /*domain*/, GLogLevelFlags /*level*/, const gchar* message,
                      gpointer /*data*/) {
  spdlog::debug("media: libvips: {}", message != nullptr ? message : "");
}

Status init_once() {
  if (VIPS_INIT("parleyd") != 0) {
    return vips_failure(Errc::internal, "image library failed to start");
  }
  g_log_set_handler("VIPS", static_cast<GLogLevelFlags>(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE),
                    log_vips_message, nullptr);
  // Uploads are spooled to reused paths: a cache keyed by file name would be wrong, and memory
  // belongs to the server. One worker thread per pipeline: the server brings the parallelism.
  vips_cache_set_max(0);
  vips_cache_set_max_mem(0);
  vips_cache_set_max_files(0);
  vips_concurrency_set(1);
  vips_block_untrusted_set(TRUE);
  vips_operation_block_set("VipsForeignLoad", TRUE);
  for (const char* loader : kAllowedLoaders) vips_operation_block_set(loader, FALSE);
  return ok_status();
}

// "jpegload_source" -> "jpeg", "gifload" -> "gif".
std::string format_of(VipsImage* image) {
  const char* loader = nullptr;
  if (vips_image_get_typeof(image, VIPS_META_LOADER) == 0 ||
      vips_image_get_string(image, VIPS_META_LOADER, &loader) != 0 || loader == nullptr) {
    return "unknown";
  }
  std::string_view name(loader);
  return std::string(name.substr(0, name.find("load")));
}

// "jpeg", "png", "gif" or "webp" from the file's signature; "" for anything else. Checked before
// libvips sees the file, so no other format's sniffer ever runs on an upload.
Result<std::string> sniff_format(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{Errc::not_found, "cannot open the image"};
  char head[12] = {};
  in.read(head, sizeof head);
  std::string_view h(head, static_cast<size_t>(in.gcount()));
  if (h.starts_with("\xff\xd8\xff")) return std::string("jpeg");
  if (h.starts_with(std::string_view("\x89PNG\r\n\x1a\n", 8))) return std::string("png");
  if (h.starts_with("GIF87a") || h.starts_with("GIF89a")) return std::string("gif");
  if (h.size() == 12 && h.starts_with("RIFF") && h.substr(8) == "WEBP") return std::string("webp");
  return std::string();
}

// Opens the header of the image at `path` (no pixel is decoded) and checks its size.
Result<ImageInfo> read_header(const std::string& path, int64_t max_image_pixels,
                              Ref<VipsImage>& image) {
  if (Status s = init_image_library(); !s) return s.error();
  auto format = sniff_format(path);
  if (!format) return format.error();
  if (format->empty()) {
    return Error{Errc::bad_request, "not a supported image (jpeg, png, gif or webp)"};
  }
  // A source, not vips_image_new_from_file(): no "[options]" parsing of the file name.
  Ref<VipsSource> source(vips_source_new_from_file(path.c_str()));
  if (source.get() == nullptr) return vips_failure(Errc::not_found, "cannot open the image");
  image = Ref<VipsImage>(
      vips_image_new_from_source(source.get(), "", "access", VIPS_ACCESS_SEQUENTIAL, nullptr));
  if (image.get() == nullptr) return vips_failure(Errc::bad_request, "the image is corrupt");
  if (format_of(image.get()) != format.value()) {
    return Error{Errc::bad_request, "the image is corrupt"};
  }
  int64_t width = vips_image_get_width(image.get());
  int64_t height = vips_image_get_height(image.get());
  if (width <= 0 || height <= 0) return Error{Errc::bad_request, "the image is empty"};
  if (width * height > max_image_pixels) {
    return Error{Errc::too_large, fmt::format("the image is too large: {}x{} pixels (limit {})",
                                              width, height, max_image_pixels)};
  }
  ImageInfo info;
  bool swap = vips_image_get_orientation_swap(image.get());
  info.width = static_cast<int>(swap ? height : width);
  info.height = static_cast<int>(swap ? width : height);
  info.format = std::move(format.value());
  return info;
}

bool write_file(const std::string& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  return !out.fail();
}

}  // namespace

Status init_image_library() {
  static std::once_flag once;
  static Status status = ok_status();
  std::call_once(once, [] { status = init_once(); });
  return status;
}

Result<ImageInfo> probe_image(const std::string& path, int64_t max_image_pixels) {
  Ref<VipsImage> image;
  return read_header(path, max_image_pixels, image);
}

Result<Thumbnail> make_thumbnail(const std::string& src, const std::string& dst,
                                 const ThumbnailOptions& options) {
  if (options.max_px < 1 || options.quality < 1 || options.quality > 100) {
    return Error{Errc::internal, "invalid thumbnail options"};
  }
  Thumbnail result;
  {
    Ref<VipsImage> header;
    auto info = read_header(src, options.max_image_pixels, header);
    if (!info) return info.error();
    result.source = std::move(info.value());
  }

  // Decoding starts here. fail_on=truncated: a cut-off upload is an error, not a grey picture.
  // It goes through option_string: libvips 8.14 does not pass thumbnail's own fail_on on to
  // the loader.
  Ref<VipsSource> source(vips_source_new_from_file(src.c_str()));
  if (source.get() == nullptr) return vips_failure(Errc::not_found, "cannot open the image");
  Ref<VipsImage> thumb;
  if (vips_thumbnail_source(source.get(), thumb.out(), options.max_px, "height", options.max_px,
                            "size", VIPS_SIZE_DOWN, "option_string", "fail_on=truncated",
                            "export_profile", "srgb", nullptr) != 0) {
    return vips_failure(Errc::bad_request, "the image is corrupt");
  }
  if (vips_image_hasalpha(thumb.get())) {
    double white[] = {255.0, 255.0, 255.0};
    VipsArrayDouble* background = vips_array_double_new(white, 3);
    Ref<VipsImage> flat;
    int rc = vips_flatten(thumb.get(), flat.out(), "background", background, nullptr);
    vips_area_unref(VIPS_AREA(background));
    if (rc != 0) return vips_failure(Errc::bad_request, "the image is corrupt");
    thumb = std::move(flat);
  }
  void* jpeg = nullptr;
  size_t jpeg_size = 0;
  // strip: no EXIF (GPS), XMP, IPTC, ICC or comments in the thumbnail.
  if (vips_jpegsave_buffer(thumb.get(), &jpeg, &jpeg_size, "Q", options.quality, "strip", TRUE,
                           "optimize_coding", TRUE, nullptr) != 0) {
    return vips_failure(Errc::bad_request, "the image is corrupt or truncated");
  }
  result.width = vips_image_get_width(thumb.get());
  result.height = vips_image_get_height(thumb.get());
  bool written = write_file(dst, jpeg, jpeg_size);
  g_free(jpeg);
  if (!written) {
    std::remove(dst.c_str());
    return Error{Errc::internal, "cannot write the thumbnail"};
  }
  return result;
}

}  // namespace parley::media_inspect
