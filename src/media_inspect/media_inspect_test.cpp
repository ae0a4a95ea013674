#include <gtest/gtest.h>
#include <stdlib.h>
#include <vips/vips.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/utf8.h"
#include "media_inspect/content_type.h"
#include "media_inspect/file_name.h"
#include "media_inspect/thumbnail.h"
#include "support/media_files.h"

namespace parley::media_inspect {
namespace {

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Owns a VipsImage made by the helpers below.
struct Image {
  VipsImage* p = nullptr;
  Image() = default;
  explicit Image(VipsImage* image) : p(image) {}
  Image(Image&& o) noexcept : p(std::exchange(o.p, nullptr)) {}
  Image& operator=(Image&& o) noexcept {
    std::swap(p, o.p);
    return *this;
  }
  ~Image() {
    if (p != nullptr) g_object_unref(p);
  }
};

// A width x height uchar image with `bands` bands: a horizontal gradient.
Image gradient(int width, int height, int bands = 3) {
  VipsImage* grey = nullptr;
  EXPECT_EQ(vips_grey(&grey, width, height, nullptr), 0);
  Image g(grey);
  VipsImage* scaled = nullptr;
  EXPECT_EQ(vips_linear1(g.p, &scaled, 255.0, 0.0, "uchar", TRUE, nullptr), 0);
  Image s(scaled);
  if (bands == 1) return s;
  std::vector<VipsImage*> in(static_cast<size_t>(bands), s.p);
  VipsImage* joined = nullptr;
  EXPECT_EQ(vips_bandjoin(in.data(), &joined, bands, nullptr), 0);
  Image out(joined);
  if (bands == 3) {
    VipsImage* tagged = nullptr;
    EXPECT_EQ(vips_copy(out.p, &tagged, "interpretation", VIPS_INTERPRETATION_sRGB, nullptr), 0);
    return Image(tagged);
  }
  return out;
}

// An RGBA image, fully transparent.
Image transparent(int width, int height) {
  Image rgb = gradient(width, height, 3);
  VipsImage* alpha = nullptr;
  EXPECT_EQ(vips_black(&alpha, width, height, nullptr), 0);
  Image a(alpha);
  VipsImage* a8 = nullptr;
  EXPECT_EQ(vips_cast_uchar(a.p, &a8, nullptr), 0);
  Image a8i(a8);
  VipsImage* joined = nullptr;
  EXPECT_EQ(vips_bandjoin2(rgb.p, a8i.p, &joined, nullptr), 0);
  return Image(joined);
}

Image noise(int width, int height) {
  VipsImage* n = nullptr;
  EXPECT_EQ(vips_gaussnoise(&n, width, height, "sigma", 80.0, nullptr), 0);
  Image ni(n);
  VipsImage* u = nullptr;
  EXPECT_EQ(vips_cast_uchar(ni.p, &u, nullptr), 0);
  return Image(u);
}

Image load(const std::string& path) {
  VipsImage* image = vips_image_new_from_file(path.c_str(), nullptr);
  EXPECT_NE(image, nullptr) << vips_error_buffer();
  return Image(image);
}

uint32_t crc32(std::string_view bytes) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string png_chunk(std::string_view type, std::string_view data) {
  std::string body = std::string(type) + std::string(data);
  return be32(static_cast<uint32_t>(data.size())) + body + be32(crc32(body));
}

const std::string kPngSignature("\x89PNG\r\n\x1a\n", 8);

// A well-formed PNG whose header claims width x height RGB pixels, with almost no pixel data.
std::string png_claiming(uint32_t width, uint32_t height) {
  std::string ihdr = be32(width) + be32(height) + std::string("\x08\x02\x00\x00\x00", 5);
  std::string idat("\x78\x9c\x03\x00\x00\x00\x00\x01", 8);  // an empty zlib stream
  return kPngSignature + png_chunk("IHDR", ihdr) + png_chunk("IDAT", idat) + png_chunk("IEND", "");
}

// An APP1 Exif segment (little-endian TIFF): IFD0 with Orientation = 6 (rotate 90 degrees
// clockwise to display) and a GPS IFD holding GPSVersionID and GPSLatitudeRef = "N".
std::string exif_app1() {
  std::string tiff("II\x2a\x00\x08\x00\x00\x00", 8);
  auto u16 = [](uint16_t v) {
    return std::string{static_cast<char>(v), static_cast<char>(v >> 8)};
  };
  auto u32 = [&](uint32_t v) {
    return u16(static_cast<uint16_t>(v)) + u16(static_cast<uint16_t>(v >> 16));
  };
  auto entry = [&](uint16_t tag, uint16_t type, uint32_t count, std::string value4) {
    return u16(tag) + u16(type) + u32(count) + value4;
  };
  const uint32_t gps_offset = 8 + 2 + 2 * 12 + 4;
  tiff +=
      u16(2) + entry(0x0112, 3, 1, u16(6) + u16(0)) + entry(0x8825, 4, 1, u32(gps_offset)) + u32(0);
  tiff += u16(2) + entry(0x0000, 1, 4, std::string("\x02\x02\x00\x00", 4)) +
          entry(0x0001, 2, 2, std::string("N\0\0\0", 4)) + u32(0);
  std::string payload = std::string("Exif\0\0", 6) + tiff;
  uint16_t length = static_cast<uint16_t>(payload.size() + 2);
  return std::string("\xff\xe1", 2) + static_cast<char>(length >> 8) +
         static_cast<char>(length & 0xff) + payload;
}

class MediaInspect : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(init_image_library().ok()); }

  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "parley_media_inspect_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(std::string_view name) const { return (dir_ / name).string(); }

