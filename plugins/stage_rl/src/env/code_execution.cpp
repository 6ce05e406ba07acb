// code_execution (super3 swe1/swe2): the task is a small repository with failing tests and a
// "test_command"; the response holds a patch (code/patch.hpp says which formats). The patch is
// checked and applied in memory, the patched repository goes into a fresh sandbox
// (code/sandbox.hpp) at /repo, and the test command runs there: reward 1 when it exits 0, else 0
// with the reason (refused or failed patch, exit code, limit hit, the output's tail).
// Task keys: "files" or "repo" (code/repo.hpp), "test_command", and optionally "protected": paths
// (files or folders) the patch may not touch, such as the tests themselves.
#include "env/answer_text.hpp"
#include "env/builtins.hpp"
#include "env/code/repo.hpp"
#include "env/code/sandbox.hpp"

#include <unistd.h>

#include <stdexcept>

namespace nemokit::rl {
namespace {

using code::CommandResult;
using code::Sandbox;
using code::SandboxConfig;

std::string tail(const std::string& s, size_t n) {
  return s.size() <= n ? excerpt(s, n) : "..." + excerpt(std::string_view(s).substr(s.size() - n), n);
}

std::string describe(const CommandResult& r) {
  std::string out = "exit code " + std::to_string(r.exit_code);
  if (!r.note.empty()) out += ", " + r.note;
  if (r.output_dropped) out += ", " + std::to_string(r.output_dropped) + " bytes of output dropped";
  return out;
}

std::vector<std::string> protected_paths(const nlohmann::json& task) {
  std::vector<std::string> out;
  if (!task.contains("protected")) return out;
  if (!task["protected"].is_array()) throw std::invalid_argument("task: \"protected\" must be a list of paths");
  for (const auto& p : task["protected"]) {
    if (!p.is_string()) throw std::invalid_argument("task: \"protected\" must be a list of paths");
    try {
      out.push_back(code::clean_repo_path(p.get<std::string>()));
    } catch (const code::PatchError& e) {
      throw std::invalid_argument(std::string("task: \"protected\": ") + e.what());
    }
  }
  return out;
}

bool touches(const std::string& path, const std::string& prot) {
  return path == prot || path.rfind(prot + "/", 0) == 0;
}

class SandboxTools : public Environment::Tools {
 public:
  SandboxTools(const SandboxConfig& cfg, const code::Files& repo) : box_(cfg, repo) {}
  ToolTurn run(const std::string& command) override {
    CommandResult r = box_.run(command);
    ToolTurn t{command, r.output, r.exit_code};
    if (!r.note.empty()) t.output += "\n[" + r.note + "]";
    if (r.output_dropped) t.output += "\n[" + std::to_string(r.output_dropped) + " more bytes of output dropped]";
    return t;
  }

 private:
  Sandbox box_;
};

class CodeExecution : public NamedEnvironment {
 public:
  explicit CodeExecution(SandboxConfig cfg) : NamedEnvironment("code_execution"), cfg_(std::move(cfg)) {}

  Reward score(const nlohmann::json& task, const std::string& response) override {
    code::Files files = code::load_repo(task);
    std::string test_command = task_text(task, "test_command");
    auto prot = protected_paths(task);
    if (geteuid() != 0) throw std::runtime_error("code_execution: the sandbox needs root (namespaces and mounts)");
    auto text = code::extract_patch(response);
    if (!text) return {0, "no patch in the response (a ```diff block or a unified diff)"};
    try {
      auto patch = code::parse_patch(*text);
      for (const auto& fp : patch)
        for (const auto& p : prot)
          for (const std::string& side : {fp.old_path, fp.new_path})
            if (!side.empty() && touches(code::clean_repo_path(side), p))
              return {0, "patch refused: it changes " + side + ", which the task protects"};
      code::apply_patch(files, patch);
    } catch (const code::PatchError& e) {
      return {0, std::string("patch refused: ") + e.what()};
    }
    CommandResult r;
    try {
      Sandbox box(cfg_, files);
      r = box.run(test_command);
    } catch (const std::exception& e) {
      return {0, std::string("sandbox: ") + e.what()};
    }
    if (r.exit_code == 0 && !r.timed_out) return {1, "tests pass"};
    return {0, "tests fail (" + describe(r) + "): " + tail(r.output, 200)};
  }

  std::unique_ptr<Tools> tools(const nlohmann::json& task) override {
    return std::make_unique<SandboxTools>(cfg_, code::load_repo(task));
  }

 private:
  SandboxConfig cfg_;
};

double number(const nlohmann::json& s, const char* key, double def, double min) {
  if (!s.contains(key)) return def;
  if (!s[key].is_number() || s[key].get<double>() < min)
    throw std::invalid_argument(std::string("environments.code_execution.") + key + " must be a number >= " +
                                std::to_string(static_cast<long long>(min)));
  return s[key].get<double>();
}

}  // namespace

std::unique_ptr<Environment> make_code_execution(const nlohmann::json& s) {
  SandboxConfig cfg;
  auto& l = cfg.limits;
  l.wall_seconds = number(s, "wall_seconds", l.wall_seconds, 1);
  l.cpu_seconds = static_cast<int>(number(s, "cpu_seconds", l.cpu_seconds, 1));
  l.memory_bytes = static_cast<uint64_t>(number(s, "memory_mb", static_cast<double>(l.memory_bytes >> 20), 16)) << 20;
  l.max_processes = static_cast<int>(number(s, "max_processes", l.max_processes, 1));
  l.output_bytes = static_cast<size_t>(number(s, "output_bytes", static_cast<double>(l.output_bytes), 0));
  l.disk_bytes = static_cast<uint64_t>(number(s, "disk_mb", static_cast<double>(l.disk_bytes >> 20), 1)) << 20;
  cfg.uid_base = static_cast<uint32_t>(number(s, "uid_base", cfg.uid_base, 1000));
  if (s.contains("rootfs")) {
    if (!s["rootfs"].is_string()) throw std::invalid_argument("environments.code_execution.rootfs must be a path");
    cfg.rootfs = s["rootfs"].get<std::string>();
  }
  return std::make_unique<CodeExecution>(std::move(cfg));
}

}  // namespace nemokit::rl
