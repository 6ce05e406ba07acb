// The SFT and RL stage images, built and run as a user does: this build installed into a prefix
// (cmake --install), `nemokit build nemokit-base` by the installed nemokit (containers/Dockerfile.base
// over the nemokit.deb it writes from the install, with the Debian test base of make_test_base.sh
// in place of the CUDA runtime, whose RUN apt-installs the packages recorded at install time from
// Debian's mirror and then dpkg the package); then `nemokit
// build nano3-sft` FROM that base by its tag, and `nemokit exec` running `nemokit run nano3 sft`
// inside the image on a tiny model and a few chats in a mounted folder; then `nemokit build
// nano3-rl` and GRPO inside it from the checkpoint the SFT run left there; and `nemokit build
// omni3-sft` FROM the same base, running `nemokit run omni3 sft` on a few of the omni chats, and
// `nemokit build omni3-rl` running `nemokit run omni3 rl mpo`, `rl text` and `rl vision` in turn
// from that SFT checkpoint.
// Needs root (overlayfs, namespaces, loop mounts) and Debian's mirror; skipped without root.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "build_test_support.hpp"
#include "nemokit/oci/image.hpp"
#include "nemokit/runtime/sha256.hpp"
#include "omni_chats.hpp"
#include "tiny_chat_model.hpp"
#include "support/remove_when_passed.hpp"
#include "support/setup_data.hpp"

using namespace buildtest;

