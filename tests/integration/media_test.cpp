// Media end to end over real sockets (docs/MEDIA.md; issue 6 "Tests it must have"): uploads,
// dedupe, Range and ETag downloads, media messages and who may download, signed URLs,
// oversized / truncated / wrong-type uploads that store nothing, harmless file names,
// thumbnails (and a corrupt image refused), housekeeping and deleting a user's data.
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/auth_helpers.h"
#include "support/chat_helpers.h"
#include "support/http_client.h"
#include "support/json_util.h"
#include "support/media_files.h"
#include "support/media_helpers.h"
#include "support/server_process.h"
#include "support/ws_client.h"

namespace parley::test {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using tcp = boost::asio::ip::tcp;

constexpr char kSigningKey[] = "media-test-signing-key";
constexpr uint64_t kMaxUpload = 2 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Test files

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// ---------------------------------------------------------------------------------------------
// The shared server

class MediaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto config = TomlConfig::test_defaults();
    config.set("media", "max_upload_bytes", std::to_string(kMaxUpload));
    config.set_string("media", "url_signing_key", kSigningKey);
    config.set("media", "max_uploads_per_user", "2");
    server_ = new ServerProcess(config);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static std::uint16_t port() { return server_->port(); }
  static fs::path media_dir() { return server_->data_dir() / "media"; }
  static ServerProcess* server_;
};
ServerProcess* MediaTest::server_ = nullptr;

TEST_F(MediaTest, ImageUploadIsContentAddressedWithThumbnailAndDownloadsIntact) {
  auto alice = new_account(port(), "mal");
  std::string png = make_png(640, 480, 1);
  auto r = upload(port(), alice.token, png, "image/png");
  ASSERT_EQ(r.status, 201u) << r.body;
  const auto& o = r.object();
  expect_png_upload(o, png, 640, 480, 320, 240);
  const auto& thumb = obj_field(o, "thumbnail");

  auto d = download(port(), alice.token, "/v1/media/" + str_field(o, "id"));
  ASSERT_EQ(d.status, 200u) << d.body;
  EXPECT_EQ(d.body, png);
  EXPECT_EQ(d.headers["content-type"], "image/png");
  EXPECT_EQ(d.headers["etag"], "\"" + sha256_hex(png) + "\"");
  EXPECT_EQ(d.headers["x-content-type-options"], "nosniff");
  EXPECT_EQ(d.headers["accept-ranges"], "bytes");
  EXPECT_NE(d.headers["cache-control"].find("immutable"), std::string::npos);
  EXPECT_NE(d.headers["cache-control"].find("private"), std::string::npos);
  EXPECT_EQ(d.headers["content-disposition"], "inline");

  auto t = download(port(), alice.token, "/v1/media/" + str_field(thumb, "id"));
  ASSERT_EQ(t.status, 200u);
  EXPECT_EQ(t.body.substr(0, 3), "\xff\xd8\xff");  // a JPEG
  EXPECT_EQ(sha256_hex(t.body), str_field(thumb, "id"));

  auto head = download(port(), alice.token, "/v1/media/" + str_field(o, "id"), {}, "HEAD");
  EXPECT_EQ(head.status, 200u);
  EXPECT_EQ(head.headers["content-length"], std::to_string(png.size()));
  EXPECT_TRUE(head.body.empty());
}

TEST_F(MediaTest, IdenticalUploadsAreStoredOnce) {
  auto alice = new_account(port(), "mda");
  auto bob = new_account(port(), "mdb");
  std::string text = "the same bytes, uploaded twice " + unique_username("x") + "\n";
  std::string id = upload_ok(port(), alice.token, text, "text/plain");
  size_t files = count_files(media_dir() / "objects");
  EXPECT_EQ(upload_ok(port(), bob.token, text), id);
  EXPECT_EQ(upload_ok(port(), alice.token, text, "text/plain; charset=utf-8"), id);
  EXPECT_EQ(count_files(media_dir() / "objects"), files);
  // Each uploader may read it.
  EXPECT_EQ(download(port(), bob.token, "/v1/media/" + id).body, text);
}

