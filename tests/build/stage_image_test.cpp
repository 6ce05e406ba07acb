// The SFT and RL stage images, built and run as a user does: this build's .deb (cpack), the base image
// from containers/Dockerfile.base over the Debian test base (make_test_base.sh) in place of the
// CUDA runtime, whose RUN installs the .deb and its Depends from Debian's mirror; then `nemokit
// build nano3-sft` FROM that base by its tag, and `nemokit exec` running `nemokit run nano3 sft`
// inside the image on a tiny model and a few chats in a mounted folder; then `nemokit build
// nano3-rl` and GRPO inside it from the checkpoint the SFT run left there.
// Needs root (overlayfs, namespaces, loop mounts) and Debian's mirror; skipped without root.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "build_test_support.hpp"
#include "nemokit/oci/image.hpp"

using namespace buildtest;

namespace {

fs::path chats_dir() {
    if (const char* d = std::getenv("NEMOKIT_SFT_CHATS_DIR")) return d;
    const char* home = std::getenv("HOME");
    return fs::path(home ? home : "/") / ".cache/nemokit/sft-chats";
}

fs::path rl_tasks_dir() {
    const char* home = std::getenv("HOME");
    return fs::path(home ? home : "/") / ".cache/nemokit/rl-tasks";
}

void head(const fs::path& from, const fs::path& to, int lines) {
    std::ifstream in(from);
    std::ofstream out(to);
    std::string line;
    for (int i = 0; i < lines && std::getline(in, line); ++i) out << line << "\n";
}

// The last `n` characters: build logs are long, their end says what failed.
std::string tail(const std::string& s, size_t n = 4000) { return s.size() > n ? s.substr(s.size() - n) : s; }

// The steps with a training loss in the metrics.jsonl of the one job under WORK/jobs whose
// folder name ends with `recipe` (job folders are TIMESTAMP-FAMILY-STAGE).
std::vector<int> trained_steps(const fs::path& work, const std::string& recipe) {
    std::vector<fs::path> jobs;
    for (const auto& e : fs::directory_iterator(work / "jobs"))
        if (e.path().filename().string().ends_with("-" + recipe)) jobs.push_back(e.path());
    EXPECT_EQ(jobs.size(), 1u) << recipe;
    if (jobs.size() != 1) return {};
    std::ifstream metrics(jobs[0] / "metrics.jsonl");
    EXPECT_TRUE(metrics) << jobs[0] / "metrics.jsonl";
    std::vector<int> steps;
    for (std::string line; std::getline(metrics, line);) {
        auto m = nlohmann::json::parse(line);
        if (!m.contains("loss")) continue;
        steps.push_back(m["step"].get<int>());
        EXPECT_TRUE(std::isfinite(m["loss"].get<double>())) << line;
    }
    return steps;
}

class StageImage : public ::testing::Test {
protected:
    void SetUp() override {
        if (geteuid() != 0) GTEST_SKIP() << "builds and nemokit exec need root (mounts and namespaces)";
        ASSERT_TRUE(fs::exists(chats_dir() / "train.jsonl")) << "run scripts/setup.sh: it writes " << chats_dir();
        base_ = test_base_dir();
        dir_ = scratch_dir("stage-image");
        cache_ = dir_ / "cache";
    }

    std::vector<std::string> env() { return {"NEMOKIT_BUILD_CACHE_DIR=" + cache_.string()}; }

    // `nemokit exec IMAGE --mount WORK:/work --env ... -- ARGS...`
    Result exec(const fs::path& sqsh, const fs::path& work, std::vector<std::string> args) {
        std::vector<std::string> argv = {nemokit_binary(), "exec", sqsh.string(), "--mount", work.string() + ":/work",
                                         "--env", "NEMOKIT_JOB_ROOT=/work/jobs", "--env", "NEMOKIT_NUM_THREADS=2",
                                         "--"};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv, env());
    }

    fs::path base_, dir_, cache_;
};

