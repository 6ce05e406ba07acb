// The executors against a real Slurm: tests/slurm/cluster.sh's throwaway two-node cluster
// (slurm_cluster.hpp: started once for the suite by the ctest fixture, or here when this binary
// runs alone).
// Profiles use container = "none": pyxis is not in Debian (its srun line is checked by
// rendering, in script_test.cpp).
#include "exec/process.hpp"
#include "exec/slurm_client.hpp"
#include "nemokit_process.hpp"
#include "slurm_cluster.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <regex>

namespace nemokit {
namespace fs = std::filesystem;
using namespace test;

namespace {

const auto* const kCluster = ::testing::AddGlobalTestEnvironment(new test::SlurmCluster);

const char* kProfiles = R"([t]
executor = "slurm"
container = "none"
partition = "batch"
nodes = 1
ntasks_per_node = 1

[t2]
extends = "t"
ntasks_per_node = 2

[n2]
extends = "t"
partition = "cpu"
nodes = 2
)";

std::map<std::string, std::string> env_for(const fs::path& dir) {
  return {{"NEMOKIT_PLUGIN_PATH", EXEC_TEST_PLUGIN_DIR}, {"NEMOKIT_ENV", (dir / "env.toml").string()}, {"NEMOKIT_JOB_ROOT", ""}};
}

fs::path setup_dir(const std::string& name, const std::string& extra_profiles = "") {
  fs::path dir = fresh_dir(name);
  write_file(dir / "env.toml", std::string(kProfiles) + extra_profiles);
  return dir;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

fs::path job_with_slurm_id(const fs::path& dir, const std::string& id) {
  for (const auto& e : fs::directory_iterator(dir / ".nemokit" / "jobs")) {
    auto j = nlohmann::json::parse(read_file(e.path() / "job.json"));
    if (j.value("slurm_job_id", "") == id) return e.path();
  }
  return {};
}

}  // namespace

TEST(exec_slurm, probe_prints_one_line_per_task) {
  SKIP_WITHOUT_SLURM();
  fs::path dir = setup_dir("slurm_probe");
  RunResult r = run_nemokit({"probe", "--run", "t2"}, dir, env_for(dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("rank 0/2 host \\S+ local 0 gpus \\d+"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("rank 1/2 host \\S+ local 1 gpus \\d+"))) << r.out;
}

TEST(exec_slurm, run_streams_the_output_and_returns_the_exit_code) {
  SKIP_WITHOUT_SLURM();
  fs::path dir = setup_dir("slurm_run");
  RunResult ok = run_nemokit({"run", "exectest", "echo", "--run", "t"}, dir, env_for(dir));
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("hello from the echo stage"), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("exectest rank 0/1 local 0 master 127.0.0.1:"), std::string::npos) << ok.out;
  EXPECT_NE(ok.err.find("COMPLETED"), std::string::npos);

  RunResult bad = run_nemokit({"run", "exectest", "echo", "echo.exit_code=3", "--run", "t"}, dir, env_for(dir));
  EXPECT_EQ(bad.exit_code, 3) << bad.err;
  EXPECT_NE(bad.err.find("exiting with code 3"), std::string::npos) << bad.err;

  // A real stage that cannot run here (no training model on this machine): a plain failure, code 1.
  RunResult real = run_nemokit({"run", "nano3", "sft", "-c", "tiny", "model.init_from=/nonexistent/model", "--run", "t"}, dir,
                               {{"NEMOKIT_ENV", (dir / "env.toml").string()}, {"NEMOKIT_JOB_ROOT", ""}});
  EXPECT_EQ(real.exit_code, 1) << real.out << real.err;
  EXPECT_NE(real.err.find("nemokit run nano3 sft:"), std::string::npos) << real.err;
  EXPECT_NE(real.err.find("FAILED"), std::string::npos) << real.err;
}

// A profile that runs stages in their image (pyxis) whose image was never built is refused
// before anything is submitted, with the build command: the job would otherwise wait in the queue
// and fail on the node. A pipe checks every stage's image before its first submission.
TEST(exec_slurm, a_stage_image_not_built_is_refused_before_submission) {
  SKIP_WITHOUT_SLURM();
  fs::path dir = setup_dir("slurm_no_image");
  write_file(dir / "env.toml", std::string(kProfiles) + "\n[img]\nextends = \"t\"\ncontainer = \"pyxis\"\nbuild_cache_dir = \"" +
                                   (dir / "cache").string() + "\"\n");
  RunResult r = run_nemokit({"run", "exectest", "echo", "--run", "img"}, dir, env_for(dir));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("exectest echo runs in " + (dir / "cache" / "containers" / "exectest.sqsh").string() +
                       ", which is not built: nemokit build exectest --run img"),
            std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / ".nemokit" / "jobs"));  // no job folder, nothing submitted
  r = run_nemokit({"pipe", "exectest", "--run", "img"}, dir, env_for(dir));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("which is not built"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / ".nemokit" / "jobs"));
}