TEST_F(MediaTest, RangeRequests) {
  auto alice = new_account(port(), "mra");
  std::string text;
  for (int i = 0; i < 5000; ++i) text += static_cast<char>('a' + i % 26);
  std::string id = upload_ok(port(), alice.token, text, "text/plain");
  std::string target = "/v1/media/" + id;

  auto r = download(port(), alice.token, target, {{"Range", "bytes=10-19"}});
  EXPECT_EQ(r.status, 206u);
  EXPECT_EQ(r.body, text.substr(10, 10));
  EXPECT_EQ(r.headers["content-range"], "bytes 10-19/5000");

  r = download(port(), alice.token, target, {{"Range", "bytes=4990-"}});
  EXPECT_EQ(r.status, 206u);
  EXPECT_EQ(r.body, text.substr(4990));

  r = download(port(), alice.token, target, {{"Range", "bytes=-7"}});
  EXPECT_EQ(r.status, 206u);
  EXPECT_EQ(r.body, text.substr(4993));
  EXPECT_EQ(r.headers["content-range"], "bytes 4993-4999/5000");

  r = download(port(), alice.token, target, {{"Range", "bytes=4000-999999"}});
  EXPECT_EQ(r.status, 206u);
  EXPECT_EQ(r.body, text.substr(4000));

  r = download(port(), alice.token, target, {{"Range", "bytes=5000-"}});
  EXPECT_EQ(r.status, 416u);
  EXPECT_EQ(r.headers["content-range"], "bytes */5000");

  // Several ranges or nonsense: the whole object.
  r = download(port(), alice.token, target, {{"Range", "bytes=0-1,5-6"}});
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, text);
  r = download(port(), alice.token, target, {{"Range", "lines=1-2"}});
  EXPECT_EQ(r.status, 200u);
}

TEST_F(MediaTest, ETagRevalidationAnswers304) {
  auto alice = new_account(port(), "mea");
  std::string id = upload_ok(port(), alice.token, "etag me " + unique_username("e"), "text/plain");
  auto first = download(port(), alice.token, "/v1/media/" + id);
  ASSERT_EQ(first.status, 200u);
  auto again =
      download(port(), alice.token, "/v1/media/" + id, {{"If-None-Match", first.headers["etag"]}});
  EXPECT_EQ(again.status, 304u);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(again.headers["etag"], first.headers["etag"]);
  auto other = download(port(), alice.token, "/v1/media/" + id, {{"If-None-Match", "\"other\""}});
  EXPECT_EQ(other.status, 200u);
  // A text file is offered as an attachment, with the asked name made safe.
  auto named = download(port(), alice.token, "/v1/media/" + id + "?name=..%2F..%2Fevil%0D%0A.txt");
  EXPECT_EQ(named.status, 200u);
  EXPECT_EQ(named.headers["content-disposition"].rfind("attachment", 0), 0u);
  EXPECT_EQ(named.headers["content-disposition"].find('\r'), std::string::npos);
  EXPECT_EQ(named.headers["content-disposition"].find(".."), std::string::npos);
}

