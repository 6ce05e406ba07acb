#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "nemokit/dockerfile/builder.hpp"
#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/oci/error.hpp"

namespace nemokit::dockerfile {

BuildRequest parse_build_request(const std::string& json_text, const std::filesystem::path& default_context) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw BuildError(std::string("build request: invalid JSON: ") + e.what());
  }
  auto str = [&](const char* key) -> std::optional<std::string> {
    if (!j.contains(key) || j[key].is_null()) return std::nullopt;
    if (!j[key].is_string()) throw BuildError(std::string("build request: \"") + key + "\" must be a string");
    return j[key].get<std::string>();
  };
  BuildRequest r;
  r.tag = str("tag").value_or("");
  auto tag_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'; };
  bool good_tag =
      !r.tag.empty() && std::isalnum(static_cast<unsigned char>(r.tag[0])) && std::all_of(r.tag.begin(), r.tag.end(), tag_char);
  if (!good_tag)
    throw BuildError("--tag '" + r.tag + "': use letters, digits, '.', '_' and '-' (it names containers/" + r.tag + ".sqsh)");
  if (auto path = str("dockerfile_path")) {
    std::ifstream in(*path);
    if (!in) throw BuildError(*path + ": cannot read the Dockerfile");
    std::stringstream ss;
    ss << in.rdbuf();
    r.dockerfile_text = ss.str();
    r.dockerfile_name = *path;
  } else if (auto text = str("dockerfile_text")) {
    r.dockerfile_text = *text;
    r.dockerfile_name = str("plugin").value_or("plugin") + ":" + str("dockerfile_resource").value_or("Dockerfile");
  } else {
    throw BuildError("build request: neither dockerfile_path nor dockerfile_text given");
  }
  auto cache = str("build_cache_dir");
  if (!cache || cache->empty()) throw BuildError("build request: build_cache_dir is missing");
  r.build_cache_dir = *cache;
  if (auto c = str("context")) {
    r.context = *c;
  } else if (const char* env = std::getenv("NEMOKIT_BUILD_CONTEXT"); env && *env) {
    r.context = env;
  } else if (std::filesystem::is_directory(default_context)) {
    r.context = default_context;
  } else {
    // Not installed (a build tree): stage Dockerfiles that copy nothing still build.
    r.context = r.build_cache_dir / "build" / "empty-context";
    std::filesystem::create_directories(r.context);
  }
  if (!std::filesystem::is_directory(r.context))
    throw BuildError("build context " + r.context.string() + " is not a folder" +
                     (str("context") ? "" : " (set NEMOKIT_BUILD_CONTEXT to the folder with the image's files)"));
  r.no_cache = j.value("no_cache", false);
  std::string net = str("network").value_or("host");
  if (net != "host" && net != "none") throw BuildError("--network=" + net + ": use host or none");
  r.network = net == "host";
  if (j.contains("build_args"))
    for (auto& a : j["build_args"]) r.build_args.push_back(a.get<std::string>());
  if (j.contains("secrets"))
    for (auto& a : j["secrets"]) {
      if (!a.is_string()) throw BuildError("build request: \"secrets\" must hold strings");
      SecretSource sec = parse_secret_option(a.get<std::string>());
      for (auto& other : r.secrets)
        if (other.id == sec.id) throw BuildError("--secret id=" + sec.id + " is given twice");
      r.secrets.push_back(sec);
    }
  if (auto p = str("platform")) {
    try {
      r.platform = oci::parse_platform(*p);
    } catch (const oci::Error& e) {
      throw BuildError(std::string("--platform: ") + e.what());
    }
  }
  r.target = str("target");
  r.output = str("output");
  if (r.output && r.output->rfind("oci-archive:", 0) != 0 && r.output->rfind("docker-archive:", 0) != 0)
    throw BuildError("--output " + *r.output + ": use oci-archive:FILE or docker-archive:FILE");
  return r;
}

}  // namespace nemokit::dockerfile
