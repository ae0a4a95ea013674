#include "media/s3_media_store.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "common/text.h"
#include "media/sigv4.h"
#include "media/spool.h"

namespace parley::media {

namespace {

constexpr size_t kMaxResponseBody = 8u << 20;  // a list page (1000 keys) is well under this
constexpr size_t kMaxErrorBody = 64u << 10;
constexpr uint32_t kMaxKeysPerList = 1000;  // S3's own limit per ListObjectsV2 page

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---- Minimal XML: S3 responses are flat, attribute-free elements of text.

std::string xml_unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out.push_back(s[i]);
      continue;
    }
    size_t semi = s.find(';', i);
    if (semi == std::string_view::npos) {
      out.append(s.substr(i));
      break;
    }
    std::string_view ent = s.substr(i + 1, semi - i - 1);
    unsigned long code = 0;
    if (ent == "amp") {
      out.push_back('&');
    } else if (ent == "lt") {
      out.push_back('<');
    } else if (ent == "gt") {
      out.push_back('>');
    } else if (ent == "quot") {
      out.push_back('"');
    } else if (ent == "apos") {
      out.push_back('\'');
    } else if (ent.size() > 1 && ent[0] == '#') {
      const std::string num(ent.substr(1));
      code = (num[0] == 'x' || num[0] == 'X') ? std::strtoul(num.c_str() + 1, nullptr, 16)
                                              : std::strtoul(num.c_str(), nullptr, 10);
      // UTF-8 encode.
      if (code < 0x80) {
        out.push_back(static_cast<char>(code));
      } else if (code < 0x800) {
        out.push_back(static_cast<char>(0xc0 | (code >> 6)));
        out.push_back(static_cast<char>(0x80 | (code & 0x3f)));
      } else if (code < 0x10000) {
        out.push_back(static_cast<char>(0xe0 | (code >> 12)));
        out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (code & 0x3f)));
      } else {
        out.push_back(static_cast<char>(0xf0 | (code >> 18)));
        out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (code & 0x3f)));
      }
    } else {
      out.append(s.substr(i, semi - i + 1));  // unknown entity: keep as is
    }
    i = semi;
  }
  return out;
}

// The raw contents of each <tag>...</tag> in xml, in order (same-name elements do not nest
// in S3 responses).
std::vector<std::string_view> xml_elements(std::string_view xml, std::string_view tag) {
  std::vector<std::string_view> out;
  std::string open = "<";
  open.append(tag).append(">");
  std::string close = "</";
  close.append(tag).append(">");
  size_t pos = 0;
  for (;;) {
    size_t a = xml.find(open, pos);
    if (a == std::string_view::npos) break;
    a += open.size();
    size_t b = xml.find(close, a);
    if (b == std::string_view::npos) break;
    out.push_back(xml.substr(a, b - a));
    pos = b + close.size();
  }
  return out;
}

std::string xml_text(std::string_view xml, std::string_view tag) {
  auto e = xml_elements(xml, tag);
  return e.empty() ? std::string() : xml_unescape(e.front());
}

// 2009-10-12T17:50:30.000Z -> Unix seconds; 0 if unparsable.
int64_t parse_iso8601(const std::string& s) {
  std::tm tm{};
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm));
}

// ---- HTTP plumbing.

// The response of one request: status and headers of the final response, and its body up
// to body_limit bytes (a longer one fails the transfer).
struct Response {
  long status = 0;
  bool headers_done = false;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;
  size_t body_limit = kMaxResponseBody;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  // Parses one header line; true at the blank line that ends a final (non-1xx) response.
  bool on_header_line(std::string_view line) {
    if (line.substr(0, 5) == "HTTP/") {
      headers.clear();
      headers_done = false;
      size_t sp = line.find(' ');
      status =
          sp == std::string_view::npos ? 0 : std::atol(std::string(line.substr(sp + 1)).c_str());
    } else if (trim_header_value(line).empty()) {
      if (status >= 200) headers_done = true;
      return headers_done;
    } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
      headers[ascii_lower(trim_header_value(line.substr(0, colon)))] =
          std::string(trim_header_value(line.substr(colon + 1)));
    }
    return false;
  }
};

size_t on_header(char* p, size_t size, size_t n, void* ud) {
  static_cast<Response*>(ud)->on_header_line(std::string_view(p, size * n));
  return size * n;
}

