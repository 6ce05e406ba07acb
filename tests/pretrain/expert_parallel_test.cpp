// Expert parallel through the real program: `nemokit run` with two local ranks under mpirun and
// parallel.ep = 2 (each rank holds two of the four experts of every MoE layer and trains half
// the global batch) trains the same model as one rank with every expert and the whole batch:
// the same losses step by step, and after 10 steps the same weights and AdamW moments (fp32,
// relative error below 1e-6); so do four ranks in two expert-parallel groups of two. Its checkpoints hold every expert, so they
// load on one rank, and one rank's load on two expert-parallel ranks, resuming where the other layout stopped.
#include "bible_slice.hpp"
#include "data_parallel_config.hpp"
#include "run_cli.hpp"
#include "tensor_compare.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <string>

namespace fs = std::filesystem;
using nemokit::test::relative_error;
using nemokit::test::run_cli;
using nemokit::test::worst_tensor_error;

namespace {

std::map<int64_t, double> val_losses(const fs::path& jobs_root) {
  std::map<int64_t, double> out;
  for (const auto& e : fs::directory_iterator(jobs_root)) {
    std::ifstream in(e.path() / "metrics.jsonl");
    for (std::string line; std::getline(in, line);)
      if (nlohmann::json m = nlohmann::json::parse(line); m.contains("val_loss")) out[m["step"]] = m["val_loss"];
  }
  return out;
}

// A checkpoint folder holding only `from`'s step-5 checkpoint, for a run to resume from.
fs::path resume_folder(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  fs::copy(from / "step_0000005", to / "step_0000005", fs::copy_options::recursive);
  std::ofstream(to / "latest") << "step_0000005\n";
  return to;
}

// `name`'s run on `ranks` ranks: checkpoints in DIR/ckpt-NAME, job folders in DIR/jobs-NAME; one
// thread per rank, as the data-parallel tests (two ranks share two cores). Three validation
// batches: two ranks do not split them evenly, and expert parallel's evaluation must still run
// every forward on both ranks together.
struct Runs {
  fs::path dir, cfg;
  nemokit::test::CliResult run(const std::string& name, int ranks, const std::string& extra) const {
    return run_cli("run nano3 pretrain -c " + cfg.string() + " checkpoint.dir=" + (dir / ("ckpt-" + name)).string() +
                       " train.eval_steps=3" + (ranks > 1 ? " +run.nproc_per_node=" + std::to_string(ranks) : std::string()) +
                       extra,
                   "NEMOKIT_NUM_THREADS=1 NEMOKIT_COMM_TIMEOUT_S=60 NEMOKIT_JOB_ROOT=" + (dir / ("jobs-" + name)).string());
  }
  fs::path file(const std::string& name, const char* step, const char* file) const {
    return dir / ("ckpt-" + name) / step / file;
  }
};

}  // namespace