  std::string save_png(const Image& image, std::string_view name) const {
    std::string p = path(name);
    EXPECT_EQ(vips_pngsave(image.p, p.c_str(), nullptr), 0) << vips_error_buffer();
    return p;
  }
  std::string save_jpeg(const Image& image, std::string_view name) const {
    std::string p = path(name);
    EXPECT_EQ(vips_jpegsave(image.p, p.c_str(), nullptr), 0) << vips_error_buffer();
    return p;
  }
  std::string save(std::string_view name, std::string_view bytes) const {
    std::string p = path(name);
    write_file(p, bytes);
    return p;
  }
  std::string minimal_pdf() const {
    return save("doc.pdf",
                "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
                "2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
                "trailer << /Root 1 0 R >>\n%%EOF\n");
  }

  fs::path dir_;
};

// ---- content type ----

TEST_F(MediaInspect, DetectsTypesFromTheBytes) {
  EXPECT_EQ(detect_mime(save_png(gradient(16, 16), "a.bin")).value(), "image/png");
  EXPECT_EQ(detect_mime(save_jpeg(gradient(16, 16), "b.png")).value(), "image/jpeg");
  EXPECT_EQ(detect_mime(minimal_pdf()).value(), "application/pdf");
  EXPECT_EQ(detect_mime(save("t.jpg", "just some words\nand a second line\n")).value(),
            "text/plain");
  auto elf = detect_mime("/bin/true");
  ASSERT_TRUE(elf.ok()) << elf.error().message;
  EXPECT_TRUE(elf.value().starts_with("application/x-")) << elf.value();
  EXPECT_EQ(detect_mime(save("empty", "")).value(), "application/x-empty");
  EXPECT_EQ(detect_mime_bytes(read_file(save_png(gradient(4, 4), "c.png"))).value(), "image/png");

  auto missing = detect_mime(path("does-not-exist"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::not_found);
}

TEST_F(MediaInspect, AcceptsAllowedTypesAndMapsKinds) {
  std::string png = save_png(gradient(16, 16), "a.png");
  for (std::string_view declared : {"image/png", "", "application/octet-stream", "IMAGE/PNG",
                                    "image/png; foo=bar", "image/x-png"}) {
    auto t = check_type(png, declared);
    ASSERT_TRUE(t.ok()) << declared << ": " << t.error().message;
    EXPECT_EQ(t->mime, "image/png");
    EXPECT_EQ(t->kind, MediaKind::image);
  }
  auto jpeg = check_type(save_jpeg(gradient(16, 16), "a.jpg"), "image/jpg");
  ASSERT_TRUE(jpeg.ok()) << jpeg.error().message;
  EXPECT_EQ(jpeg->mime, "image/jpeg");

  auto pdf = check_type(minimal_pdf(), "application/pdf");
  ASSERT_TRUE(pdf.ok()) << pdf.error().message;
  EXPECT_EQ(pdf->kind, MediaKind::file);

  std::string txt = save("notes.txt", "hello there\n");
  auto text = check_type(txt, "text/plain; charset=utf-8");
  ASSERT_TRUE(text.ok()) << text.error().message;
  EXPECT_EQ(text->mime, "text/plain");
  EXPECT_EQ(text->kind, MediaKind::file);
  // Text is text: the detected type is the one kept.
  auto csv = check_type(txt, "text/csv");
  ASSERT_TRUE(csv.ok()) << csv.error().message;
  EXPECT_EQ(csv->mime, "text/plain");

  // Any text is accepted as text/plain when its own type is not allowed.
  std::string script = save("run.sh", "#!/bin/sh\necho hello\n");
  EXPECT_EQ(detect_mime(script).value(), "text/x-shellscript");
  std::string html =
      save("page.html", "<!DOCTYPE html>\n<html><body><script>alert(1)</script></body></html>\n");
  EXPECT_EQ(detect_mime(html).value(), "text/html");
  for (const auto& [file, declared] :
       {std::pair{script, "text/x-sh"}, std::pair{html, "text/html"}, std::pair{html, ""}}) {
    auto t = check_type(file, declared);
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ(t->mime, "text/plain");
  }
  auto own = check_type(html, "text/html", {"text/html", "text/plain"});
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(own->mime, "text/html");
  EXPECT_FALSE(check_type(html, "", {"image/png"}).ok());
}

TEST_F(MediaInspect, RefusesTypesNotAllowed) {
  for (std::string_view declared : {"", "application/octet-stream", "image/png"}) {
    auto elf = check_type("/bin/true", declared);
    ASSERT_FALSE(elf.ok()) << declared;
    EXPECT_EQ(elf.error().code, Errc::bad_request);
    EXPECT_NE(elf.error().message.find("not accepted"), std::string::npos) << elf.error().message;
  }
  auto empty = check_type(save("empty", ""), "");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, Errc::bad_request);

  // A custom list, with a wildcard.
  std::vector<std::string> images_only{"image/*"};
  EXPECT_TRUE(check_type(save_png(gradient(8, 8), "a.png"), "", images_only).ok());
  EXPECT_FALSE(check_type(minimal_pdf(), "", images_only).ok());
  EXPECT_FALSE(check_type(save_png(gradient(8, 8), "b.png"), "", {}).ok());
  EXPECT_TRUE(check_type("/bin/true", "", {"application/*"}).ok());
}