TEST_F(MediaTest, MediaMessageSharesTheObjectWithTheChatOnly) {
  auto alice = new_account(port(), "mma");
  auto bob = new_account(port(), "mmb");
  auto carol = new_account(port(), "mmc");
  std::string png = make_png(64, 48, 7);
  auto up = upload(port(), alice.token, png, "image/png");
  ASSERT_EQ(up.status, 201u);
  std::string id = str_field(up.object(), "id");
  std::string thumb_id = str_field(obj_field(up.object(), "thumbnail"), "id");

  // Before it is shared, nobody else may read it: 404, as for a missing object.
  EXPECT_EQ(download(port(), bob.token, "/v1/media/" + id).status, 404u);

  auto a = connect_authed(port(), alice.token);
  auto b = connect_authed(port(), bob.token);
  auto res = a->request(media_send(bob.name, id, "../holiday/\x01pic\x7f.png", "our cat"));
  ASSERT_EQ(str_field(res, "type"), "ok") << to_string(res);
  const auto media = receive_media_message(*b);
  ASSERT_FALSE(media.empty());
  EXPECT_EQ(str_field(media, "id"), id);
  EXPECT_EQ(str_field(media, "type"), "image/png");
  EXPECT_EQ(str_field(media, "kind"), "image");
  EXPECT_EQ(int_field(media, "size"), static_cast<int64_t>(png.size()));
  EXPECT_EQ(str_field(media, "name"), "pic.png");  // path and control characters gone
  EXPECT_EQ(str_field(media, "caption"), "our cat");
  EXPECT_EQ(int_field(media, "width"), 64);
  EXPECT_EQ(str_field(obj_field(media, "thumbnail"), "id"), thumb_id);

  // The chat's members read it and its thumbnail; carol does not.
  EXPECT_EQ(download(port(), bob.token, "/v1/media/" + id).body, png);
  EXPECT_EQ(download(port(), bob.token, "/v1/media/" + thumb_id).status, 200u);
  EXPECT_EQ(download(port(), carol.token, "/v1/media/" + id).status, 404u);
  EXPECT_EQ(download(port(), carol.token, "/v1/media/" + thumb_id).status, 404u);
  EXPECT_EQ(download(port(), std::nullopt, "/v1/media/" + id).status, 401u);
  EXPECT_EQ(download(port(), std::string("not-a-token"), "/v1/media/" + id).status, 401u);

  // History keeps the media message.
  auto hist = a->request(json::object{{"type", "history"}, {"with", bob.name}});
  const auto& msgs = arr_field(obj_field(hist, "result"), "messages");
  ASSERT_FALSE(msgs.empty());
  EXPECT_EQ(str_field(obj_field(msgs.back().as_object(), "media"), "id"), id);

  // Bob may forward it (he can read it); carol may not send what she cannot read.
  auto c = connect_authed(port(), carol.token);
  auto denied = c->request(media_send(alice.name, id));
  EXPECT_TRUE(is_error(denied, "not_found"));
  auto fwd = b->request(media_send(carol.name, id));
  EXPECT_EQ(str_field(fwd, "type"), "ok") << to_string(fwd);
  EXPECT_EQ(download(port(), carol.token, "/v1/media/" + id).status, 200u);
}

// Fields of `media` the server does not know (a client's own idea of the type and size) are
// ignored, as unknown fields are everywhere (PROTOCOL.md, introduction): the descriptor is
// the server's.
TEST_F(MediaTest, UnknownMediaFieldsAreIgnored) {
  auto alice = new_account(port(), "mua");
  auto bob = new_account(port(), "mub");
  std::string id = upload_ok(port(), alice.token, "x " + unique_username("u"), "text/plain");
  auto a = connect_authed(port(), alice.token);
  auto b = connect_authed(port(), bob.token);
  auto send = media_send(bob.name, id, "notes.txt");
  send["media"].as_object()["type"] = "image/heic";
  send["media"].as_object()["size"] = 1;
  send["media"].as_object()["future_field"] = json::object{{"nested", true}};
  auto res = a->request(send);
  ASSERT_EQ(str_field(res, "type"), "ok") << to_string(res);
  const auto media = receive_media_message(*b);
  ASSERT_FALSE(media.empty());
  EXPECT_EQ(str_field(media, "id"), id);
  EXPECT_EQ(str_field(media, "type"), "text/plain");
  EXPECT_GT(int_field(media, "size"), 1);
  EXPECT_FALSE(media.contains("future_field"));
}

