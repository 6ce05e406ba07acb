#include "nemokit/runtime/run/table_reader.hpp"

#include "nemokit/runtime/run/paths.hpp"

#include <stdexcept>

namespace nemokit::rt {
using nlohmann::json;

TableReader::TableReader(const json& table, std::string prefix) : table_(table), prefix_(std::move(prefix)) {
  if (!table_.is_object()) throw std::invalid_argument(prefix_ + ": must be a table");
}

const json* TableReader::get(const char* key) {
  seen_.insert(key);
  auto it = table_.find(key);
  return it == table_.end() ? nullptr : &*it;
}

void TableReader::fail(const char* key, const std::string& what) const {
  throw std::invalid_argument(prefix_ + "." + key + ": " + what);
}

void TableReader::integer(const char* key, int64_t& out, int64_t min) {
  if (const json* v = get(key)) {
    if (!v->is_number_integer()) fail(key, "expected an integer");
    out = v->get<int64_t>();
    if (out < min) fail(key, "must be at least " + std::to_string(min));
  }
}

void TableReader::number(const char* key, double& out) {
  if (const json* v = get(key)) {
    if (!v->is_number()) fail(key, "expected a number");
    out = v->get<double>();
  }
}

void TableReader::string(const char* key, std::string& out) {
  if (const json* v = get(key)) {
    if (!v->is_string()) fail(key, "expected a string");
    out = v->get<std::string>();
  }
}

void TableReader::boolean(const char* key, bool& out) {
  if (const json* v = get(key)) {
    if (!v->is_boolean()) fail(key, "expected true or false");
    out = v->get<bool>();
  }
}

void TableReader::strings(const char* key, std::vector<std::string>& out) {
  const json* v = get(key);
  if (!v) return;
  out.clear();
  if (v->is_string()) {
    out.push_back(v->get<std::string>());
    return;
  }
  if (!v->is_array()) fail(key, "expected a string or an array of strings");
  for (const auto& item : *v) {
    if (!item.is_string()) fail(key, "expected an array of strings");
    out.push_back(item.get<std::string>());
  }
}

void TableReader::no_unknown_keys() const {
  for (const auto& [k, _] : table_.items())
    if (!seen_.count(k)) throw std::invalid_argument(prefix_ + "." + k + ": unknown key");
}

void read_checkpoint_table(const json& config, std::filesystem::path& dir, bool& resume, int64_t& keep) {
  if (!config.contains("checkpoint")) return;
  TableReader c(config["checkpoint"], "checkpoint");
  std::string d;
  c.string("dir", d);
  if (!d.empty()) dir = expand_home(d);
  c.boolean("resume", resume);
  c.integer("keep", keep, 1);
  c.no_unknown_keys();
}

}  // namespace nemokit::rt