TEST_F(MediaInspect, RefusesADeclaredTypeTheBytesContradict) {
  std::string jpeg = save_jpeg(gradient(16, 16), "a.jpg");
  std::string png = save_png(gradient(16, 16), "a.png");
  std::string txt = save("a.txt", "plain words\n");
  struct Case {
    std::string path;
    std::string declared;
  };
  for (const Case& c : {Case{jpeg, "image/png"}, Case{png, "image/jpeg"}, Case{png, "video/mp4"},
                        Case{txt, "application/pdf"}, Case{txt, "image/png"},
                        Case{minimal_pdf(), "text/plain"}, Case{png, "garbage"}}) {
    auto t = check_type(c.path, c.declared);
    ASSERT_FALSE(t.ok()) << c.path << " as " << c.declared;
    EXPECT_EQ(t.error().code, Errc::bad_request);
    EXPECT_NE(t.error().message.find("does not match"), std::string::npos) << t.error().message;
  }
  // A declared type that is not printable is not echoed back.
  auto t = check_type(png, "image/\xff\x01");
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(valid_utf8(t.error().message));
  EXPECT_EQ(t.error().message.find('\x01'), std::string::npos);
}

// An ISO BMFF file with only an ftyp box of the given major brand.
std::string ftyp(std::string_view brand) {
  std::string payload =
      std::string(brand) + std::string("\0\0\0\0", 4) + std::string(brand) + "isom";
  return be32(static_cast<uint32_t>(8 + payload.size())) + "ftyp" + payload + be32(8) + "free";
}

TEST_F(MediaInspect, DetectsAudioVideoAndZipContainers) {
  std::string mp4 = save("v.mp4", ftyp("isom"));
  std::string m4a = save("a.m4a", ftyp("M4A "));
  std::string mp3 = save("a.mp3", std::string("ID3\x03\0\0\0\0\0\x0a", 10) + std::string(10, '\0') +
                                      "\xff\xfb\x90\x64" + std::string(400, '\0'));
  std::string ogg = save("a.ogg", std::string("OggS\0\x02", 6) + std::string(8, '\0') +
                                      std::string("\x01\0\0\0\0\0\0\0\0\0\0\0\x01\x1e", 14) +
                                      "\x01vorbis" + std::string(40, '\0'));
  std::string zip = save("a.zip", "PK\x05\x06" + std::string(18, '\0'));  // an empty archive

  struct Case {
    std::string path, declared, mime;
    MediaKind kind;
  };
  for (const Case& c :
       {Case{mp4, "video/mp4", "video/mp4", MediaKind::video},
        // Same container: the declared, more precise type is kept.
        Case{mp4, "audio/mp4", "audio/mp4", MediaKind::audio},
        Case{m4a, "audio/x-m4a", "audio/mp4", MediaKind::audio},
        Case{m4a, "", "audio/mp4", MediaKind::audio},
        Case{mp3, "audio/mp3", "audio/mpeg", MediaKind::audio},
        Case{ogg, "audio/ogg", "audio/ogg", MediaKind::audio},
        // video/ogg is not allowed: the detected type is kept.
        Case{ogg, "video/ogg", "audio/ogg", MediaKind::audio},
        Case{zip, "application/x-zip-compressed", "application/zip", MediaKind::file}}) {
    SCOPED_TRACE(c.path + " as " + c.declared);
    auto t = check_type(c.path, c.declared);
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ(t->mime, c.mime);
    EXPECT_EQ(t->kind, c.kind);
  }
  EXPECT_FALSE(check_type(mp4, "video/webm").ok());
  EXPECT_FALSE(check_type(mp3, "audio/ogg").ok());
  EXPECT_FALSE(check_type(zip, "application/pdf").ok());
}

