#pragma once
// The sandbox's PID 1: sets up the container file systems, enters the overlay root and serves
// commands from the host over `sock` until the host goes away. Runs in a forked child only.

#include "env/code/sandbox.hpp"

namespace nemokit::rl::code {

[[noreturn]] void sandbox_init(int sock, const SandboxLimits& limits, uint32_t uid, const std::filesystem::path& root);

}  // namespace nemokit::rl::code
