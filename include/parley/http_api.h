// Synchronous HTTP calls (PROTOCOL.md §2): register, login, logout, health.
// Each call opens one connection, sends one request, and either returns the decoded result or
// throws parley::Error with the server's error code and message (or a client code such as
// "connection_failed", "timeout", "bad_response", "bad_url", "unsupported_scheme").
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "parley/error.h"
#include "parley/types.h"

namespace parley {

struct HttpOptions {
  std::chrono::milliseconds timeout{10000};  // whole call: resolve, connect, write, read
  std::string user_agent = "libparley/0.1";
};

// POST /v1/register; returns the registered user id.
std::string Register(std::string_view server_url, std::string_view username,
                     std::string_view password, const HttpOptions& options = {});

// POST /v1/login; device_name may be empty (the server then picks none).
LoginResult Login(std::string_view server_url, std::string_view username, std::string_view password,
                  std::string_view device_name = {}, const HttpOptions& options = {});

// POST /v1/logout with the token as a Bearer credential; the device is revoked.
void Logout(std::string_view server_url, std::string_view token, const HttpOptions& options = {});

// GET /healthz; true when the server answers 200.
bool Healthy(std::string_view server_url, const HttpOptions& options = {});

}  // namespace parley