using test::iso_file;
using test::zip_of;

// A HEIF-family file: ftyp with a major brand, then an empty meta box.
std::string heif(std::string_view brand) {
  return iso_file(brand, "mif1" + std::string(brand), "meta");
}

// What phones and office software produce is accepted by default (issue: iPhone photos and
// videos and office documents were refused), under its own type.
TEST_F(MediaInspect, DefaultTypesTakePhoneMediaAndOfficeDocuments) {
  std::string heic = save("IMG_0001.HEIC", heif("heic"));
  std::string heif_file = save("a.heif", heif("mif1"));
  std::string mov = save("IMG_0002.MOV", ftyp("qt  "));
  std::string gp3 = save("VID.3gp", ftyp("3gp4"));
  std::string docx = save("a.docx", zip_of({{"[Content_Types].xml", "<Types/>"},
                                            {"_rels/.rels", "<R/>"},
                                            {"word/document.xml", "<w/>"}}));
  std::string xlsx = save("a.xlsx", zip_of({{"[Content_Types].xml", "<Types/>"},
                                            {"_rels/.rels", "<R/>"},
                                            {"xl/workbook.xml", "<w/>"}}));
  std::string odt = save("a.odt", zip_of({{"mimetype", "application/vnd.oasis.opendocument.text"},
                                          {"content.xml", "<x/>"}}));
  std::string plain_zip = save("b.zip", zip_of({{"hello.txt", "hi"}}));
  std::string json_file = save("a.json", R"({"a": [1, 2, 3], "b": "x"})"
                                         "\n");

  const std::string kDocx =
      "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
  struct Case {
    std::string path, declared, mime;
    MediaKind kind;
  };
  for (const Case& c : {
           Case{heic, "image/heic", "image/heic", MediaKind::image},
           Case{heic, "", "image/heic", MediaKind::image},
           Case{heif_file, "image/heic", "image/heic", MediaKind::image},  // same container
           Case{mov, "video/quicktime", "video/quicktime", MediaKind::video},
           Case{gp3, "video/3gpp", "video/3gpp", MediaKind::video},
           Case{docx, kDocx, kDocx, MediaKind::file},
           Case{docx, "application/zip", kDocx, MediaKind::file},  // the detected type names it
           Case{xlsx, "", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                MediaKind::file},
           Case{odt, "", "application/vnd.oasis.opendocument.text", MediaKind::file},
           // A .docx that libmagic sees only as a zip keeps the type the client declared.
           Case{plain_zip, kDocx, kDocx, MediaKind::file},
           Case{json_file, "application/json", "application/json", MediaKind::file},
       }) {
    SCOPED_TRACE(c.path + " as " + c.declared);
    auto t = check_type(c.path, c.declared);
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ(t->mime, c.mime);
    EXPECT_EQ(t->kind, c.kind);
  }
  // An operator's own list still decides, and says which type it refused.
  auto refused = check_type(heic, "image/heic", {"image/jpeg", "image/png"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::bad_request);
  EXPECT_NE(refused.error().message.find("image/heic"), std::string::npos)
      << refused.error().message;
  // A prefix entry ending in '*'.
  EXPECT_TRUE(check_type(odt, "", {"application/vnd.oasis.opendocument.*"}).ok());
  EXPECT_FALSE(check_type(docx, "", {"application/vnd.oasis.opendocument.*"}).ok());
}

TEST_F(MediaInspect, CanonicalNamesAndKinds) {
  EXPECT_EQ(canonical_mime(" Image/JPG ; q=1"), "image/jpeg");
  EXPECT_EQ(canonical_mime("audio/x-m4a"), "audio/mp4");
  EXPECT_EQ(canonical_mime("application/x-zip-compressed"), "application/zip");
  EXPECT_EQ(kind_of("video/webm"), MediaKind::video);
  EXPECT_EQ(kind_of("audio/ogg"), MediaKind::audio);
  EXPECT_EQ(kind_of("image/svg+xml"), MediaKind::file);
  EXPECT_EQ(kind_of("application/zip"), MediaKind::file);
  EXPECT_EQ(media_kind_name(MediaKind::image), "image");
  for (const std::string& t : default_allowed_types()) EXPECT_NE(t, "application/octet-stream");
}

TEST_F(MediaInspect, DetectionIsThreadSafe) {
  std::string png = save_png(gradient(16, 16), "a.png");
  std::string jpeg = save_jpeg(gradient(16, 16), "a.jpg");
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        bool even = (i + t) % 2 == 0;
        auto m = detect_mime(even ? png : jpeg);
        if (!m.ok() || m.value() != (even ? "image/png" : "image/jpeg")) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

// ---- images ----

TEST_F(MediaInspect, ProbesDimensions) {
  auto png = probe_image(save_png(gradient(640, 480), "a.png"));
  ASSERT_TRUE(png.ok()) << png.error().message;
  EXPECT_EQ(png->width, 640);
  EXPECT_EQ(png->height, 480);
  EXPECT_EQ(png->format, "png");
  auto jpeg = probe_image(save_jpeg(gradient(33, 77), "a.jpg"));
  ASSERT_TRUE(jpeg.ok()) << jpeg.error().message;
  EXPECT_EQ(jpeg->width, 33);
  EXPECT_EQ(jpeg->height, 77);
  EXPECT_EQ(jpeg->format, "jpeg");
}

TEST_F(MediaInspect, ThumbnailFitsTheBoxKeepsAspectAndIsAJpeg) {
  struct Case {
    int w, h, box, want_w, want_h;
  };
  for (const Case& c : {Case{1000, 500, 320, 320, 160}, Case{300, 900, 320, 107, 320},
                        Case{2000, 2000, 320, 320, 320}, Case{800, 600, 64, 64, 48},
                        Case{100, 50, 320, 100, 50}}) {  // never enlarged
    SCOPED_TRACE(std::to_string(c.w) + "x" + std::to_string(c.h));
    std::string src = save_png(gradient(c.w, c.h), "src.png");
    std::string dst = path("thumb.jpg");
    auto t = make_thumbnail(src, dst, {.max_px = c.box});
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ(t->source.width, c.w);
    EXPECT_EQ(t->source.height, c.h);
    EXPECT_LE(t->width, c.box);
    EXPECT_LE(t->height, c.box);
    EXPECT_NEAR(t->width, c.want_w, 1);
    EXPECT_NEAR(t->height, c.want_h, 1);
    EXPECT_EQ(detect_mime(dst).value(), "image/jpeg");
    auto probe = probe_image(dst);
    ASSERT_TRUE(probe.ok()) << probe.error().message;
    EXPECT_EQ(probe->width, t->width);
    EXPECT_EQ(probe->height, t->height);
  }
}

TEST_F(MediaInspect, ThumbnailDropsExifAndGpsAndAppliesOrientation) {
  // A 400x200 JPEG with an Exif segment (orientation 6, a GPS IFD) spliced in after SOI.
  std::string plain = read_file(save_jpeg(gradient(400, 200), "plain.jpg"));
  ASSERT_EQ(plain.substr(0, 2), "\xff\xd8");
  std::string src = save("exif.jpg", plain.substr(0, 2) + exif_app1() + plain.substr(2));
  {
    Image in = load(src);
    ASSERT_NE(vips_image_get_typeof(in.p, VIPS_META_EXIF_NAME), 0u);  // libvips sees the Exif
    EXPECT_EQ(vips_image_get_orientation(in.p), 6);
  }
  auto probe = probe_image(src);
  ASSERT_TRUE(probe.ok()) << probe.error().message;
  EXPECT_EQ(probe->width, 200);  // as displayed
  EXPECT_EQ(probe->height, 400);

  std::string dst = path("thumb.jpg");
  auto t = make_thumbnail(src, dst);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->width, 160);  // rotated upright
  EXPECT_EQ(t->height, 320);

  std::string out = read_file(dst);
  EXPECT_EQ(out.find(std::string("Exif\0\0", 6)), std::string::npos);
  EXPECT_EQ(out.find("\xff\xe1"), std::string::npos);  // no APP1 (Exif, XMP) at all
  EXPECT_EQ(out.find("\xff\xe2"), std::string::npos);  // no APP2 (ICC)
  Image thumb = load(dst);
  EXPECT_EQ(vips_image_get_typeof(thumb.p, VIPS_META_EXIF_NAME), 0u);
  EXPECT_EQ(vips_image_get_typeof(thumb.p, VIPS_META_ORIENTATION), 0u);
  EXPECT_EQ(vips_image_get_width(thumb.p), 160);
}

TEST_F(MediaInspect, ThumbnailFlattensTransparencyOntoWhite) {
  std::string src = save_png(transparent(200, 100), "alpha.png");
  std::string dst = path("thumb.jpg");
  auto t = make_thumbnail(src, dst, {.max_px = 50});
  ASSERT_TRUE(t.ok()) << t.error().message;
  Image thumb = load(dst);
  EXPECT_EQ(vips_image_get_bands(thumb.p), 3);
  double* pixel = nullptr;
  int n = 0;
  ASSERT_EQ(vips_getpoint(thumb.p, &pixel, &n, 10, 10, nullptr), 0);
  ASSERT_EQ(n, 3);
  for (int i = 0; i < n; ++i) EXPECT_GT(pixel[i], 240.0);
  g_free(pixel);
}

TEST_F(MediaInspect, ThumbnailOfAGreyscaleImage) {
  std::string src = save_jpeg(gradient(500, 250, 1), "grey.jpg");
  std::string dst = path("thumb.jpg");
  auto t = make_thumbnail(src, dst);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->width, 320);
  EXPECT_EQ(detect_mime(dst).value(), "image/jpeg");
}

