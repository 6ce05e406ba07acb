// A complete stage plugin: one class, one macro. It reads its resolved config (JSON), prints a
// greeting and writes it into the job folder, so a test can check both.
#include <nemokit/plugin.hpp>

#include <fstream>
#include <regex>
#include <string>

namespace {

// The config arrives as JSON; this example avoids a JSON library to show the ABI needs none.
std::string json_string(const std::string& json, const std::string& key) {
  std::smatch m;
  std::regex re("\"" + key + "\"\\s*:\\s*\"([^\"]*)\"");
  return std::regex_search(json, m, re) ? m[1].str() : "";
}

int json_int(const std::string& json, const std::string& key) {
  std::smatch m;
  std::regex re("\"" + key + "\"\\s*:\\s*(-?[0-9]+)");
  return std::regex_search(json, m, re) ? std::stoi(m[1].str()) : 0;
}

class HelloStage : public nemokit::sdk::Plugin {
 public:
  int run(const nemokit::sdk::StageCall& call) override {
    std::string greeting = json_string(call.config_json, "greeting");
    int repeat = json_int(call.config_json, "repeat");
    if (greeting.empty()) throw std::runtime_error("hello.greeting is missing from the config");
    std::ofstream out(call.job_dir / "greeting.txt");
    for (int i = 0; i < repeat; ++i) {
      call.host.info(greeting);
      out << greeting << "\n";
    }
    return out ? 0 : 1;
  }
};

}  // namespace

NEMOKIT_PLUGIN(HelloStage)
