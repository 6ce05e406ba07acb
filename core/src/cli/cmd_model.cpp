// `nemokit model` and `nemokit tokenizer`.
#include "cli/context.hpp"

#include "nemokit/runtime/model_cli.hpp"
#include "nemokit/runtime/tokenizer.hpp"

namespace nemokit::cli {

// The runtime's own command-line entries; the runtime prints its errors as one line. `model eval`
// is the eval stage's (cmd_eval.cpp).
int cmd_model(Context& ctx) {
  if (!ctx.args.raw.empty() && ctx.args.raw[0] == "eval") return cmd_model_eval(ctx.args.raw);
  return nemokit::rt::model_command(ctx.args.raw);
}

int cmd_tokenizer(Context& ctx) { return nemokit::rt::tokenizer_command(ctx.args.raw); }

}  // namespace nemokit::cli