size_t on_body(char* p, size_t size, size_t n, void* ud) {
  auto* r = static_cast<Response*>(ud);
  if (r->body.size() + size * n > r->body_limit) return 0;  // CURLE_WRITE_ERROR
  r->body.append(p, size * n);
  return size * n;
}

bool is_2xx(long status) { return status >= 200 && status < 300; }

Error http_error(const std::string& what, const Response& r) {
  const std::string code = xml_text(r.body, "Code");
  const std::string message = xml_text(r.body, "Message");
  std::string text = "s3: " + what + ": HTTP " + std::to_string(r.status);
  if (!code.empty()) text += " " + code;
  if (!message.empty()) text += ": " + message;
  Errc errc = Errc::internal;  // credentials, permissions, bucket config: not retryable
  if (r.status == 404 && code != "NoSuchBucket") errc = Errc::not_found;
  if (r.status >= 500 || r.status == 429 || r.status == 408) errc = Errc::unavailable;
  return Error{errc, std::move(text)};
}

Error curl_error(const std::string& what, CURLcode rc) {
  return Error{Errc::unavailable, "s3: " + what + ": " + curl_easy_strerror(rc)};
}

// One connection's worth of libcurl state. The multi handle owns the connection cache, so
// the next request on the same Conn reuses its connection.
struct Conn {
  CURLM* multi = nullptr;
  CURL* easy = nullptr;
  Conn() : multi(curl_multi_init()), easy(curl_easy_init()) {}
  ~Conn() {
    if (easy) curl_easy_cleanup(easy);
    if (multi) curl_multi_cleanup(multi);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
};

class ConnPool {
 public:
  explicit ConnPool(size_t max_idle) : max_idle_(max_idle) {}

  std::unique_ptr<Conn> acquire() {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
    }
    auto c = std::make_unique<Conn>();
    if (!c->multi || !c->easy) return nullptr;
    return c;
  }
  void release(std::unique_ptr<Conn> c) {
    curl_easy_reset(c->easy);  // keeps live connections
    std::lock_guard lock(mu_);
    if (idle_.size() < max_idle_) idle_.push_back(std::move(c));
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<Conn>> idle_;
  size_t max_idle_;
};

struct CurlSlist {
  curl_slist* list = nullptr;
  ~CurlSlist() { curl_slist_free_all(list); }
};

// Drives one transfer on the Conn's multi handle to its end.
CURLcode run(Conn& c) {
  curl_multi_add_handle(c.multi, c.easy);
  CURLcode result = CURLE_OK;
  for (bool done = false; !done;) {
    int running = 0;
    if (curl_multi_perform(c.multi, &running) != CURLM_OK) {
      result = CURLE_FAILED_INIT;
      break;
    }
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(c.multi, &left)) {
      if (m->msg == CURLMSG_DONE) {
        done = true;
        result = m->data.result;
      }
    }
    if (!done) curl_multi_poll(c.multi, nullptr, 0, 1000, nullptr);
  }
  curl_multi_remove_handle(c.multi, c.easy);
  return result;
}

// Feeds a PUT body from the spool file.
struct FileSource {
  int fd;
  uint64_t offset;
  uint64_t size;

  static size_t read(char* out, size_t size, size_t n, void* ud) {
    auto* s = static_cast<FileSource*>(ud);
    size_t want = static_cast<size_t>(std::min<uint64_t>(size * n, s->size - s->offset));
    if (want == 0) return 0;
    for (;;) {
      ssize_t r = ::pread(s->fd, out, want, static_cast<off_t>(s->offset));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return CURL_READFUNC_ABORT;
      s->offset += static_cast<uint64_t>(r);
      return static_cast<size_t>(r);
    }
  }
  static int seek(void* ud, curl_off_t offset, int origin) {
    auto* s = static_cast<FileSource*>(ud);
    if (origin != SEEK_SET || offset < 0 || static_cast<uint64_t>(offset) > s->size) {
      return CURL_SEEKFUNC_CANTSEEK;
    }
    s->offset = static_cast<uint64_t>(offset);
    return CURL_SEEKFUNC_OK;
  }
};

std::once_flag g_curl_once;
CURLcode g_curl_init = CURLE_OK;

}  // namespace

