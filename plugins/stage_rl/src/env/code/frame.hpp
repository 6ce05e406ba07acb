#pragma once
// Length-prefixed JSON messages over the socket between the host and the sandbox's init.

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>

namespace nemokit::rl::code {

constexpr uint32_t kMaxFrame = 64u << 20;

// False when the peer is gone.
bool send_frame(int fd, const nlohmann::json& message);
// nullopt when the peer is gone, the deadline passed or the frame is malformed.
std::optional<nlohmann::json> recv_frame(int fd, std::chrono::steady_clock::time_point deadline);

}  // namespace nemokit::rl::code