TEST_F(StageImage, SftAndRlImagesOnTheDebianBaseRunTheirStages) {
    // This build's package, made the way packaging/ documents it.
    fs::path debs = dir_ / "deb";
    Result r = run({NEMOKIT_CPACK_COMMAND, "-G", "DEB", "--config", std::string(NEMOKIT_BINARY_DIR) + "/CPackConfig.cmake",
                    "-B", debs.string()});
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    fs::path deb;
    for (const auto& e : fs::directory_iterator(debs))
        if (e.path().extension() == ".deb") deb = e.path();
    ASSERT_FALSE(deb.empty()) << "cpack wrote no .deb into " << debs << "\n" << r.out;
    // The package must not name the CUDA libraries it opens at run time: they come from the CUDA
    // base image (or are absent on a CPU machine), never from Debian.
    Result fields = run({"dpkg-deb", "--field", deb.string(), "Depends"});
    ASSERT_EQ(fields.code, 0) << fields.err;
    EXPECT_EQ(fields.out.find("cuda"), std::string::npos) << fields.out;
    EXPECT_EQ(fields.out.find("nccl"), std::string::npos) << fields.out;

    // The base: Dockerfile.base over Debian 12 instead of the CUDA runtime. Its RUN fetches the
    // package's dependencies from Debian's mirror through the sandbox's shared network.
    r = run({nemokit_binary(), "build", "-f", std::string(NEMOKIT_SOURCE_DIR) + "/containers/Dockerfile.base", "--context",
             debs.string(), "--tag", "nemokit-base", "--build-arg", "CUDA_BASE=docker-archive:" + (base_ / "base.tar").string(),
             "--build-arg", "NEMOKIT_DEB=" + deb.filename().string()},
            env());
    ASSERT_EQ(r.code, 0) << tail(r.err);
    EXPECT_NE(r.err.find("Setting up nemokit"), std::string::npos) << tail(r.err);

    // The stage image, FROM nemokit-base found by its tag in the build cache.
    r = run({nemokit_binary(), "build", "nano3-sft"}, env());
    ASSERT_EQ(r.code, 0) << tail(r.err);
    fs::path sqsh = cache_ / "containers" / "nano3-sft.sqsh";
    ASSERT_TRUE(fs::exists(sqsh));
    auto image = nemokit::oci::open_image("oci:" + (cache_ / "oci/nano3-sft").string() + ":nano3-sft");
    auto base = nemokit::oci::open_image("oci:" + (cache_ / "oci/nemokit-base").string() + ":nemokit-base");
    // The stage image adds no layer of its own: it is the base's layers with the stage's config.
    EXPECT_EQ(image.config["rootfs"]["diff_ids"], base.config["rootfs"]["diff_ids"]);

    // The image's nemokit is this build's, and it finds the package's plugins where it installed
    // them (recipes read their manifests; the SFT runs below load stage_sft's code).
    fs::path work = dir_ / "work";
    fs::create_directories(work);
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
    r = exec(sqsh, work,
             {"nemokit", "tokenizer", "train", "--vocab-size", "500", "--out", "/work/tokenizer.json", "--special",
              "<|endoftext|>", "--special", "<|im_start|>", "--special", "<|im_end|>", "--special", "<think>", "--special",
              "</think>", "--special", "<tool_call>", "--special", "</tool_call>", "--special", "<tool_response>",
              "--special", "</tool_response>", "/work/chats/train.jsonl"});
    ASSERT_EQ(r.code, 0) << r.err;
    nlohmann::json cfg = {{"hybrid_override_pattern", "ME*-"}, {"hidden_size", 32}, {"vocab_size", 500},
                          {"mamba_num_heads", 4}, {"mamba_head_dim", 16}, {"ssm_state_size", 8}, {"n_groups", 2},
                          {"conv_kernel", 4}, {"chunk_size", 16}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                          {"head_dim", 8}, {"intermediate_size", 64}, {"n_routed_experts", 4},
                          {"num_experts_per_tok", 2}, {"moe_intermediate_size", 16},
                          {"moe_shared_expert_intermediate_size", 32}, {"tie_word_embeddings", true}};
    write_file(work / "model-config.json", cfg.dump());
    r = exec(sqsh, work, {"nemokit", "model", "init", "--config", "/work/model-config.json", "--out", "/work/base-model", "--seed", "3"});
    ASSERT_EQ(r.code, 0) << r.err;
    fs::copy_file(work / "tokenizer.json", work / "base-model/tokenizer.json");

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
    r = exec(sqsh, work, {"nemokit", "run", "nano3", "sft", "-c", "/work/sft.toml"});
    ASSERT_EQ(r.code, 0) << tail(r.out) << tail(r.err);

    // What the run left on the host side of the mount.
    EXPECT_TRUE(fs::exists(work / "data/metadata.json"));
    EXPECT_TRUE(fs::exists(work / "ckpt/step_0000004/model.safetensors"));
    EXPECT_TRUE(fs::exists(work / "ckpt/step_0000004/trainer_state.json"));
    EXPECT_EQ(trained_steps(work, "nano3-sft"), (std::vector<int>{1, 2, 3, 4}));

    // super3's SFT runs from the same image (its recipe names nano3-sft).
    r = exec(sqsh, work, {"nemokit", "run", "super3", "sft", "-c", "/work/sft.toml", "train.max_steps=2",
                          "data.output=/work/data-super3", "checkpoint.dir=/work/ckpt-super3"});
    ASSERT_EQ(r.code, 0) << tail(r.out) << tail(r.err);
    EXPECT_TRUE(fs::exists(work / "ckpt-super3/step_0000002/model.safetensors"));
    EXPECT_EQ(trained_steps(work, "super3-sft"), (std::vector<int>{1, 2}));

    // The RL image, FROM the same base, runs GRPO starting from the checkpoint the SFT image wrote,
    // on a few of the tasks scripts/setup.sh makes (plugins/stage_rl/corpus/make_tasks.sh).
    r = run({nemokit_binary(), "build", "nano3-rl"}, env());
    ASSERT_EQ(r.code, 0) << tail(r.err);
    fs::path rl_sqsh = cache_ / "containers" / "nano3-rl.sqsh";
    ASSERT_TRUE(fs::exists(rl_sqsh));
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
               "[data]\ninputs = [" + inputs + "]\nsplit = \"80,10,10\"\noutput = \"/work/rl-data\"\n"
               "[grpo]\nnum_prompts_per_step = 2\nnum_generations_per_prompt = 3\nmax_new_tokens = 6\n"
               "[train]\nmax_steps = 2\neval_interval = 2\nsave_interval = 2\nmicro_batch_size = 4\nlog_interval = 1\n"
               "[eval]\nmax_tasks = 4\nmax_new_tokens = 6\n"
               "[checkpoint]\ndir = \"/work/rl-ckpt\"\n");
    r = exec(rl_sqsh, work, {"nemokit", "run", "nano3", "rl", "-c", "/work/rl.toml"});
    ASSERT_EQ(r.code, 0) << tail(r.out) << tail(r.err);
    EXPECT_TRUE(fs::exists(work / "rl-ckpt/step_0000002/model.safetensors"));
    EXPECT_EQ(trained_steps(work, "nano3-rl"), (std::vector<int>{1, 2}));
}

}  // namespace