TEST_F(MediaInspect, ThumbnailsOfGifWebpAndCmykJpeg) {
  Image rgb = gradient(300, 200);
  std::string gif = path("a.gif");
  std::string webp = path("a.webp");
  std::string cmyk = path("cmyk.jpg");
  ASSERT_EQ(vips_gifsave(rgb.p, gif.c_str(), nullptr), 0) << vips_error_buffer();
  ASSERT_EQ(vips_webpsave(rgb.p, webp.c_str(), nullptr), 0) << vips_error_buffer();
  VipsImage* exported = nullptr;
  ASSERT_EQ(vips_icc_export(rgb.p, &exported, "output_profile", "cmyk", nullptr), 0)
      << vips_error_buffer();
  Image cmyk_image(exported);
  ASSERT_EQ(vips_jpegsave(cmyk_image.p, cmyk.c_str(), nullptr), 0) << vips_error_buffer();

  struct Case {
    std::string src, mime, format;
  };
  for (const Case& c : {Case{gif, "image/gif", "gif"}, Case{webp, "image/webp", "webp"},
                        Case{cmyk, "image/jpeg", "jpeg"}}) {
    SCOPED_TRACE(c.src);
    auto type = check_type(c.src, c.mime);
    ASSERT_TRUE(type.ok()) << type.error().message;
    EXPECT_EQ(type->kind, MediaKind::image);
    std::string dst = path("thumb.jpg");
    auto t = make_thumbnail(c.src, dst, {.max_px = 150});
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ(t->source.format, c.format);
    EXPECT_EQ(t->width, 150);
    EXPECT_EQ(t->height, 100);
    Image thumb = load(dst);
    EXPECT_EQ(vips_image_get_bands(thumb.p), 3);  // CMYK converted to sRGB
    EXPECT_EQ(vips_image_get_interpretation(thumb.p), VIPS_INTERPRETATION_sRGB);
  }
}

