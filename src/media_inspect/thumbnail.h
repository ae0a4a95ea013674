// Image dimensions and JPEG thumbnails with libvips (docs/MEDIA.md, "Inspection and thumbnails").
//
// Only JPEG, PNG, GIF and WebP are decoded; every other libvips loader (ImageMagick, PDF, SVG,
// TIFF, HEIF, ...) is blocked for the whole process. Dimensions are checked from the header
// before any pixel is decoded, so decompression bombs are refused cheaply. Every failure is an
// Error: nothing here throws or aborts on bad input. Thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "common/errc.h"

namespace parley::media_inspect {

inline constexpr int kDefaultThumbnailPx = 320;
inline constexpr int64_t kDefaultMaxImagePixels = 50'000'000;

struct ImageInfo {
  int width = 0;  // as displayed, i.e. after the EXIF orientation is applied
  int height = 0;
  std::string format;  // "jpeg", "png", "gif" or "webp"
};

struct ThumbnailOptions {
  int max_px = kDefaultThumbnailPx;  // the thumbnail fits in max_px x max_px; never enlarged
  int64_t max_image_pixels = kDefaultMaxImagePixels;  // width * height of the source
  int quality = 80;                                   // JPEG quality, 1..100
};

struct Thumbnail {
  ImageInfo source;
  int width = 0;
  int height = 0;
};

// Starts libvips once per process (later calls return the first outcome) and sets it up for a
// server: no operation cache, one worker thread per pipeline, only the loaders above. The
// functions below call it themselves.
Status init_image_library();

// Reads the header of the image at `path`. Errc::bad_request when it is not a supported image
// or is corrupt, Errc::too_large when width * height > max_image_pixels.
Result<ImageInfo> probe_image(const std::string& path,
                              int64_t max_image_pixels = kDefaultMaxImagePixels);

// Writes a baseline JPEG thumbnail of the image at `src` to `dst`: orientation applied,
// transparency flattened onto white, converted to sRGB, all metadata (EXIF, GPS, XMP, ICC,
// comments) removed. Errors as probe_image(), plus Errc::bad_request for pixel data that is
// corrupt or truncated and Errc::internal when `dst` cannot be written; on error no `dst` is
// left behind.
Result<Thumbnail> make_thumbnail(const std::string& src, const std::string& dst,
                                 const ThumbnailOptions& options = {});

}  // namespace parley::media_inspect
