#pragma once
// The parameters of a WWW-Authenticate challenge (RFC 7235), e.g.
//   Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"
#include <map>
#include <string>
#include <string_view>

namespace nemokit::registry {

// key="value" pairs, in one linear pass: the header comes from the network, so no backtracking
// matcher (std::regex recurses per character and overflows the stack on a long header).
std::map<std::string, std::string> auth_challenge_params(std::string_view header);

}  // namespace nemokit::registry