TEST_F(MediaInspect, CorruptImagesAreErrorsNotCrashes) {
  std::string png = read_file(save_png(noise(512, 512), "noise.png"));
  ASSERT_GT(png.size(), 100000u);
  std::string jpeg = read_file(save_jpeg(noise(512, 512), "noise.jpg"));
  std::mt19937 rng(42);
  std::string random(4096, '\0');
  for (char& c : random) c = static_cast<char>(rng());

  struct Case {
    std::string name;
    std::string bytes;
  };
  for (const Case& c : {Case{"truncated.png", png.substr(0, png.size() / 2)},
                        Case{"truncated.jpg", jpeg.substr(0, jpeg.size() / 2)},
                        Case{"random.png", kPngSignature + random},
                        Case{"header-only.png", png.substr(0, 40)}, Case{"random.bin", random},
                        Case{"empty.png", ""}, Case{"text.png", "not an image at all\n"}}) {
    SCOPED_TRACE(c.name);
    std::string src = save(c.name, c.bytes);
    std::string dst = path("thumb.jpg");
    auto t = make_thumbnail(src, dst);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error().code, Errc::bad_request) << t.error().message;
    EXPECT_FALSE(fs::exists(dst));
  }
  auto missing = make_thumbnail(path("nope.png"), path("thumb.jpg"));
  ASSERT_FALSE(missing.ok());
}

