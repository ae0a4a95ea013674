#include "http/api_routes.h"

#include <fmt/format.h>

#include <boost/beast/http/status.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include "common/utf8.h"
#include "http/responses.h"
#include "net/http_session.h"

namespace bhttp = boost::beast::http;
namespace json = boost::json;

namespace parley::http {
namespace {

constexpr uint16_t kCloseRevoked = 4003;

// Reads the named string fields of a JSON object body; missing optional ones stay empty.
Result<std::vector<std::string>> string_fields(const std::string& body,
                                               std::initializer_list<const char*> required,
                                               std::initializer_list<const char*> optional = {}) {
  json::error_code ec;
  auto doc = json::parse(body, ec);
  if (ec || !doc.is_object()) return Error{Errc::bad_request, "body must be a JSON object"};
  const auto& obj = doc.as_object();
  std::vector<std::string> out;
  auto read = [&](const char* key, bool req) -> std::optional<Error> {
    auto* v = obj.if_contains(key);
    if (!v || v->is_null()) {
      if (req) return Error{Errc::bad_request, fmt::format("missing field: {}", key)};
      out.emplace_back();
      return std::nullopt;
    }
    if (!v->is_string())
      return Error{Errc::bad_request, fmt::format("field {} must be a string", key)};
    std::string s(v->as_string());
    if (!valid_utf8(s))
      return Error{Errc::invalid_utf8, fmt::format("field {} is not valid UTF-8", key)};
    out.push_back(std::move(s));
    return std::nullopt;
  };
  for (auto* k : required)
    if (auto e = read(k, true)) return *e;
  for (auto* k : optional)
    if (auto e = read(k, false)) return *e;
  return out;
}

// The answer to a login or a device link (docs/PROTOCOL.md §2).
json::object login_json(const auth::LoginResult& r) {
  return {{"user", r.user}, {"device_id", r.device_id}, {"token", r.token}, {"pts", r.pts}};
}

}  // namespace

bool ApiRoutes::streams(const net::HttpRequestHeader& header) const {
  return media_routes_ && MediaRoutes::streams(header);
}

void ApiRoutes::open_stream(net::HttpRequestHeader header,
                            std::function<void(net::StreamStart)> done) {
  if (media_routes_) return media_routes_->open_stream(std::move(header), std::move(done));
  net::HttpHandler::open_stream(std::move(header), std::move(done));
}

// POST /v1/devices (link a new device), GET /v1/devices (list), DELETE /v1/devices/{id}.
void ApiRoutes::handle_devices(net::HttpRequest req, std::string_view path,
                               std::function<void(net::HttpReply)> done) {
  std::string token = bearer_token(req);
  const auto method = req.method();
  if (path == "/v1/devices") {
    if (method != bhttp::verb::post && method != bhttp::verb::get)
      return done(error_response({Errc::method_not_allowed, "use GET or POST"}));
    if (token.empty())
      return done(error_response({Errc::unauthorized, "missing Authorization: Bearer token"}));
    if (method == bhttp::verb::post) {
      std::string name;
      if (!req.body().empty()) {
        auto f = string_fields(req.body(), {}, {"device_name"});
        if (!f) return done(error_response(f.error()));
        name = std::move(f.value()[0]);
      }
      accounts_.link_device(std::move(token), std::move(name), [done](Result<auth::LoginResult> r) {
        if (!r) return done(error_response(r.error()));
        done(json_response(bhttp::status::created, login_json(r.value())));
      });
      return;
    }
    accounts_.list_devices(
        std::move(token),
        [done](Result<std::pair<auth::Identity, std::vector<store::DeviceRecord>>> r) {
          if (!r) return done(error_response(r.error()));
          const auto& [who, devices] = r.value();
          json::array list;
          for (const auto& d : devices)
            list.push_back(json::object{{"device_id", d.device_id},
                                        {"name", d.name},
                                        {"created_at", d.created_at},
                                        {"current", d.device_id == who.device_id}});
          done(json_response(bhttp::status::ok, json::object{{"devices", std::move(list)}}));
        });
    return;
  }
  std::string_view device = path.substr(std::string_view("/v1/devices/").size());
  if (method != bhttp::verb::delete_)
    return done(error_response({Errc::method_not_allowed, "use DELETE"}));
  if (token.empty())
    return done(error_response({Errc::unauthorized, "missing Authorization: Bearer token"}));
  // An id that cannot exist is still checked against the token first (revoke_device answers
  // not_found for it), so that a bad token is always 401.
  if (device.size() > 64 || device.find('/') != std::string_view::npos) device = {};
  accounts_.revoke_device(std::move(token), std::string(device),
                          [this, done](Result<auth::Identity> who) {
                            if (!who) return done(error_response(who.error()));
                            router_.close_device(who->user, who->device_id, kCloseRevoked);
                            done(json_response(bhttp::status::ok, "{}"));
                          });
}

void ApiRoutes::handle(net::HttpRequest req, std::function<void(net::HttpReply)> done) {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  auto method = req.method();
  if (MediaRoutes::owns(path)) {
    if (!media_routes_)
      return done(error_response({Errc::not_found, "media is disabled on this server"}));
    return media_routes_->handle(std::move(req), std::move(done));
  }
  auto only = [&](bhttp::verb verb) {
    if (method == verb) return true;
    done(error_response({Errc::method_not_allowed, fmt::format("use {}", bhttp::to_string(verb))}));
    return false;
  };

  if (path == "/healthz") {
    if (only(bhttp::verb::get))
      done(json_response(bhttp::status::ok, json::object{{"status", "ok"}}));
    return;
  }
  if (path == "/readyz") {
    if (!only(bhttp::verb::get)) return;
    // 503 while starting, draining or without a store; 200 "degraded" when a backend other
    // than the store fails (node-local delivery goes on; other nodes are reached through sync)
    // or one of the store's servers does (what lives on the others goes on).
    json::object backends;
    bool store_ok = true, all_ok = true;
    if (health_) {
      for (const auto& [seam, h] : health_()) {
        json::object o{{"ok", h.ok}};
        if (!h.detail.empty()) o["detail"] = h.detail;
        if (!h.ok && h.partial) o["partial"] = true;
        backends[seam] = std::move(o);
        all_ok = all_ok && h.ok;
        if (seam == "store") store_ok = h.ok || h.partial;
      }
    }
    const char* status = draining_   ? "draining"
                         : !ready_   ? "starting"
                         : !store_ok ? "unavailable"
                         : !all_ok   ? "degraded"
                                     : "ready";
    const bool serving = ready_ && !draining_ && store_ok;
    return done(json_response(serving ? bhttp::status::ok : bhttp::status::service_unavailable,
                              json::object{{"status", status}, {"backends", std::move(backends)}}));
  }
  if (path == "/v1/register") {
    if (!only(bhttp::verb::post)) return;
    auto f = string_fields(req.body(), {"username", "password"});
    if (!f) return done(error_response(f.error()));
    std::string user = f.value()[0];
    accounts_.register_user(user, std::move(f.value()[1]), [user, done](Status st) {
      if (!st) return done(error_response(st.error()));
      done(json_response(bhttp::status::created, json::object{{"user", user}}));
    });
    return;
  }
  if (path == "/v1/login") {
    if (!only(bhttp::verb::post)) return;
    auto f = string_fields(req.body(), {"username", "password"}, {"device_name"});
    if (!f) return done(error_response(f.error()));
    auto& v = f.value();
    accounts_.login(std::move(v[0]), std::move(v[1]), std::move(v[2]),
                    [done](Result<auth::LoginResult> r) {
                      if (!r) return done(error_response(r.error()));
                      done(json_response(bhttp::status::ok, login_json(r.value())));
                    });
    return;
  }
  if (path == "/v1/logout") {
    if (!only(bhttp::verb::post)) return;
    std::string token = bearer_token(req);
    if (token.empty())
      return done(error_response({Errc::unauthorized, "missing Authorization: Bearer token"}));
    accounts_.logout(std::move(token), [this, done](Result<auth::Identity> who) {
      if (!who) return done(error_response(who.error()));
      router_.close_device(who->user, who->device_id, kCloseRevoked);
      done(json_response(bhttp::status::ok, "{}"));
    });
    return;
  }
  if (path == "/v1/account") {
    if (!only(bhttp::verb::delete_)) return;
    std::string token = bearer_token(req);
    if (token.empty())
      return done(error_response({Errc::unauthorized, "missing Authorization: Bearer token"}));
    std::string password;
    if (!req.body().empty()) {
      auto f = string_fields(req.body(), {}, {"password"});
      if (!f) return done(error_response(f.error()));
      password = std::move(f.value()[0]);
    }
    accounts_.delete_account(
        std::move(token), std::move(password),
        [this, done](Result<std::pair<auth::Identity, store::DeleteUserResult>> r) {
          if (!r) return done(error_response(r.error()));
          auto& [who, removed] = r.value();
          for (const auto& device : removed.devices)
            router_.close_device(who.user, device, kCloseRevoked);
          router_.close_device(who.user, who.device_id, kCloseRevoked);  // JWT devices too
          size_t media = removed.removed_media.size();
          if (media_) media_->remove_objects(std::move(removed.removed_media));
          done(json_response(bhttp::status::ok,
                             json::object{{"user", who.user}, {"removed_media", media}}));
        });
    return;
  }
  if (path == "/v1/devices" || path.starts_with("/v1/devices/"))
    return handle_devices(std::move(req), path, std::move(done));
  if (web_ && !path.starts_with("/v1/")) {
    if (auto file = web_->serve(req)) return done(std::move(*file));
  }
  done(error_response({Errc::not_found, fmt::format("no route for {}", path)}));
}

}  // namespace parley::http
