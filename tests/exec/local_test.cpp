// The local executor through the nemokit binary: one rank in process, several as processes with
// their own RANK, exit codes, Ctrl-C, job folders, `jobs` and `logs`; and the --dry-run plan of a
// 2-node 8-GPU Slurm profile.
#include "exec/local_ranks.hpp"
#include "nemokit_process.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace nemokit {
namespace fs = std::filesystem;
using namespace test;

namespace {

std::map<std::string, std::string> test_env(const fs::path& dir) {
  return {{"NEMOKIT_PLUGIN_PATH", EXEC_TEST_PLUGIN_DIR}, {"NEMOKIT_ENV", (dir / "env.toml").string()}, {"NEMOKIT_JOB_ROOT", ""}};
}

fs::path only_job(const fs::path& dir) {
  std::vector<fs::path> jobs;
  for (const auto& e : fs::directory_iterator(dir / ".nemokit" / "jobs")) jobs.push_back(e.path());
  EXPECT_EQ(jobs.size(), 1u);
  return jobs.empty() ? fs::path() : jobs[0];
}

nlohmann::json job_json(const fs::path& job) { return nlohmann::json::parse(read_file(job / "job.json")); }

// Processes whose command line mentions `needle` (the ranks of a job name its folder).
int processes_mentioning(const std::string& needle) {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string cmd = read_file(e.path() / "cmdline");
    if (cmd.find(needle) != std::string::npos) ++n;
  }
  return n;
}

}  // namespace