TEST_F(MediaInspect, OnlyTheAllowedDecodersRun) {
  // TIFF is a valid image libvips could decode, but it is not one of the four formats...
  std::string tiff = path("a.tif");
  ASSERT_EQ(vips_tiffsave(gradient(64, 64).p, tiff.c_str(), nullptr), 0);
  auto t = make_thumbnail(tiff, path("thumb.jpg"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, Errc::bad_request);
  // ... and its loader is blocked in the whole process, even when called directly.
  VipsImage* direct = vips_image_new_from_file(tiff.c_str(), nullptr);
  EXPECT_EQ(direct, nullptr);
  if (direct != nullptr) g_object_unref(direct);
  vips_error_clear();
  Image png = load(save_png(gradient(8, 8), "a.png"));  // not blocked
  EXPECT_EQ(vips_image_get_width(png.p), 8);
  // So are PDF and SVG (poppler, rsvg).
  EXPECT_FALSE(make_thumbnail(minimal_pdf(), path("thumb.jpg")).ok());
  std::string svg = save("a.svg",
                         "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\">"
                         "<rect width=\"10\" height=\"10\"/></svg>");
  EXPECT_FALSE(make_thumbnail(svg, path("thumb.jpg")).ok());
}

TEST_F(MediaInspect, HugeDimensionsAreRefusedFromTheHeader) {
  std::string bomb = save("bomb.png", png_claiming(100000, 100000));
  EXPECT_EQ(detect_mime(bomb).value(), "image/png");
  auto probe = probe_image(bomb);
  ASSERT_FALSE(probe.ok());
  EXPECT_EQ(probe.error().code, Errc::too_large);
  EXPECT_NE(probe.error().message.find("100000x100000"), std::string::npos);
  std::string dst = path("thumb.jpg");
  auto t = make_thumbnail(bomb, dst);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, Errc::too_large);
  EXPECT_FALSE(fs::exists(dst));

  // The limit is the caller's: 100x100 passes 10,000 pixels and fails 9,999.
  std::string small = save_png(gradient(100, 100), "small.png");
  EXPECT_TRUE(make_thumbnail(small, dst, {.max_image_pixels = 10000}).ok());
  auto over = make_thumbnail(small, dst, {.max_image_pixels = 9999});
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, Errc::too_large);
}

