#include "prep/rl_data_prep.hpp"

#include "omni/media_paths.hpp"

#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/json_file.hpp"
#include "nemokit/runtime/run/paths.hpp"
#include "nemokit/runtime/run/table_reader.hpp"
#include "nemokit/runtime/run/utc_time.hpp"
#include "nemokit/runtime/sha256.hpp"

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace nemokit::rl {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

uint64_t fnv1a64(const std::string& s, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ull ^ (seed * 0x9e3779b97f4a7c15ull);
  for (unsigned char ch : s) h = (h ^ ch) * 0x100000001b3ull;
  // splitmix64 finalizer: neighbouring lines land far apart
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

}  // namespace

const char* const kSplitNames[3] = {"train", "val", "test"};

RlPrepConfig RlPrepConfig::from_json(const json& data, const std::string& table) {
  RlPrepConfig c;
  rt::TableReader t(data, table);
  std::vector<std::string> inputs;
  t.strings("inputs", inputs);
  for (const auto& s : inputs) c.inputs.push_back(rt::expand_home(s));
  std::string split = "98,1,1";
  t.string("split", split);
  std::stringstream ss(split);
  std::string part;
  int n = 0;
  int64_t total = 0;
  while (std::getline(ss, part, ',')) {
    if (n == 3) t.fail("split", "expected three weights \"train,val,test\", got \"" + split + "\"");
    try {
      size_t used = 0;
      c.split[n] = std::stoll(part, &used);
      if (used != part.size() || c.split[n] < 0) throw std::invalid_argument(part);
    } catch (const std::exception&) {
      t.fail("split", "\"" + part + "\" is not a non-negative integer (in \"" + split + "\")");
    }
    total += c.split[n++];
  }
  if (n != 3) t.fail("split", "expected three weights \"train,val,test\", got \"" + split + "\"");
  if (total == 0 || c.split[0] == 0) t.fail("split", "the train weight must be positive");
  int64_t seed = int64_t(c.seed);
  t.integer("seed", seed, 0);
  c.seed = uint64_t(seed);
  t.string("name", c.name);
  std::string out;
  t.string("output", out);
  if (!out.empty()) c.output = rt::expand_home(out);
  t.no_unknown_keys();
  if (c.inputs.empty()) t.fail("inputs", "required: the task JSONL files (scripts/setup.sh writes ~/.cache/nemokit/rl-tasks)");
  return c;
}

RlPrepConfig RlPrepConfig::from_config(const json& config, const fs::path& job_dir) {
  if (!config.contains("data")) throw std::invalid_argument("data: the table is missing");
  RlPrepConfig c = from_json(config["data"]);
  if (c.output.empty()) c.output = job_dir / "data";
  return c;
}

void check_task(const json& r, const std::string& where) {
  if (!r.is_object()) throw std::invalid_argument(where + ": a task must be a JSON object");
  if (!r.contains("prompt")) throw std::invalid_argument(where + ": \"prompt\" is missing");
  const json& p = r["prompt"];
  if (p.is_string()) {
    if (p.get<std::string>().empty()) throw std::invalid_argument(where + ": \"prompt\" is empty");
  } else if (p.is_array()) {
    if (p.empty()) throw std::invalid_argument(where + ": \"prompt\" has no messages");
    for (size_t i = 0; i < p.size(); ++i)
      if (!p[i].is_object() || !p[i].contains("role") || !p[i]["role"].is_string())
        throw std::invalid_argument(where + ": prompt message " + std::to_string(i) + " needs a string \"role\"");
  } else {
    throw std::invalid_argument(where + ": \"prompt\" must be a string or a list of messages");
  }
  // a name, a list of names or {name: weight} (the environment set reads which)
  const json* e = r.contains("environment") ? &r["environment"] : nullptr;
  if (!e || !((e->is_string() && !e->get<std::string>().empty()) || (e->is_array() && !e->empty()) || (e->is_object() && !e->empty())))
    throw std::invalid_argument(where + ": \"environment\" must name the environment(s) that score the task");
}

std::vector<json> read_tasks(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw std::invalid_argument(file.string() + ": cannot open");
  std::vector<json> out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = file.string() + ":" + std::to_string(n);
    json r;
    try {
      r = json::parse(line);
    } catch (const json::exception& e) {
      throw std::invalid_argument(where + ": not valid JSON: " + rt::json_error_text(e));
    }
    check_task(r, where);
    out.push_back(std::move(r));
  }
  return out;
}

