#include "step_cache.hpp"

#include <ctime>
#include <fstream>

#include <nlohmann/json.hpp>

#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace nemokit::dockerfile {
namespace fs = std::filesystem;
using nlohmann::json;

std::string now_rfc3339() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

StepDirs::StepDirs(LayerStore& store) : base(store.temp_dir("step")) {
  upper = base / "upper";
  work = base / "work";
  mnt = base / "mnt";
  src = base / "src";
  for (auto& p : {upper, work, mnt, src}) fs::create_directory(p);
  fs::permissions(upper, fs::perms(0755));
}

StepDirs::~StepDirs() {
  std::error_code ec;
  fs::remove_all(base, ec);
}

std::string StepCache::key(const std::string& parent_chain, const std::string& step_text) {
  return rt::Sha256::digest_of(parent_chain + "\n" + step_text);
}

fs::path StepCache::record_path(const std::string& key) const {
  return store_.root() / "cache" / (key.substr(7) + ".json");  // without "sha256:"
}

std::optional<CachedStep> StepCache::find(const std::string& key) const {
  fs::path record = record_path(key);
  if (!fs::exists(record)) return std::nullopt;
  try {
    std::ifstream in(record);
    json j = json::parse(in);
    CachedStep step;
    if (!j["layer"].is_null())
      step.layer = LayerRef{j["layer"].at("diff_id"), j["layer"].at("digest"), j["layer"].at("mediaType"), j["layer"].at("size")};
    if (step.layer && !store_.has(*step.layer)) return std::nullopt;
    step.created = j.value("created", now_rfc3339());
    return step;
  } catch (const std::exception&) {
    return std::nullopt;  // a damaged record: the step runs again
  }
}

void StepCache::remember(const std::string& key, const CachedStep& step) const {
  json rec = {{"created", step.created}, {"layer", nullptr}};
  if (step.layer)
    rec["layer"] = {{"diff_id", step.layer->diff_id},
                    {"digest", step.layer->digest},
                    {"mediaType", step.layer->media_type},
                    {"size", step.layer->size}};
  rt::write_file_atomic(record_path(key), rec.dump());
}

}  // namespace nemokit::dockerfile