namespace {

fs::path chats_dir() { return nemokit::test::setup_data_dir("NEMOKIT_SFT_CHATS_DIR", "sft-chats"); }

fs::path rl_tasks_dir() { return nemokit::test::setup_data_dir("NEMOKIT_RL_TASKS_DIR", "rl-tasks"); }

void head(const fs::path& from, const fs::path& to, int lines) {
  std::ifstream in(from);
  std::ofstream out(to);
  std::string line;
  for (int i = 0; i < lines && std::getline(in, line); ++i) out << line << "\n";
}

// The last `n` characters: build logs are long, their end says what failed.
std::string tail(const std::string& s, size_t n = 4000) { return s.size() > n ? s.substr(s.size() - n) : s; }

// The metrics.jsonl lines of the one job under WORK/jobs whose folder name ends with `recipe`
// (job folders are TIMESTAMP-FAMILY-STAGE[-SUBSTAGE]).
std::vector<nlohmann::json> job_metrics(const fs::path& work, const std::string& recipe) {
  std::vector<fs::path> jobs;
  for (const auto& e : fs::directory_iterator(work / "jobs"))
    if (e.path().filename().string().ends_with("-" + recipe)) jobs.push_back(e.path());
  EXPECT_EQ(jobs.size(), 1u) << recipe;
  if (jobs.size() != 1) return {};
  std::ifstream metrics(jobs[0] / "metrics.jsonl");
  EXPECT_TRUE(metrics) << jobs[0] / "metrics.jsonl";
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(metrics, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// The steps with a training loss in that job's metrics.
std::vector<int> trained_steps(const fs::path& work, const std::string& recipe) {
  std::vector<int> steps;
  for (const auto& m : job_metrics(work, recipe)) {
    if (!m.contains("loss")) continue;
    steps.push_back(m["step"].get<int>());
    EXPECT_TRUE(std::isfinite(m["loss"].get<double>())) << m.dump();
  }
  return steps;
}

// Package -> its Status line in the dpkg database of the image SQSH.
std::map<std::string, std::string> dpkg_status(const fs::path& sqsh) {
  SquashfsMount mount(sqsh);
  std::istringstream in(read_file(mount.root() / "var/lib/dpkg/status"));
  std::map<std::string, std::string> status;
  std::string package;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Package: ", 0) == 0) package = line.substr(9);
    if (line.rfind("Status: ", 0) == 0) status[package] = line.substr(8);
  }
  return status;
}

// The package names of a debian-packages.txt (one a line, # comments).
std::vector<std::string> package_list(const std::string& text) {
  std::vector<std::string> names;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#') names.push_back(line);
  return names;
}

// The sha256 of every regular file under ROOT with its path: an install's identity.
std::string tree_digest(const fs::path& root) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file() && !e.is_symlink()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  nemokit::rt::Sha256 all;
  for (const auto& f : files) all.update(fs::relative(f, root).string() + " " + nemokit::rt::sha256_file(f) + "\n");
  return all.finish_digest();
}

// An exclusive flock on a file, held while the object lives.
struct FileLock {
  explicit FileLock(const fs::path& p) : fd(open(p.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644)) { flock(fd, LOCK_EX); }
  ~FileLock() { close(fd); }
  int fd;
};

class StageImage : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "builds and nemokit exec need root (mounts and namespaces)";
    base_ = test_base_dir();
    shared_ = fs::path(NEMOKIT_BINARY_DIR) / "tests" / "build" / "work" / "stage-image";
    cache_ = shared_ / "cache";
    fs::create_directories(shared_);
  }

  std::vector<std::string> env() { return {"NEMOKIT_BUILD_CACHE_DIR=" + cache_.string()}; }

  // `nemokit build IMAGE` FROM nemokit-base in the build cache the tests share (ctest runs each
  // test in its own process, side by side with -j, so this holds a lock). The base is made once
  // in a process from this build installed into a prefix. An unchanged install rebuilds from the
  // builder's layer cache (apt runs once); a different one starts from an empty cache, so the
  // cache holds one install's layers, not one per build.
  void build_stage_image(const std::string& image, fs::path* sqsh) {
    FileLock lock(shared_ / "lock");
    if (!base_made_) ASSERT_NO_FATAL_FAILURE(build_base());
    base_made_ = true;

    // The stage image, FROM nemokit-base found by its tag in the build cache. It adds no layer of
    // its own: it is the base's layers with the stage's config.
    Result r = run({nemokit_binary(), "build", image}, env());
    ASSERT_EQ(r.code, 0) << tail(r.err);
    *sqsh = cache_ / "containers" / (image + ".sqsh");
    ASSERT_TRUE(fs::exists(*sqsh));
    // 250 MB each; the next test's build writes it again from the layer cache.
    nemokit::test::remove_when_passed(*sqsh);
    auto built = nemokit::oci::open_image("oci:" + (cache_ / "oci" / image).string() + ":" + image);
    auto base = nemokit::oci::open_image("oci:" + (cache_ / "oci/nemokit-base").string() + ":nemokit-base");
    EXPECT_EQ(built.config["rootfs"]["diff_ids"], base.config["rootfs"]["diff_ids"]);
  }

  void build_base() {
    // A build tree is no install: its nemokit says so, naming what it lacks.
    Result r = run({nemokit_binary(), "build", "nemokit-base"}, env());
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.err.find("share/nemokit/containers/Dockerfile.base is missing"), std::string::npos) << r.err;

    prefix_ = shared_ / "install";
    fs::remove_all(prefix_);
    r = run({NEMOKIT_CMAKE_COMMAND, "--install", NEMOKIT_BINARY_DIR, "--prefix", prefix_.string()});
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    // The packages the install recorded must not name CUDA libraries: the CUDA module's come
    // from the CUDA base image (or are absent on a CPU machine), never from Debian.
    const std::string list = read_file(prefix_ / "share/nemokit/containers/debian-packages.txt");
    packages_ = package_list(list);
    EXPECT_NE(std::find(packages_.begin(), packages_.end(), "libc6"), packages_.end()) << list;
    EXPECT_EQ(list.find("cuda"), std::string::npos) << list;
    EXPECT_EQ(list.find("nccl"), std::string::npos) << list;

    const std::string digest = tree_digest(prefix_);
    if (!fs::exists(shared_ / "install.sha256") || read_file(shared_ / "install.sha256") != digest) {
      fs::remove_all(cache_);
      write_file(shared_ / "install.sha256", digest);
    }
    // The base, by the installed nemokit from its own install: Dockerfile.base over Debian 12
    // instead of the CUDA runtime. Its RUN fetches the recorded packages from Debian's mirror
    // through the sandbox's shared network.
    r = run({(prefix_ / "bin/nemokit").string(), "build", "nemokit-base", "--build-arg",
             "CUDA_BASE=docker-archive:" + (base_ / "base.tar").string()},
            env());
    ASSERT_EQ(r.code, 0) << tail(r.err);
  }

  // `nemokit exec IMAGE --mount WORK:/work --env ... -- ARGS...`, with the variables of
  // `extra_env` (NAME=VALUE) set in the container too.
  Result exec(const fs::path& sqsh, const fs::path& work, std::vector<std::string> args,
              const std::vector<std::string>& extra_env = {}) {
    std::vector<std::string> argv = {nemokit_binary(),
                                     "exec",
                                     sqsh.string(),
                                     "--mount",
                                     work.string() + ":/work",
                                     "--env",
                                     "NEMOKIT_JOB_ROOT=/work/jobs",
                                     "--env",
                                     "NEMOKIT_NUM_THREADS=2"};
    for (const auto& e : extra_env) argv.insert(argv.end(), {"--env", e});
    argv.push_back("--");
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, env());
  }

  // A tiny chat model in WORK/base-model, made by the image's own nemokit: a tokenizer of `vocab`
  // entries trained on TEXT (a path inside the image) with the chat template's markers as special
  // tokens, and `nemokit model init` (tests/core/tiny_chat_model.hpp's config).
  void make_model(const fs::path& sqsh, const fs::path& work, int vocab, const std::string& text) {
    Result r = exec(sqsh, work,
                    {"nemokit",
                     "tokenizer",
                     "train",
                     "--vocab-size",
                     std::to_string(vocab),
                     "--out",
                     "/work/tokenizer.json",
                     "--special",
                     "<|endoftext|>",
                     "--special",
                     "<|im_start|>",
                     "--special",
                     "<|im_end|>",
                     "--special",
                     "<think>",
                     "--special",
                     "</think>",
                     "--special",
                     "<tool_call>",
                     "--special",
                     "</tool_call>",
                     "--special",
                     "<tool_response>",
                     "--special",
                     "</tool_response>",
                     text});
    ASSERT_EQ(r.code, 0) << r.err;
    write_file(work / "model-config.json", nemokit::test::tiny_chat_model_config(vocab).dump());
    r = exec(sqsh, work,
             {"nemokit", "model", "init", "--config", "/work/model-config.json", "--out", "/work/base-model", "--seed", "3"});
    ASSERT_EQ(r.code, 0) << r.err;
    fs::copy_file(work / "tokenizer.json", work / "base-model/tokenizer.json");
  }

  fs::path base_, shared_, cache_;
  static inline bool base_made_ = false;
  static inline fs::path prefix_;                    // this build, installed
  static inline std::vector<std::string> packages_;  // its debian-packages.txt
};