TEST_F(MediaTest, GroupMembersReadAndRemovedMembersDoNot) {
  auto alice = new_account(port(), "mga");
  auto bob = new_account(port(), "mgb");
  auto a = connect_authed(port(), alice.token);
  auto created = a->request(json::object{
      {"type", "group_create"}, {"name", "pics"}, {"members", json::array{json::value(bob.name)}}});
  ASSERT_EQ(str_field(created, "type"), "ok") << to_string(created);
  int64_t chat = int_field(obj_field(obj_field(created, "result"), "chat"), "chat_id");
  std::string id =
      upload_ok(port(), alice.token, "group file " + unique_username("g"), "text/plain");
  auto sent = a->request(json::object{{"type", "send"},
                                      {"chat_id", chat},
                                      {"client_msg_id", next_client_msg_id()},
                                      {"media", json::object{{"id", id}, {"name", "notes.txt"}}}});
  ASSERT_EQ(str_field(sent, "type"), "ok") << to_string(sent);
  EXPECT_EQ(download(port(), bob.token, "/v1/media/" + id).status, 200u);
  auto removed =
      a->request(json::object{{"type", "group_remove"}, {"chat_id", chat}, {"user", bob.name}});
  ASSERT_EQ(str_field(removed, "type"), "ok") << to_string(removed);
  EXPECT_EQ(download(port(), bob.token, "/v1/media/" + id).status, 404u);
}

TEST_F(MediaTest, BadMediaSendsAreRefused) {
  auto alice = new_account(port(), "mba");
  auto bob = new_account(port(), "mbb");
  auto a = connect_authed(port(), alice.token);
  EXPECT_TRUE(is_error(a->request(media_send(bob.name, std::string(64, 'a'))), "not_found"));
  EXPECT_TRUE(is_error(a->request(media_send(bob.name, "../../etc/passwd")), "bad_request"));
  std::string id = upload_ok(port(), alice.token, "x " + unique_username("b"), "text/plain");
  auto both = media_send(bob.name, id);
  both["body"] = "and text";
  EXPECT_TRUE(is_error(a->request(both), "bad_request"));
  auto long_caption = media_send(bob.name, id, "f.txt", std::string(5000, 'c'));
  EXPECT_TRUE(is_error(a->request(long_caption), "too_large"));
  // Nothing of that reached bob's chat.
  auto hist = a->request(json::object{{"type", "history"}, {"with", bob.name}});
  EXPECT_TRUE(is_error(hist, "not_found") ||
              arr_field(obj_field(hist, "result"), "messages").empty())
      << to_string(hist);
}

TEST_F(MediaTest, SignedUrlsWorkWithoutSessionUntilTheyExpire) {
  auto alice = new_account(port(), "msa");
  auto bob = new_account(port(), "msb");
  std::string body = "signed " + unique_username("s");
  std::string id = upload_ok(port(), alice.token, body, "text/plain");
  HttpRequestOptions o;
  o.method = "POST";
  o.target = "/v1/media/" + id + "/url";
  o.bearer = alice.token;
  auto signed_url = http_request(port(), o);
  ASSERT_EQ(signed_url.status, 200u) << signed_url.body;
  std::string url = str_field(signed_url.object(), "url");
  int64_t exp = int_field(signed_url.object(), "expires_at");
  EXPECT_GT(exp, now_ms() / 1000);

  auto d = download(port(), std::nullopt, url);
  EXPECT_EQ(d.status, 200u);
  EXPECT_EQ(d.body, body);
  EXPECT_NE(d.headers["cache-control"].find("public"), std::string::npos);
  EXPECT_NE(d.headers["cache-control"].find("immutable"), std::string::npos);

  // Tampered: another exp, another id, a changed signature, none at all.
  std::string sig = url.substr(url.find("sig=") + 4);
  EXPECT_EQ(download(port(), std::nullopt,
                     "/v1/media/" + id + "?exp=" + std::to_string(exp + 3600) + "&sig=" + sig)
                .status,
            403u);
  std::string other = upload_ok(port(), alice.token, "other " + unique_username("s"), "text/plain");
  EXPECT_EQ(download(port(), std::nullopt,
                     "/v1/media/" + other + "?exp=" + std::to_string(exp) + "&sig=" + sig)
                .status,
            403u);
  std::string flipped = sig;
  flipped[0] = flipped[0] == 'a' ? 'b' : 'a';
  EXPECT_EQ(download(port(), std::nullopt,
                     "/v1/media/" + id + "?exp=" + std::to_string(exp) + "&sig=" + flipped)
                .status,
            403u);
  EXPECT_EQ(
      download(port(), std::nullopt, "/v1/media/" + id + "?exp=" + std::to_string(exp)).status,
      403u);
  // Expired: a correct signature over a time in the past.
  int64_t past = now_ms() / 1000 - 5;
  std::string old_sig = hmac_sha256_hex(kSigningKey, id + "\n" + std::to_string(past));
  auto expired = download(port(), std::nullopt,
                          "/v1/media/" + id + "?exp=" + std::to_string(past) + "&sig=" + old_sig);
  EXPECT_EQ(expired.status, 403u);
  // Only who may read it gets a URL.
  o.bearer = bob.token;
  EXPECT_EQ(http_request(port(), o).status, 404u);
}