TEST_F(MediaInspect, ThumbnailErrorsForBadOptionsAndUnwritableTargets) {
  std::string src = save_png(gradient(10, 10), "a.png");
  EXPECT_FALSE(make_thumbnail(src, path("t.jpg"), {.max_px = 0}).ok());
  EXPECT_FALSE(make_thumbnail(src, path("t.jpg"), {.quality = 101}).ok());
  auto t = make_thumbnail(src, path("no-such-dir/t.jpg"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, Errc::internal);
}

TEST_F(MediaInspect, ThumbnailsFromSeveralThreads) {
  std::string png = save_png(gradient(600, 300), "a.png");
  std::string jpeg = save_jpeg(gradient(300, 600), "a.jpg");
  std::string bad = save("bad.png", kPngSignature + std::string(100, 'x'));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        std::string dst = path("t" + std::to_string(t) + "_" + std::to_string(i) + ".jpg");
        auto a = make_thumbnail(png, dst, {.max_px = 100});
        if (!a.ok() || a->width != 100 || a->height != 50) ++wrong;
        auto b = make_thumbnail(jpeg, dst, {.max_px = 100});
        if (!b.ok() || b->width != 50 || b->height != 100) ++wrong;
        if (make_thumbnail(bad, dst).ok()) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

// ---- file names ----

TEST(FileName, StripsDirectories) {
  EXPECT_EQ(sanitize_file_name("../../etc/passwd"), "passwd");
  EXPECT_EQ(sanitize_file_name("a\\b\\c.txt"), "c.txt");
  EXPECT_EQ(sanitize_file_name("C:\\Users\\me\\Desktop\\photo.jpg"), "photo.jpg");
  EXPECT_EQ(sanitize_file_name("dir/sub/"), "sub");
  EXPECT_EQ(sanitize_file_name("/"), "file");
  EXPECT_EQ(sanitize_file_name(".."), "file");
  EXPECT_EQ(sanitize_file_name("a/.."), "file");
}

TEST(FileName, RemovesControlsDotsAndBidiOverrides) {
  EXPECT_EQ(sanitize_file_name("re\x01po\x7f"
                               "rt\r\n.pdf"),
            "report.pdf");
  EXPECT_EQ(sanitize_file_name(std::string("a\0b.txt", 7)), "ab.txt");
  EXPECT_EQ(sanitize_file_name("tab\there.txt"), "tabhere.txt");
  EXPECT_EQ(sanitize_file_name("\xc2\x85x.txt"), "x.txt");  // C1 NEL
  EXPECT_EQ(sanitize_file_name(".bashrc"), "bashrc");
  EXPECT_EQ(sanitize_file_name("...hidden.txt"), "hidden.txt");
  EXPECT_EQ(sanitize_file_name("\x01.env"), "env");
  EXPECT_EQ(sanitize_file_name("  name.txt  "), "name.txt");
  EXPECT_EQ(sanitize_file_name("name."), "name");
  EXPECT_EQ(sanitize_file_name("evil\xe2\x80\xaegpj.exe"), "evilgpj.exe");  // U+202E
  EXPECT_EQ(sanitize_file_name(""), "file");
  EXPECT_EQ(sanitize_file_name("\x01\x02"), "file");
  EXPECT_EQ(sanitize_file_name("caf\xc3\xa9 \xf0\x9f\x98\x80.png"),
            "caf\xc3\xa9 \xf0\x9f\x98\x80.png");
}

TEST(FileName, ReplacesInvalidUtf8) {
  EXPECT_EQ(sanitize_file_name("a\xff"
                               "b.txt"),
            "a\xef\xbf\xbd"
            "b.txt");
  EXPECT_EQ(sanitize_file_name("\xc0\xaf.txt"), "\xef\xbf\xbd\xef\xbf\xbd.txt");  // overlong '/'
  EXPECT_EQ(sanitize_file_name("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_TRUE(valid_utf8(sanitize_file_name("x\xe2\x82")));
}

TEST(FileName, TruncatesOnAUtf8BoundaryKeepingTheExtension) {
  std::string euro = "\xe2\x82\xac";  // 3 bytes
  std::string long_name;
  for (int i = 0; i < 200; ++i) long_name += euro;
  std::string cut = sanitize_file_name(long_name);
  EXPECT_EQ(cut.size(), 255u);  // 85 whole euros
  EXPECT_TRUE(valid_utf8(cut));

  std::string with_ext = sanitize_file_name("a" + long_name + ".jpeg");
  EXPECT_LE(with_ext.size(), 255u);
  EXPECT_TRUE(valid_utf8(with_ext));
  EXPECT_TRUE(with_ext.ends_with(euro + ".jpeg")) << with_ext;
  EXPECT_EQ(with_ext.size(), 1 + 83 * 3 + 5u);

  std::string ascii = sanitize_file_name(std::string(1000, 'x'));
  EXPECT_EQ(ascii, std::string(255, 'x'));
  // A long "extension" is not kept.
  std::string dotted = sanitize_file_name(std::string(300, 'y') + "." + std::string(40, 'z'));
  EXPECT_EQ(dotted, std::string(255, 'y'));

  for (const std::string& s : {cut, with_ext, ascii, dotted}) {
    EXPECT_EQ(sanitize_file_name(s), s);  // idempotent
  }
  for (int n = 250; n < 260; ++n) {  // every cut point with 4-byte characters
    std::string emoji = std::string(static_cast<size_t>(n) % 4, 'a');
    for (int i = 0; i < 70; ++i) emoji += "\xf0\x9f\x98\x80";
    std::string s = sanitize_file_name(emoji);
    EXPECT_LE(s.size(), 255u);
    EXPECT_GE(s.size(), 252u);
    EXPECT_TRUE(valid_utf8(s));
  }
}

TEST(FileName, ContentDisposition) {
  EXPECT_EQ(content_disposition_attachment("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf");
  EXPECT_EQ(content_disposition_attachment("my \"best\" photo.jpg"),
            "attachment; filename=\"my _best_ photo.jpg\"; "
            "filename*=UTF-8''my%20%22best%22%20photo.jpg");
  EXPECT_EQ(content_disposition_attachment("caf\xc3\xa9 100%.txt"),
            "attachment; filename=\"caf_ 100_.txt\"; filename*=UTF-8''caf%C3%A9%20100%25.txt");
  EXPECT_EQ(content_disposition_attachment("\xe6\x97\xa5\xe6\x9c\xac.txt"),
            "attachment; filename=\"__.txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt");
  EXPECT_EQ(content_disposition_attachment("../a;b,c'd.txt"),
            "attachment; filename=\"a;b,c'd.txt\"; filename*=UTF-8''a%3Bb%2Cc%27d.txt");
  // Header injection: CR/LF never reach the header.
  std::string h = content_disposition_attachment("x\r\nSet-Cookie: a=b.txt");
  EXPECT_EQ(h.find('\r'), std::string::npos);
  EXPECT_EQ(h.find('\n'), std::string::npos);
  EXPECT_EQ(content_disposition_attachment(""),
            "attachment; filename=\"file\"; filename*=UTF-8''file");
}

}  // namespace
}  // namespace parley::media_inspect
