// Precompiled once per build (cmake/ParleyPch.cmake) and reused by every C++ target: the
// Boost.Asio/Beast/JSON headers take most of each translation unit's parse time.
// Only headers whose meaning does not depend on a target's own definitions belong here.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