TEST_F(MediaTest, OversizedAndWrongTypeUploadsStoreNothingCorruptImagesHaveNoThumbnail) {
  auto alice = new_account(port(), "mxa");
  size_t objects = count_files(media_dir() / "objects");

  // Over the limit with Content-Length: refused before the body is read.
  auto big = upload(port(), alice.token, std::string(kMaxUpload + 1, 'a'), "text/plain");
  EXPECT_EQ(big.status, 413u) << big.body << big.transport_error;
  EXPECT_EQ(big.error_code(), "too_large");
  // Over the limit with chunked encoding: found while streaming.
  std::string answer = chunked_upload(port(), alice.token, kMaxUpload + 1);
  EXPECT_NE(answer.find(" 413 "), std::string::npos) << answer.substr(0, 200);

  // The bytes decide the type: an ELF binary, text declared as PNG, an empty file.
  std::string elf = read_file("/bin/true");
  ASSERT_FALSE(elf.empty());
  auto r = upload(port(), alice.token, elf);
  EXPECT_EQ(r.status, 415u) << r.body;
  EXPECT_EQ(r.error_code(), "unsupported_type");
  r = upload(port(), alice.token, "plain text, not a picture", "image/png");
  EXPECT_EQ(r.status, 415u) << r.body;
  r = upload(port(), alice.token, "", "text/plain");
  EXPECT_EQ(r.status, 415u) << r.body;

  // A PNG cut short: no thumbnail, no crash; kept as a plain file.
  std::string png = make_png(200, 200, 3);
  r = upload(port(), alice.token, png.substr(0, png.size() / 2), "image/png");
  EXPECT_EQ(r.status, 201u) << r.body;
  EXPECT_EQ(str_field(r.object(), "kind"), "file");
  EXPECT_FALSE(r.object().contains("thumbnail"));
  EXPECT_FALSE(r.object().contains("width"));
  objects += 1;

  // No token, a bad token: 401 before any of the body is read.
  HttpRequestOptions o;
  o.method = "POST";
  o.target = "/v1/media";
  o.body = "hello";
  o.content_type = "text/plain";
  EXPECT_EQ(http_request(port(), o).status, 401u);
  o.bearer = "nonsense";
  EXPECT_EQ(http_request(port(), o).status, 401u);

  EXPECT_EQ(count_files(media_dir() / "objects"), objects);
  EXPECT_EQ(count_files(media_dir() / "tmp"), 0u);
  expect_server_healthy(port(), alice.token);
}

