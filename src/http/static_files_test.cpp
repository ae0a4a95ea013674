// StaticFiles: what the web client's files are served with, and what is refused.
#include "http/static_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace parley::http {
namespace {

namespace bhttp = boost::beast::http;
namespace fs = std::filesystem;

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("parley-static-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "js");
    write("index.html", "<!doctype html><title>Parley</title>");
    write("js/app.js", "export const x = 1;\n");
    write("style.css", "body{}");
    fs::create_directories(root_ / ".git");
    write(".git/config", "secret");
    write(".env", "secret");
  }
  void TearDown() override { fs::remove_all(root_); }

  void write(const std::string& rel, const std::string& body) {
    std::ofstream(root_ / rel, std::ios::binary) << body;
  }
  std::unique_ptr<StaticFiles> load(StaticFiles::Limits limits = {}) {
    auto r = StaticFiles::load(root_.string(), limits);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? std::move(r.value()) : nullptr;
  }
  static net::HttpRequest get(std::string target, bhttp::verb verb = bhttp::verb::get) {
    net::HttpRequest req{verb, target, 11};
    return req;
  }

  fs::path root_;
};

TEST_F(StaticFilesTest, ServesIndexAtTheRootWithSecurityHeaders) {
  auto files = load();
  ASSERT_TRUE(files);
  EXPECT_EQ(files->size(), 3u);  // hidden files and folders are not served
  auto res = files->serve(get("/"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result(), bhttp::status::ok);
  EXPECT_EQ(res->body(), "<!doctype html><title>Parley</title>");
  EXPECT_EQ((*res)[bhttp::field::content_type], "text/html; charset=utf-8");
  EXPECT_EQ((*res)[bhttp::field::cache_control], "no-cache");
  EXPECT_EQ((*res)["X-Content-Type-Options"], "nosniff");
  EXPECT_EQ((*res)["X-Frame-Options"], "DENY");
  EXPECT_NE((*res)["Content-Security-Policy"].find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(files->serve(get("/index.html"))->body(), res->body());
  EXPECT_EQ(files->serve(get("/?x=1"))->body(), res->body());
}

TEST_F(StaticFilesTest, ContentTypesByExtension) {
  auto files = load();
  ASSERT_TRUE(files);
  EXPECT_EQ((*files->serve(get("/js/app.js")))[bhttp::field::content_type],
            "text/javascript; charset=utf-8");
  EXPECT_EQ((*files->serve(get("/style.css")))[bhttp::field::content_type],
            "text/css; charset=utf-8");
  EXPECT_EQ(StaticFiles::content_type_of("a.PNG"), "image/png");
  EXPECT_EQ(StaticFiles::content_type_of("a.d.ts"), "text/plain; charset=utf-8");
  EXPECT_EQ(StaticFiles::content_type_of("noext"), "application/octet-stream");
  EXPECT_EQ(StaticFiles::content_type_of("dir.v1/noext"), "application/octet-stream");
}

TEST_F(StaticFilesTest, ETagRevalidationAnswers304WithoutABody) {
  auto files = load();
  ASSERT_TRUE(files);
  auto first = files->serve(get("/js/app.js"));
  std::string etag(first->at(bhttp::field::etag));
  ASSERT_EQ(etag.size(), 34u);  // "<32 hex digits>"
  auto again = get("/js/app.js");
  again.set(bhttp::field::if_none_match, "\"other\", W/" + etag);
  auto res = files->serve(again);
  EXPECT_EQ(res->result(), bhttp::status::not_modified);
  EXPECT_TRUE(res->body().empty());
  again.set(bhttp::field::if_none_match, "\"other\"");
  EXPECT_EQ(files->serve(again)->result(), bhttp::status::ok);
}

TEST_F(StaticFilesTest, HeadHasTheLengthButNoBody) {
  auto files = load();
  auto res = files->serve(get("/style.css", bhttp::verb::head));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result(), bhttp::status::ok);
  EXPECT_TRUE(res->body().empty());
  EXPECT_EQ((*res)[bhttp::field::content_length], "6");
}

TEST_F(StaticFilesTest, UnknownPathsTraversalAndHiddenFilesAreNotFound) {
  auto files = load();
  for (const char* path : {"/nope.js", "/../etc/passwd", "/js/../index.html", "/.env",
                           "/.git/config", "/js", "/js/", "//index.html", "/index.html%00"})
    EXPECT_FALSE(files->serve(get(path))) << path;
}

TEST_F(StaticFilesTest, OtherMethodsAre405) {
  auto files = load();
  auto res = files->serve(get("/", bhttp::verb::post));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result(), bhttp::status::method_not_allowed);
  EXPECT_EQ((*res)[bhttp::field::allow], "GET, HEAD");
}

TEST_F(StaticFilesTest, LimitsAndAMissingRootAreErrors) {
  EXPECT_FALSE(StaticFiles::load((root_ / "missing").string(), {}));
  EXPECT_FALSE(StaticFiles::load((root_ / "index.html").string(), {}));
  EXPECT_FALSE(StaticFiles::load(root_.string(), {10, 2000}));    // bytes
  EXPECT_FALSE(StaticFiles::load(root_.string(), {1 << 20, 2}));  // files
  EXPECT_TRUE(StaticFiles::load(root_.string(), {1 << 20, 3}));
}

}  // namespace
}  // namespace parley::http