TEST(exec_slurm, batch_returns_at_once_and_jobs_shows_it_finish) {
  SKIP_WITHOUT_SLURM();
  fs::path dir = setup_dir("slurm_batch");
  auto t0 = std::chrono::steady_clock::now();
  RunResult r = run_nemokit({"run", "exectest", "echo", "echo.sleep_ms=2000", "--batch", "t"}, dir, env_for(dir));
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string id = trim(r.out);
  ASSERT_TRUE(is_slurm_job_id(id)) << r.out;
  EXPECT_LT(took, 2.0);  // did not wait for the 2 s job
  bool finished = false;
  for (int i = 0; i < 100 && !finished; ++i) {
    RunResult jobs = run_nemokit({"jobs"}, dir, env_for(dir));
    finished = std::regex_search(jobs.out, std::regex("slurm\\s+" + id + "\\s+COMPLETED\\s+0"));
    if (!finished) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  EXPECT_TRUE(finished);
  fs::path job = job_with_slurm_id(dir, id);
  EXPECT_NE(read_file(job / "logs" / ("slurm-" + id + ".out")).find("hello from the echo stage"), std::string::npos);
  RunResult logs = run_nemokit({"logs", id}, dir, env_for(dir));
  EXPECT_NE(logs.out.find("hello from the echo stage"), std::string::npos);
}

TEST(exec_slurm, each_task_gets_its_own_rank) {
  SKIP_WITHOUT_SLURM();
  fs::path dir = setup_dir("slurm_ranks");
  RunResult one_node = run_nemokit({"run", "exectest", "echo", "--run", "t2"}, dir, env_for(dir));
  ASSERT_EQ(one_node.exit_code, 0) << one_node.err;
  EXPECT_NE(one_node.out.find("exectest rank 0/2 local 0 master 127.0.0.1:"), std::string::npos) << one_node.out;
  EXPECT_NE(one_node.out.find("exectest rank 1/2 local 1 master 127.0.0.1:"), std::string::npos) << one_node.out;
  // Two nodes, one task each: the rendezvous is the first node's address (n1 does not resolve).
  RunResult two_nodes = run_nemokit({"run", "exectest", "echo", "--run", "n2"}, dir, env_for(dir));
  ASSERT_EQ(two_nodes.exit_code, 0) << two_nodes.err;
  EXPECT_NE(two_nodes.out.find("exectest rank 0/2 local 0 master 127.0.0.1:"), std::string::npos) << two_nodes.out;
  EXPECT_NE(two_nodes.out.find("exectest rank 1/2 local 0 master 127.0.0.1:"), std::string::npos) << two_nodes.out;
}

TEST(exec_slurm, cancel_ends_a_running_job) {
  SKIP_WITHOUT_SLURM();
  fs::path dir = setup_dir("slurm_cancel");
  RunResult r = run_nemokit({"run", "exectest", "echo", "echo.sleep_ms=60000", "--batch", "t"}, dir, env_for(dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string id = trim(r.out);
  ASSERT_EQ(wait_state(id, "RUNNING", 20), "RUNNING");
  RunResult c = run_nemokit({"cancel", id}, dir, env_for(dir));
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(wait_state(id, "", 20), "CANCELLED");
  RunResult jobs = run_nemokit({"jobs"}, dir, env_for(dir));
  EXPECT_TRUE(std::regex_search(jobs.out, std::regex("slurm\\s+" + id + "\\s+CANCELLED"))) << jobs.out;
}

TEST(exec_slurm, ctrl_c_cancels_the_followed_job) {
  SKIP_WITHOUT_SLURM();
  fs::path dir = setup_dir("slurm_ctrl_c");
  Process p(nemokit_argv({"run", "exectest", "echo", "echo.sleep_ms=60000", "--run", "t"}), {dir, env_for(dir)});
  ASSERT_TRUE(p.wait_for_output([](const std::string& s) { return s.find("exectest rank 0/1") != std::string::npos; }, 30))
      << p.err_so_far();
  kill(p.pid(), SIGINT);
  RunResult r = p.wait(30);
  EXPECT_EQ(r.exit_code, 130) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.err, m, std::regex("submitted Slurm job (\\d+)"))) << r.err;
  EXPECT_EQ(wait_state(m[1].str(), "", 10), "CANCELLED") << r.err;
}

TEST(exec_slurm, injection_strings_run_nothing) {
  SKIP_WITHOUT_SLURM();
  fs::path marks = fresh_dir("slurm_inject_marks");
  std::string m = marks.string();
  std::string nasty = "q\"'$(touch " + m + "/a)`touch " + m + "/b`;touch " + m + "/c";
  fs::path dir = setup_dir("slurm_inject", "\n[inj]\nextends = \"t\"\nenv_vars = {PLAIN = \"$(touch " + m +
                                               "/d)\", DB_PASSWORD = \"`touch " + m + "/e`'\\\"pw\"}\n");
  RunResult r = run_nemokit({"run", "exectest", "echo", "+run.job_name=" + nasty, "echo.note=" + nasty, "--run", "inj"}, dir,
                            env_for(dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("note: " + nasty), std::string::npos) << r.out;  // the string arrived as data
  EXPECT_TRUE(fs::is_empty(marks)) << "an injected command ran";
  std::smatch id;
  ASSERT_TRUE(std::regex_search(r.err, id, std::regex("submitted Slurm job (\\d+)")));
  CommandResult show = run_command({"scontrol", "show", "job", id[1].str()});
  EXPECT_NE(show.out.find("JobName=" + nasty), std::string::npos) << show.out;
  // The secret reached the job through the 0600 file only.
  fs::path job = job_with_slurm_id(dir, id[1].str());
  struct stat st {};
  ASSERT_EQ(stat((job / "secrets.env").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(read_file(job / "sbatch.sh").find("pw"), std::string::npos);
  EXPECT_EQ(read_file(job / "logs" / ("slurm-" + id[1].str() + ".out")).find("pw"), std::string::npos);
  // A newline would end an #SBATCH line: refused before anything is submitted.
  RunResult nl = run_nemokit({"run", "exectest", "echo", "+run.job_name=x\ntouch " + m + "/f", "--run", "t"}, dir, env_for(dir));
  EXPECT_EQ(nl.exit_code, 2);
  EXPECT_NE(nl.err.find("run.job_name"), std::string::npos) << nl.err;
  EXPECT_TRUE(fs::is_empty(marks));
}

TEST(exec_slurm, signalled_job_checkpoints_requeues_and_resumes) {
  SKIP_WITHOUT_SLURM();
  fs::path dir = setup_dir("slurm_requeue");
  RunResult r = run_nemokit({"run", "exectest", "checkpoint", "checkpoint.steps=50", "checkpoint.step_ms=100", "--batch", "t"}, dir,
                            env_for(dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string id = trim(r.out);
  fs::path job = job_with_slurm_id(dir, id);
  fs::path out = job / "logs" / ("slurm-" + id + ".out");
  for (int i = 0; i < 100 && read_file(out).find("started at step 0") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_NE(read_file(out).find("started at step 0"), std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  // What Slurm does signal_seconds before the time limit (--signal=B:USR1@N): USR1 to the batch shell.
  slurm_cancel(id, "USR1", true);
  Process follow(nemokit_argv({"logs", id, "-f"}), {dir, env_for(dir)});
  RunResult f = follow.wait(60);
  EXPECT_EQ(f.exit_code, 0);
  std::string log = read_file(out);
  std::smatch ck, rs;
  ASSERT_TRUE(std::regex_search(log, ck, std::regex("checkpointed at step (\\d+)"))) << log;
  ASSERT_TRUE(std::regex_search(log, rs, std::regex("resumed at step (\\d+) \\(restart 1\\)"))) << log;
  EXPECT_EQ(ck[1].str(), rs[1].str());
  EXPECT_GT(std::stoi(ck[1].str()), 0);
  EXPECT_NE(log.find("finished 50 steps"), std::string::npos) << log;
  EXPECT_NE(f.out.find("finished 50 steps"), std::string::npos);  // logs -f streamed it
  EXPECT_EQ(wait_state(id, "", 10), "COMPLETED");
  EXPECT_EQ(slurm_job_state(id).restarts, 1);
}

// The whole path with Slurm's own timer: a one-minute limit, USR1 asked for 55 s before it. Slurm
// checks limits periodically (about every 30 s), so the signal comes 5 to 35 s in.
TEST(exec_slurm, time_limit_signal_requeues_and_resumes) {
  SKIP_WITHOUT_SLURM();
  fs::path dir = setup_dir("slurm_time_limit");
  RunResult r = run_nemokit({"run", "exectest", "checkpoint", "checkpoint.steps=600", "checkpoint.step_ms=100",
                             "checkpoint.resume_step_ms=5", "+run.time=00:01:00", "+run.signal_seconds=55", "--run", "t"},
                            dir, env_for(dir), 100);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::smatch ck, rs;
  ASSERT_TRUE(std::regex_search(r.out, ck, std::regex("checkpointed at step (\\d+)"))) << r.out << r.err;
  ASSERT_TRUE(std::regex_search(r.out, rs, std::regex("resumed at step (\\d+) \\(restart 1\\)"))) << r.out;
  EXPECT_EQ(ck[1].str(), rs[1].str());
  EXPECT_NE(r.out.find("finished 600 steps"), std::string::npos);
  EXPECT_NE(r.err.find("time limit near"), std::string::npos) << r.err;
}

// The chain hands the model over through the artifact store: the echo job's model.init_from is
// the checkpoint stage's model artifact, which does not exist when both are submitted and which
// the echo job resolves when it starts.
TEST(exec_slurm, pipe_chains_the_family_with_afterok_through_the_artifact_store) {
  SKIP_WITHOUT_SLURM();
  fs::path dir = setup_dir("slurm_pipe");
  auto env = env_for(dir);
  env["NEMOKIT_ARTIFACTS_ROOT"] = (dir / "store").string();
  RunResult r = run_nemokit({"pipe", "exectest", "--run", "t"}, dir, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> ids;
  std::regex re("submitted Slurm job (\\d+)");
  for (auto it = std::sregex_iterator(r.err.begin(), r.err.end(), re); it != std::sregex_iterator(); ++it) ids.push_back((*it)[1]);
  ASSERT_EQ(ids.size(), 2u) << r.err;
  fs::path first = job_with_slurm_id(dir, ids[0]), second = job_with_slurm_id(dir, ids[1]);
  auto j = nlohmann::json::parse(read_file(second / "job.json"));
  EXPECT_EQ(j["after"], ids[0]);
  EXPECT_EQ(j["pipe_inputs"]["exectest-checkpoint-model"], first.string());
  EXPECT_NE(read_file(second / "config.toml").find("init_from = \"exectest-checkpoint-model:latest\""), std::string::npos);
  EXPECT_EQ(read_file(second / "sbatch.sh").find("NEMOKIT_INPUT_JOB"), std::string::npos);
  EXPECT_NE(r.out.find("finished 20 steps"), std::string::npos) << r.out;
  const fs::path model = fs::canonical(first / "checkpoints" / "step_0000020");
  EXPECT_NE(r.out.find("init_from " + model.string()), std::string::npos) << r.out;  // the second stage read the first's model
}

// While the second job of a pipe waits, another job publishes a newer version of the same model
// name: the second job still starts from the model its own pipe's first job published.
TEST(exec_slurm, pipe_stage_takes_the_model_its_pipe_made_not_a_newer_one_of_the_same_name) {
  SKIP_WITHOUT_SLURM();
  fs::path dir = setup_dir("slurm_pipe_pinned");
  auto env = env_for(dir);
  env["NEMOKIT_ARTIFACTS_ROOT"] = (dir / "store").string();
  RunResult r = run_nemokit({"pipe", "exectest", "--batch", "t"}, dir, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> ids;
  std::regex re("submitted Slurm job (\\d+)");
  for (auto it = std::sregex_iterator(r.err.begin(), r.err.end(), re); it != std::sregex_iterator(); ++it) ids.push_back((*it)[1]);
  ASSERT_EQ(ids.size(), 2u) << r.err;
  // Held, the echo job cannot start before the other model is published (the checkpoint job
  // counts for two seconds, so the hold comes first).
  ASSERT_EQ(run_command({"scontrol", "hold", ids[1]}).exit_code, 0);
  EXPECT_EQ(wait_state(ids[0], "", 60), "COMPLETED");
  RunResult other = run_nemokit({"run", "exectest", "checkpoint", "checkpoint.steps=1"}, dir, env, 60);
  ASSERT_EQ(other.exit_code, 0) << other.err;
  ASSERT_TRUE(fs::exists(dir / "store" / "exectest-checkpoint-model" / "v2" / "metadata.json"));
  ASSERT_EQ(run_command({"scontrol", "release", ids[1]}).exit_code, 0);
  EXPECT_EQ(wait_state(ids[1], "", 60), "COMPLETED");
  const fs::path first = job_with_slurm_id(dir, ids[0]), second = job_with_slurm_id(dir, ids[1]);
  const std::string out = read_file(second / "logs" / ("slurm-" + ids[1] + ".out")),
                    err = read_file(second / "logs" / ("slurm-" + ids[1] + ".err"));
  const fs::path model = fs::canonical(first / "checkpoints" / "step_0000020");
  EXPECT_NE(out.find("init_from " + model.string()), std::string::npos) << out << err;
  EXPECT_NE(err.find("-> exectest-checkpoint-model:v1: " + model.string()), std::string::npos) << err;
}

}  // namespace nemokit