TEST_F(StageImage, SftAndRlImagesOnTheDebianBaseRunTheirStages) {
  ASSERT_TRUE(fs::exists(chats_dir() / "train.jsonl")) << "run scripts/setup.sh: it writes " << chats_dir();
  fs::path sqsh;
  ASSERT_NO_FATAL_FAILURE(build_stage_image("nano3-sft", &sqsh));
  // The base holds the installed nemokit, and its RUN installed every recorded package.
  {
    SquashfsMount mount(sqsh);
    EXPECT_TRUE(read_file(mount.root() / "usr/bin/nemokit") == read_file(prefix_ / "bin/nemokit"));
  }
  auto status = dpkg_status(sqsh);
  for (const auto& package : packages_) EXPECT_EQ(status[package], "install ok installed") << package;
  // nemokit itself came as a Debian package that the installed nemokit wrote from its install:
  // dpkg installed it (checking its dependencies) and knows its files.
  EXPECT_EQ(status["nemokit"], "install ok installed");
  {
    SquashfsMount mount(sqsh);
    const std::string files = read_file(mount.root() / "var/lib/dpkg/info/nemokit.list");
    for (const char* f : {"/usr/bin/nemokit\n", "/usr/lib/nemokit/plugins/stage_sft.so\n", "/usr/lib/libnemokit_runtime.so.0\n"})
      EXPECT_NE(files.find(f), std::string::npos) << f << " not in nemokit.list:\n" << files;
  }

  // The image's nemokit is this build's, and it finds the package's plugins where it installed
  // them (recipes read their manifests; the SFT runs below load stage_sft's code).
  fs::path work = scratch_dir("stage-image/nano3");
  Result version = exec(sqsh, work, {"nemokit", "--version"});
  ASSERT_EQ(version.code, 0) << version.err;
  EXPECT_EQ(version.out, run({nemokit_binary(), "--version"}).out);
  Result recipes = exec(sqsh, work, {"nemokit", "recipes"});
  ASSERT_EQ(recipes.code, 0) << recipes.err;
  EXPECT_EQ(recipes.err.find("plugin problem"), std::string::npos) << recipes.err;
  for (auto triple : {"nano3 sft ", "super3 sft ", "nano3 pretrain "})
    EXPECT_NE(recipes.out.find(triple), std::string::npos) << triple << " missing from\n" << recipes.out;
  EXPECT_NE(recipes.out.find("stage_sft       nano3-sft"), std::string::npos) << recipes.out;
  // Without the leading `nemokit` too: the image's entrypoint is nemokit (`enroot start` form).
  Result plugins = exec(sqsh, work, {"plugins"});
  ASSERT_EQ(plugins.code, 0) << plugins.err;
  EXPECT_NE(plugins.out.find("/usr/lib/nemokit/plugins/stage_sft.so"), std::string::npos) << plugins.out;

  // A tiny model and a few chats in the mounted folder, made by the image's own nemokit.
  fs::create_directories(work / "chats");
  head(chats_dir() / "train.jsonl", work / "chats/train.jsonl", 300);
  head(chats_dir() / "val.jsonl", work / "chats/val.jsonl", 30);
  head(chats_dir() / "eval.jsonl", work / "chats/eval.jsonl", 40);
  ASSERT_NO_FATAL_FAILURE(make_model(sqsh, work, 500, "/work/chats/train.jsonl"));

  // A config over the stage's shipped tiny one (read from the plugin inside the image): the
  // mounted folder's model, chats and outputs, a few steps.
  write_file(work / "sft.toml",
             "defaults = [\"tiny\"]\n"
             "[model]\ninit_from = \"/work/base-model\"\n"
             "[data]\ninputs = [\"/work/chats/train.jsonl\"]\nvalidation = [\"/work/chats/val.jsonl\"]\n"
             "pack_size = 256\noutput = \"/work/data\"\n"
             "[train]\nmicro_batch_size = 2\nglobal_batch_size = 4\nmax_steps = 4\nwarmup_steps = 1\n"
             "eval_interval = 2\neval_steps = 2\nsave_interval = 2\nlog_interval = 1\n"
             "[eval]\nfile = \"/work/chats/eval.jsonl\"\nmax_examples = 4\nmax_new_tokens = 8\n"
             "[checkpoint]\ndir = \"/work/ckpt\"\n");
  Result r = exec(sqsh, work, {"nemokit", "run", "nano3", "sft", "-c", "/work/sft.toml"});
  ASSERT_EQ(r.code, 0) << tail(r.out) << tail(r.err);

  // What the run left on the host side of the mount.
  EXPECT_TRUE(fs::exists(work / "data/metadata.json"));
  EXPECT_TRUE(fs::exists(work / "ckpt/step_0000004/model.safetensors"));
  EXPECT_TRUE(fs::exists(work / "ckpt/step_0000004/trainer_state.json"));
  EXPECT_EQ(trained_steps(work, "nano3-sft"), (std::vector<int>{1, 2, 3, 4}));

  // super3's SFT runs from the same image (its recipe names nano3-sft).
  r = exec(sqsh, work,
           {"nemokit", "run", "super3", "sft", "-c", "/work/sft.toml", "train.max_steps=2", "data.output=/work/data-super3",
            "checkpoint.dir=/work/ckpt-super3"});
  ASSERT_EQ(r.code, 0) << tail(r.out) << tail(r.err);
  EXPECT_TRUE(fs::exists(work / "ckpt-super3/step_0000002/model.safetensors"));
  EXPECT_EQ(trained_steps(work, "super3-sft"), (std::vector<int>{1, 2}));

  // The RL image, FROM the same base, runs GRPO starting from the checkpoint the SFT image wrote,
  // on a few of the tasks scripts/setup.sh makes (plugins/stage_rl/corpus/make_tasks.sh).
  fs::path rl_sqsh;
  ASSERT_NO_FATAL_FAILURE(build_stage_image("nano3-rl", &rl_sqsh));
  fs::create_directories(work / "tasks");
  std::string inputs;
  for (const char* kind : {"arithmetic", "unscramble", "definitions", "capitals"}) {
    fs::path from = rl_tasks_dir() / (std::string(kind) + ".jsonl");
    ASSERT_TRUE(fs::exists(from)) << "run scripts/setup.sh: it writes " << from;
    head(from, work / "tasks" / (std::string(kind) + ".jsonl"), 40);
    inputs += std::string(inputs.empty() ? "" : ", ") + "\"/work/tasks/" + kind + ".jsonl\"";
  }
  write_file(work / "rl.toml",
             "defaults = [\"tiny\"]\n"
             "[model]\ninit_from = \"/work/ckpt\"\n"
             "[data]\ninputs = [" +
                 inputs +
                 "]\nsplit = \"80,10,10\"\noutput = \"/work/rl-data\"\n"
                 "[grpo]\nnum_prompts_per_step = 2\nnum_generations_per_prompt = 3\nmax_new_tokens = 6\n"
                 "[train]\nmax_steps = 2\neval_interval = 2\nsave_interval = 2\nmicro_batch_size = 4\nlog_interval = 1\n"
                 "[eval]\nmax_tasks = 4\nmax_new_tokens = 6\n"
                 "[checkpoint]\ndir = \"/work/rl-ckpt\"\n");
  r = exec(rl_sqsh, work, {"nemokit", "run", "nano3", "rl", "-c", "/work/rl.toml"});
  ASSERT_EQ(r.code, 0) << tail(r.out) << tail(r.err);
  EXPECT_TRUE(fs::exists(work / "rl-ckpt/step_0000002/model.safetensors"));
  EXPECT_EQ(trained_steps(work, "nano3-rl"), (std::vector<int>{1, 2}));
}

