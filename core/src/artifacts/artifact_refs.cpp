#include "artifacts/artifact_refs.hpp"

#include "util/error.hpp"

#include <optional>
#include <sstream>
#include <variant>

namespace nemokit {
namespace art = rt::artifacts;
using nlohmann::json;

namespace {

struct Walker {
  const art::Store& store;
  const PipeInputs& pipe;
  std::vector<ArtifactUse> uses;

  // nullopt: a deferred reference (a pipe's stage publishes it later).
  std::optional<art::Artifact> lookup(const std::string& key, const std::string& ref_text) {
    auto ref = art::parse_ref(ref_text);
    if (!ref)
      throw UserError(key + ": \"" + ref_text + "\" is not an artifact reference (NAME, NAME:latest or NAME:vN)");
    try {
      if (!ref->version && pipe.deferred.count(ref->name)) return std::nullopt;
      if (auto job = pipe.published_by.find(ref->name); !ref->version && job != pipe.published_by.end()) {
        std::vector<art::Artifact> mine = store.published_by(job->second, ref->name);
        if (mine.empty())
          throw UserError(key + ": " + art::describe_missing(store, ref->text(),
                                                             "not published by " + job->second +
                                                                 ", the job of this pipe that makes it (see its logs),"));
        return mine.front();
      }
      return store.get(*ref);
    } catch (const art::NotFound& e) {
      throw UserError(key + ": " + e.what());
    } catch (const UserError&) {
      throw;
    } catch (const std::exception& e) {
      throw UserError(key + ": artifact " + ref_text + ": " + e.what());
    }
  }

  static std::string text_of(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

  // Replaces the node when the whole value is a reference or one placeholder of a scalar field.
  void visit(toml::node& n, const std::string& key) {
    if (auto* t = n.as_table()) {
      for (auto&& [k, v] : *t) {
        std::string sub = key.empty() ? std::string(k.str()) : key + "." + std::string(k.str());
        if (auto* s = v.as_string()) {
          if (auto scalar = whole_placeholder(s->get(), sub)) {
            std::visit([&](auto&& node) { t->insert_or_assign(k, std::move(node)); }, std::move(*scalar));
            continue;
          }
        }
        visit(v, sub);
      }
    } else if (auto* a = n.as_array()) {
      for (size_t i = 0; i < a->size(); ++i) visit((*a)[i], key + "[" + std::to_string(i) + "]");
    } else if (auto* s = n.as_string()) {
      s->get() = rewrite(s->get(), key);
    }
  }

  std::optional<std::variant<int64_t, double, bool>> scalar_of(const json& v) {
    if (v.is_boolean()) return v.get<bool>();
    if (v.is_number_integer() || v.is_number_unsigned()) return v.get<int64_t>();
    if (v.is_number_float()) return v.get<double>();
    return std::nullopt;
  }

  std::optional<std::variant<int64_t, double, bool>> placeholder_scalar(const std::string& s, const std::string& key) {
    if (!s.starts_with("${art:") || !s.ends_with("}") || s.find("${", 2) != std::string::npos) return std::nullopt;
    auto [ref, fld] = split_placeholder(s.substr(6, s.size() - 7), key, s);
    auto a = lookup(key, ref);
    if (!a) return std::nullopt;
    const json* v = art::field(a->metadata, fld);
    if (!v) return std::nullopt;  // rewrite() reports it
    auto sc = scalar_of(*v);
    if (sc) uses.push_back({key, s, a->ref(), text_of(*v)});
    return sc;
  }

  std::optional<std::variant<toml::value<int64_t>, toml::value<double>, toml::value<bool>>> whole_placeholder(
      const std::string& s, const std::string& key) {
    auto sc = placeholder_scalar(s, key);
    if (!sc) return std::nullopt;
    if (auto* i = std::get_if<int64_t>(&*sc)) return toml::value<int64_t>(*i);
    if (auto* d = std::get_if<double>(&*sc)) return toml::value<double>(*d);
    return toml::value<bool>(std::get<bool>(*sc));
  }

  std::pair<std::string, std::string> split_placeholder(const std::string& inner, const std::string& key, const std::string& s) {
    size_t comma = inner.find(',');
    std::string ref = inner.substr(0, comma);
    std::string fld = comma == std::string::npos ? "path" : inner.substr(comma + 1);
    if (ref.empty() || fld.empty()) throw UserError(key + ": \"" + s + "\": write ${art:NAME[:vN],FIELD}");
    return {ref, fld};
  }

  std::string rewrite(const std::string& s, const std::string& key) {
    if (art::looks_like_ref(s) && s.find("${") == std::string::npos) {
      auto a = lookup(key, s);
      if (!a) {
        uses.push_back({key, s, "", s});
        return s;
      }
      uses.push_back({key, s, a->ref(), a->path().string()});
      return a->path().string();
    }
    if (s.find("${art:") == std::string::npos) return s;
    std::string out;
    size_t pos = 0;
    bool kept = false;
    while (true) {
      size_t start = s.find("${art:", pos);
      if (start == std::string::npos) break;
      size_t end = s.find('}', start);
      if (end == std::string::npos) throw UserError(key + ": unterminated ${art:...} in \"" + s + "\"");
      out += s.substr(pos, start - pos);
      auto [ref, fld] = split_placeholder(s.substr(start + 6, end - start - 6), key, s);
      auto a = lookup(key, ref);
      if (!a) {
        kept = true;
        out += s.substr(start, end + 1 - start);
      } else {
        const json* v = art::field(a->metadata, fld);
        if (!v || v->is_null())
          throw UserError(key + ": artifact " + a->ref() + " (" + a->type() + ") has no field \"" + fld + "\" (" +
                          (a->dir / "metadata.json").string() + ")");
        if (v->is_object() || v->is_array())
          throw UserError(key + ": field \"" + fld + "\" of artifact " + a->ref() + " is not a single value");
        out += text_of(*v);
        uses.push_back({key, s.substr(start, end + 1 - start), a->ref(), text_of(*v)});
      }
      pos = end + 1;
    }
    out += s.substr(pos);
    if (kept) uses.push_back({key, s, "", s});
    return out;
  }
};

}  // namespace

std::vector<ArtifactUse> resolve_artifact_refs(toml::table& config, const art::Store& store, const PipeInputs& pipe) {
  Walker w{store, pipe, {}};
  w.visit(config, "");
  return w.uses;
}

void check_artifact_table(const toml::table& config) {
  const toml::node* t = config.get("artifact");
  if (!t) return;
  if (!t->is_table()) throw UserError("artifact: must be a table (name = \"...\")");
  for (auto&& [k, v] : *t->as_table()) {
    if (k.str() != "name") throw UserError("artifact." + std::string(k.str()) + ": unknown key (the [artifact] table has: name)");
    if (!v.is_string() || !art::valid_name(*v.value<std::string>()))
      throw UserError("artifact.name: a name of letters, digits, '.', '_' and '-' (not starting with '.')");
  }
}

}  // namespace nemokit
