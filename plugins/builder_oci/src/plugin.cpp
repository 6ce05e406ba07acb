// The builder plugin: `nemokit build` requests and the `nemokit image` command.
#include <nemokit/plugin.hpp>

#include <nlohmann/json.hpp>

#include <stdexcept>

namespace {

class OciBuilder : public nemokit::sdk::Plugin {
 public:
  int build(const nemokit::sdk::BuildCall& call) override {
    auto req = nlohmann::json::parse(call.request_json);
    throw std::runtime_error("building " + req.value("tag", std::string("an image")) +
                             " from a Dockerfile is not implemented in this version");
  }
  int command(const nemokit::sdk::CommandCall& call) override {
    throw std::runtime_error("`nemokit " + call.args.at(0) + "` is not implemented in this version");
  }
};

}  // namespace

NEMOKIT_PLUGIN(OciBuilder)