TEST_F(StageImage, Omni3SftAndRlImagesOnTheSameBaseTrainTheEncodersAndRunTheRlSubStages) {
  const fs::path chats = nemokit::test::omni_chats_dir();
  ASSERT_TRUE(fs::exists(chats / "rl-vision.jsonl")) << "run scripts/setup.sh: it writes " << chats;
  fs::path sqsh;
  ASSERT_NO_FATAL_FAILURE(build_stage_image("omni3-sft", &sqsh));
  // Images are decoded by libnemokit_runtime through libpng and libjpeg: the install recorded
  // their packages, and the base's apt installed them into the image.
  auto status = dpkg_status(sqsh);
  for (const char* lib : {"libpng", "libjpeg"}) {
    std::string package;
    for (const auto& name : packages_)
      if (name.rfind(lib, 0) == 0) package = name;
    EXPECT_FALSE(package.empty()) << lib << " is not among the recorded packages";
    if (!package.empty()) EXPECT_EQ(status[package], "install ok installed") << package;
  }

  // A few chats of each kind (images, speech, video) with their files, and a tiny language model
  // made by the image's own nemokit, in the mounted folder.
  fs::path work = scratch_dir("stage-image/omni3");
  fs::create_directories(work / "chats");
  nemokit::test::take_omni_chats(chats / "train.jsonl", work / "chats", "train.jsonl", 40);
  nemokit::test::take_omni_chats(chats / "val.jsonl", work / "chats", "val.jsonl", 4);
  nemokit::test::take_omni_chats(chats / "eval.jsonl", work / "chats", "eval.jsonl", 3);
  ASSERT_NO_FATAL_FAILURE(make_model(sqsh, work, 600, "/work/chats/train.jsonl"));

  // The stage's shipped tiny config (small encoders trained beside the frozen language model)
  // over the mounted folder's model, chats and outputs, a few steps, saved at the end.
  write_file(work / "omni.toml",
             "defaults = [\"tiny\"]\n"
             "[model]\ninit_from = \"/work/base-model\"\n"
             "[data]\ninputs = [\"/work/chats/train.jsonl\"]\nvalidation = [\"/work/chats/val.jsonl\"]\n"
             "pack_size = 256\noutput = \"/work/data\"\n"
             "[train]\nmicro_batch_size = 2\nglobal_batch_size = 2\nmax_steps = 4\nwarmup_steps = 1\n"
             "eval_interval = 4\neval_steps = 1\nsave_interval = 4\nlog_interval = 1\n"
             "[eval]\nfile = \"/work/chats/eval.jsonl\"\nmax_examples = 4\n"
             "[checkpoint]\ndir = \"/work/ckpt\"\n");
  Result r = exec(sqsh, work, {"nemokit", "run", "omni3", "sft", "-c", "/work/omni.toml"});
  ASSERT_EQ(r.code, 0) << tail(r.out) << tail(r.err);
  EXPECT_NE((r.out + r.err).find("2 encoder(s) added"), std::string::npos) << tail(r.out) << tail(r.err);

  // What the run left on the host side of the mount: the packed media beside the tokens, a
  // checkpoint whose config carries the encoders, a loss for every step.
  for (const char* f : {"tiles.npy", "audio.npy"}) EXPECT_TRUE(fs::exists(work / "data/train" / f)) << f;
  fs::path ckpt = work / "ckpt/step_0000004";
  ASSERT_TRUE(fs::exists(ckpt / "config.json"));
  auto config = nlohmann::json::parse(read_file(ckpt / "config.json"));
  ASSERT_TRUE(config.contains("vision_config")) << config.dump(1);
  EXPECT_EQ(config["vision_config"]["patch_size"], 4);
  EXPECT_EQ(config["audio_config"]["num_mel_bins"], 64);
  EXPECT_TRUE(fs::exists(ckpt / "model.safetensors"));
  EXPECT_EQ(trained_steps(work, "omni3-sft"), (std::vector<int>{1, 2, 3, 4}));

  // The omni3 RL image, FROM the same base, runs the three RL sub-stages in order with their
  // shipped tiny configs, MPO from the checkpoint the SFT image just wrote and each after it from
  // the one before (the tiny configs chain through NEMOKIT_CHECKPOINT_DIR), two steps each: the
  // vision tasks (a few of rl-vision.jsonl with their images) beside the chats, a few of each
  // text task kind (plugins/stage_rl/corpus/make_tasks.sh) in NEMOKIT_RL_TASKS_DIR.
  fs::path rl_sqsh;
  ASSERT_NO_FATAL_FAILURE(build_stage_image("omni3-rl", &rl_sqsh));
  nemokit::test::take_omni_chats(chats / "rl-vision.jsonl", work / "chats", "rl-vision.jsonl", 30);
  fs::create_directories(work / "tasks");
  for (const char* kind : {"arithmetic", "unscramble", "definitions", "capitals"}) {
    fs::path from = rl_tasks_dir() / (std::string(kind) + ".jsonl");
    ASSERT_TRUE(fs::exists(from)) << "run scripts/setup.sh: it writes " << from;
    head(from, work / "tasks" / (std::string(kind) + ".jsonl"), 20);
  }
  const std::vector<std::string> rl_env = {"NEMOKIT_CHECKPOINT_DIR=/work/rl-ckpt", "NEMOKIT_DATA_DIR=/work/rl-data",
                                           "NEMOKIT_OMNI_CHATS_DIR=/work/chats", "NEMOKIT_RL_TASKS_DIR=/work/tasks"};
  const std::vector<std::string> steps = {"train.max_steps=2", "train.eval_interval=2", "train.save_interval=2"};
  struct SubStage {
    const char* name;
    std::string from;  // the checkpoint it starts from, as its log says
  };
  for (const SubStage& s : {SubStage{"mpo", "MPO from /work/ckpt"}, SubStage{"text", "GRPO from /work/rl-ckpt/omni3-rl-mpo-tiny"},
                            SubStage{"vision", "GRPO from /work/rl-ckpt/omni3-rl-text-tiny"}}) {
    std::vector<std::string> args = {"nemokit", "run", "omni3", "rl", s.name, "-c", "tiny"};
    if (std::string(s.name) == "mpo") args.push_back("model.init_from=/work/ckpt");
    args.insert(args.end(), steps.begin(), steps.end());
    r = exec(rl_sqsh, work, args, rl_env);
    ASSERT_EQ(r.code, 0) << s.name << "\n" << tail(r.out) << tail(r.err);
    EXPECT_NE((r.out + r.err).find(s.from), std::string::npos) << s.name << "\n" << tail(r.out) << tail(r.err);
    const std::string recipe = std::string("omni3-rl-") + s.name;
    fs::path step = work / "rl-ckpt" / (recipe + "-tiny") / "step_0000002";
    ASSERT_TRUE(fs::exists(step / "config.json")) << step;
    EXPECT_TRUE(nlohmann::json::parse(read_file(step / "config.json")).contains("vision_config")) << s.name;
    EXPECT_TRUE(fs::exists(step / "model.safetensors")) << step;
    EXPECT_EQ(trained_steps(work, recipe), (std::vector<int>{1, 2})) << s.name;
  }
  // MPO: the held-out chosen-minus-rejected margin before training and after step 2.
  std::vector<int> margins;
  for (const auto& m : job_metrics(work, "omni3-rl-mpo"))
    if (m.contains("val_logp_margin")) margins.push_back(m["step"].get<int>());
  EXPECT_EQ(margins, (std::vector<int>{0, 2}));
  // vision: a held-out reward per task kind, the images through the encoder, before training
  // and after step 2.
  nlohmann::json last;
  std::vector<int> evals;
  for (const auto& m : job_metrics(work, "omni3-rl-vision"))
    if (m.contains("val_reward")) last = m, evals.push_back(m["step"].get<int>());
  EXPECT_EQ(evals, (std::vector<int>{0, 2}));
  ASSERT_TRUE(last.contains("val_reward"));
  int kinds = 0;
  for (const char* kind : {"fashion", "digits", "digit_sum"}) kinds += last["val_reward"].contains(kind);
  EXPECT_GE(kinds, 1) << last.dump();
}

}  // namespace
