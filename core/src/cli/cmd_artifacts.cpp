// `nemokit artifacts list | show NAME[:VERSION] | lineage NAME[:VERSION] [--svg FILE]`: the
// artifact store (sdk/runtime's nemokit/runtime/artifacts.hpp) as a user reads it.
#include "artifacts/lineage.hpp"
#include "cli/context.hpp"
#include "util/error.hpp"

#include "nemokit/runtime/atomic_file.hpp"

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <set>

namespace nemokit::cli {
namespace fs = std::filesystem;
namespace art = rt::artifacts;
using nlohmann::json;

namespace {

struct Usage {
  const char* name;
  const char* text;
};
constexpr Usage kUsages[] = {
    {"list", "list [NAME]\n      every artifact (or every version of NAME): version, type, time, content digest, path"},
    {"show", "show NAME[:VERSION] [--json]\n      one artifact: its fields, digest, producer, job, the artifacts it used (--json: metadata.json)"},
    {"lineage",
     "lineage NAME[:VERSION] [--svg FILE]\n"
     "      the artifacts it was made from, back to the raw files, as a tree (--svg: also as an SVG drawing)"},
};

void print_usage(std::ostream& out, const std::string& only = "") {
  bool first = true;
  for (const auto& u : kUsages) {
    if (!only.empty() && only != u.name) continue;
    out << (first ? "usage: nemokit artifacts " : "       nemokit artifacts ") << u.text << "\n";
    first = false;
  }
  if (only.empty())
    out << "\nNAME:latest (the default) is the newest version, NAME:vN one version. The store: $NEMOKIT_ARTIFACTS_ROOT,\n"
           "else env.toml's [artifacts] root, else ~/.cache/nemokit/artifacts.\n";
}

bool is_help(const std::string& w) { return w == "--help" || w == "-h" || w == "help"; }

std::string short_digest(const std::string& d) { return d.size() > 19 ? d.substr(0, 19) : d; }

int list(Context& ctx, const std::vector<std::string>& args) {
  if (args.size() > 2) throw UserError("usage: nemokit artifacts list [NAME]");
  art::Store store = ctx.artifact_store();
  std::vector<std::string> names = args.size() == 2 ? std::vector<std::string>{args[1]} : store.names();
  if (args.size() == 2 && store.versions(args[1]).empty())
    throw UserError(art::describe_missing(store, args[1], "no such name"));
  if (names.empty()) {
    std::cout << "no artifacts in " << store.root().string() << "\n";
    return 0;
  }
  std::cout << "# " << store.root().string() << "\n";
  for (const auto& n : names) {
    auto latest = store.latest(n);
    for (int64_t v : store.versions(n)) {
      art::Artifact a = store.get(art::Ref{n, v});
      std::cout << std::left << std::setw(36) << (a.ref() + (latest && *latest == v ? " (latest)" : "")) << " " << std::setw(24)
                << a.type() << " " << a.metadata.value("created_at", "") << "  " << short_digest(a.digest()) << "  "
                << a.path().string() << "\n";
    }
  }
  return 0;
}

int show(Context& ctx, const std::vector<std::string>& args) {
  bool as_json = std::find(args.begin(), args.end(), "--json") != args.end();
  std::vector<std::string> pos;
  for (size_t i = 1; i < args.size(); ++i)
    if (args[i] != "--json") pos.push_back(args[i]);
  if (pos.size() != 1) throw UserError("usage: nemokit artifacts show NAME[:VERSION] [--json]");
  art::Store store = ctx.artifact_store();
  art::Artifact a = [&] {
    try {
      return store.resolve(pos[0]);
    } catch (const art::NotFound& e) {
      throw UserError(e.what());
    }
  }();
  if (as_json) {
    std::cout << a.metadata.dump(2) << "\n";
    return 0;
  }
  const json& m = a.metadata;
  std::cout << a.ref() << "  " << a.type() << "\n";
  std::cout << "  path:       " << a.path().string() << (fs::exists(a.path()) ? "" : "  (missing)") << "\n";
  std::cout << "  digest:     " << a.digest() << "  (" << m.value("file_count", 0) << " files, " << m.value("bytes", uint64_t(0)) << " bytes)\n";
  std::cout << "  created:    " << m.value("created_at", "") << "\n";
  std::cout << "  producer:   " << m.value("producer", "") << "\n";
  if (m.contains("job_dir")) std::cout << "  job:        " << m["job_dir"].get<std::string>() << "\n";
  static const std::set<std::string> shown = {"name", "version", "type", "path", "created_at", "producer", "job_dir",
                                              "content_digest", "bytes", "file_count", "digest_excludes", "config", "tracking"};
  for (const auto& [k, v] : m.items()) {
    if (shown.count(k)) continue;
    std::string text = v.is_string() ? v.get<std::string>() : v.dump();
    if (text.size() > 160) text = text.substr(0, 157) + "...";
    std::cout << "  " << std::left << std::setw(11) << (k + ":") << " " << text << "\n";
  }
  std::cout << "  used:      ";
  auto used = a.used();
  if (used.empty()) std::cout << " (nothing from the store)";
  for (const auto& u : used) std::cout << " " << u;
  std::cout << "\n  metadata:   " << (a.dir / "metadata.json").string() << " (the resolved config is in it: --json)\n";
  return 0;
}

int lineage(Context& ctx, const std::vector<std::string>& args) {
  std::vector<std::string> pos;
  std::string svg;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--svg") {
      if (i + 1 >= args.size()) throw UserError("--svg needs a FILE");
      svg = args[++i];
    } else if (args[i].starts_with("--svg=")) {
      svg = args[i].substr(6);
    } else if (args[i].starts_with("-")) {
      throw UserError("artifacts lineage: unknown option " + args[i] + " (see `nemokit artifacts lineage --help`)");
    } else {
      pos.push_back(args[i]);
    }
  }
  if (pos.size() != 1) throw UserError("usage: nemokit artifacts lineage NAME[:VERSION] [--svg FILE]");
  art::Store store = ctx.artifact_store();
  std::vector<LineageNode> nodes;
  try {
    nodes = lineage_of(store, pos[0]);
  } catch (const art::NotFound& e) {
    throw UserError(e.what());
  }
  std::cout << lineage_tree_text(nodes);
  if (!svg.empty()) {
    rt::write_file_atomic(fs::absolute(svg), lineage_svg(nodes));
    std::cerr << "nemokit: wrote " << fs::absolute(svg).string() << "\n";
  }
  return 0;
}

}  // namespace

int cmd_artifacts(Context& ctx) {
  const auto& args = ctx.args.raw;
  if (args.empty() || is_help(args[0])) {
    if (args.empty()) std::cerr << "nemokit artifacts: expected a subcommand (list, show, lineage)\n";
    print_usage(args.empty() ? std::cerr : std::cout);
    return args.empty() ? 2 : 0;
  }
  const bool known = std::any_of(std::begin(kUsages), std::end(kUsages), [&](const Usage& u) { return args[0] == u.name; });
  if (!known) throw UserError("artifacts: unknown subcommand \"" + args[0] + "\" (expected list, show or lineage)");
  for (size_t i = 1; i < args.size(); ++i)
    if ((args[i] == "--help" || args[i] == "-h") && args[i - 1] != "--svg") {
      print_usage(std::cout, args[0]);
      return 0;
    }
  if (args[0] == "list") return list(ctx, args);
  if (args[0] == "show") return show(ctx, args);
  return lineage(ctx, args);
}

}  // namespace nemokit::cli