void for_each_input_task(const RlPrepConfig& c, const std::function<void(InputTask&)>& visit) {
  const int64_t total = c.split[0] + c.split[1] + c.split[2];
  for (const fs::path& file : c.inputs) {
    std::ifstream in(file);
    if (!in) throw std::invalid_argument("data.inputs: cannot open " + file.string());
    InputTask t;
    t.file = file;
    for (int64_t n = 1; std::getline(in, t.line); ++n) {
      if (!t.line.empty() && t.line.back() == '\r') t.line.pop_back();
      if (t.line.find_first_not_of(" \t") == std::string::npos) continue;
      t.where = file.string() + ":" + std::to_string(n);
      try {
        t.record = json::parse(t.line);
      } catch (const json::exception& e) {
        throw std::invalid_argument(t.where + ": not valid JSON: " + rt::json_error_text(e));
      }
      check_task(t.record, t.where);
      const int64_t bucket = int64_t(fnv1a64(t.line, c.seed) % uint64_t(total));
      t.split = bucket < c.split[0] ? 0 : bucket < c.split[0] + c.split[1] ? 1 : 2;
      visit(t);
    }
  }
}

json run_rl_data_prep(const RlPrepConfig& c, const fs::path& out_dir, std::ostream& log) {
  fs::create_directories(out_dir.parent_path());
  const fs::path tmp = rt::fresh_temp_dir(out_dir);
  std::ofstream outs[3];
  for (int s = 0; s < 3; ++s) {
    outs[s].open(tmp / (std::string(kSplitNames[s]) + ".jsonl"), std::ios::binary);
    if (!outs[s]) throw std::runtime_error((tmp / kSplitNames[s]).string() + ".jsonl: cannot create");
  }
  std::map<std::string, int64_t> counts[3];
  int64_t records[3] = {0, 0, 0};
  int64_t media_files = 0;
  json sources = json::array();
  std::map<fs::path, int64_t> kept;  // tasks per input file
  for_each_input_task(c, [&](InputTask& t) {
    json& r = t.record;
    // omni3 tasks: their images, videos and audio come along into OUT/media (named by their
    // digest), so the splits are self-contained; a path may not leave its file's folder.
    std::vector<json*> media = sft::media_paths(r);
    for (json* p : media) {
      const fs::path from = sft::resolve_media_path(t.file.parent_path(), p->get<std::string>(), t.where);
      const std::string name = "media/" + rt::sha256_file(from).substr(0, 24) + from.extension().string();
      if (!fs::exists(tmp / name)) {
        fs::create_directories(tmp / "media");
        fs::copy_file(from, tmp / name);
      }
      *p = name;
      ++media_files;
    }
    outs[t.split] << (media.empty() ? t.line : r.dump()) << '\n';
    ++counts[t.split][r["environment"].is_string() ? r["environment"].get<std::string>() : r["environment"].dump()];
    ++records[t.split];
    ++kept[t.file];
  });
  for (const fs::path& file : c.inputs) sources.push_back({{"path", file.string()}, {"sha256", rt::sha256_file(file)}, {"records", kept[file]}});
  json manifest, splits;
  rt::Sha256 content;
  for (int s = 0; s < 3; ++s) {
    outs[s].close();
    if (!outs[s]) throw std::runtime_error((tmp / kSplitNames[s]).string() + ".jsonl: write failed");
    const std::string file = std::string(kSplitNames[s]) + ".jsonl";
    manifest[kSplitNames[s]] = (out_dir / file).string();
    splits[kSplitNames[s]] = {{"records", records[s]}, {"environments", counts[s]}};
    content.update(rt::sha256_file(tmp / file));
  }
  if (records[0] == 0) throw std::invalid_argument("data.inputs: no tasks reached the train split (are the files empty?)");
  json config = {{"inputs", json::array()}, {"split", std::to_string(c.split[0]) + "," + std::to_string(c.split[1]) + "," +
                                                         std::to_string(c.split[2])}, {"seed", c.seed}};
  for (const auto& p : c.inputs) config["inputs"].push_back(p.string());
  const json metadata = {
      {"type", "SplitJsonlDataArtifact"},
      {"name", c.name},
      {"path", out_dir.string()},
      {"created_at", rt::utc_now()},
      {"producer", "nemokit data prep rl"},
      {"format", "jsonl"},
      {"manifest", "manifest.json"},
      {"splits", splits},
      {"media_references", media_files},
      {"source_datasets", sources},
      {"content_digest", content.finish_digest()},
      {"config", config},
      {"tracking", {{"used_artifacts", json::array()}}},
  };
  rt::write_file_atomic(tmp / "manifest.json", manifest.dump(2) + "\n");
  rt::write_file_atomic(tmp / "metadata.json", metadata.dump(2) + "\n");
  rt::replace_dir_atomic(tmp, out_dir);
  log << "data prep: " << records[0] << " train, " << records[1] << " val, " << records[2] << " test tasks -> "
      << out_dir.string() << "\n";
  return metadata;
}

}  // namespace nemokit::rl