// One test for the runs it compares (each ctest test is a process of its own: a fixture shared
// by several would train the reference once per test).
TEST(PretrainExpertParallel, ExpertParallelRanksTrainAsOneRankAndTheirCheckpointsMoveBetweenLayouts) {
  if (!fs::exists(nemokit::test::kjv_bible())) GTEST_FAIL() << nemokit::test::kjv_bible() << " missing: run scripts/setup.sh";
  Runs r;
  r.dir = nemokit::test::temp_folder("pt-ep");
  r.cfg = nemokit::test::write_data_parallel_config(r.dir);
  auto one = r.run("one", 1, "");
  ASSERT_EQ(one.rc, 0) << one.out << one.err;
  auto ep = r.run("ep", 2, " +parallel.ep=2");
  ASSERT_EQ(ep.rc, 0) << ep.out << ep.err;
  EXPECT_NE((ep.out + ep.err).find("experts split over 2 ranks (expert parallel)"), std::string::npos) << ep.out << ep.err;

  const auto loss1 = nemokit::test::train_losses(r.dir / "jobs-one"), loss2 = nemokit::test::train_losses(r.dir / "jobs-ep");
  ASSERT_EQ(loss1.size(), 10u);
  ASSERT_EQ(loss2.size(), 10u) << "metrics.jsonl must hold each step once";
  for (const auto& [s, l] : loss1)
    EXPECT_LT(relative_error(l, loss2.at(s)), 1e-6) << "step " << s << ": " << l << " vs " << loss2.at(s);
  const auto val1 = val_losses(r.dir / "jobs-one"), val2 = val_losses(r.dir / "jobs-ep");
  ASSERT_EQ(val1.size(), val2.size());
  for (const auto& [s, v] : val1) EXPECT_LT(relative_error(v, val2.at(s)), 1e-6) << "val at step " << s;
  // Every expert in rank 0's checkpoints, with one rank's weights and moments. The experts run on
  // each source rank's rows apart and their gradients are summed in double per micro-batch, as
  // on one rank, so the moments need no looser bound than the weights.
  for (const char* file : {"model.safetensors", "optimizer.safetensors"})
    for (const char* at : {"step_0000005", "step_0000010"}) {
      auto [worst, name] = worst_tensor_error(r.file("one", at, file), r.file("ep", at, file));
      EXPECT_LT(worst, 1e-6) << at << "/" << file << ": worst tensor " << name;
    }

  // Data x expert parallel: four ranks in two groups of two, each group holding every expert once
  // and the groups data parallel over them (four ranks on two cores: slower, the same model).
  auto groups = r.run("groups", 4, " +parallel.ep=2");
  ASSERT_EQ(groups.rc, 0) << groups.out << groups.err;
  EXPECT_NE((groups.out + groups.err).find("experts split over 2 ranks in each of 2 groups (expert parallel)"), std::string::npos)
      << groups.out << groups.err;
  const auto loss4 = nemokit::test::train_losses(r.dir / "jobs-groups");
  ASSERT_EQ(loss4.size(), 10u);
  for (const auto& [s, l] : loss1) EXPECT_LT(relative_error(l, loss4.at(s)), 1e-6) << "4 ranks, step " << s;
  for (const char* file : {"model.safetensors", "optimizer.safetensors"}) {
    auto [worst, name] = worst_tensor_error(r.file("one", "step_0000010", file), r.file("groups", "step_0000010", file));
    EXPECT_LT(worst, 1e-6) << "4 ranks " << file << ": worst tensor " << name;
  }

  // ZeRO-1 over expert parallel: the replicated parameters' moments sharded over the two ranks,
  // each rank's experts with their whole moments; the same model and moments again, and its
  // step-5 checkpoint resumes to them.
  auto zero = r.run("ep-zero", 2, " +parallel.ep=2 +parallel.zero=1");
  ASSERT_EQ(zero.rc, 0) << zero.out << zero.err;
  EXPECT_NE((zero.out + zero.err).find("optimizer state sharded (ZeRO-1), experts split over 2 ranks"), std::string::npos)
      << zero.out << zero.err;
  const auto loss_zero = nemokit::test::train_losses(r.dir / "jobs-ep-zero");
  ASSERT_EQ(loss_zero.size(), 10u);
  for (const auto& [s, l] : loss1) EXPECT_LT(relative_error(l, loss_zero.at(s)), 1e-6) << "ZeRO-1 x ep, step " << s;
  resume_folder(r.dir / "ckpt-ep-zero", r.dir / "ckpt-ep-zero-again");
  auto zero_again = r.run("ep-zero-again", 2, " +parallel.ep=2 +parallel.zero=1");
  ASSERT_EQ(zero_again.rc, 0) << zero_again.out << zero_again.err;
  for (const char* file : {"model.safetensors", "optimizer.safetensors"})
    for (const char* name : {"ep-zero", "ep-zero-again"}) {
      auto [worst, tensor] = worst_tensor_error(r.file("one", "step_0000010", file), r.file(name, "step_0000010", file));
      EXPECT_LT(worst, 1e-6) << name << " " << file << ": worst tensor " << tensor;
    }

  // The expert-parallel step-5 checkpoint resumes on one rank, and one rank's on two
  // expert-parallel ranks: both end on the uninterrupted one-rank run's weights and moments.
  resume_folder(r.dir / "ckpt-ep", r.dir / "ckpt-ep-to-one");
  auto on_one = r.run("ep-to-one", 1, "");
  ASSERT_EQ(on_one.rc, 0) << on_one.out << on_one.err;
  resume_folder(r.dir / "ckpt-one", r.dir / "ckpt-one-to-ep");
  auto on_two = r.run("one-to-ep", 2, " +parallel.ep=2");
  ASSERT_EQ(on_two.rc, 0) << on_two.out << on_two.err;
  // And on two expert-parallel ranks again, exactly: the same ranks, weights, moments and data.
  resume_folder(r.dir / "ckpt-ep", r.dir / "ckpt-ep-to-ep");
  auto again = r.run("ep-to-ep", 2, " +parallel.ep=2");
  ASSERT_EQ(again.rc, 0) << again.out << again.err;
  for (const char* file : {"model.safetensors", "optimizer.safetensors"}) {
    auto [worst, tensor] = worst_tensor_error(r.file("ep", "step_0000010", file), r.file("ep-to-ep", "step_0000010", file));
    EXPECT_EQ(worst, 0.0) << "ep-to-ep " << file << ": worst tensor " << tensor;
  }
  for (const char* name : {"ep-to-one", "one-to-ep", "ep-to-ep"}) {
    const auto got = nemokit::test::train_losses(r.dir / ("jobs-" + std::string(name)));
    ASSERT_EQ(got.size(), 5u) << name << ": steps 6 to 10 only";
    for (const auto& [s, l] : got) EXPECT_LT(relative_error(loss1.at(s), l), 1e-6) << name << " step " << s;
    for (const char* file : {"model.safetensors", "optimizer.safetensors"}) {
      auto [worst, tensor] = worst_tensor_error(r.file("one", "step_0000010", file), r.file(name, "step_0000010", file));
      EXPECT_LT(worst, 1e-6) << name << " " << file << ": worst tensor " << tensor;
    }
  }
}

