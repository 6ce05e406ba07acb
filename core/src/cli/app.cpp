#include "cli/app.hpp"

#include "cli/context.hpp"
#include "cli/help.hpp"
#include "cli/recipe_shapes.hpp"
#include "cli/stage_help.hpp"
#include "util/error.hpp"

#include <algorithm>
#include <iostream>

namespace nemokit::cli {

// The index of the built-in commands: name, summary, usage, options, and the function that runs
// it (one file per group of commands, see core/README.md). Commands plugins add (image, exec, ...)
// are appended at run time from their manifests.
std::vector<CommandSpec> builtin_commands() {
  // One command per entry reads better than one field per line.
  // clang-format off
  return {
      {"run", "Run a stage here or on a cluster: FAMILY STAGE [SUBSTAGE]", "run FAMILY STAGE [SUBSTAGE] [OPTIONS] [key=value]...",
       {}, {}, false, true, "crbds", cmd_run},
      {"data", "Prepare a stage's data: data prep FAMILY STAGE [SUBSTAGE]", "data prep FAMILY STAGE [SUBSTAGE] [OPTIONS] [key=value]...",
       {}, {}, false, true, "crbds", cmd_data},
      {"build", "Build a stage's container image, nemokit-base (from this install), or any Dockerfile into build_cache_dir",
       "build IMAGE | build -f DOCKERFILE [--context DIR] --tag NAME [OPTIONS]",
       {{"-f", "a Dockerfile of your own"}, {"--file", "a Dockerfile of your own"},
        {"--context", "build context (default: the Dockerfile's folder)"}, {"--tag", "image name"},
        {"--build-arg", "K=V for ARG"}, {"--target", "build up to this stage"}, {"--output", "oci-archive:FILE or docker-archive:FILE"},
        {"--secret", "id=ID,src=FILE or id=ID,env=VAR for RUN --mount=type=secret"},
        {"--platform", "linux/amd64 or linux/arm64 (default: this machine's)"}},
       {{"--no-cache", "rebuild every step"}, {"--network=none", "RUN steps without network"}}, false, false, "rbd", cmd_build},
      {"pipe", "Run a family's stages as a chain, each consuming the one before", "pipe FAMILY [OPTIONS] [key=value]...",
       {}, {}, false, true, "crbd", cmd_pipe},
      {"eval", "Evaluate models: perplexity, task and chat accuracy (omni3: images, audio); run FAMILY eval",
       "eval FAMILY [OPTIONS] [key=value]...", {}, {}, false, true, "crbds", cmd_eval},
      {"model", "Models: generate, init, export, import, lora-merge, adapter-export, eval A [B ...] (side by side)",
       "model SUBCOMMAND [ARGS]...", {}, {}, true, false, "", cmd_model},
      {"tokenizer", "Tokenizers: train, encode, decode", "tokenizer SUBCOMMAND [ARGS]...", {}, {}, true, false, "", cmd_tokenizer},
      {"artifacts", "The artifact store: list, show NAME[:VERSION], lineage NAME[:VERSION] [--svg FILE]",
       "artifacts list | show NAME[:VERSION] | lineage NAME[:VERSION] [--svg FILE]", {}, {}, true, false, "", cmd_artifacts},
      {"plugins", "List the plugins found and check them without running their code", "plugins [info NAME]", {}, {}, false, false, "",
       cmd_plugins},
      {"recipes", "Every family/stage/substage with its plugin, image and configs", "recipes", {}, {}, false, false, "", cmd_recipes},
      {"profiles", "The env.toml profiles with their resolved values", "profiles", {}, {}, false, false, "", cmd_profiles},
      {"__complete", "", "__complete WORDS...", {}, {}, true, false, "", cmd_complete},
      {"jobs", "The job folders with their live state (Slurm jobs: squeue/scontrol/sacct)", "jobs", {}, {}, false, false, "", cmd_jobs},
      {"logs", "A job's logs; -f follows them until the job ends", "logs JOB [-f]",
       {}, {{"-f", "follow the logs until the job ends"}, {"--follow", "follow the logs until the job ends"}}, false, false, "", cmd_logs},
      {"cancel", "Cancel a job (scancel for Slurm jobs, SIGTERM to a local run)", "cancel JOB", {}, {}, false, false, "", cmd_cancel},
      {"report", "A job's HTML report: SVG plots of loss, learning rate, grad norm, reward, throughput; its config",
       "report JOB [--out FILE]", {{"--out", "where to write the page (default: report.html in the job folder)"}}, {}, false, false, "",
       cmd_report},
      {"probe", "Submit a tiny job with a profile's shape: one line per task (rank, host, GPUs); with GPUs, NCCL all-reduce bandwidth",
       "probe [--run PROFILE | --batch PROFILE] [--dry-run]", {}, {}, false, false, "rbd", cmd_probe},
      {"__task", "", "__task JOB_DIR", {}, {}, true, false, "", cmd_task},
      {"__probe", "", "__probe", {}, {}, true, false, "", cmd_probe_task},
  };
  // clang-format on
}

int run_app(const std::vector<std::string>& args) {
  // The stage images' ENTRYPOINT is nemokit, so `enroot start IMAGE nemokit run ...` (and `nemokit
  // exec`, or pyxis with the entrypoint on) runs `nemokit nemokit run ...`: a leading word naming
  // the program itself is dropped, as Docker entrypoint scripts do, so both spellings work.
  std::vector<std::string> argv(args.begin() + (!args.empty() && args.front() == "nemokit"), args.end());
  std::vector<CommandSpec> commands = builtin_commands();
  try {
    // Plugin commands are only looked up when the first word is not a built-in one, so that
    // `nemokit --version` and the built-ins never pay for plugin discovery.
    std::optional<PluginRegistry> reg;
    std::string first;
    for (const auto& w : argv)
      if (!w.starts_with("-")) {
        first = w;
        break;
      }
    bool builtin = first.empty() || std::any_of(commands.begin(), commands.end(), [&](auto& c) { return c.name == first; });
    bool wants_listing = first.empty() && std::none_of(argv.begin(), argv.end(), [](auto& w) { return w == "--version"; });
    if (!builtin || wants_listing) {
      reg = PluginRegistry::discover(PluginRegistry::default_search_path());
      for (const auto& p : reg->plugins())
        if (p->ok())
          for (const auto& c : p->manifest.value("commands", nlohmann::json::array()))
            commands.push_back({c.get<std::string>(),
                                "(" + p->name + ") " +
                                    p->manifest.value("command_help", nlohmann::json::object()).value(c.get<std::string>(), ""),
                                c.get<std::string>() + " [ARGS]...",
                                {},
                                {},
                                true,
                                false,
                                "rb"});
      std::vector<std::string> names;
      for (const auto& c : commands) names.push_back(c.name);
      argv = from_recipe_shape(argv, *reg, names);
    }
    ParsedArgs args = parse_args(argv, commands);
    if (args.version) {
      std::cout << "nemokit " << NEMOKIT_VERSION_STRING << " (plugin ABI " << NEMOKIT_ABI_MAJOR << "." << NEMOKIT_ABI_MINOR
                << ")\n";
      return 0;
    }
    const CommandSpec* spec = nullptr;
    for (const auto& c : commands)
      if (c.name == args.command) spec = &c;
    if (!spec) {
      print_main_help(std::cout, commands);
      return args.help ? 0 : 2;
    }
    if (args.help && !spec->raw) {
      print_command_help(std::cout, *spec);
      if (spec->name == "run" || spec->name == "data" || spec->name == "eval") {
        if (spec->name == "eval" && args.positionals.size() == 1) args.positionals.push_back("eval");
        Context ctx(std::move(args));
        print_stage_help(std::cout, ctx);
      }
      return 0;
    }
    Context ctx(std::move(args));
    if (spec->handler) return spec->handler(ctx);
    const PluginFile* provider = ctx.registry().command_provider(spec->name);
    if (!provider) throw UserError("unknown command \"" + spec->name + "\"");
    return cmd_plugin_command(ctx, *provider);
  } catch (const UserError& e) {
    std::cerr << "nemokit: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "nemokit: error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace nemokit::cli