TEST(exec_local, one_rank_runs_in_process_and_logs_to_the_job_folder) {
  fs::path dir = fresh_dir("local_one");
  write_file(dir / "env.toml", "");
  RunResult r = run_nemokit({"run", "exectest", "echo", "echo.lines=[\"first line\", \"second line\"]"}, dir, test_env(dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("exectest rank /"), std::string::npos) << r.out;  // no RANK: in this process
  EXPECT_NE(r.out.find("second line"), std::string::npos);
  fs::path job = only_job(dir);
  EXPECT_NE(read_file(job / "logs" / "rank-0.log").find("second line"), std::string::npos);
  EXPECT_NE(read_file(job / "config.toml").find("first line"), std::string::npos);
  EXPECT_NE(read_file(job / "plan.txt").find("1 rank, in this process"), std::string::npos);
  nlohmann::json j = job_json(job);
  EXPECT_EQ(j["state"], "COMPLETED");
  EXPECT_EQ(j["exit_code"], 0);
  EXPECT_EQ(j["executor"], "local");

  RunResult jobs = run_nemokit({"jobs"}, dir, test_env(dir));
  EXPECT_EQ(jobs.exit_code, 0);
  EXPECT_NE(jobs.out.find(job.filename().string()), std::string::npos);
  EXPECT_NE(jobs.out.find("COMPLETED"), std::string::npos);
  RunResult logs = run_nemokit({"logs", job.filename().string()}, dir, test_env(dir));
  EXPECT_EQ(logs.exit_code, 0);
  EXPECT_NE(logs.out.find("second line"), std::string::npos);
}

TEST(exec_local, several_ranks_get_their_own_rank_and_logs) {
  fs::path dir = fresh_dir("local_two");
  write_file(dir / "env.toml", "");
  RunResult r = run_nemokit({"run", "exectest", "echo", "+run.nproc_per_node=2"}, dir, test_env(dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[0] exectest rank 0/2 local 0 master 127.0.0.1:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[1] exectest rank 1/2 local 1 master 127.0.0.1:"), std::string::npos) << r.out;
  fs::path job = only_job(dir);
  EXPECT_NE(read_file(job / "logs" / "rank-1.log").find("exectest rank 1/2"), std::string::npos);
  EXPECT_TRUE(fs::exists(job / "echo-rank-0.txt"));
  EXPECT_TRUE(fs::exists(job / "echo-rank-1.txt"));
  EXPECT_EQ(job_json(job)["state"], "COMPLETED");
}

TEST(exec_local, exit_code_of_a_failing_stage_is_returned) {
  fs::path dir = fresh_dir("local_fail");
  write_file(dir / "env.toml", "[two]\nnproc_per_node = 2\n");
  RunResult one = run_nemokit({"run", "exectest", "echo", "echo.exit_code=7"}, dir, test_env(dir));
  EXPECT_EQ(one.exit_code, 7) << one.err;
  RunResult two = run_nemokit({"run", "exectest", "echo", "echo.exit_code=5", "--run", "two"}, dir, test_env(dir));
  EXPECT_EQ(two.exit_code, 5) << two.err;
  EXPECT_NE(two.err.find("exiting with code 5"), std::string::npos) << two.err;
}

TEST(exec_local, sigint_stops_every_rank) {
  fs::path dir = fresh_dir("local_sigint");
  write_file(dir / "env.toml", "");
  Process p(nemokit_argv({"run", "exectest", "echo", "+run.nproc_per_node=2", "echo.sleep_ms=60000"}), {dir, test_env(dir)});
  ASSERT_TRUE(p.wait_for_output([](const std::string& s) {
    return s.find("rank 0/2") != std::string::npos && s.find("rank 1/2") != std::string::npos;
  }, 30)) << p.err_so_far();
  fs::path job = only_job(dir);
  // The two ranks, and mpirun when it started them (the local executor's launcher where installed).
  EXPECT_EQ(processes_mentioning(job.string()), mpi_launcher().empty() ? 2 : 3);
  kill(p.pid(), SIGINT);
  RunResult r = p.wait(15);
  EXPECT_EQ(r.exit_code, 130) << r.err;
  EXPECT_EQ(processes_mentioning(job.string()), 0);
  nlohmann::json j = job_json(job);
  EXPECT_EQ(j["state"], "FAILED");
  EXPECT_EQ(j["exit_code"], 130);
}

TEST(exec_local, logs_follow_a_running_job_and_jobs_sees_a_killed_one) {
  fs::path dir = fresh_dir("local_follow");
  write_file(dir / "env.toml", "");
  Process run(nemokit_argv({"run", "exectest", "echo", "+run.nproc_per_node=2", "echo.sleep_ms=1500"}), {dir, test_env(dir)});
  ASSERT_TRUE(run.wait_for_output([](const std::string& s) { return s.find("job folder") != std::string::npos; }, 20));
  fs::path job = only_job(dir);
  RunResult follow = run_nemokit({"logs", job.filename().string(), "-f"}, dir, test_env(dir), 30);
  EXPECT_EQ(follow.exit_code, 0);
  EXPECT_NE(follow.out.find("exectest rank 0/2"), std::string::npos) << follow.out;
  EXPECT_NE(follow.out.find("exectest rank 1/2"), std::string::npos) << follow.out;
  EXPECT_EQ(run.wait(20).exit_code, 0);

  // A nemokit killed outright cannot record its end: `jobs` finds its process gone.
  fs::path dir2 = fresh_dir("local_killed");
  write_file(dir2 / "env.toml", "");
  Process doomed(nemokit_argv({"run", "exectest", "echo", "echo.sleep_ms=60000"}), {dir2, test_env(dir2)});
  ASSERT_TRUE(doomed.wait_for_output([](const std::string& s) { return s.find("exectest rank") != std::string::npos; }, 20));
  kill(doomed.pid(), SIGKILL);
  doomed.wait(10);
  RunResult jobs = run_nemokit({"jobs"}, dir2, test_env(dir2));
  EXPECT_NE(jobs.out.find("ABORTED"), std::string::npos) << jobs.out;
  EXPECT_EQ(job_json(only_job(dir2))["state"], "ABORTED");
}

// The pipe hands each stage the model the stage before published to the artifact store: echo's
// model.init_from is the checkpoint stage's model artifact, resolved when echo starts to the
// version that job published (job.json pipe_inputs names it).
TEST(exec_local, pipe_runs_the_family_in_order_and_hands_each_stage_the_model_the_one_before_published) {
  fs::path dir = fresh_dir("local_pipe");
  write_file(dir / "env.toml", "");
  auto env = test_env(dir);
  env["NEMOKIT_ARTIFACTS_ROOT"] = (dir / "store").string();
  RunResult plan = run_nemokit({"pipe", "exectest", "--dry-run"}, dir, env, 60);
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_NE(plan.out.find("# artifact model.init_from = \"exectest-checkpoint-model:latest\" -> published by an earlier stage"),
            std::string::npos)
      << plan.out;
  RunResult r = run_nemokit({"pipe", "exectest"}, dir, env, 60);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("# pipe exectest: exectest checkpoint -> exectest echo"), std::string::npos) << r.out;
  std::vector<fs::path> jobs;
  for (const auto& e : fs::directory_iterator(dir / ".nemokit" / "jobs")) jobs.push_back(e.path());
  ASSERT_EQ(jobs.size(), 2u);
  fs::path first = job_json(jobs[0])["stage"] == "checkpoint" ? jobs[0] : jobs[1];
  fs::path second = first == jobs[0] ? jobs[1] : jobs[0];
  EXPECT_NE(r.out.find("finished 20 steps"), std::string::npos);
  const fs::path model = fs::canonical(first / "checkpoints" / "step_0000020");
  EXPECT_NE(r.out.find("init_from " + model.string()), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.err.find("artifact model.init_from = \"exectest-checkpoint-model:latest\" -> exectest-checkpoint-model:v1: " +
                       model.string()),
            std::string::npos)
      << r.err;
  EXPECT_EQ(job_json(second)["pipe_inputs"]["exectest-checkpoint-model"], first.string());
  EXPECT_EQ(read_file(second / "config.toml").find("step_0000020"), std::string::npos);  // resolved when the stage started
  // The store's model names its checkpoint folder (no copy of the weights) and the job.
  nlohmann::json meta = nlohmann::json::parse(read_file(dir / "store" / "exectest-checkpoint-model" / "v1" / "metadata.json"));
  EXPECT_EQ(meta["type"], "ModelArtifact");
  EXPECT_EQ(meta["path"], model.string());
  EXPECT_EQ(meta["step"], 20);
  EXPECT_EQ(meta["job_dir"], fs::canonical(first).string());
}

// A stage before that published no model stops the stage after it with the reason: the
// reference, the job that should have published it, and what the store holds.
TEST(exec_local, pipe_stage_whose_input_model_was_not_published_fails_naming_the_job) {
  fs::path dir = fresh_dir("local_pipe_unpublished");
  write_file(dir / "env.toml", "");
  auto env = test_env(dir);
  env["NEMOKIT_ARTIFACTS_ROOT"] = (dir / "store").string();
  // An older model of the same name is in the store: the pipe's stage must not take it.
  ASSERT_EQ(run_nemokit({"run", "exectest", "checkpoint", "checkpoint.steps=1"}, dir, env, 60).exit_code, 0);
  ASSERT_TRUE(fs::exists(dir / "store" / "exectest-checkpoint-model" / "v1" / "metadata.json"));
  auto unpublished = env;
  unpublished["EXECTEST_NO_PUBLISH"] = "1";
  RunResult r = run_nemokit({"pipe", "exectest"}, dir, unpublished, 60);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;  // a reference the store cannot answer, as for a run
  EXPECT_FALSE(fs::exists(dir / "store" / "exectest-checkpoint-model" / "v2"));
  const std::string older = nlohmann::json::parse(read_file(dir / "store" / "exectest-checkpoint-model" / "v1" / "metadata.json"))["job_dir"];
  fs::path first;  // the pipe's checkpoint job (the one that published nothing)
  for (const auto& e : fs::directory_iterator(dir / ".nemokit" / "jobs"))
    if (job_json(e.path())["stage"] == "checkpoint" && fs::canonical(e.path()).string() != older) first = e.path();
  ASSERT_FALSE(first.empty());
  EXPECT_NE(r.err.find("model.init_from: artifact exectest-checkpoint-model:latest: not published by " + first.string() +
                       ", the job of this pipe that makes it (see its logs), in the store " + (dir / "store").string() +
                       " (artifacts there: exectest-checkpoint-model:v1)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out.find("init_from "), std::string::npos) << r.out;  // echo never ran
}

TEST(exec_dry_run, two_node_eight_gpu_profile_shows_sbatch_and_pyxis_lines) {
  fs::path dir = fresh_dir("dry_run");
  write_file(dir / "env.toml", R"([big]
executor = "slurm"
account = "llm"
partition = "batch"
nodes = 2
gpus_per_node = 8
time = "04:00:00"
build_cache_dir = "/shared/cache"
mounts = ["/lustre:/lustre"]
env_vars = {HF_TOKEN = "hf_do_not_print"}
)");
  RunResult r = run_nemokit({"run", "exectest", "echo", "--dry-run", "--run", "big"}, dir, test_env(dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=8", "#SBATCH --gpus-per-node=8",
                        "#SBATCH --account=\"llm\"", "#SBATCH --partition=\"batch\"", "#SBATCH --time=\"04:00:00\"",
                        "#SBATCH --job-name=\"nemokit-exectest-echo\"", "#SBATCH --requeue", "#SBATCH --open-mode=append",
                        "--container-image='/shared/cache/containers/exectest.sqsh'", "--container-mounts='/lustre:/lustre,",
                        "--no-container-mount-home", "--container-workdir='", "'nemokit' \\\n    '__task'",
                        "# secrets.env (0600, values not shown): HF_TOKEN"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  EXPECT_EQ(r.out.find("hf_do_not_print"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / ".nemokit"));  // a dry run changes nothing
}

// `jobs` keeps its columns aligned whatever the states and ids: STAGED, COMPLETED and a state
// longer than the rest (NOT_SUBMITTED, as a failed sbatch leaves it).
TEST(exec_local, jobs_columns_stay_aligned_for_every_state) {
  fs::path dir = fresh_dir("local_jobs_columns");
  write_file(dir / "env.toml", "");
  ASSERT_EQ(run_nemokit({"run", "exectest", "echo"}, dir, test_env(dir)).exit_code, 0);
  ASSERT_EQ(run_nemokit({"run", "exectest", "echo", "--stage"}, dir, test_env(dir)).exit_code, 0);
  ASSERT_EQ(run_nemokit({"run", "exectest", "echo", "--stage"}, dir, test_env(dir)).exit_code, 0);
  std::vector<fs::path> jobs;
  for (const auto& e : fs::directory_iterator(dir / ".nemokit" / "jobs")) jobs.push_back(e.path());
  ASSERT_EQ(jobs.size(), 3u);
  std::sort(jobs.begin(), jobs.end());
  nlohmann::json j = job_json(jobs[2]);
  j["state"] = "NOT_SUBMITTED";
  write_file(jobs[2] / "job.json", j.dump());
  RunResult r = run_nemokit({"jobs"}, dir, test_env(dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines;
  for (size_t at = 0, nl; (nl = r.out.find('\n', at)) != std::string::npos; at = nl + 1) lines.push_back(r.out.substr(at, nl - at));
  ASSERT_EQ(lines.size(), 4u) << r.out;
  const size_t state = lines[0].find("STATE"), exit = lines[0].find("EXIT"), folder = lines[0].find("FOLDER");
  for (const char* s : {"COMPLETED", "STAGED", "NOT_SUBMITTED"}) {
    auto line = std::find_if(lines.begin() + 1, lines.end(), [&](const std::string& l) { return l.find(s) != std::string::npos; });
    ASSERT_NE(line, lines.end()) << s << "\n" << r.out;
    EXPECT_EQ(line->find(s), state) << r.out;
    EXPECT_EQ(line->find(dir.string()), folder) << r.out;
    EXPECT_NE((*line)[exit - 1], '_') << r.out;  // the state ends before the EXIT column
  }
}

// --stage makes the job folder with its config and plan, starts nothing, and prints the line that
// runs it; that line then runs the stage. With a Slurm profile it writes the sbatch script and
// submits nothing (no Slurm needed on this machine).
TEST(exec_local, stage_makes_the_job_folder_and_starts_nothing) {
  fs::path dir = fresh_dir("local_stage");
  write_file(dir / "env.toml", R"([big]
executor = "slurm"
nodes = 2
gpus_per_node = 8
partition = "batch"
)");
  RunResult r = run_nemokit({"run", "exectest", "echo", "--stage"}, dir, test_env(dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  fs::path job = only_job(dir);
  ASSERT_FALSE(job.empty());
  EXPECT_EQ(job_json(job)["state"], "STAGED");
  EXPECT_TRUE(fs::exists(job / "config.toml"));
  EXPECT_TRUE(fs::exists(job / "plan.txt"));
  EXPECT_FALSE(fs::exists(job / "echo-rank-0.txt"));  // the stage did not run
  EXPECT_NE(r.out.find("staged exectest echo in " + job.string() + " (nothing started)"), std::string::npos) << r.out;
  const std::string line = "nemokit __task " + job.string();
  ASSERT_NE(r.out.find("run it here:\n" + line + "\n"), std::string::npos) << r.out;
  RunResult ran = run_nemokit({"__task", job.string()}, dir, test_env(dir));
  EXPECT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_NE(ran.out.find("exectest rank"), std::string::npos) << ran.out;

  fs::remove_all(job);
  r = run_nemokit({"run", "exectest", "echo", "--stage", "--run", "big"}, dir, test_env(dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  job = only_job(dir);
  EXPECT_EQ(job_json(job)["state"], "STAGED");
  EXPECT_NE(read_file(job / "sbatch.sh").find("#SBATCH --nodes=2"), std::string::npos);
  EXPECT_FALSE(job_json(job).contains("slurm_job_id"));
  EXPECT_NE(r.out.find("submit it:        sbatch " + (job / "sbatch.sh").string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("salloc --nodes=2 --ntasks-per-node=8 --gpus-per-node=8 --partition=batch, then bash"), std::string::npos)
      << r.out;
}

// The recipes set the executor's keys as run.env.KEY on the command line (nodes, nproc_per_node,
// partition, time, container_image, mounts): each reaches the sbatch script, over the profile.
TEST(exec_dry_run, recipe_run_env_overrides_reach_the_sbatch_script) {
  fs::path dir = fresh_dir("dry_run_recipe");
  write_file(dir / "env.toml", R"([big]
executor = "slurm"
partition = "batch"
nodes = 2
gpus_per_node = 8
mounts = ["/lustre:/lustre"]
)");
  RunResult r = run_nemokit({"run", "exectest", "echo", "--dry-run", "--run", "big", "run.env.nodes=4", "run.env.nproc_per_node=2",
                             "run.env.partition=interactive", "run.env.time=01:30:00",
                             "run.env.container_image=nvcr.io/nvidia/nemo:25.11", "run.env.mounts=[\"/data:/data\"]"},
                            dir, test_env(dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=2", "#SBATCH --partition=\"interactive\"",
                        "#SBATCH --time=\"01:30:00\"", "--container-image='nvcr.io/nvidia/nemo:25.11'",
                        "--container-mounts='/data:/data,"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  EXPECT_EQ(r.out.find("/lustre:/lustre"), std::string::npos) << r.out;

  // A misspelt execution key is refused with the closest one, in either spelling.
  r = run_nemokit({"run", "exectest", "echo", "--dry-run", "--run", "big", "run.env.partiton=x"}, dir, test_env(dir));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("run.partiton is not an execution key; did you mean 'partition'?"), std::string::npos) << r.err;
  r = run_nemokit({"run", "exectest", "echo", "--dry-run", "+run.nodez=3"}, dir, test_env(dir));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("config key run.nodez: not an execution key"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("did you mean 'nodes'?"), std::string::npos) << r.err;
}

}  // namespace nemokit