TEST(PretrainExpertParallel, LayoutsThatCannotWorkAreRefusedNamingTheKey) {
  if (!fs::exists(nemokit::test::kjv_bible())) GTEST_FAIL() << nemokit::test::kjv_bible() << " missing: run scripts/setup.sh";
  const fs::path dir = nemokit::test::temp_folder("pt-ep-bad");
  const fs::path cfg = nemokit::test::write_data_parallel_config(dir);
  const std::string env = "NEMOKIT_NUM_THREADS=1 NEMOKIT_COMM_TIMEOUT_S=60 NEMOKIT_JOB_ROOT=" + (dir / "jobs").string();
  const std::string base = "run nano3 pretrain -c " + cfg.string() + " checkpoint.dir=" + (dir / "ckpt").string();
  struct Case {
    std::string args, error;
  };
  for (const Case& c :
       {Case{" +parallel.ep=2", "parallel.ep: 2 does not divide the job's 1 rank(s)"},
        Case{" +run.nproc_per_node=2 +parallel.ep=2 model.n_routed_experts=3",
             "parallel.ep: 2 does not divide model.n_routed_experts = 3"},
        Case{" +run.nproc_per_node=2 +parallel.ep=3", "parallel.ep: 3 does not divide"}}) {
    auto r = run_cli(base + c.args, env);
    EXPECT_NE(r.rc, 0) << c.args;
    EXPECT_NE((r.out + r.err).find(c.error), std::string::npos) << c.args << ": " << r.out << r.err;
  }
  EXPECT_FALSE(fs::exists(dir / "ckpt" / "latest")) << "a refused layout trained";
}

// `--dry-run` plans a rank's share of the experts, and refuses a layout the model cannot take
// before any rank starts.
TEST(PretrainExpertParallel, DryRunPlansARanksShareOfTheExperts) {
  if (!fs::exists(nemokit::test::kjv_bible())) GTEST_FAIL() << nemokit::test::kjv_bible() << " missing: run scripts/setup.sh";
  const fs::path dir = nemokit::test::temp_folder("pt-ep-plan");
  const fs::path cfg = nemokit::test::write_data_parallel_config(dir);
  const std::string env = "NEMOKIT_JOB_ROOT=" + (dir / "jobs").string();
  auto plan = run_cli("run nano3 pretrain -c " + cfg.string() + " -d +run.nproc_per_node=2 +parallel.ep=2", env);
  ASSERT_EQ(plan.rc, 0) << plan.out << plan.err;
  EXPECT_NE(plan.out.find("# memory per rank (fp32, 2 data-parallel ranks, experts over 2): "), std::string::npos) << plan.out;
  EXPECT_NE(plan.out.find("routed experts 1/2 per rank"), std::string::npos) << plan.out;
  auto bad =
      run_cli("run nano3 pretrain -c " + cfg.string() + " -d +run.nproc_per_node=2 +parallel.ep=2 model.n_routed_experts=3", env);
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE((bad.out + bad.err).find("parallel.ep: 2 does not divide model.n_routed_experts = 3"), std::string::npos)
      << bad.out << bad.err;
}
