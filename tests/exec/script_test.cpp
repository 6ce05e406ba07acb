// The sbatch script and its parts: quoting that holds against a real bash, the #SBATCH lines and
// the pyxis srun line of a 2-node 8-GPU profile, secrets kept out of the script, job shape
// precedence.
#include "exec/job_shape.hpp"
#include "exec/process.hpp"
#include "exec/sbatch_script.hpp"
#include "exec/shell_quote.hpp"
#include "exec/slurm_plan.hpp"
#include "exec/slurm_submit.hpp"
#include "nemokit_process.hpp"
#include "util/error.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <sstream>

namespace nemokit {
namespace fs = std::filesystem;
using test::fresh_dir;
using test::read_file;
using test::write_file;

namespace {

const std::vector<std::string> kNasty = {
    "plain", "two words", "it's", "\"double\"", "$(touch MARK)", "`touch MARK`", "a\nb; touch MARK", "${HOME}",
    "\\backslash\\", "*", "'; touch MARK; '", "", "ends with \\", "tab\there", "!event", "semi;colon|pipe&amp"};

ProfileSet load_profiles(const fs::path& dir, const std::string& text) {
  write_file(dir / "env.toml", text);
  return ProfileSet::load(dir / "env.toml");
}

}  // namespace

TEST(exec_shell_quote, bash_reads_back_exactly_and_runs_nothing) {
  fs::path dir = fresh_dir("shell_quote");
  for (const auto& s : kNasty) {
    std::string script = "cd " + shell_quote(dir.string()) + " && printf %s " + shell_quote(s);
    CommandResult r = run_command({"bash", "-c", script});
    EXPECT_EQ(r.exit_code, 0) << s;
    EXPECT_EQ(r.out, s);
  }
  EXPECT_FALSE(fs::exists(dir / "MARK"));
}

TEST(exec_shell_quote, sbatch_values_escape_quotes_and_refuse_newlines) {
  EXPECT_EQ(sbatch_quote("a b", "k"), "\"a b\"");
  EXPECT_EQ(sbatch_quote("say \"hi\" \\o/", "k"), "\"say \\\"hi\\\" \\\\o/\"");
  try {
    sbatch_quote("name\n#SBATCH --wrap=x", "run.job_name");
    FAIL() << "a newline was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("run.job_name"), std::string::npos);
  }
  EXPECT_EQ(comment_safe("a\nb\rc"), "a?b?c");
  EXPECT_TRUE(is_env_name("HF_TOKEN"));
  EXPECT_FALSE(is_env_name("1X"));
  EXPECT_FALSE(is_env_name("A B"));
  EXPECT_FALSE(is_env_name("A=$(x)"));
}

TEST(exec_job_shape, override_beats_profile_beats_config) {
  fs::path dir = fresh_dir("shape");
  ProfileSet set = load_profiles(dir, R"([c]
executor = "slurm"
nodes = 2
gpus_per_node = 8
partition = "gpu"
run_partition = "interactive"
batch_partition = "long"
time = "02:00:00"
)");
  toml::table cfg = toml::parse("[run]\nnodes = 64\ngpus_per_node = 4\ntime = \"04:00:00\"\nmem = \"100G\"\n");
  const Profile& p = set.get("c");
  JobShape a = resolve_job_shape(&p, cfg, {}, false, "job");
  EXPECT_EQ(a.nodes, 2);           // profile over config
  EXPECT_EQ(a.gpus_per_node, 8);
  EXPECT_EQ(a.tasks_per_node, 8);  // one task per GPU
  EXPECT_EQ(a.time, "02:00:00");
  EXPECT_EQ(a.mem, "100G");        // only the config has it
  EXPECT_EQ(a.partition, "interactive");
  EXPECT_EQ(a.job_name, "job");
  EXPECT_EQ(a.world_size(), 16);
  JobShape b = resolve_job_shape(&p, cfg, overridden_run_keys({"run.nodes=64", "+run.job_name=x"}), true, "job");
  EXPECT_EQ(b.nodes, 64);          // the command line over the profile
  EXPECT_EQ(b.partition, "long");
  JobShape local = resolve_job_shape(nullptr, toml::parse("[run]\nnproc_per_node = 3\n"), {}, false, "j");
  EXPECT_EQ(local.tasks_per_node, 3);
  // Local ranks: a recipe's 8 GPUs per node shrink to what this machine has; explicit counts stand.
  toml::table eight = toml::parse("[run]\nnodes = 8\ngpus_per_node = 8\n");
  EXPECT_EQ(local_rank_count(nullptr, eight, {}, 2), 2);
  EXPECT_EQ(local_rank_count(nullptr, eight, {}, 0), 1);
  EXPECT_EQ(local_rank_count(nullptr, eight, {"gpus_per_node"}, 2), 8);
  EXPECT_EQ(local_rank_count(nullptr, toml::parse("[run]\nnproc_per_node = 3\n"), {}, 0), 3);
  EXPECT_EQ(local_rank_count(&p, eight, {}, 1), 8);  // the profile says 8 GPUs per node
  // run.time=04:30:00 on the command line is a TOML time of day: it still means a limit.
  EXPECT_EQ(resolve_job_shape(nullptr, toml::parse("[run]\ntime = 04:30:00\n"), {}, false, "j").time, "04:30:00");
  EXPECT_THROW(resolve_job_shape(nullptr, toml::parse("[run]\ntime = 4\n"), {}, false, "j"), UserError);
  EXPECT_THROW(resolve_job_shape(nullptr, toml::parse("[run]\nnodes = \"two\"\n"), {}, false, "j"), UserError);
  EXPECT_THROW(resolve_job_shape(nullptr, toml::parse("[run]\nnodes = 0\n"), {}, false, "j"), UserError);
  // srun's --mpi plugin is one word: anything else would reach the srun line.
  EXPECT_EQ(resolve_job_shape(nullptr, toml::parse("[run]\nmpi = \"pmix\"\n"), {}, false, "j").mpi, "pmix");
  EXPECT_THROW(resolve_job_shape(nullptr, toml::parse("[run]\nmpi = \"pmix --x\"\n"), {}, false, "j"), UserError);
}

TEST(exec_sbatch_script, pyxis_plan_of_a_two_node_eight_gpu_profile) {
  fs::path dir = fresh_dir("pyxis_plan");
  ProfileSet set = load_profiles(dir, R"([big]
executor = "slurm"
account = "llm"
partition = "batch"
nodes = 2
gpus_per_node = 8
cpus_per_task = 12
mem = "0"
time = "04:00:00"
exclusive = true
build_cache_dir = "cache"
mounts = ["/lustre/data:/data"]
env_vars = {WANDB_API_KEY = "sk-secret-value", NCCL_DEBUG = "WARN"}
setup_lines = ["module load cuda"]
)");
  const Profile& p = set.get("big");
  SlurmJobRequest req;
  req.profile = &p;
  req.shape = resolve_job_shape(&p, toml::table{}, {}, false, "nemokit-nano3-sft");
  req.job_dir = dir / "jobs" / "J1";
  req.title = "nemokit run nano3 sft";
  req.image = "nano3-sft";
  req.task_args = {"__task", req.job_dir.string()};
  SlurmJobPlan plan = plan_slurm_job(req);
  std::string s = render_sbatch_script(plan.script);
  for (const char* line : {"#SBATCH --job-name=\"nemokit-nano3-sft\"\n", "#SBATCH --account=\"llm\"\n", "#SBATCH --partition=\"batch\"\n",
                           "#SBATCH --nodes=2\n", "#SBATCH --ntasks-per-node=8\n", "#SBATCH --gpus-per-node=8\n",
                           "#SBATCH --cpus-per-task=12\n", "#SBATCH --mem=\"0\"\n", "#SBATCH --time=\"04:00:00\"\n",
                           "#SBATCH --exclusive\n", "#SBATCH --open-mode=append\n", "#SBATCH --requeue\n", "#SBATCH --signal=B:USR1@120\n"})
    EXPECT_NE(s.find(line), std::string::npos) << line << "\n" << s;
  EXPECT_NE(s.find("#SBATCH --output=\"" + (req.job_dir / "logs").string() + "/slurm-%j.out\""), std::string::npos);
  EXPECT_NE(s.find("#SBATCH --error=\"" + (req.job_dir / "logs").string() + "/slurm-%j.err\""), std::string::npos);
  // The image is an absolute path under build_cache_dir: pyxis reads only / or . paths as files.
  std::string image = (fs::absolute("cache") / "containers" / "nano3-sft.sqsh").string();
  EXPECT_NE(s.find("--container-image='" + image + "'"), std::string::npos) << s;
  EXPECT_NE(s.find("--container-mounts='/lustre/data:/data," + (dir / "jobs").string() + ":" + (dir / "jobs").string() + "'"), std::string::npos);
  EXPECT_NE(s.find("--container-workdir='" + req.job_dir.string() + "'"), std::string::npos);
  EXPECT_NE(s.find("--no-container-mount-home"), std::string::npos);
  EXPECT_NE(s.find("--container-env='MASTER_ADDR,MASTER_PORT,"), std::string::npos);
  EXPECT_NE(s.find("WANDB_API_KEY"), std::string::npos);  // the name is listed for pyxis ...
  EXPECT_EQ(s.find("sk-secret-value"), std::string::npos);  // ... the value never
  EXPECT_NE(s.find("'nemokit' \\\n    '__task'"), std::string::npos);
  EXPECT_NE(s.find("srun \\\n    --nodes=2 \\\n    --ntasks-per-node=8"), std::string::npos);
  EXPECT_EQ(s.find("--mpi="), std::string::npos) << "no mpi key: the cluster's MpiDefault";
  EXPECT_NE(s.find("export NCCL_DEBUG='WARN'"), std::string::npos);
  EXPECT_NE(s.find("\nmodule load cuda\n"), std::string::npos);
  EXPECT_EQ(plan.secrets.at("WANDB_API_KEY"), "sk-secret-value");
  EXPECT_NE(render_secrets_file(plan.secrets).find("export WANDB_API_KEY='sk-secret-value'"), std::string::npos);
  // The script is valid bash.
  write_file(dir / "s.sh", s);
  EXPECT_EQ(run_command({"bash", "-n", (dir / "s.sh").string()}).exit_code, 0);
}

TEST(exec_sbatch_script, container_none_runs_this_binary_and_bad_values_are_refused) {
  fs::path dir = fresh_dir("plain_plan");
  ProfileSet set = load_profiles(dir, R"([p]
executor = "slurm"
container = "none"
[bad]
executor = "slurm"
container = "docker"
[comma]
executor = "slurm"
container_image = "/x.sqsh"
mounts = ["/a:/a,/etc:/etc"]
[badenv]
executor = "slurm"
container = "none"
env_vars = {"A B" = "1"}
)");
  SlurmJobRequest req;
  req.shape = JobShape{};
  req.job_dir = dir / "J";
  req.task_args = {"__task", req.job_dir.string()};
  req.profile = &set.get("p");
  std::string s = render_sbatch_script(plan_slurm_job(req).script);
  EXPECT_EQ(s.find("--container"), std::string::npos);
  EXPECT_NE(s.find(shell_quote(self_executable().string())), std::string::npos);
  req.profile = &set.get("bad");
  EXPECT_THROW(plan_slurm_job(req), UserError);
  req.profile = &set.get("comma");
  EXPECT_THROW(render_sbatch_script(plan_slurm_job(req).script), UserError);
  req.profile = &set.get("badenv");
  EXPECT_THROW(render_sbatch_script(plan_slurm_job(req).script), UserError);
  req.profile = &set.get("p");
  req.shape.job_name = "x\nrm -rf /";
  EXPECT_THROW(render_sbatch_script(plan_slurm_job(req).script), UserError);
}

// Values aimed at the sbatch script, in every place a config, profile or path reaches it (job
// name, account, partition, mem, time, the job folder, the image, mounts, environment values): the
// script runs under a real bash (srun and scontrol replaced by recorders) and nothing they hold is
// run; srun gets each value as one exact word; every #SBATCH line reads back as the value; a
// newline, which would end the #SBATCH line and start a command, is refused naming the key.
TEST(exec_sbatch_script, hostile_values_are_quoted_into_the_script_and_run_nothing) {
  fs::path dir = fresh_dir("hostile_script");
  const std::string nasty = "x $(touch MARK) `touch MARK` 'q' \"dq\" ; touch MARK \\ & %j";
  auto toml_string = [](const std::string& v) {
    std::string out = "\"";
    for (char c : v) out += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
    return out + "\"";
  };
  const std::string image = (dir / ("img " + std::string("$(touch MARK)") + ".sqsh")).string();
  const std::string mount = "/data $(touch MARK) 'q':/data";
  ProfileSet set = load_profiles(dir, "[p]\nexecutor = \"slurm\"\naccount = " + toml_string(nasty) +
                                          "\npartition = " + toml_string(nasty) + "\nmem = " + toml_string(nasty) +
                                          "\ntime = " + toml_string(nasty) + "\ncontainer_image = " + toml_string(image) +
                                          "\nmounts = [" + toml_string(mount) + "]\nenv_vars = {NASTY = " + toml_string(nasty) + "}\n");
  SlurmJobRequest req;
  req.profile = &set.get("p");
  req.shape = resolve_job_shape(req.profile, toml::table{}, {}, false, nasty);
  req.job_dir = dir / "jobs $(touch MARK) `touch MARK` it's \"q\"" / "J1";
  fs::create_directories(req.job_dir);
  req.title = nasty;
  req.task_args = {"__task", req.job_dir.string(), nasty};
  const std::string script = render_sbatch_script(plan_slurm_job(req).script);

  // Every #SBATCH line holds one value, quoted as Slurm reads it back.
  std::istringstream lines(script);
  std::map<std::string, std::string> sbatch;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("#SBATCH --", 0) != 0 || line.find('=') == std::string::npos) continue;
    const std::string key = line.substr(10, line.find('=') - 10), quoted = line.substr(line.find('=') + 1);
    if (quoted.empty() || quoted[0] != '"') continue;
    std::string value;
    for (size_t i = 1; i + 1 < quoted.size(); ++i) value += quoted[i] == '\\' ? quoted[++i] : quoted[i];
    EXPECT_EQ(quoted.back(), '"') << line;
    sbatch[key] = value;
  }
  for (const char* key : {"job-name", "account", "partition", "mem", "time"}) EXPECT_EQ(sbatch[key], nasty) << key;
  EXPECT_EQ(sbatch["output"], (req.job_dir / "logs").string() + "/slurm-%j.out");

  // The script under bash: srun records its words and two environment values, one per line.
  const fs::path bin = dir / "bin";
  write_file(bin / "srun", "#!/bin/bash\nprintf '%s\\n' \"$@\" > \"$RECORD\"\nprintf '%s\\n' \"$NASTY\" \"$NEMOKIT_JOB_DIR\" >> \"$RECORD\"\n");
  write_file(bin / "scontrol", "#!/bin/bash\necho node1\n");
  for (const char* tool : {"srun", "scontrol"}) fs::permissions(bin / tool, fs::perms(0755));
  write_file(dir / "job.sh", script);
  const fs::path record = dir / "srun-words.txt";
  const std::string cmd = "cd " + shell_quote(dir.string()) + " && PATH=" + shell_quote(bin.string()) +
                          ":\"$PATH\" RECORD=" + shell_quote(record.string()) +
                          " SLURM_JOB_ID=7 SLURM_JOB_NODELIST=node1 bash job.sh";
  CommandResult r = run_command({"bash", "-c", cmd});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(dir / "MARK")) << "a value ran as a command";
  EXPECT_FALSE(fs::exists(req.job_dir / "MARK"));
  std::vector<std::string> words;
  std::istringstream rec(read_file(record));
  for (std::string w; std::getline(rec, w);) words.push_back(w);
  auto has = [&](const std::string& w) { return std::find(words.begin(), words.end(), w) != words.end(); };
  EXPECT_TRUE(has("--container-image=" + image)) << read_file(record);
  EXPECT_TRUE(has(nasty)) << "the task's argument";
  EXPECT_TRUE(has(req.job_dir.string()));
  ASSERT_GE(words.size(), 2u);
  EXPECT_EQ(words[words.size() - 2], nasty) << "env_vars value";
  EXPECT_EQ(words.back(), req.job_dir.string()) << "NEMOKIT_JOB_DIR";
  bool mounted = false;
  for (const auto& w : words) mounted |= w.rfind("--container-mounts=" + mount + ",", 0) == 0;
  EXPECT_TRUE(mounted) << read_file(record);

  // A newline in any #SBATCH value is refused, naming the key.
  for (auto [field, key] : std::vector<std::pair<std::string JobShape::*, std::string>>{
           {&JobShape::job_name, "run.job_name"}, {&JobShape::account, "account"}, {&JobShape::partition, "partition"},
           {&JobShape::time, "time"}}) {
    SlurmJobRequest bad = req;
    bad.shape.*field = "ok\n#SBATCH --wrap=touch MARK";
    try {
      render_sbatch_script(plan_slurm_job(bad).script);
      ADD_FAILURE() << key << ": a newline was accepted";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
}

TEST(exec_sbatch_script, build_job_is_one_cpu_task_on_the_build_partition) {
  fs::path dir = fresh_dir("build_plan");
  ProfileSet set = load_profiles(dir, R"([c]
executor = "slurm"
partition = "gpu"
build_partition = "cpu"
build_time = "01:30:00"
time = "04:00:00"
nodes = 4
gpus_per_node = 8
container_image = "/images/stage.sqsh"
)");
  SlurmJobPlan plan = plan_build_job(set.get("c"), dir / "J", "nano3-sft", {"build", "nano3-sft"});
  std::string s = render_sbatch_script(plan.script);
  EXPECT_NE(s.find("#SBATCH --partition=\"cpu\"\n"), std::string::npos) << s;
  EXPECT_NE(s.find("#SBATCH --time=\"01:30:00\"\n"), std::string::npos);
  EXPECT_NE(s.find("#SBATCH --nodes=1\n#SBATCH --ntasks-per-node=1\n"), std::string::npos);
  EXPECT_EQ(s.find("--gpus-per-node"), std::string::npos);
  EXPECT_EQ(s.find("--container-image"), std::string::npos);
  EXPECT_NE(s.find(shell_quote(self_executable().string()) + " \\\n    'build' \\\n    'nano3-sft'"), std::string::npos) << s;
  // The node builds into the profile's cache folder (here the default, as the profile names none).
  EXPECT_EQ(plan.script.env.at("NEMOKIT_BUILD_CACHE_DIR"), build_cache_dir_for(&set.get("c")).string());
  ProfileSet cached = load_profiles(dir, "[c]\nexecutor = \"slurm\"\nbuild_cache_dir = \"/shared/cache\"\n");
  SlurmJobPlan to_cache = plan_build_job(cached.get("c"), dir / "J", "nano3-sft", {"build", "nano3-sft"});
  EXPECT_NE(render_sbatch_script(to_cache.script).find("NEMOKIT_BUILD_CACHE_DIR='/shared/cache'"), std::string::npos)
      << render_sbatch_script(to_cache.script);
}

// The one rule for the build cache folder, which the core (plans, build requests) and the builder
// plugin (`nemokit image`, `nemokit exec`) both follow: the profile's, else the environment's,
// else ~/.cache/nemokit; "~" in a profile's value is the home folder; always absolute.
TEST(exec_build_cache_dir, profile_then_environment_then_home) {
  fs::path dir = fresh_dir("build_cache_dir");
  ProfileSet set = load_profiles(dir, "[rel]\nbuild_cache_dir = \"cache\"\n[home]\nbuild_cache_dir = \"~/images\"\n[none]\nnodes = 1\n");
  const char* home = std::getenv("HOME");
  ASSERT_NE(home, nullptr);
  const char* given = std::getenv("NEMOKIT_BUILD_CACHE_DIR");
  const std::string saved = given ? given : "";
  EXPECT_EQ(build_cache_dir_for(&set.get("rel")), fs::absolute("cache"));
  EXPECT_EQ(build_cache_dir_for(&set.get("home")), fs::path(home) / "images");
  ::setenv("NEMOKIT_BUILD_CACHE_DIR", "env-cache", 1);
  EXPECT_EQ(build_cache_dir_for(&set.get("none")), fs::absolute("env-cache"));
  EXPECT_EQ(build_cache_dir_for(nullptr), fs::absolute("env-cache"));
  EXPECT_EQ(build_cache_dir_for(&set.get("rel")), fs::absolute("cache"));
  ::unsetenv("NEMOKIT_BUILD_CACHE_DIR");
  EXPECT_EQ(build_cache_dir_for(nullptr), fs::path(home) / ".cache" / "nemokit");
  if (given) ::setenv("NEMOKIT_BUILD_CACHE_DIR", saved.c_str(), 1);
}

}  // namespace nemokit
