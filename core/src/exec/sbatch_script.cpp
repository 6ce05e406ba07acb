#include "exec/sbatch_script.hpp"

#include "exec/shell_quote.hpp"
#include "util/error.hpp"

#include <sstream>

namespace nemokit {

namespace {

void sbatch_line(std::ostringstream& o, const std::string& option, const std::string& value, const std::string& key) {
  if (!value.empty()) o << "#SBATCH --" << option << "=" << sbatch_quote(value, key) << "\n";
}

void check_env_name(const std::string& name) {
  if (!is_env_name(name))
    throw UserError("env_vars: \"" + comment_safe(name) + "\" is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string srun_line(const SlurmScript& s) {
  std::vector<std::string> words = {"srun",
                                    "--nodes=" + std::to_string(s.shape.nodes),
                                    "--ntasks-per-node=" + std::to_string(s.shape.tasks_per_node),
                                    "--kill-on-bad-exit=1",
                                    "--wait=60"};
  if (!s.shape.mpi.empty()) words.push_back("--mpi=" + s.shape.mpi);
  if (s.use_container) {
    const PyxisContainer& c = s.container;
    if (c.image.empty()) throw UserError("container_image: the pyxis container needs an image");
    words.push_back("--container-image=" + shell_quote(c.image));
    std::vector<std::string> mounts = c.mounts;
    for (const auto& m : mounts)
      if (m.find(',') != std::string::npos)
        throw UserError("mounts: \"" + comment_safe(m) + "\" holds a comma, which pyxis reads as a separator between mounts");
    if (!mounts.empty()) words.push_back("--container-mounts=" + shell_quote(join(mounts, ",")));
    if (!c.workdir.empty()) words.push_back("--container-workdir=" + shell_quote(c.workdir));
    words.push_back("--no-container-mount-home");
    std::vector<std::string> names = nemokit_task_env_names();
    for (const auto& [k, _] : s.env) names.push_back(k);
    names.insert(names.end(), s.secret_names.begin(), s.secret_names.end());
    words.push_back("--container-env=" + shell_quote(join(names, ",")));
  }
  for (const auto& a : s.task_argv) words.push_back(shell_quote(a));
  std::string line;
  for (size_t i = 0; i < words.size(); ++i) line += (i == 0 ? "" : " \\\n    ") + words[i];
  return line;
}

}  // namespace

std::vector<std::string> nemokit_task_env_names() {
  return {"MASTER_ADDR", "MASTER_PORT", "NEMOKIT_JOB_DIR", "NEMOKIT_RESTART_COUNT", "NEMOKIT_RESUMED", "NEMOKIT_PREEMPT_SIGNAL"};
}

std::string render_secrets_file(const std::map<std::string, std::string>& secrets) {
  std::string out = "# secrets for this job: read by its sbatch script, never printed\n";
  for (const auto& [k, v] : secrets) {
    check_env_name(k);
    out += "export " + k + "=" + shell_quote(v) + "\n";
  }
  return out;
}

std::string render_sbatch_script(const SlurmScript& s) {
  const JobShape& sh = s.shape;
  // Slurm expands %j, %x, ... in file names: a literal % in the folder is written %%.
  std::string logs;
  for (char c : (s.job_dir / "logs").string()) logs += c == '%' ? std::string("%%") : std::string(1, c);
  std::ostringstream o;
  o << "#!/bin/bash\n";
  sbatch_line(o, "job-name", sh.job_name, "run.job_name");
  sbatch_line(o, "account", sh.account, "account");
  sbatch_line(o, "partition", sh.partition, "partition");
  o << "#SBATCH --nodes=" << sh.nodes << "\n";
  o << "#SBATCH --ntasks-per-node=" << sh.tasks_per_node << "\n";
  if (sh.gpus_per_node > 0) o << "#SBATCH --gpus-per-node=" << sh.gpus_per_node << "\n";
  if (sh.cpus_per_task > 0) o << "#SBATCH --cpus-per-task=" << sh.cpus_per_task << "\n";
  sbatch_line(o, "mem", sh.mem, "mem");
  sbatch_line(o, "time", sh.time, "time");
  if (sh.exclusive) o << "#SBATCH --exclusive\n";
  sbatch_line(o, "output", logs + "/slurm-%j.out", "job_root");
  sbatch_line(o, "error", logs + "/slurm-%j.err", "job_root");
  o << "#SBATCH --open-mode=append\n";
  o << "#SBATCH --requeue\n";
  o << "#SBATCH --signal=B:USR1@" << sh.signal_seconds << "\n";
  o << "#\n# " << comment_safe(s.title) << "\n# job folder: " << comment_safe(s.job_dir.string()) << "\n";
  o << "set -uo pipefail\n\n";
  if (!s.setup_lines.empty()) {
    o << "# setup_lines (profile)\n";
    for (const auto& l : s.setup_lines) o << l << "\n";
    o << "\n";
  }
  o << "export NEMOKIT_JOB_DIR=" << shell_quote(s.job_dir.string()) << "\n"
    << "export NEMOKIT_RESTART_COUNT=\"${SLURM_RESTART_COUNT:-0}\"\n"
    << "if [ \"$NEMOKIT_RESTART_COUNT\" -gt 0 ]; then export NEMOKIT_RESUMED=1; else export NEMOKIT_RESUMED=0; fi\n"
    << "export NEMOKIT_PREEMPT_SIGNAL=USR1\n"
    << "# rendezvous: the first host of the node list, by its address (node names need not resolve)\n"
    << "first_host=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)\n"
    << "node_addr=$(scontrol show node \"$first_host\" 2>/dev/null | sed -n 's/.*NodeAddr=\\([^ ]*\\).*/\\1/p' | head -n 1)\n"
    << "export MASTER_ADDR=\"${node_addr:-$first_host}\"\n"
    << "export MASTER_PORT=$((20000 + SLURM_JOB_ID % 20000))\n";
  for (const auto& [k, v] : s.env) {
    check_env_name(k);
    o << "export " << k << "=" << shell_quote(v) << "\n";
  }
  if (!s.secret_names.empty()) {
    for (const auto& k : s.secret_names) check_env_name(k);
    o << ". " << shell_quote((s.job_dir / "secrets.env").string()) << "\n";
  }
  o << "\necho \"nemokit: job $SLURM_JOB_ID (restart $NEMOKIT_RESTART_COUNT) on $SLURM_JOB_NODELIST, rendezvous $MASTER_ADDR:$MASTER_PORT\" >&2\n\n"
    << "# Near the time limit Slurm sends USR1 to this script: pass it to the tasks (the stage\n"
    << "# checkpoints and exits), then requeue; the stage resumes with NEMOKIT_RESUMED=1.\n"
    << "preempted=0\n"
    << "step=\n"
    << "ask_checkpoint() {\n"
    << "  preempted=1\n"
    << "  echo \"nemokit: time limit near: asking the stage to checkpoint\" >&2\n"
    << "  kill -USR1 \"$step\" 2>/dev/null\n"
    << "}\n"
    << "trap ask_checkpoint USR1\n\n"
    << srun_line(s) << " &\n"
    << "step=$!\n"
    << "while :; do\n"
    << "  wait \"$step\"; rc=$?\n"
    << "  # a trapped signal interrupts wait (128+N) while the step still runs\n"
    << "  if [ \"$rc\" -gt 128 ] && kill -0 \"$step\" 2>/dev/null; then continue; fi\n"
    << "  break\n"
    << "done\n"
    << "if [ \"$preempted\" = 1 ]; then\n"
    << "  echo \"nemokit: requeueing job $SLURM_JOB_ID; the stage resumes from its checkpoint\" >&2\n"
    << "  scontrol requeue \"$SLURM_JOB_ID\" && sleep 300\n"
    << "fi\n"
    << "exit \"$rc\"\n";
  return o.str();
}

}  // namespace nemokit
