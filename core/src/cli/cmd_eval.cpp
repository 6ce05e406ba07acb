// `nemokit eval FAMILY` and `nemokit model eval A [B ...]`: the eval stage (plugins/stage_eval)
// run as any stage is, so --run/--batch/--dry-run/--stage and the job folder work as for training.
// `model eval` names the models on the command line: they become the config's model.checkpoints.
#include "cli/app.hpp"
#include "cli/context.hpp"
#include "util/error.hpp"

#include <toml++/toml.h>

#include <iostream>
#include <sstream>

namespace nemokit::cli {

int cmd_eval(Context& ctx) {
  auto& w = ctx.args.positionals;
  if (w.size() != 1) throw UserError("usage: nemokit eval FAMILY [-c CONFIG] [--run PROFILE | --batch PROFILE] [--dry-run] [key=value]...");
  w.insert(w.begin() + 1, "eval");
  return cmd_run(ctx);
}

namespace {

const char* const kModelEvalUsage =
    "usage: nemokit model eval MODEL [MODEL...] [--family FAMILY] [-c CONFIG] [--run PROFILE | --batch PROFILE] [--dry-run] [key=value]...\n"
    "  MODEL: a model or checkpoint folder (its newest checkpoint), NAME:latest or NAME:vN from the artifact store,\n"
    "  or stage:FAMILY/STAGE; the models are measured side by side with FAMILY's eval config (default nano3;\n"
    "  `nemokit eval FAMILY --help` lists its configs and keys).\n";

}  // namespace

// `model eval A B --family omni3 -c tiny k=v` -> `eval omni3 -c tiny k=v model.checkpoints=["A", "B"]`.
int cmd_model_eval(const std::vector<std::string>& raw) {
  std::vector<std::string> passed, models;
  std::string family = "nano3";
  for (size_t i = 1; i < raw.size(); ++i) {
    const std::string& a = raw[i];
    if (a == "-h" || a == "--help") {
      std::cout << kModelEvalUsage;
      return 0;
    }
    if (a == "--family") {
      if (i + 1 == raw.size()) throw UserError("--family needs a value (nano3, super3, omni3)");
      family = raw[++i];
    } else if (a == "-c" || a == "--config" || a == "-r" || a == "--run" || a == "-b" || a == "--batch") {
      passed.push_back(a);
      if (i + 1 < raw.size()) passed.push_back(raw[++i]);
    } else if (a.starts_with("-") || a.find('=') != std::string::npos) {
      passed.push_back(a);
    } else {
      models.push_back(a);
    }
  }
  if (models.empty()) throw UserError("model eval: name at least one model (nemokit model eval --help)");
  toml::array list;
  for (const auto& m : models) list.push_back(m);
  std::ostringstream value;
  value << list;
  std::vector<std::string> argv = {"eval", family};
  argv.insert(argv.end(), passed.begin(), passed.end());
  argv.push_back("model.checkpoints=" + value.str());
  return run_app(argv);
}

}  // namespace nemokit::cli
