// `nemokit plugins`, `nemokit recipes`, `nemokit profiles` and the completion helper: all read
// plugins from their files only, never running plugin code.
#include "cli/app.hpp"
#include "cli/base_image.hpp"
#include "cli/context.hpp"
#include "cli/job_lookup.hpp"
#include "cli/help.hpp"
#include "config/config.hpp"
#include "util/error.hpp"

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace nemokit::cli {

namespace {
std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::vector<std::string> config_names(const StageEntry& s) {
  std::vector<std::string> out;
  for (const auto& [n, _] : s.configs) out.push_back(n);
  return out;
}
// Families in the recipes' order, then stages in training order (pretrain, sft, rl), substages
// as their plugin lists them.
std::vector<const StageEntry*> ordered_stages(const PluginRegistry& reg) {
  auto rank = [](const std::vector<std::string>& order, const std::string& v) {
    auto it = std::find(order.begin(), order.end(), v);
    return it - order.begin();
  };
  static const std::vector<std::string> families = {"nano3", "super3", "omni3"}, stages = {"pretrain", "sft", "rl"};
  std::vector<const StageEntry*> out;
  for (const auto& s : reg.stages()) out.push_back(&s);
  std::stable_sort(out.begin(), out.end(), [&](auto* a, auto* b) {
    return std::pair(rank(families, a->family), rank(stages, a->stage)) <
           std::pair(rank(families, b->family), rank(stages, b->stage));
  });
  return out;
}
}  // namespace

int cmd_plugins(Context& ctx) {
  const PluginRegistry& reg = ctx.registry();
  auto& w = ctx.args.positionals;
  if (!w.empty() && w[0] == "info") {
    if (w.size() != 2) throw UserError("usage: nemokit plugins info NAME");
    const PluginFile* p = reg.plugin(w[1]);
    if (!p) throw UserError("no plugin named \"" + w[1] + "\" (see `nemokit plugins`)");
    std::cout << "name:      " << p->name << "\nfile:      " << p->path.string() << "\n";
    if (!p->ok()) {
      std::cout << "problem:   " << p->error << "\n";
      return 1;
    }
    std::cout << "version:   " << p->version << "\nABI:       " << p->abi_major << "." << p->abi_minor << "\n";
    if (!p->description.empty()) std::cout << "about:     " << p->description << "\n";
    for (const auto& s : reg.stages())
      if (s.plugin == p)
        std::cout << "stage:     " << s.triple() << (s.image.empty() ? "" : "  (image " + s.image + ")")
                  << "  configs: " << join(config_names(s)) << "\n";
    for (const auto& im : reg.images())
      if (im.plugin == p) std::cout << "image:     " << im.name << "  (" << im.dockerfile << ")\n";
    for (const auto& c : p->manifest.value("commands", nlohmann::json::array()))
      std::cout << "command:   " << c.get<std::string>() << "\n";
    std::cout << "resources: " << join(p->resource_names()) << "\n";
    return 0;
  }
  if (!w.empty()) throw UserError("usage: nemokit plugins [info NAME]");
  // A plain table (no wrapping) so paths stay whole and the output greps well.
  std::cout << std::left << std::setw(18) << "PLUGIN" << std::setw(10) << "VERSION" << std::setw(6) << "ABI"
            << "FILE\n";
  for (const auto& p : reg.plugins()) {
    if (!p->ok()) continue;
    std::cout << std::setw(18) << p->name << std::setw(10) << p->version << std::setw(6)
              << (std::to_string(p->abi_major) + "." + std::to_string(p->abi_minor)) << p->path.string() << "\n";
  }
  for (const auto& pr : reg.problems()) std::cerr << "nemokit: plugin problem: " << pr << "\n";
  return reg.problems().empty() ? 0 : 1;
}

int cmd_recipes(Context& ctx) {
  const PluginRegistry& reg = ctx.registry();
  // CAN: what the stage offers, each from what its plugin declares: data prep and run (every
  // stage), image (its image has a Dockerfile in some plugin; `nemokit build IMAGE`), pipe (it is
  // a link of `nemokit pipe FAMILY`).
  std::cout << std::left << std::setw(24) << "RECIPE" << std::setw(16) << "PLUGIN" << std::setw(16) << "IMAGE" << std::setw(30)
            << "CAN"
            << "CONFIGS\n";
  for (const StageEntry* sp : ordered_stages(reg)) {
    const StageEntry& s = *sp;
    std::vector<std::string> can = {"data prep", "run"};
    if (!s.image.empty() && reg.image(s.image)) can.push_back("image");
    if (s.in_pipe) can.push_back("pipe");
    std::cout << std::setw(24) << s.triple() << std::setw(16) << s.plugin->name << std::setw(16)
              << (s.image.empty() ? "-" : s.image) << std::setw(30) << join(can) << join(config_names(s)) << "\n";
  }
  for (const auto& pr : reg.problems()) std::cerr << "nemokit: plugin problem: " << pr << "\n";
  return 0;
}

int cmd_profiles(Context& ctx) {
  const ProfileSet& set = ctx.profiles();
  if (set.file().empty()) {
    std::cout << "no env.toml found (looked at $NEMOKIT_ENV, ./env.toml and the folders above, ~/.config/nemokit/env.toml)\n";
    return 0;
  }
  std::cout << "# " << set.file().string() << "\n";
  for (const auto& name : set.names()) {
    const Profile& p = set.get(name);
    std::cout << "\n[" << name << "]"
              << (p.chain.size() > 1 ? "  # extends " + join({p.chain.begin() + 1, p.chain.end()}, " -> ") : "") << "\n";
    // Secrets never reach the screen: env_vars named like KEY/TOKEN/SECRET/PASSWORD are masked.
    toml::table shown = p.values;
    if (auto* env = shown.get("env_vars"); env && env->is_table())
      for (auto&& [k, v] : *env->as_table())
        if (is_secret_name(std::string(k.str()))) v.as_string()->get() = "********";
    std::cout << to_toml_text(shown) << "\n";
  }
  return 0;
}

int cmd_complete(Context& ctx) {
  // Prints candidate words for the current position; used by packaging/nemokit.bash.
  // `__complete --options WORDS...` lists the long options the command WORDS[0] takes.
  const auto& w = ctx.args.raw;
  const PluginRegistry& reg = ctx.registry();
  const std::vector<CommandSpec> builtins = builtin_commands();
  std::vector<std::string> out;
  if (!w.empty() && w[0] == "--options") {
    const CommandSpec* spec = nullptr;
    for (const auto& c : builtins)
      if (w.size() > 1 && c.name == w[1]) spec = &c;
    if (spec || w.size() == 1)
      out = long_options(spec);
    else
      out = {"--help"};  // a plugin's command parses its own options; every one takes --help
    std::sort(out.begin(), out.end());
    for (const auto& s : out) std::cout << s << "\n";
    return 0;
  }
  // w holds the words before the one being completed, without "nemokit".
  std::string cmd = w.empty() ? "" : w[0];
  if (w.empty()) {
    for (const auto& c : builtins)
      if (!c.name.starts_with("__")) out.push_back(c.name);
    for (const auto& p : reg.plugins())
      if (p->ok())
        for (const auto& c : p->manifest.value("commands", nlohmann::json::array())) out.push_back(c.get<std::string>());
  } else if ((cmd == "report" || cmd == "logs" || cmd == "cancel") && w.size() == 1) {
    for (const auto& j : list_jobs(job_roots(ctx))) out.push_back(j.id());
  } else if (cmd == "data" && w.size() == 1) {
    out = {"prep"};
  } else if (cmd == "run" || cmd == "pipe" || cmd == "data") {
    std::vector<std::string> args(w.begin() + (cmd == "data" ? 2 : 1), w.end());
    for (const auto& s : reg.stages()) {
      std::vector<std::string> parts = {s.family, s.stage};
      if (!s.substage.empty()) parts.push_back(s.substage);
      if (cmd == "pipe") parts.resize(1);
      if (args.size() < parts.size() && std::equal(args.begin(), args.end(), parts.begin())) out.push_back(parts[args.size()]);
    }
  } else if (cmd == "eval" && w.size() == 1) {
    for (const auto& s : reg.stages())
      if (s.stage == "eval") out.push_back(s.family);
  } else if (cmd == "build" && w.size() == 1) {
    out.push_back(kBaseImageName);
    for (const auto& im : reg.images()) out.push_back(im.name);
  } else if (w.size() == 1 && !std::any_of(builtins.begin(), builtins.end(), [&](auto& c) { return c.name == cmd; })) {
    // A plugin's command: the words its manifest lists for it (`image` -> convert, push, ...).
    for (const auto& p : reg.plugins())
      if (p->ok())
        for (const auto& s : p->manifest.value("subcommands", nlohmann::json::object()).value(cmd, nlohmann::json::array()))
          out.push_back(s.get<std::string>());
  } else if (cmd == "plugins" && w.size() == 1) {
    out = {"info"};
  } else if (cmd == "artifacts" && w.size() == 1) {
    out = {"lineage", "list", "show"};
  } else if (cmd == "artifacts" && w.size() == 2 && w[1] != "list") {
    // NAME:latest and each NAME:vN of the store
    rt::artifacts::Store store = ctx.artifact_store();
    for (const auto& n : store.names()) {
      out.push_back(n + ":latest");
      for (int64_t v : store.versions(n)) out.push_back(n + ":v" + std::to_string(v));
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  for (const auto& s : out) std::cout << s << "\n";
  return 0;
}

}  // namespace nemokit::cli