// ---- Impl: config, signing, requests. Shared with Uploads and Readers.

struct S3MediaStore::Impl {
  S3Config cfg;
  std::string scheme;     // http or https
  std::string authority;  // host[:port] of the endpoint
  std::string base_path;  // path of the endpoint, without a trailing '/'
  sigv4::Credentials creds;
  ConnPool pool;

  explicit Impl(S3Config c) : cfg(std::move(c)), pool(cfg.max_idle_connections) {
    creds = {cfg.access_key, cfg.secret_key};
  }

  std::string key_of(const std::string& id) const { return cfg.prefix + id; }

  // Sets URL, method, signed headers and timeouts of a request for `key` ("" = the
  // bucket). The returned list must live until the transfer ends.
  std::unique_ptr<CurlSlist> prepare(CURL* easy, const std::string& method, const std::string& key,
                                     const sigv4::Pairs& query, const std::string& payload_hash,
                                     const sigv4::Pairs& extra, bool streaming) const {
    std::string host = authority;
    std::string path = base_path;
    if (cfg.path_style) {
      path += "/" + cfg.bucket;
      if (!key.empty()) path += "/" + key;
    } else {
      host = cfg.bucket + "." + authority;
      path += "/" + key;
    }
    const std::string date = sigv4::amz_date(std::chrono::system_clock::now());
    sigv4::Request req{
        method,
        path,
        query,
        {{"host", host}, {"x-amz-content-sha256", payload_hash}, {"x-amz-date", date}},
        payload_hash};
    req.headers.insert(req.headers.end(), extra.begin(), extra.end());
    const std::string auth = sigv4::authorization(creds, {date, cfg.region, "s3"}, req);

    auto headers = std::make_unique<CurlSlist>();
    for (const auto& [name, value] : req.headers) {
      headers->list = curl_slist_append(headers->list, (name + ": " + value).c_str());
    }
    headers->list = curl_slist_append(headers->list, ("Authorization: " + auth).c_str());
    // No "Expect: 100-continue" round trip before a PUT body.
    headers->list = curl_slist_append(headers->list, "Expect:");

    std::string url = scheme + "://" + host + sigv4::canonical_uri(path);
    if (!query.empty()) url += "?" + sigv4::canonical_query(query);
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers->list);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(cfg.connect_timeout_ms));
    if (streaming) {
      curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, static_cast<long>(cfg.stall_timeout_s));
    } else {
      curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(cfg.request_timeout_ms));
    }
    if (method == "HEAD") {
      curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else if (method == "PUT") {
      curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
    } else if (method != "GET") {
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method.c_str());
    }
    return headers;
  }

  // A request without a request body; the response body is kept. Retried on 5xx.
  Result<Response> request(const std::string& method, const std::string& key,
                           const sigv4::Pairs& query) {
    for (int attempt = 1;; ++attempt) {
      auto conn = pool.acquire();
      if (!conn) return Error{Errc::internal, "s3: out of curl handles"};
      Response resp;
      CURLcode rc;
      {
        auto headers = prepare(conn->easy, method, key, query,
                               std::string(sigv4::kEmptyPayloadHash), {}, false);
        curl_easy_setopt(conn->easy, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(conn->easy, CURLOPT_HEADERDATA, &resp);
        curl_easy_setopt(conn->easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(conn->easy, CURLOPT_WRITEDATA, &resp);
        rc = run(*conn);
      }
      pool.release(std::move(conn));
      if (rc != CURLE_OK) return curl_error(method + " " + (key.empty() ? cfg.bucket : key), rc);
      if (!retry_after(resp.status, attempt)) return resp;
    }
  }

  // S3 asks clients to retry 500 and 503 (SlowDown). Every request here is idempotent, a PUT
  // of content-addressed bytes too. Sleeps before the next attempt; false when done.
  static bool retry_after(long status, int attempt) {
    constexpr int kAttempts = 3;
    if (attempt >= kAttempts ||
        (status != 500 && status != 502 && status != 503 && status != 504)) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100 << (2 * (attempt - 1))));
    return true;
  }

  Result<ObjectInfo> head(const std::string& id) {
    auto r = request("HEAD", key_of(id), {});
    if (!r) return r.error();
    if (!is_2xx(r->status)) return http_error("HEAD " + key_of(id), r.value());
    ObjectInfo info{id, 0, 0};
    info.size = std::strtoull(r->header("content-length").c_str(), nullptr, 10);
    const std::string lm = r->header("last-modified");
    if (!lm.empty()) info.modified = static_cast<int64_t>(curl_getdate(lm.c_str(), nullptr));
    return info;
  }

  Result<ObjectInfo> put(Spool& spool, const std::string& id) {
    for (int attempt = 1;; ++attempt) {
      auto conn = pool.acquire();
      if (!conn) return Error{Errc::internal, "s3: out of curl handles"};
      Response resp;
      resp.body_limit = kMaxErrorBody;
      FileSource source{spool.fd(), 0, spool.size()};
      CURLcode rc;
      {
        // The payload hash is the id: the server checks the bytes against it.
        auto headers = prepare(conn->easy, "PUT", key_of(id), {}, id,
                               {{"content-type", "application/octet-stream"}}, true);
        curl_easy_setopt(conn->easy, CURLOPT_READFUNCTION, FileSource::read);
        curl_easy_setopt(conn->easy, CURLOPT_READDATA, &source);
        curl_easy_setopt(conn->easy, CURLOPT_SEEKFUNCTION, FileSource::seek);
        curl_easy_setopt(conn->easy, CURLOPT_SEEKDATA, &source);
        curl_easy_setopt(conn->easy, CURLOPT_INFILESIZE_LARGE,
                         static_cast<curl_off_t>(spool.size()));
        curl_easy_setopt(conn->easy, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(conn->easy, CURLOPT_HEADERDATA, &resp);
        curl_easy_setopt(conn->easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(conn->easy, CURLOPT_WRITEDATA, &resp);
        rc = run(*conn);
      }
      pool.release(std::move(conn));
      if (rc != CURLE_OK) return curl_error("PUT " + key_of(id), rc);
      if (retry_after(resp.status, attempt)) continue;
      if (!is_2xx(resp.status)) return http_error("PUT " + key_of(id), resp);
      return ObjectInfo{id, spool.size(), now_seconds()};
    }
  }
};

namespace {

class S3Upload final : public SpoolingUpload {
 public:
  S3Upload(std::unique_ptr<Spool> spool, std::shared_ptr<S3MediaStore::Impl> impl)
      : SpoolingUpload(std::move(spool)), impl_(std::move(impl)) {}

 protected:
  Result<ObjectInfo> publish(Spool& spool, const std::string& id) override {
    auto existing = impl_->head(id);
    if (existing) return existing;  // dedupe: the key exists, so do its bytes
    if (existing.error().code != Errc::not_found) return existing.error();
    return impl_->put(spool, id);
  }

 private:
  std::shared_ptr<S3MediaStore::Impl> impl_;
};

class EmptyReader final : public Reader {
 public:
  explicit EmptyReader(uint64_t object_size) : object_size_(object_size) {}
  Result<size_t> read(char*, size_t) override { return size_t{0}; }
  uint64_t length() const override { return 0; }
  uint64_t object_size() const override { return object_size_; }

 private:
  uint64_t object_size_;
};

// A ranged GET read through a buffer of at most `capacity` bytes (plus one curl chunk when
// empty). The transfer runs only inside read(): when the buffer is full, the write callback
// pauses it, and the next read() that empties the buffer resumes it.
class S3Reader final : public Reader {
 public:
  S3Reader(std::shared_ptr<S3MediaStore::Impl> impl, std::unique_ptr<Conn> conn, size_t capacity)
      : impl_(std::move(impl)), conn_(std::move(conn)), capacity_(capacity) {
    buf_.reserve(capacity_);
  }
  ~S3Reader() override {
    if (added_) curl_multi_remove_handle(conn_->multi, conn_->easy);  // aborts a live transfer
    headers_.reset();
    impl_->pool.release(std::move(conn_));
  }

  // Sends the GET and waits for the final response's headers; for an error response, also
  // for its body.
  Status start(const std::string& key, uint64_t offset, uint64_t length) {
    offset_ = offset;
    want_ = length;
    std::string range = "bytes=" + std::to_string(offset) + "-";
    if (length <= std::numeric_limits<uint64_t>::max() - offset) {
      range += std::to_string(offset + length - 1);
    }
    headers_ = impl_->prepare(conn_->easy, "GET", key, {}, std::string(sigv4::kEmptyPayloadHash),
                              {{"range", range}}, true);
    curl_easy_setopt(conn_->easy, CURLOPT_HEADERFUNCTION, on_header_cb);
    curl_easy_setopt(conn_->easy, CURLOPT_HEADERDATA, this);
    curl_easy_setopt(conn_->easy, CURLOPT_WRITEFUNCTION, on_data_cb);
    curl_easy_setopt(conn_->easy, CURLOPT_WRITEDATA, this);
    curl_multi_add_handle(conn_->multi, conn_->easy);
    added_ = true;
    while (!resp_.headers_done && !done_) {
      if (auto st = pump(); !st) return st;
    }
    if (!resp_.headers_done) return curl_error("GET " + key, result_);
    if (!is_2xx(resp_.status)) {
      while (!done_) {
        if (auto st = pump(); !st) return st;
      }
      return http_error("GET " + key, resp_);
    }
    return ok_status();
  }

  long status() const { return resp_.status; }

  enum class Range { ok, empty_object, bad };
  // After start() succeeded: what the server's answer means for the range asked for.
  Range range() const { return range_; }

  Result<size_t> read(char* out, size_t n) override {
    while (buffered() == 0 && !done_ && received_ < length_) {
      if (paused_) {
        paused_ = false;
        curl_easy_pause(conn_->easy, CURLPAUSE_CONT);  // may deliver data right here
        continue;
      }
      if (auto st = pump(); !st) return st.error();
    }
    if (buffered() > 0) {
      size_t k = std::min(n, buffered());
      std::memcpy(out, buf_.data() + head_, k);
      head_ += k;
      if (head_ == buf_.size()) {
        buf_.clear();
        head_ = 0;
      }
      return k;
    }
    if (received_ == length_) return size_t{0};
    if (result_ != CURLE_OK) return curl_error("GET", result_);
    return Error{Errc::unavailable, "s3: GET: the body ended early"};
  }
  uint64_t length() const override { return length_; }
  uint64_t object_size() const override { return object_size_; }

 private:
  // Takes the range a 2xx answer has, before its body arrives. Servers that send more than
  // asked (a whole object for a range, or a longer range) are read past and clipped.
  Range accept_range() {
    uint64_t first = 0;  // offset of the body's first byte in the object
    uint64_t last = 0;   // offset of its last byte
    if (resp_.status == 206) {
      unsigned long long a = 0, b = 0, total = 0;
      if (std::sscanf(resp_.header("content-range").c_str(), "bytes %llu-%llu/%llu", &a, &b,
                      &total) != 3) {
        return Range::bad;
      }
      first = a;
      last = b;
      object_size_ = total;
    } else {
      object_size_ = std::strtoull(resp_.header("content-length").c_str(), nullptr, 10);
      last = object_size_ - 1;
    }
    if (object_size_ == 0) return Range::empty_object;
    if (first > offset_ || last < offset_ || last >= object_size_) return Range::bad;
    skip_ = offset_ - first;
    length_ = std::min(want_, last - offset_ + 1);
    return Range::ok;
  }

  size_t buffered() const { return buf_.size() - head_; }

  // One round of transfer work; waits up to a second for the socket when nothing moved.
  Status pump() {
    progress_ = false;
    int running = 0;
    if (curl_multi_perform(conn_->multi, &running) != CURLM_OK) {
      return Error{Errc::internal, "s3: curl_multi_perform failed"};
    }
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(conn_->multi, &left)) {
      if (m->msg == CURLMSG_DONE) {
        done_ = true;
        result_ = m->data.result;
      }
    }
    if (!done_ && !progress_ && !paused_) {
      curl_multi_poll(conn_->multi, nullptr, 0, 1000, nullptr);
    }
    return ok_status();
  }

  static size_t on_header_cb(char* p, size_t size, size_t n, void* ud) {
    auto* self = static_cast<S3Reader*>(ud);
    self->progress_ = true;
    if (self->resp_.on_header_line(std::string_view(p, size * n)) && is_2xx(self->resp_.status)) {
      self->range_ = self->accept_range();
    }
    return size * n;
  }

  static size_t on_data_cb(char* p, size_t size, size_t n, void* ud) {
    auto* self = static_cast<S3Reader*>(ud);
    const size_t total = size * n;
    self->progress_ = true;
    if (!is_2xx(self->resp_.status)) {  // an error document: keep its start
      size_t room = kMaxErrorBody - std::min(kMaxErrorBody, self->resp_.body.size());
      self->resp_.body.append(p, std::min(room, total));
      return total;
    }
    const size_t skip = static_cast<size_t>(std::min<uint64_t>(self->skip_, total));
    const size_t useful =
        static_cast<size_t>(std::min<uint64_t>(total - skip, self->length_ - self->received_));
    if (useful > 0 && self->buffered() > 0 && self->buffered() + useful > self->capacity_) {
      self->paused_ = true;
      return CURL_WRITEFUNC_PAUSE;  // curl keeps this chunk and offers it again on resume
    }
    if (self->head_ > 0 && self->buf_.size() + useful > self->capacity_) {
      self->buf_.erase(self->buf_.begin(), self->buf_.begin() + static_cast<long>(self->head_));
      self->head_ = 0;
    }
    self->skip_ -= skip;
    self->buf_.insert(self->buf_.end(), p + skip, p + skip + useful);
    self->received_ += useful;
    // Past the range (a server that ignored it): stop the transfer; read() ends cleanly
    // because received_ == length_.
    if (skip + useful < total && self->received_ == self->length_) return 0;
    return total;
  }

  std::shared_ptr<S3MediaStore::Impl> impl_;
  std::unique_ptr<Conn> conn_;
  std::unique_ptr<CurlSlist> headers_;
  const size_t capacity_;
  Response resp_;
  std::vector<char> buf_;
  size_t head_ = 0;  // read position in buf_
  bool added_ = false;
  bool paused_ = false;
  bool progress_ = false;
  bool done_ = false;
  CURLcode result_ = CURLE_OK;
  uint64_t offset_ = 0;
  uint64_t length_ = 0;
  uint64_t object_size_ = 0;
  uint64_t received_ = 0;
  uint64_t skip_ = 0;  // bytes before offset_ still to drop
  uint64_t want_ = 0;
  Range range_ = Range::bad;
};

}  // namespace