TEST_F(MediaTest, InterruptedUploadsLeaveNothingBehind) {
  auto alice = new_account(port(), "mia");
  size_t objects = count_files(media_dir() / "objects");
  std::string head = "POST /v1/media HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + alice.token +
                     "\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n";
  raw_exchange(port(), head + std::string(40000, 't'), true);  // then the connection drops
  // The spool file may not exist yet (the upload is authorised on another thread): wait a
  // little for it to appear, so that the wait below does not pass before it is created.
  for (int i = 0; i < 50 && count_files(media_dir() / "tmp") == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // The server notices the reset and drops the spool file.
  for (int i = 0; i < 50 && count_files(media_dir() / "tmp") != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(count_files(media_dir() / "tmp"), 0u);
  EXPECT_EQ(count_files(media_dir() / "objects"), objects);
  // And the user's upload slots are free again.
  for (int i = 0; i < 3; ++i)
    upload_ok(port(), alice.token, "again " + unique_username("i"), "text/plain");
}

TEST_F(MediaTest, TooManyUploadsAtOnceAreRateLimited) {
  auto alice = new_account(port(), "mla");
  std::string head = "POST /v1/media HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + alice.token +
                     "\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n";
  // Two uploads in progress (max_uploads_per_user = 2), held open.
  boost::asio::io_context ioc;
  std::vector<std::unique_ptr<tcp::socket>> held;
  for (int i = 0; i < 2; ++i) {
    auto s = std::make_unique<tcp::socket>(ioc);
    s->connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port()));
    boost::asio::write(*s, boost::asio::buffer(head + "partial"));
    held.push_back(std::move(s));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto third = upload(port(), alice.token, "third", "text/plain");
  EXPECT_EQ(third.status, 429u) << third.body;
  held.clear();
  for (int i = 0; i < 50; ++i) {
    if (upload(port(), alice.token, "fourth", "text/plain").status == 201) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "uploads stay refused after the held ones closed";
}

// ---------------------------------------------------------------------------------------------
// Housekeeping and deleting a user's data: own servers, with a short grace period.

TEST(MediaHousekeeping, UnreferencedUploadsAreRemovedReferencedOnesStay) {
  auto config = TomlConfig::test_defaults();
  config.set("media", "orphan_ttl_s", "1");
  config.set("media", "sweep_interval_s", "1");
  ServerProcess server(config);
  auto alice = new_account(server.port(), "hka");
  auto bob = new_account(server.port(), "hkb");
  std::string kept =
      upload_ok(server.port(), alice.token, "kept " + unique_username("k"), "text/plain");
  auto a = connect_authed(server.port(), alice.token);
  ASSERT_EQ(str_field(a->request(media_send(bob.name, kept)), "type"), "ok");
  std::string orphan =
      upload_ok(server.port(), alice.token, "orphan " + unique_username("o"), "text/plain");

  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    gone = download(server.port(), alice.token, "/v1/media/" + orphan).status == 404;
  }
  EXPECT_TRUE(gone) << "the unreferenced upload is still there";
  EXPECT_EQ(download(server.port(), alice.token, "/v1/media/" + kept).status, 200u);
  EXPECT_EQ(download(server.port(), bob.token, "/v1/media/" + kept).status, 200u);
  EXPECT_EQ(count_files(server.data_dir() / "media" / "objects"), 1u);
  // A send of the removed upload fails: it must be uploaded again.
  EXPECT_TRUE(is_error(a->request(media_send(bob.name, orphan)), "not_found"));
}

TEST(MediaAccountDeletion, RemovesMediaOnlyThatUserReferenced) {
  ServerProcess server;
  auto alice = new_account(server.port(), "dla");
  auto bob = new_account(server.port(), "dlb");
  auto carol = new_account(server.port(), "dlc");
  std::string only_alice =
      upload_ok(server.port(), alice.token, "mine " + unique_username("d"), "text/plain");
  std::string shared =
      upload_ok(server.port(), alice.token, "shared " + unique_username("d"), "text/plain");
  std::string unsent =
      upload_ok(server.port(), alice.token, "unsent " + unique_username("d"), "text/plain");
  auto a = connect_authed(server.port(), alice.token);
  auto b = connect_authed(server.port(), bob.token);
  ASSERT_EQ(str_field(a->request(media_send(bob.name, only_alice)), "type"), "ok");
  ASSERT_EQ(str_field(a->request(media_send(bob.name, shared)), "type"), "ok");
  // Bob forwards `shared` to carol: he refers to it too.
  ASSERT_EQ(str_field(b->request(media_send(carol.name, shared)), "type"), "ok");

  // Wrong password: nothing happens.
  HttpRequestOptions del;
  del.method = "DELETE";
  del.target = "/v1/account";
  del.bearer = alice.token;
  del.body = R"({"password":"wrong password!"})";
  EXPECT_EQ(http_request(server.port(), del).status, 401u);
  EXPECT_EQ(download(server.port(), bob.token, "/v1/media/" + only_alice).status, 200u);

  del.body = json::serialize(json::object{{"password", kPassword}});
  auto r = http_request(server.port(), del);
  ASSERT_EQ(r.status, 200u) << r.body;
  // Her live connection is closed, her token and password no longer work, her name stays taken.
  auto closed = a->wait_for([](const WsClient::Frame&) { return false; }, std::chrono::seconds(2));
  (void)closed;
  EXPECT_EQ(download(server.port(), alice.token, "/v1/media/" + shared).status, 401u);
  auto relogin = http_post_json(server.port(), "/v1/login",
                                json::object{{"username", alice.name}, {"password", kPassword}});
  EXPECT_EQ(relogin.status, 401u);
  auto again = http_post_json(server.port(), "/v1/register",
                              json::object{{"username", alice.name}, {"password", kPassword}});
  EXPECT_EQ(again.status, 409u);

  // Media only she referenced is gone; what bob also sent stays.
  for (int i = 0; i < 50; ++i) {
    if (count_files(server.data_dir() / "media" / "objects") == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(download(server.port(), bob.token, "/v1/media/" + only_alice).status, 404u);
  EXPECT_EQ(download(server.port(), bob.token, "/v1/media/" + shared).status, 200u);
  EXPECT_EQ(download(server.port(), carol.token, "/v1/media/" + shared).status, 200u);
  EXPECT_EQ(count_files(server.data_dir() / "media" / "objects"), 1u);
  (void)unsent;
  // Her messages stay in bob's history.
  auto hist = b->request(json::object{{"type", "history"}, {"with", alice.name}});
  EXPECT_EQ(arr_field(obj_field(hist, "result"), "messages").size(), 2u) << to_string(hist);
  // Deleting twice: the token is dead.
  EXPECT_EQ(http_request(server.port(), del).status, 401u);
}

}  // namespace
}  // namespace parley::test

namespace parley::test {
namespace {

// Issue 15, item 3: what phones and office software produce is accepted by default.
TEST(MediaDefaultTypes, PhonePhotosVideosAndOfficeDocumentsAreAccepted) {
  ServerProcess server;
  auto alice = new_account(server.port(), "mda");
  const std::string docx_type =
      "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
  struct Case {
    std::string bytes, declared, type, kind;
  };
  const Case cases[] = {
      {iso_file("heic", "mif1heic", "meta"), "image/heic", "image/heic", "image"},
      {iso_file("qt  ", "qt  ", "moov"), "video/quicktime", "video/quicktime", "video"},
      {iso_file("3gp4", "isom3gp4", "moov"), "video/3gpp", "video/3gpp", "video"},
      {zip_of({{"[Content_Types].xml", "<Types/>"},
               {"_rels/.rels", "<R/>"},
               {"word/document.xml", "<w/>"}}),
       docx_type, docx_type, "file"},
  };
  for (const auto& c : cases) {
    auto r = upload(server.port(), alice.token, c.bytes, c.declared);
    ASSERT_EQ(r.status, 201u) << c.declared << ": " << r.body;
    EXPECT_EQ(str_field(r.object(), "type"), c.type);
    EXPECT_EQ(str_field(r.object(), "kind"), c.kind);
    // HEIC is kept without a thumbnail (only JPEG, PNG, GIF and WebP are decoded).
    EXPECT_FALSE(r.object().contains("thumbnail")) << r.body;
  }
}

// Issue 15, item 3: an operator's own list still refuses, with a message that names the type.
TEST(MediaDefaultTypes, AnOperatorsListRefusesNamingTheType) {
  ServerProcess server(
      TomlConfig::test_defaults().set("media", "allowed_types", R"(["image/png"])"));
  auto alice = new_account(server.port(), "mdb");
  auto r = upload(server.port(), alice.token, iso_file("heic", "mif1heic", "meta"), "image/heic");
  EXPECT_EQ(r.status, 415u) << r.body;
  EXPECT_EQ(r.error_code(), "unsupported_type");
  EXPECT_NE(r.body.find("image/heic"), std::string::npos) << r.body;
}

}  // namespace
}  // namespace parley::test
