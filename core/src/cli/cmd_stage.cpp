// `nemokit run`, `nemokit data prep` and `nemokit pipe`: resolve the stage and its config, then
// print the plan (--dry-run), run it here (one rank in this process, or one process per GPU), or
// submit it to Slurm (--run follows the job, --batch returns its id). `__task` is what each rank
// and each Slurm task runs: the stage of one job folder, in this process.
#include "artifacts/artifact_refs.hpp"
#include "cli/context.hpp"
#include "config/config.hpp"
#include "config/model_table.hpp"
#include "exec/job.hpp"
#include "exec/job_shape.hpp"
#include "exec/local_ranks.hpp"
#include "exec/output_tee.hpp"
#include "exec/process.hpp"
#include "exec/slurm_client.hpp"
#include "exec/slurm_follow.hpp"
#include "exec/slurm_plan.hpp"
#include "exec/slurm_submit.hpp"
#include "exec/task_env.hpp"
#include "profiles/wandb_section.hpp"
#include "util/error.hpp"
#include "util/read_file.hpp"
#include "util/suggest.hpp"

#include "nemokit/runtime/atomic_file.hpp"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <cstdlib>
#include <iostream>

namespace nemokit::cli {
namespace fs = std::filesystem;

namespace {

struct StagePlan {
  const StageEntry* stage = nullptr;
  ResolvedConfig config;
  std::string config_ref;
  std::vector<ArtifactUse> artifacts;  // the artifact references of the config, resolved
  std::string artifacts_root;          // the store they resolve in, which the job's tasks publish to
  // In a pipe: the names the stages before publish -> their job folders (job.json pipe_inputs),
  // which the stage's task resolves its deferred references against.
  std::map<std::string, std::string> pipe_inputs;
};

// In a pipe, a stage after the first starts from the model of the stage before: its [model]
// init_from becomes that stage's model artifact, NAME:latest, resolved when the stage starts to
// the version that stage's job published. A stage whose manifest lists the tables it reads and
// not [model] takes no model.
void start_from_model(const StageEntry& stage, toml::table& config, const std::string& model_artifact) {
  if (!stage.tables.empty() && !std::ranges::count(stage.tables, std::string("model"))) return;
  if (!config.contains("model")) config.insert("model", toml::table{});
  if (toml::table* model = config["model"].as_table()) model->insert_or_assign("init_from", model_artifact + ":latest");
}

// `deferred`: artifact names an earlier stage of the same pipe publishes (see resolve_artifact_refs);
// `input_model`: the model artifact of the stage before in a pipe (start_from_model).
StagePlan resolve_stage(Context& ctx, const StageEntry& stage, const std::set<std::string>& deferred = {},
                        const std::string& input_model = "") {
  StagePlan p;
  p.stage = &stage;
  p.config_ref = ctx.args.config.value_or(stage.configs.count("default") ? "default" : "");
  if (p.config_ref.empty()) throw UserError(stage.triple() + " ships no default config: pass -c NAME or -c path.toml");
  p.config = load_stage_config(stage, p.config_ref);
  apply_overrides(p.config.table, ctx.args.overrides);
  if (!input_model.empty()) start_from_model(stage, p.config.table, input_model);
  interpolate_env(p.config.table, p.config.chain.back());
  try {
    rt::artifacts::Store store = ctx.artifact_store();
    p.artifacts_root = store.root().string();
    p.artifacts = resolve_artifact_refs(p.config.table, store, PipeInputs{deferred, {}});
    check_artifact_table(p.config.table);
  } catch (const UserError& e) {
    throw UserError("config " + p.config.chain.back() + ": " + e.what());
  }
  check_model_table(p.config.table, "config " + p.config.chain.back());
  check_config_tables(stage, p.config.table, "config " + p.config.chain.back());
  return p;
}

// The name a stage's finished run publishes its model under (artifact.name, else the default).
std::string model_name(const StagePlan& p) {
  return rt::artifacts::model_artifact_name(
      {p.stage->family, p.stage->stage, p.stage->substage, "run", toml_to_json(p.config.table), {}, {}});
}

// The names a stage publishes when it runs: its model artifact and the data it prepares.
std::set<std::string> published_names(const StagePlan& p) {
  std::set<std::string> names = {model_name(p)};
  if (auto n = p.config.table["data"]["name"].value<std::string>()) names.insert(*n);
  return names;
}

StagePlan resolve(Context& ctx, const std::vector<std::string>& words, const char* usage) {
  if (words.size() < 2 || words.size() > 3) throw UserError(std::string("usage: nemokit ") + usage);
  return resolve_stage(ctx, ctx.registry().stage(words[0], words[1], words.size() == 3 ? words[2] : ""));
}

// Where this invocation runs: here (no --run/--batch, or a profile whose executor is local) or
// on Slurm.
struct Target {
  const Profile* profile = nullptr;
  bool slurm = false;
  bool detached = false;  // --batch
};

Target target_of(Context& ctx) {
  Target t;
  t.profile = ctx.selected_profile();
  t.detached = ctx.args.batch_profile.has_value();
  if (!t.profile) return t;
  std::string ex = t.profile->executor();
  if (ex == "slurm") t.slurm = true;
  else if (ex != "local")
    throw UserError(t.profile->file.string() + " [" + t.profile->name + "]: executor \"" + ex +
                    "\" is not supported (use \"local\" or \"slurm\")");
  if (!t.slurm && t.detached)
    throw UserError("--batch " + t.profile->name + ": the profile's executor is local, which has nothing to detach to; use --run or neither");
  return t;
}

// Before any job folder is made: a Slurm profile needs the Slurm commands here.
void require_sbatch(const Target& t) {
  if (t.slurm && !on_path("sbatch"))
    throw UserError(t.profile->file.string() + " [" + t.profile->name +
                    "]: the Slurm executor needs sbatch, which is not on PATH (run nemokit on a Slurm login node)");
}

std::string job_suffix(const StageEntry& s) { return s.family + "-" + s.stage + (s.substage.empty() ? "" : "-" + s.substage); }

JobShape shape_for(Context& ctx, const Target& t, const StagePlan& p) {
  std::set<std::string> overridden = overridden_run_keys(ctx.args.overrides);
  JobShape shape = resolve_job_shape(t.profile, p.config.table, overridden, t.detached, "nemokit-" + job_suffix(*p.stage));
  if (!t.slurm) {
    shape.nodes = 1;
    shape.tasks_per_node = local_rank_count(t.profile, p.config.table, overridden, visible_gpu_count());
  }
  return shape;
}

// The memory plan of `p`'s job (a "# memory per rank" line, or "" for a stage whose model is a
// checkpoint); throws UserError when a rank cannot fit. `here`: the job runs on this machine.
std::string memory_plan_for(const StagePlan& p, const JobShape& shape, bool here) {
  return check_memory_plan(p.config.table, "config " + p.config.chain.back(), shape, memory_budget(shape, here));
}

std::string local_plan_text(const std::string& verb, const StagePlan& p, const fs::path& job, const JobShape& shape) {
  int n = shape.tasks_per_node;
  std::string out = "# plan: local executor, " + std::to_string(n) + (n == 1 ? " rank, in this process\n" : " ranks, one process each\n");
  out += "# nemokit " + verb + " " + p.stage->triple() + "\n# job folder: " + job.string() + "\n";
  std::string task = "nemokit __task " + job.string();
  if (n == 1) return out + task + "\n";
  return out + "RANK=0.." + std::to_string(n - 1) + " LOCAL_RANK=RANK WORLD_SIZE=" + std::to_string(n) +
         " MASTER_ADDR=127.0.0.1 MASTER_PORT=<free port> " + task + "\n";
}

SlurmJobPlan slurm_plan_for(const Target& t, const std::string& verb, const StagePlan& p, const fs::path& job,
                            const JobShape& shape) {
  SlurmJobRequest req;
  req.profile = t.profile;
  req.shape = shape;
  req.job_dir = job;
  req.title = "nemokit " + verb + " " + p.stage->triple() + " (profile " + t.profile->name + ")";
  req.image = p.stage->image;
  req.task_args = {"__task", job.string()};
  return plan_slurm_job(req);
}

void print_config(Context& ctx, const std::string& verb, const StagePlan& p) {
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
  for (const auto& a : p.artifacts)
    std::cout << "# artifact " << a.key << " = \"" << a.written << "\" -> "
              << (a.ref.empty() ? "published by an earlier stage of this pipe; resolved when the stage starts"
                                : a.ref + ": " + a.value)
              << "\n";
  std::cout << "\n" << to_toml_text(p.config.table) << "\n\n";
}

int print_dry_run(Context& ctx, const std::string& verb, const StagePlan& p) {
  print_config(ctx, verb, p);
  Target t = target_of(ctx);
  JobShape shape = shape_for(ctx, t, p);
  if (verb == "run") std::cout << memory_plan_for(p, shape, false);
  fs::path job = job_root_for(t.profile) / ("<time>-" + job_suffix(*p.stage));
  if (!t.slurm) {
    std::cout << local_plan_text(verb, p, job, shape);
    return 0;
  }
  SlurmJobPlan plan = slurm_plan_for(t, verb, p, job, shape);
  std::cout << "# plan: Slurm, sbatch --parsable " << (job / "sbatch.sh").string() << " ("
            << (t.detached ? "detached" : "attached") << ")\n";
  if (!plan.secrets.empty()) {
    std::cout << "# secrets.env (0600, values not shown):";
    for (const auto& [k, _] : plan.secrets) std::cout << " " << k;
    std::cout << "\n";
  }
  std::cout << render_sbatch_script(plan.script);
  return 0;
}

// A fresh job folder holding the resolved config, for the stage of `p`.
JobDir make_job(const Target& t, const std::string& verb, const StagePlan& p) {
  const StageEntry& s = *p.stage;
  JobDir job = JobDir::create(job_root_for(t.profile), s.family, s.stage, s.substage);
  rt::write_file_atomic(job.path / "config.toml", to_toml_text(p.config.table) + "\n");
  job.meta["plugin"] = s.plugin->name;
  job.meta["config"] = p.config_ref;
  job.meta["command"] = verb;
  job.meta["executor"] = t.slurm ? "slurm" : "local";
  if (t.profile) job.meta["profile"] = t.profile->name;
  job.meta["artifacts_root"] = p.artifacts_root;
  if (!p.artifacts.empty()) {
    nlohmann::json uses = nlohmann::json::array();
    for (const auto& a : p.artifacts) uses.push_back({{"key", a.key}, {"written", a.written}, {"ref", a.ref}, {"value", a.value}});
    job.meta["artifacts"] = uses;
  }
  if (!p.pipe_inputs.empty()) job.meta["pipe_inputs"] = p.pipe_inputs;
  job.save();
  return job;
}

// env.toml's [wandb], read before a run starts so that a bad section stops it at once.
std::optional<WandbSection> wandb_of(Context& ctx) {
  return ctx.profiles().file().empty() ? std::nullopt : read_wandb_section(ctx.profiles().file());
}

int execute_local(Context& ctx, const Target& t, const std::string& verb, const StagePlan& p, fs::path* job_out = nullptr) {
  const std::optional<WandbSection> wandb = verb == "run" ? wandb_of(ctx) : std::nullopt;
  JobShape shape = shape_for(ctx, t, p);
  JobDir job = make_job(t, verb, p);
  if (job_out) *job_out = job.path;
  rt::write_file_atomic(job.path / "plan.txt", local_plan_text(verb, p, job.path, shape));
  job.meta["ranks"] = shape.tasks_per_node;
  job.set_state("RUNNING", -1);
  std::cerr << "nemokit: job folder " << job.path.string() << "\n";
  int rc = 0;
  try {
    if (shape.tasks_per_node == 1) {
      OutputTee tee(job.logs() / "rank-0.log");
      rc = run_task(ctx, job.path);
    } else {
      LocalRanks ranks;
      ranks.exe = self_executable();
      ranks.args = {"__task", job.path.string()};
      ranks.nproc = shape.tasks_per_node;
      ranks.log_dir = job.logs();
      ranks.mpirun = mpi_launcher();  // one MPI world, so that training's collectives reach every rank
      rc = run_local_ranks(ranks);
    }
  } catch (...) {
    job.set_state("FAILED", 1);  // the job folder says how it ended even when nemokit could not start it
    throw;
  }
  job.set_state(rc == 0 ? "COMPLETED" : "FAILED", rc);
  if (verb == "run") std::cerr << run_logs_note(wandb, job.path);
  return rc;
}

// Writes the job's sbatch script (and its secrets file, 0600) and submits it; returns the Slurm
// id. `after`: a job that must succeed first.
std::string submit(Context& ctx, const Target& t, const std::string& verb, const StagePlan& p, JobDir& job,
                   const std::string& after) {
  SlurmJobPlan plan = slurm_plan_for(t, verb, p, job.path, shape_for(ctx, t, p));
  std::string id = submit_slurm_job(job, plan, after);
  std::cerr << "nemokit: submitted Slurm job " << id << " (" << p.stage->triple() << "), job folder " << job.path.string() << "\n";
  return id;
}

// --stage: the job folder a run would use, with its resolved config and its plan (the sbatch
// script, for a Slurm profile), and nothing started: for running the stage by hand, under a
// debugger or inside an interactive allocation, as the recipes' --stage does.
int stage_only(Context& ctx, const std::string& verb, const StagePlan& p) {
  Target t = target_of(ctx);
  JobShape shape = shape_for(ctx, t, p);
  JobDir job = make_job(t, verb, p);
  std::cout << "staged " << p.stage->triple() << " in " << job.path.string() << " (nothing started)\n";
  if (t.slurm) {
    write_slurm_job_files(job, slurm_plan_for(t, verb, p, job.path, shape));
    job.set_state("STAGED", -1);
    const std::string script = (job.path / "sbatch.sh").string();
    std::cout << "submit it:        sbatch " << script << "\n"
              << "or, interactively: salloc --nodes=" << shape.nodes << " --ntasks-per-node=" << shape.tasks_per_node
              << (shape.gpus_per_node ? " --gpus-per-node=" + std::to_string(shape.gpus_per_node) : "")
              << (shape.partition.empty() ? "" : " --partition=" + shape.partition) << ", then bash " << script << "\n";
    return 0;
  }
  const std::string plan = local_plan_text(verb, p, job.path, shape);
  rt::write_file_atomic(job.path / "plan.txt", plan);
  job.set_state("STAGED", -1);
  std::cout << "run it here:\n" << plan.substr(plan.find("\n", plan.rfind("# job folder")) + 1);
  return 0;
}

// On Slurm, a stage image the plan names as a file must be built before anything is submitted:
// otherwise the job waits its turn in the queue and then fails on the node.
void require_images(Context& ctx, const Target& t, const std::vector<const StagePlan*>& plans) {
  for (const StagePlan* p : plans) {
    const fs::path job = job_root_for(t.profile) / ("<time>-" + job_suffix(*p->stage));
    const SlurmJobPlan plan = slurm_plan_for(t, "run", *p, job, shape_for(ctx, t, *p));
    const std::string& image = plan.script.container.image;
    if (plan.script.use_container && image.starts_with("/") && !fs::exists(image))
      throw UserError(t.profile->file.string() + " [" + t.profile->name + "]: " + p->stage->triple() + " runs in " + image +
                      ", which is not built: nemokit build " + p->stage->image + " --run " + t.profile->name +
                      " (or name an image: container_image in the profile, or run.container_image=...)");
  }
}

int run_stage(Context& ctx, const std::string& verb, const StagePlan& p) {
  if (ctx.args.dry_run) return print_dry_run(ctx, verb, p);
  if (ctx.args.stage) return stage_only(ctx, verb, p);
  Target t = target_of(ctx);
  if (!t.slurm) {
    if (verb == "run") memory_plan_for(p, shape_for(ctx, t, p), true);
    return execute_local(ctx, t, verb, p);
  }
  require_sbatch(t);
  require_images(ctx, t, {&p});
  if (verb == "run") memory_plan_for(p, shape_for(ctx, t, p), false);
  JobDir job = make_job(t, verb, p);
  std::string id = submit(ctx, t, verb, p, job, "");
  if (verb == "run") std::cerr << run_logs_note(wandb_of(ctx), job.path);
  if (t.detached) {
    std::cout << id << "\n";
    return 0;
  }
  return follow_slurm_job(job, id);
}

// The family's stages in the recipes' order: pretrain, then SFT, then RL (substages in the order
// the plugin lists them); a stage whose manifest says "pipe": false stays out (nano3's and
// super3's pipes end with SFT, as the recipes' do).
std::vector<const StageEntry*> family_chain(Context& ctx, const std::string& family) {
  std::vector<const StageEntry*> chain;
  for (const auto& s : ctx.registry().stages())
    if (s.family == family && s.in_pipe) chain.push_back(&s);
  if (chain.empty()) {
    std::vector<std::string> families;
    for (const auto& s : ctx.registry().stages())
      if (s.in_pipe) families.push_back(s.family);
    throw UserError("no plugin serves family \"" + family + "\" (see `nemokit recipes`)" + did_you_mean(family, families));
  }
  auto rank = [](const StageEntry* s) { return s->stage == "pretrain" ? 0 : s->stage == "sft" ? 1 : s->stage == "rl" ? 2 : 3; };
  std::stable_sort(chain.begin(), chain.end(), [&](auto* a, auto* b) { return rank(a) < rank(b); });
  return chain;
}

}  // namespace

int run_task(Context& ctx, const fs::path& job_path) {
  JobDir job = JobDir::open(job_path);
  adopt_task_identity();
  std::string verb = job.meta.value("command", "run");
  uint32_t kind = verb == "data prep" ? NEMOKIT_CALL_DATA_PREP : NEMOKIT_CALL_RUN;
  const StageEntry& s = ctx.registry().stage(job.meta.value("family", ""), job.meta.value("stage", ""), job.meta.value("substage", ""));
  fs::path config_file = job.path / "config.toml";
  toml::table config;
  try {
    config = toml::parse(read_file(config_file), config_file.string());
  } catch (const toml::parse_error& e) {
    throw UserError(config_file.string() + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  // The store the job was submitted with (a Slurm node has no env.toml of its own), and the
  // references a pipe left for now: what the earlier stages' jobs have published by the time
  // this one starts.
  if (auto root = job.meta.value("artifacts_root", std::string()); !root.empty()) setenv("NEMOKIT_ARTIFACTS_ROOT", root.c_str(), 1);
  PipeInputs pipe;
  if (job.meta.contains("pipe_inputs") && job.meta["pipe_inputs"].is_object())
    for (const auto& [name, from] : job.meta["pipe_inputs"].items())
      if (from.is_string()) pipe.published_by[name] = from.get<std::string>();
  try {
    for (const auto& a : resolve_artifact_refs(config, rt::artifacts::Store(rt::artifacts::store_root()), pipe))
      if (a.written != a.value) std::cerr << "nemokit: artifact " << a.key << " = \"" << a.written << "\" -> " << a.ref << ": " << a.value << "\n";
  } catch (const UserError& e) {
    throw UserError(config_file.string() + ": " + e.what());
  }
  std::string config_json = toml_to_json(config).dump();
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
  if (rc != 0) std::cerr << "nemokit " << verb << " " << s.triple() << ": " << (error.empty() ? "failed" : error) << "\n";
  return rc;
}

}  // namespace nemokit::cli

namespace nemokit::cli {

int cmd_run(Context& ctx) {
  StagePlan p = resolve(ctx, ctx.args.positionals, "run FAMILY STAGE [SUBSTAGE] [-c CONFIG] [key=value]...");
  return run_stage(ctx, "run", p);
}

int cmd_data(Context& ctx) {
  auto& w = ctx.args.positionals;
  if (w.empty() || w[0] != "prep") throw UserError("usage: nemokit data prep FAMILY STAGE [SUBSTAGE] [-c CONFIG] [key=value]...");
  std::vector<std::string> rest(w.begin() + 1, w.end());
  StagePlan p = resolve(ctx, rest, "data prep FAMILY STAGE [SUBSTAGE] [-c CONFIG] [key=value]...");
  return run_stage(ctx, "data prep", p);
}

// Each stage after the first starts from the model the stage before published to the artifact
// store (start_from_model; its job resolves the reference when it starts, against the job
// folders in its job.json's pipe_inputs). On Slurm the chain is
// submitted at once, each job waiting for the one before with --dependency=afterok; --run then
// follows the jobs in order, and when one does not succeed names its logs and cancels the jobs
// after it (without kill_invalid_depend, which Slurm does not set by default, they would stay
// pending forever, DependencyNeverSatisfied).
int cmd_pipe(Context& ctx) {
  auto& w = ctx.args.positionals;
  if (w.size() != 1) throw UserError("usage: nemokit pipe FAMILY [-c CONFIG] [--run PROFILE | --batch PROFILE] [--dry-run]");
  std::vector<const StageEntry*> chain = family_chain(ctx, w[0]);
  std::cout << "# pipe " << w[0] << ": ";
  for (size_t i = 0; i < chain.size(); ++i) std::cout << (i ? " -> " : "") << chain[i]->triple();
  std::cout << "\n";
  std::vector<StagePlan> plans;
  std::set<std::string> published;  // by the stages before: resolved when the stage starts
  for (const auto* s : chain) {
    plans.push_back(resolve_stage(ctx, *s, published, plans.empty() ? "" : model_name(plans.back())));
    for (const auto& n : published_names(plans.back())) published.insert(n);
  }
  // Each stage's job folder, once made, for the stages after it (pipe_inputs).
  std::map<std::string, std::string> made;
  auto made_by = [&](const StagePlan& p, const fs::path& job) {
    for (const auto& n : published_names(p)) made[n] = job.string();
  };
  if (ctx.args.dry_run) {
    for (const auto& p : plans) print_dry_run(ctx, "run", p);
    return 0;
  }
  Target t = target_of(ctx);
  if (!t.slurm) {
    // Every stage's model must fit here before the first one starts.
    for (const auto& p : plans) memory_plan_for(p, shape_for(ctx, t, p), true);
    for (auto& p : plans) {
      p.pipe_inputs = made;
      fs::path job;
      int rc = execute_local(ctx, t, "run", p, &job);
      if (rc != 0) return rc;
      made_by(p, job);
    }
    return 0;
  }
  require_sbatch(t);
  std::vector<const StagePlan*> all;
  for (const auto& p : plans) all.push_back(&p);
  require_images(ctx, t, all);
  for (const auto& p : plans) memory_plan_for(p, shape_for(ctx, t, p), false);
  std::vector<std::pair<JobDir, std::string>> submitted;
  std::string after;
  for (auto& p : plans) {
    p.pipe_inputs = made;
    JobDir job = make_job(t, "run", p);
    after = submit(ctx, t, "run", p, job, after);
    std::cerr << run_logs_note(wandb_of(ctx), job.path);
    made_by(p, job.path);
    submitted.emplace_back(job, after);
  }
  if (t.detached) {
    for (const auto& [_, id] : submitted) std::cout << id << "\n";
    return 0;
  }
  for (size_t i = 0; i < submitted.size(); ++i) {
    auto& [job, id] = submitted[i];
    int rc = follow_slurm_job(job, id);
    if (rc == 0) continue;
    const fs::path log = job.logs() / ("slurm-" + id);
    std::cerr << "nemokit: pipe " << w[0] << " stopped at " << plans[i].stage->triple() << " (Slurm job " << id << ", "
              << job.meta.value("state", "?") << ", exit code " << rc << "); its logs: " << log.string() << ".err and "
              << log.string() << ".out\n";
    for (size_t k = i + 1; k < submitted.size(); ++k) {
      auto& [later, later_id] = submitted[k];
      try {
        slurm_cancel(later_id);
      } catch (const std::exception&) {  // Slurm may have ended it already (kill_invalid_depend)
      }
      SlurmJobState st;
      for (int n = 0; n < 50 && !(st = slurm_job_state(later_id)).ended(); ++n) usleep(100 * 1000);
      if (st.ended()) later.set_state(st.state, st.exit_code);
      std::cerr << "nemokit: " << plans[k].stage->triple() << " (Slurm job " << later_id << ") not run: "
                << (st.state.empty() ? "cancel requested" : st.state) << "\n";
    }
    return rc;
  }
  return 0;
}

int cmd_task(Context& ctx) {
  if (ctx.args.raw.size() != 1) throw UserError("usage: nemokit __task JOB_DIR (what each rank of a job runs)");
  return run_task(ctx, ctx.args.raw[0]);
}

}  // namespace nemokit::cli