// ---- S3MediaStore

Result<std::unique_ptr<S3MediaStore>> S3MediaStore::open(S3Config config) {
  std::call_once(g_curl_once, [] { g_curl_init = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (g_curl_init != CURLE_OK) return Error{Errc::internal, "s3: curl_global_init failed"};

  auto bad = [](const std::string& what) { return Error{Errc::bad_request, "s3 config: " + what}; };
  const std::string& ep = config.endpoint;
  const size_t sep = ep.find("://");
  if (sep == std::string::npos) return bad("endpoint must be http://host[:port] or https://...");
  auto impl = std::make_shared<Impl>(config);
  impl->scheme = ascii_lower(ep.substr(0, sep));
  std::string rest = ep.substr(sep + 3);
  const size_t slash = rest.find('/');
  impl->authority = rest.substr(0, slash);
  impl->base_path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!impl->base_path.empty() && impl->base_path.back() == '/') impl->base_path.pop_back();
  if (impl->scheme != "http" && impl->scheme != "https") return bad("endpoint scheme");
  if (impl->authority.empty() || impl->authority.find_first_of("@?# ") != std::string::npos ||
      impl->base_path.find_first_of("?#") != std::string::npos) {
    return bad("endpoint host");
  }
  if (config.bucket.empty() || config.bucket.find_first_of("/?# ") != std::string::npos) {
    return bad("bucket");
  }
  if (config.region.empty()) return bad("region");
  if (config.access_key.empty() || config.secret_key.empty()) return bad("access key and secret");
  if (config.spool_dir.empty()) return bad("spool_dir");
  if (config.read_buffer_bytes < 16 * 1024) impl->cfg.read_buffer_bytes = 16 * 1024;
  if (auto st = prepare_spool_dir(config.spool_dir); !st) return st.error();
  return std::unique_ptr<S3MediaStore>(new S3MediaStore(std::move(impl)));
}

S3MediaStore::~S3MediaStore() = default;

Result<std::unique_ptr<Upload>> S3MediaStore::begin(uint64_t max_bytes) {
  auto spool = Spool::create(impl_->cfg.spool_dir, max_bytes);
  if (!spool) return spool.error();
  return std::unique_ptr<Upload>(std::make_unique<S3Upload>(std::move(spool.value()), impl_));
}

Result<ObjectInfo> S3MediaStore::stat(const std::string& id) {
  if (auto st = check_id(id); !st) return st.error();
  return impl_->head(id);
}

Result<std::unique_ptr<Reader>> S3MediaStore::open(const std::string& id, uint64_t offset,
                                                   uint64_t length) {
  if (auto st = check_id(id); !st) return st.error();
  // A zero-length range cannot be asked for with Range; and for an offset at or past the
  // end, S3 answers 416. Both need the size, so HEAD.
  auto by_size = [&]() -> Result<std::unique_ptr<Reader>> {
    auto info = impl_->head(id);
    if (!info) return info.error();
    if (offset > info->size) {
      return Error{Errc::bad_request, "media: range starts past the end of " + id};
    }
    if (offset < info->size && length > 0) {
      return Error{Errc::unavailable, "s3: GET " + id + ": range refused"};
    }
    return std::unique_ptr<Reader>(std::make_unique<EmptyReader>(info->size));
  };
  if (length == 0) return by_size();

  auto conn = impl_->pool.acquire();
  if (!conn) return Error{Errc::internal, "s3: out of curl handles"};
  auto reader = std::make_unique<S3Reader>(impl_, std::move(conn), impl_->cfg.read_buffer_bytes);
  auto st = reader->start(impl_->key_of(id), offset, length);
  if (!st) {
    if (reader->status() == 416) return by_size();
    return st.error();
  }
  switch (reader->range()) {
    case S3Reader::Range::ok:
      return std::unique_ptr<Reader>(std::move(reader));
    case S3Reader::Range::empty_object:
      if (offset > 0) return Error{Errc::bad_request, "media: range starts past the end of " + id};
      return std::unique_ptr<Reader>(std::make_unique<EmptyReader>(0));
    case S3Reader::Range::bad:
      break;
  }
  return Error{Errc::internal, "s3: GET " + id + ": unexpected range in the response"};
}

Status S3MediaStore::remove(const std::string& id) {
  if (auto st = check_id(id); !st) return st;
  auto r = impl_->request("DELETE", impl_->key_of(id), {});
  if (!r) return r.error();
  if (is_2xx(r->status) || r->status == 404) return ok_status();
  return http_error("DELETE " + impl_->key_of(id), r.value());
}

Result<std::vector<ObjectInfo>> S3MediaStore::list(std::string_view after_id, uint32_t limit) {
  if (!after_id.empty()) {
    if (auto st = check_id(after_id); !st) return st.error();
  }
  const std::string& prefix = impl_->cfg.prefix;
  std::vector<ObjectInfo> out;
  std::string token;
  while (out.size() < limit) {
    const auto want =
        std::min<uint32_t>(kMaxKeysPerList, limit - static_cast<uint32_t>(out.size()));
    sigv4::Pairs query{{"list-type", "2"}, {"max-keys", std::to_string(want)}};
    if (!prefix.empty()) query.emplace_back("prefix", prefix);
    if (!token.empty()) {
      query.emplace_back("continuation-token", token);
    } else if (!after_id.empty()) {
      query.emplace_back("start-after", prefix + std::string(after_id));
    }
    auto r = impl_->request("GET", "", query);
    if (!r) return r.error();
    if (!is_2xx(r->status)) return http_error("list " + impl_->cfg.bucket, r.value());
    for (std::string_view item : xml_elements(r->body, "Contents")) {
      const std::string key = xml_text(item, "Key");
      if (key.compare(0, prefix.size(), prefix) != 0) continue;
      std::string id = key.substr(prefix.size());
      if (!is_valid_id(id)) continue;  // not ours
      ObjectInfo info{std::move(id), 0, 0};
      info.size = std::strtoull(xml_text(item, "Size").c_str(), nullptr, 10);
      info.modified = parse_iso8601(xml_text(item, "LastModified"));
      out.push_back(std::move(info));
    }
    token = xml_text(r->body, "NextContinuationToken");
    if (xml_text(r->body, "IsTruncated") != "true" || token.empty()) break;
  }
  if (out.size() > limit) out.resize(limit);
  return out;
}

}  // namespace parley::media
