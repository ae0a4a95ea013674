// Media end to end with `[media] backend = "s3"` (docs/MEDIA.md "S3 backend"): the real
// parleyd against a local S3-compatible server (s3rver, tests/support/s3rver.h) over real
// sockets. Objects must land in the bucket under `s3_prefix` and nowhere under DATA_DIR but
// the spool: image uploads with thumbnails, dedupe, Range and ETag downloads, media messages
// and who may download, oversized or refused uploads that store nothing, deleting a user's
// media, housekeeping that deletes from the bucket, a restart that keeps serving what was
// stored, and an unreachable store. Skipped (but for the last) when `node` is not installed.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>

#include "support/auth_helpers.h"
#include "support/chat_helpers.h"
#include "support/http_client.h"
#include "support/json_util.h"
#include "support/media_helpers.h"
#include "support/s3rver.h"
#include "support/server_process.h"
#include "support/ws_client.h"

namespace parley::test {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

constexpr uint64_t kMaxUpload = 2 * 1024 * 1024;
constexpr char kObjectSuffix[] = "._S3rver_object";

// Starts s3rver for the binary (once); fails the test if it cannot, skips it without node.
#define REQUIRE_S3RVER()                                                    \
  do {                                                                      \
    const std::string s3rver_failure = S3rver::instance().ensure_started(); \
    ASSERT_EQ(s3rver_failure, "") << "s3rver did not start";                \
    if (!S3rver::instance().skip_reason().empty())                          \
      GTEST_SKIP() << S3rver::instance().skip_reason();                     \
  } while (0)

// parleyd's config for the S3 backend on s3rver, objects under `prefix` ("x/"). Each server
// of this binary has its own prefix: housekeeping lists (and may remove) everything under it.
TomlConfig s3_config(const std::string& prefix) {
  auto c = TomlConfig::test_defaults();
  c.set_string("media", "backend", "s3");
  c.set_string("media", "s3_endpoint", S3rver::instance().endpoint());
  c.set_string("media", "s3_region", "us-east-1");
  c.set_string("media", "s3_bucket", kS3rverBucket);
  c.set_string("media", "s3_access_key", kS3rverAccessKey);
  c.set_string("media", "s3_secret_key", kS3rverSecretKey);
  c.set("media", "s3_path_style", "true");
  c.set_string("media", "s3_prefix", prefix);
  return c;
}

// The file in which s3rver keeps object `id` under `prefix`.
fs::path s3_file(const std::string& prefix, const std::string& id) {
  return S3rver::instance().object_file(prefix + id);
}

bool in_s3(const std::string& prefix, const std::string& id) {
  std::error_code ec;
  return fs::exists(s3_file(prefix, id), ec);
}

std::string s3_bytes(const std::string& prefix, const std::string& id) {
  std::ifstream in(s3_file(prefix, id), std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Objects s3rver holds under `prefix` (ids have no '/': one directory level).
size_t s3_count(const std::string& prefix) {
  const fs::path dir = S3rver::instance().data_dir() / kS3rverBucket / prefix;
  size_t n = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() > sizeof kObjectSuffix - 1 &&
        name.compare(name.size() - (sizeof kObjectSuffix - 1), std::string::npos, kObjectSuffix) ==
            0)
      ++n;
  }
  return n;
}

// Polls `done` every 100 ms for up to `timeout`.
template <class Pred>
bool eventually(Pred done, std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

// Nothing but the spool under DATA_DIR/media: no local object store, no spool file left.
void expect_nothing_stored_locally(const ServerProcess& server) {
  const fs::path media = server.data_dir() / "media";
  EXPECT_EQ(count_files(media / "objects"), 0u) << "objects went to the filesystem";
  EXPECT_EQ(count_files(media / "tmp"), 0u) << "a spool file was left behind";
  std::error_code ec;
  for (auto it = fs::directory_iterator(media, ec); !ec && it != fs::directory_iterator();
       it.increment(ec))
    EXPECT_EQ(it->path().filename(), "tmp") << "unexpected " << it->path();
}

// ---------------------------------------------------------------------------------------------
// The shared server

class MediaS3Test : public ::testing::Test {
 protected:
  static constexpr char kPrefix[] = "media/";

  static void SetUpTestSuite() {
    if (!S3rver::instance().ensure_started().empty() || !S3rver::instance().skip_reason().empty())
      return;  // SetUp() reports it
    auto config = s3_config(kPrefix);
    config.set("media", "max_upload_bytes", std::to_string(kMaxUpload));
    server_ = new ServerProcess(config);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    REQUIRE_S3RVER();
    ASSERT_NE(server_, nullptr);
  }
  static std::uint16_t port() { return server_->port(); }
  static ServerProcess* server_;
};
ServerProcess* MediaS3Test::server_ = nullptr;

TEST_F(MediaS3Test, ImageRoundTripWithThumbnailLivesInTheBucket) {
  auto alice = new_account(port(), "s3i");
  const std::string png = make_png(640, 480, 11);
  auto r = upload(port(), alice.token, png, "image/png");
  ASSERT_EQ(r.status, 201u) << r.body << r.transport_error;
  const auto& o = r.object();
  expect_png_upload(o, png, 640, 480, 320, 240);
  const std::string id = str_field(o, "id");
  const std::string thumb_id = str_field(obj_field(o, "thumbnail"), "id");

  // Both objects are in the bucket, under the prefix, byte for byte.
  ASSERT_TRUE(in_s3(kPrefix, id)) << s3_file(kPrefix, id);
  EXPECT_TRUE(s3_bytes(kPrefix, id) == png) << "the object in S3 differs from the upload";
  ASSERT_TRUE(in_s3(kPrefix, thumb_id));
  EXPECT_EQ(sha256_hex(s3_bytes(kPrefix, thumb_id)), thumb_id);
  expect_nothing_stored_locally(*server_);

  auto d = download(port(), alice.token, "/v1/media/" + id);
  ASSERT_EQ(d.status, 200u) << d.body;
  EXPECT_TRUE(d.body == png) << "downloaded " << d.body.size() << " bytes";
  EXPECT_EQ(d.headers["content-type"], "image/png");
  EXPECT_EQ(d.headers["content-length"], std::to_string(png.size()));
  EXPECT_EQ(d.headers["etag"], "\"" + id + "\"");
  EXPECT_EQ(d.headers["accept-ranges"], "bytes");
  EXPECT_EQ(d.headers["content-disposition"], "inline");

  auto t = download(port(), alice.token, "/v1/media/" + thumb_id);
  ASSERT_EQ(t.status, 200u);
  EXPECT_EQ(t.body.substr(0, 3), "\xff\xd8\xff");  // a JPEG
  EXPECT_EQ(sha256_hex(t.body), thumb_id);
  EXPECT_EQ(t.headers["content-type"], "image/jpeg");

  auto head = download(port(), alice.token, "/v1/media/" + id, {}, "HEAD");
  EXPECT_EQ(head.status, 200u);
  EXPECT_EQ(head.headers["content-length"], std::to_string(png.size()));
  EXPECT_TRUE(head.body.empty());
}

TEST_F(MediaS3Test, IdenticalUploadsAreOneObject) {
  auto alice = new_account(port(), "s3da");
  auto bob = new_account(port(), "s3db");
  const std::string text = "the same bytes, uploaded three times " + unique_username("x") + "\n";
  const size_t before = s3_count(kPrefix);
  const std::string id = upload_ok(port(), alice.token, text, "text/plain");
  ASSERT_EQ(id, sha256_hex(text));
  EXPECT_EQ(s3_count(kPrefix), before + 1);
  EXPECT_EQ(upload_ok(port(), bob.token, text), id);
  EXPECT_EQ(upload_ok(port(), alice.token, text, "text/plain; charset=utf-8"), id);
  EXPECT_EQ(s3_count(kPrefix), before + 1);
  EXPECT_EQ(s3_bytes(kPrefix, id), text);
  // Each uploader may read it.
  EXPECT_EQ(download(port(), alice.token, "/v1/media/" + id).body, text);
  EXPECT_EQ(download(port(), bob.token, "/v1/media/" + id).body, text);
  expect_nothing_stored_locally(*server_);
}

TEST_F(MediaS3Test, RangeRequestsAndETagRevalidation) {
  auto alice = new_account(port(), "s3r");
  std::string text;
  for (int i = 0; i < 5000; ++i) text += static_cast<char>('a' + i % 26);
  text += unique_username("r");  // a new object, not a dedupe of another run's
  const auto size = std::to_string(text.size());
  const std::string id = upload_ok(port(), alice.token, text, "text/plain");
  const std::string target = "/v1/media/" + id;

  auto r = download(port(), alice.token, target, {{"Range", "bytes=10-19"}});
  EXPECT_EQ(r.status, 206u);
  EXPECT_EQ(r.body, text.substr(10, 10));
  EXPECT_EQ(r.headers["content-range"], "bytes 10-19/" + size);
  r = download(port(), alice.token, target, {{"Range", "bytes=4990-"}});
  EXPECT_EQ(r.status, 206u);
  EXPECT_EQ(r.body, text.substr(4990));
  r = download(port(), alice.token, target, {{"Range", "bytes=-7"}});
  EXPECT_EQ(r.status, 206u);
  EXPECT_EQ(r.body, text.substr(text.size() - 7));
  r = download(port(), alice.token, target, {{"Range", "bytes=4000-999999"}});
  EXPECT_EQ(r.status, 206u);
  EXPECT_EQ(r.body, text.substr(4000));
  r = download(port(), alice.token, target, {{"Range", "bytes=" + size + "-"}});
  EXPECT_EQ(r.status, 416u);
  EXPECT_EQ(r.headers["content-range"], "bytes */" + size);

  // A range in the middle of a large object (many buffers of the S3 reader before it).
  const std::string png = make_png(640, 480, 12);
  const std::string big = upload_ok(port(), alice.token, png, "image/png");
  r = download(port(), alice.token, "/v1/media/" + big, {{"Range", "bytes=700000-700099"}});
  EXPECT_EQ(r.status, 206u);
  EXPECT_TRUE(r.body == png.substr(700000, 100));
  r = download(port(), alice.token, "/v1/media/" + big, {{"Range", "bytes=300000-"}});
  EXPECT_EQ(r.status, 206u);
  EXPECT_TRUE(r.body == png.substr(300000)) << r.body.size() << " bytes";

  // ETag: the content hash; If-None-Match with it answers 304 without a body.
  auto first = download(port(), alice.token, target);
  ASSERT_EQ(first.status, 200u);
  EXPECT_EQ(first.headers["etag"], "\"" + id + "\"");
  auto again = download(port(), alice.token, target, {{"If-None-Match", first.headers["etag"]}});
  EXPECT_EQ(again.status, 304u);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(again.headers["etag"], first.headers["etag"]);
  auto star = download(port(), alice.token, target, {{"If-None-Match", "*"}});
  EXPECT_EQ(star.status, 304u);
  auto other = download(port(), alice.token, target, {{"If-None-Match", "\"other\""}});
  EXPECT_EQ(other.status, 200u);
  EXPECT_EQ(other.body, text);
}

TEST_F(MediaS3Test, MediaMessageLetsThePeerDownloadAndNobodyElse) {
  auto alice = new_account(port(), "s3ma");
  auto bob = new_account(port(), "s3mb");
  auto carol = new_account(port(), "s3mc");
  const std::string png = make_png(64, 48, 13);
  auto up = upload(port(), alice.token, png, "image/png");
  ASSERT_EQ(up.status, 201u) << up.body;
  const std::string id = str_field(up.object(), "id");
  const std::string thumb_id = str_field(obj_field(up.object(), "thumbnail"), "id");

  // Before it is shared, nobody else may read it: 404, as for a missing object.
  EXPECT_EQ(download(port(), bob.token, "/v1/media/" + id).status, 404u);
  EXPECT_EQ(download(port(), bob.token, "/v1/media/" + std::string(64, 'a')).status, 404u);

  auto a = connect_authed(port(), alice.token);
  auto b = connect_authed(port(), bob.token);
  auto res = a->request(media_send(bob.name, id, "cat.png", "our cat"));
  ASSERT_EQ(str_field(res, "type"), "ok") << to_string(res);
  const auto media = receive_media_message(*b);
  ASSERT_FALSE(media.empty());
  EXPECT_EQ(str_field(media, "id"), id);
  EXPECT_EQ(str_field(media, "type"), "image/png");
  EXPECT_EQ(int_field(media, "size"), static_cast<int64_t>(png.size()));
  EXPECT_EQ(str_field(media, "name"), "cat.png");
  EXPECT_EQ(str_field(media, "caption"), "our cat");
  EXPECT_EQ(str_field(obj_field(media, "thumbnail"), "id"), thumb_id);

  // Bob downloads what the message refers to, from S3 through the server.
  auto d = download(port(), bob.token, "/v1/media/" + id);
  ASSERT_EQ(d.status, 200u);
  EXPECT_TRUE(d.body == png);
  auto t = download(port(), bob.token, "/v1/media/" + thumb_id);
  ASSERT_EQ(t.status, 200u);
  EXPECT_EQ(sha256_hex(t.body), thumb_id);
  // And through a signed URL, with no session.
  HttpRequestOptions o;
  o.method = "POST";
  o.target = "/v1/media/" + id + "/url";
  o.bearer = bob.token;
  auto signed_url = http_request(port(), o);
  ASSERT_EQ(signed_url.status, 200u) << signed_url.body;
  auto s = download(port(), std::nullopt, str_field(signed_url.object(), "url"));
  EXPECT_EQ(s.status, 200u);
  EXPECT_TRUE(s.body == png);

  // Carol is in no chat with it: 404 for the object and its thumbnail, no signed URL.
  EXPECT_EQ(download(port(), carol.token, "/v1/media/" + id).status, 404u);
  EXPECT_EQ(download(port(), carol.token, "/v1/media/" + thumb_id).status, 404u);
  EXPECT_EQ(download(port(), carol.token, "/v1/media/" + id, {}, "HEAD").status, 404u);
  o.bearer = carol.token;
  EXPECT_EQ(http_request(port(), o).status, 404u);
  EXPECT_EQ(download(port(), std::nullopt, "/v1/media/" + id).status, 401u);
  auto c = connect_authed(port(), carol.token);
  EXPECT_TRUE(is_error(c->request(media_send(alice.name, id)), "not_found"));
}

TEST_F(MediaS3Test, RefusedUploadsStoreNothing) {
  auto alice = new_account(port(), "s3x");
  const size_t before = s3_count(kPrefix);

  // Over the limit with Content-Length: refused before the body is read.
  auto big = upload(port(), alice.token, std::string(kMaxUpload + 1, 'a'), "text/plain");
  EXPECT_EQ(big.status, 413u) << big.body << big.transport_error;
  EXPECT_EQ(big.error_code(), "too_large");
  // Over the limit with chunked encoding: found while spooling.
  const std::string answer = chunked_upload(port(), alice.token, kMaxUpload + 1);
  EXPECT_NE(answer.find(" 413 "), std::string::npos) << answer.substr(0, 200);
  // Spooled completely, then refused: text declared as PNG, an empty file.
  auto wrong = upload(port(), alice.token, "plain text, not a picture", "image/png");
  EXPECT_EQ(wrong.status, 415u) << wrong.body;
  auto empty = upload(port(), alice.token, "", "text/plain");
  EXPECT_EQ(empty.status, 415u) << empty.body;

  EXPECT_FALSE(in_s3(kPrefix, sha256_hex(std::string(kMaxUpload + 1, 'a'))));
  EXPECT_FALSE(in_s3(kPrefix, sha256_hex("plain text, not a picture")));
  EXPECT_EQ(s3_count(kPrefix), before);
  EXPECT_TRUE(eventually([] { return count_files(server_->data_dir() / "media" / "tmp") == 0; }));
  expect_nothing_stored_locally(*server_);
  expect_server_healthy(port(), alice.token);
}

TEST_F(MediaS3Test, DeletingAUserRemovesHerMediaFromTheBucket) {
  auto alice = new_account(port(), "s3ua");
  auto bob = new_account(port(), "s3ub");
  const std::string only_alice =
      upload_ok(port(), alice.token, "mine " + unique_username("d"), "text/plain");
  const std::string shared =
      upload_ok(port(), alice.token, "shared " + unique_username("d"), "text/plain");
  auto a = connect_authed(port(), alice.token);
  auto b = connect_authed(port(), bob.token);
  ASSERT_EQ(str_field(a->request(media_send(bob.name, only_alice)), "type"), "ok");
  ASSERT_EQ(str_field(a->request(media_send(bob.name, shared)), "type"), "ok");
  ASSERT_EQ(str_field(b->request(media_send(alice.name, shared)), "type"), "ok");
  ASSERT_TRUE(in_s3(kPrefix, only_alice));

  HttpRequestOptions del;
  del.method = "DELETE";
  del.target = "/v1/account";
  del.bearer = alice.token;
  del.body = json::serialize(json::object{{"password", kPassword}});
  auto r = http_request(port(), del);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_TRUE(eventually([&] { return !in_s3(kPrefix, only_alice); }))
      << "media only she referenced is still in the bucket";
  EXPECT_EQ(download(port(), bob.token, "/v1/media/" + only_alice).status, 404u);
  EXPECT_TRUE(in_s3(kPrefix, shared));
  EXPECT_EQ(download(port(), bob.token, "/v1/media/" + shared).status, 200u);
}

// ---------------------------------------------------------------------------------------------
// Own servers: housekeeping with a short grace period, and a restart.

TEST(MediaS3Housekeeping, UnreferencedUploadsAreRemovedFromTheBucket) {
  REQUIRE_S3RVER();
  const std::string prefix = "hk-media/";
  auto config = s3_config(prefix);
  config.set("media", "orphan_ttl_s", "1");
  config.set("media", "sweep_interval_s", "1");
  ServerProcess server(config);
  auto alice = new_account(server.port(), "s3ha");
  auto bob = new_account(server.port(), "s3hb");

  const std::string png = make_png(96, 64, 14);
  auto up = upload(server.port(), alice.token, png, "image/png");
  ASSERT_EQ(up.status, 201u) << up.body;
  const std::string kept = str_field(up.object(), "id");
  const std::string kept_thumb = str_field(obj_field(up.object(), "thumbnail"), "id");
  auto a = connect_authed(server.port(), alice.token);
  auto sent = a->request(media_send(bob.name, kept));
  ASSERT_EQ(str_field(sent, "type"), "ok") << to_string(sent);
  const std::string orphan =
      upload_ok(server.port(), alice.token, "orphan " + unique_username("o"), "text/plain");
  ASSERT_FALSE(orphan.empty());
  EXPECT_TRUE(in_s3(prefix, orphan));

  // An object in the bucket with no record (a crash between storing and recording it), older
  // than the grace period: the second pass of the sweep removes it.
  const std::string stray_bytes = "stray " + unique_username("s");
  const std::string stray = sha256_hex(stray_bytes);
  {
    fs::create_directories(s3_file(prefix, stray).parent_path());
    std::ofstream(s3_file(prefix, stray), std::ios::binary) << stray_bytes;
    fs::last_write_time(s3_file(prefix, stray),
                        fs::file_time_type::clock::now() - std::chrono::minutes(10));
  }

  EXPECT_TRUE(eventually([&] {
    return download(server.port(), alice.token, "/v1/media/" + orphan).status == 404;
  })) << "the unreferenced upload is still served";
  EXPECT_TRUE(eventually([&] { return !in_s3(prefix, orphan); }))
      << "the unreferenced upload is still in the bucket";
  EXPECT_TRUE(eventually([&] { return !in_s3(prefix, stray); }))
      << "the object with no record is still in the bucket";

  // What a message refers to stays: the image and its thumbnail.
  EXPECT_TRUE(in_s3(prefix, kept));
  EXPECT_TRUE(in_s3(prefix, kept_thumb));
  EXPECT_EQ(s3_count(prefix), 2u);
  auto d = download(server.port(), bob.token, "/v1/media/" + kept);
  EXPECT_EQ(d.status, 200u);
  EXPECT_TRUE(d.body == png);
  EXPECT_EQ(download(server.port(), bob.token, "/v1/media/" + kept_thumb).status, 200u);
  // A send of the removed upload fails: it must be uploaded again.
  EXPECT_TRUE(is_error(a->request(media_send(bob.name, orphan)), "not_found"));
  expect_nothing_stored_locally(server);
}

TEST(MediaS3Restart, StoredObjectsAreServedAfterARestart) {
  REQUIRE_S3RVER();
  const std::string prefix = "restart-media/";
  ServerProcess server(s3_config(prefix));
  auto alice = new_account(server.port(), "s3sa");
  auto bob = new_account(server.port(), "s3sb");
  const std::string png = make_png(320, 200, 15);
  auto up = upload(server.port(), alice.token, png, "image/png");
  ASSERT_EQ(up.status, 201u) << up.body;
  const std::string id = str_field(up.object(), "id");
  const std::string thumb_id = str_field(obj_field(up.object(), "thumbnail"), "id");
  const std::string text = "kept across restarts " + unique_username("k");
  const std::string text_id = upload_ok(server.port(), alice.token, text, "text/plain");
  {
    auto a = connect_authed(server.port(), alice.token);
    auto sent = a->request(media_send(bob.name, id));
    ASSERT_EQ(str_field(sent, "type"), "ok") << to_string(sent);
  }
  const size_t objects = s3_count(prefix);
  EXPECT_EQ(objects, 3u);

  auto status = server.stop();
  EXPECT_TRUE(status.ok()) << status.describe();
  server.restart();
  const auto port = server.port();
  const std::string alice_token = login(port, alice.name).token;
  const std::string bob_token = login(port, bob.name).token;

  auto d = download(port, bob_token, "/v1/media/" + id);
  ASSERT_EQ(d.status, 200u) << d.body;
  EXPECT_TRUE(d.body == png);
  EXPECT_EQ(d.headers["content-type"], "image/png");
  auto t = download(port, bob_token, "/v1/media/" + thumb_id);
  ASSERT_EQ(t.status, 200u);
  EXPECT_EQ(sha256_hex(t.body), thumb_id);
  auto r = download(port, alice_token, "/v1/media/" + id, {{"Range", "bytes=1000-1999"}});
  EXPECT_EQ(r.status, 206u);
  EXPECT_TRUE(r.body == png.substr(1000, 1000));
  EXPECT_EQ(download(port, alice_token, "/v1/media/" + text_id).body, text);
  EXPECT_EQ(download(port, bob_token, "/v1/media/" + text_id).status, 404u);
  // Uploading the same bytes again is still a dedupe against the bucket.
  EXPECT_EQ(upload_ok(port, alice_token, text, "text/plain"), text_id);
  EXPECT_EQ(s3_count(prefix), objects);
  expect_nothing_stored_locally(server);
}

// No S3 server at all (port 9, discard, on loopback): uploads answer 503 and leave no spool
// file; the rest of the server works. Needs no s3rver.
TEST(MediaS3Unreachable, UploadsAnswerUnavailableAndStoreNothing) {
  auto config = TomlConfig::test_defaults();
  config.set_string("media", "backend", "s3");
  config.set_string("media", "s3_endpoint", "http://127.0.0.1:9");
  config.set_string("media", "s3_bucket", kS3rverBucket);
  config.set_string("media", "s3_access_key", kS3rverAccessKey);
  config.set_string("media", "s3_secret_key", kS3rverSecretKey);
  ServerProcess server(config);
  auto alice = new_account(server.port(), "s3n");
  auto r =
      upload(server.port(), alice.token, "nowhere to go " + unique_username("n"), "text/plain");
  EXPECT_EQ(r.status, 503u) << r.body;
  EXPECT_EQ(r.error_code(), "unavailable");
  r = upload(server.port(), alice.token, make_png(64, 48, 16), "image/png");
  EXPECT_EQ(r.status, 503u) << r.body;
  EXPECT_EQ(download(server.port(), alice.token, "/v1/media/" + std::string(64, 'b')).status, 404u);
  EXPECT_TRUE(eventually([&] { return count_files(server.data_dir() / "media" / "tmp") == 0; }));
  expect_nothing_stored_locally(server);
  expect_server_healthy(server.port(), alice.token);
}

}  // namespace
}  // namespace parley::test
