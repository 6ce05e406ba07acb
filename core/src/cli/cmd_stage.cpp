// `nemokit run`, `nemokit data prep` and `nemokit pipe`: resolve the stage and its config, then
// either print the plan (--dry-run) or run it through the stage's plugin.
#include "cli/context.hpp"
#include "config/config.hpp"
#include "exec/job.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"

#include <algorithm>
#include <iostream>

namespace nemokit::cli {
namespace fs = std::filesystem;

namespace {

struct StagePlan {
  const StageEntry* stage = nullptr;
  ResolvedConfig config;
  std::string config_ref;
};

StagePlan resolve(Context& ctx, const std::vector<std::string>& words, const char* usage) {
  if (words.size() < 2 || words.size() > 3) throw UserError(std::string("usage: nemokit ") + usage);
  StagePlan p;
  p.stage = &ctx.registry().stage(words[0], words[1], words.size() == 3 ? words[2] : "");
  p.config_ref = ctx.args.config.value_or(p.stage->configs.count("default") ? "default" : "");
  if (p.config_ref.empty()) throw UserError(p.stage->triple() + " ships no default config: pass -c NAME or -c path.toml");
  p.config = load_stage_config(*p.stage, p.config_ref);
  apply_overrides(p.config.table, ctx.args.overrides);
  interpolate_env(p.config.table, p.config.chain.back());
  return p;
}

// The executor for this invocation: the profile's, or this machine when neither --run nor
// --batch is given.
std::string executor_of(Context& ctx) {
  const Profile* prof = ctx.selected_profile();
  return prof ? prof->executor() : "local";
}

void require_local(Context& ctx, const StagePlan& p) {
  std::string ex = executor_of(ctx);
  if (ex != "local")
    throw std::runtime_error("profile executor \"" + ex + "\" for " + p.stage->triple() +
                             ": only the local executor is available in this version");
}

std::string plan_text(const std::string& verb, const StagePlan& p, const fs::path& job) {
  std::string cmd = "nemokit " + verb + " " + p.stage->triple() + " -c " + (job / "config.toml").string();
  return "# plan: local executor (this machine, in this process)\n"
         "# job folder: " + job.string() + "\n" + cmd + "\n";
}

int print_dry_run(Context& ctx, const std::string& verb, const StagePlan& p) {
  std::string chain;
  for (const auto& c : p.config.chain) chain += (chain.empty() ? "" : " -> ") + c;
  std::cout << "# nemokit " << verb << " " << p.stage->triple() << " (plugin " << p.stage->plugin->name
            << (p.stage->image.empty() ? "" : ", image " + p.stage->image) << ")\n"
            << "# config: " << chain << "\n";
  if (!ctx.args.overrides.empty()) {
    std::cout << "# overrides:";
    for (const auto& o : ctx.args.overrides) std::cout << " " << o;
    std::cout << "\n";
  }
  std::cout << "\n" << to_toml_text(p.config.table) << "\n\n";
  require_local(ctx, p);
  fs::path job = default_job_root() / ("<time>-" + p.stage->family + "-" + p.stage->stage +
                                       (p.stage->substage.empty() ? "" : "-" + p.stage->substage));
  std::cout << plan_text(verb, p, job);
  return 0;
}

int execute(Context& ctx, const std::string& verb, uint32_t kind, const StagePlan& p) {
  require_local(ctx, p);
  const StageEntry& s = *p.stage;
  JobDir job = JobDir::create(default_job_root(), s.family, s.stage, s.substage);
  write_file_atomic(job.path / "config.toml", to_toml_text(p.config.table) + "\n");
  write_file_atomic(job.path / "plan.txt", plan_text(verb, p, job.path));
  job.meta["plugin"] = s.plugin->name;
  job.meta["config"] = p.config_ref;
  job.meta["command"] = verb;
  job.set_state("RUNNING", -1);
  std::cerr << "nemokit: job folder " << job.path.string() << "\n";

  std::string config_json = toml_to_json(p.config.table).dump();
  std::string job_dir = job.path.string();
  nemokit_call_v1 call{};
  call.kind = kind;
  call.family = s.family.c_str();
  call.stage = s.stage.c_str();
  call.substage = s.substage.c_str();
  call.config_json = config_json.c_str();
  call.job_dir = job_dir.c_str();
  LoadedPlugin plugin = ctx.registry().load(*s.plugin);
  std::string error;
  int rc = plugin.invoke(call, error);
  job.set_state(rc == 0 ? "COMPLETED" : "FAILED", rc);
  if (rc != 0) std::cerr << "nemokit " << verb << " " << s.triple() << ": " << (error.empty() ? "failed" : error) << "\n";
  return rc;
}

}  // namespace

int cmd_run(Context& ctx) {
  StagePlan p = resolve(ctx, ctx.args.positionals, "run FAMILY STAGE [SUBSTAGE] [-c CONFIG] [key=value]...");
  if (ctx.args.dry_run) return print_dry_run(ctx, "run", p);
  return execute(ctx, "run", NEMOKIT_CALL_RUN, p);
}

int cmd_data(Context& ctx) {
  auto& w = ctx.args.positionals;
  if (w.empty() || w[0] != "prep") throw UserError("usage: nemokit data prep FAMILY STAGE [SUBSTAGE] [-c CONFIG] [key=value]...");
  std::vector<std::string> rest(w.begin() + 1, w.end());
  StagePlan p = resolve(ctx, rest, "data prep FAMILY STAGE [SUBSTAGE] [-c CONFIG] [key=value]...");
  if (ctx.args.dry_run) return print_dry_run(ctx, "data prep", p);
  return execute(ctx, "data prep", NEMOKIT_CALL_DATA_PREP, p);
}

int cmd_pipe(Context& ctx) {
  auto& w = ctx.args.positionals;
  if (w.size() != 1) throw UserError("usage: nemokit pipe FAMILY [--run PROFILE] [--dry-run]");
  std::vector<const StageEntry*> chain;
  for (const auto& s : ctx.registry().stages())
    if (s.family == w[0]) chain.push_back(&s);
  if (chain.empty()) throw UserError("no plugin serves family \"" + w[0] + "\" (see `nemokit recipes`)");
  // The recipes' order: pretrain, then SFT, then RL (substages in the order the plugin lists them).
  auto rank = [](const StageEntry* s) { return s->stage == "pretrain" ? 0 : s->stage == "sft" ? 1 : s->stage == "rl" ? 2 : 3; };
  std::stable_sort(chain.begin(), chain.end(), [&](auto* a, auto* b) { return rank(a) < rank(b); });
  std::cout << "# pipe " << w[0] << ": ";
  for (size_t i = 0; i < chain.size(); ++i) std::cout << (i ? " -> " : "") << chain[i]->triple();
  std::cout << "\n";
  if (ctx.args.dry_run) return 0;
  throw std::runtime_error("nemokit pipe submits a chain of Slurm jobs; the Slurm executor is not available in this version");
}

}  // namespace nemokit::cli
