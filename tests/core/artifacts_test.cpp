// The artifact store as users and stages meet it: versions and `latest` written by real
// publishers (two processes racing on one name), references in configs resolved by `--dry-run`,
// the errors that name a missing reference and list what exists, and the lineage of a model
// trained by the real pretraining stage back to its data and raw text, with digests that follow
// the data.
#include "bible_slice.hpp"
#include "run_cli.hpp"

#include "nemokit/runtime/artifacts.hpp"
#include "nemokit/runtime/sha256.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>

namespace fs = std::filesystem;
namespace art = nemokit::rt::artifacts;
using nlohmann::json;
using nemokit::test::read_file;
using nemokit::test::run_cli;

namespace {

// A folder of files standing in for a stage's output.
fs::path make_files(const fs::path& dir, const std::string& text) {
  fs::create_directories(dir / "sub");
  std::ofstream(dir / "a.bin") << text;
  std::ofstream(dir / "sub" / "b.txt") << "second file\n";
  return dir;
}

art::Artifact publish(const fs::path& root, const std::string& name, const fs::path& path, json fields = json::object(),
                      std::vector<std::string> used = {}) {
  art::PublishRequest r;
  r.name = name;
  r.type = "PretrainBlendsArtifact";
  r.path = path;
  r.fields = std::move(fields);
  r.used = std::move(used);
  r.producer = "artifacts_test";
  r.config = {{"data", {{"seq_length", 32}}}};
  return art::Store(root).publish(r);
}

std::string env_for(const fs::path& dir) {
  return "NEMOKIT_ARTIFACTS_ROOT='" + (dir / "store").string() + "' NEMOKIT_JOB_ROOT='" + (dir / "jobs").string() +
         "' NEMOKIT_ENV='" + (dir / "env.toml").string() + "'";
}

}  // namespace

// The suite never writes into the user's store: each test process has one of its own under the
// temporary area (tests/support/own_artifact_store.cpp), which a nemokit it starts without naming
// a store uses.
TEST(Artifacts, TestsPublishIntoAStoreOfTheirOwn) {
  const char* root = std::getenv("NEMOKIT_ARTIFACTS_ROOT");
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(fs::path(root).parent_path(), fs::temp_directory_path());
  EXPECT_EQ(fs::path(root).filename(), "nemokit-test-" + std::to_string(::getpid()) + "-artifacts");
  EXPECT_TRUE(fs::is_directory(root));
  auto r = run_cli("artifacts list");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "no artifacts in " + std::string(root) + "\n");
}

TEST(Artifacts, PublishVersionsLatestAndResolve) {
  fs::path dir = nemokit::test::temp_folder("art-basic");
  std::ofstream(dir / "env.toml") << "";
  const fs::path root = dir / "store";
  fs::path files = make_files(dir / "blend", "one");
  art::Artifact v1 = publish(root, "blend", files, {{"total_tokens", 100}});
  EXPECT_EQ(v1.ref(), "blend:v1");
  EXPECT_TRUE(nemokit::rt::is_sha256_digest(v1.digest())) << v1.digest();
  EXPECT_EQ(read_file(root / "blend" / "latest"), "v1\n");
  EXPECT_TRUE(fs::exists(root / "blend" / "v1" / "metadata.json"));
  json manifest = json::parse(read_file(root / "blend" / "v1" / "manifest.json"));
  ASSERT_EQ(manifest.size(), 2u);
  EXPECT_EQ(manifest[0]["path"], "a.bin");
  EXPECT_EQ(manifest[1]["path"], "sub/b.txt");

  // The same bytes give the same digest; other bytes another one.
  art::Artifact same = publish(root, "blend", files);
  EXPECT_EQ(same.ref(), "blend:v2");
  EXPECT_EQ(same.digest(), v1.digest());
  std::ofstream(files / "a.bin") << "two";
  art::Artifact v3 = publish(root, "blend", files, {}, {"blend:v1"});
  EXPECT_NE(v3.digest(), v1.digest());
  EXPECT_EQ(read_file(root / "blend" / "latest"), "v3\n");

  art::Store store(root);
  EXPECT_EQ(store.resolve("blend").version, 3);
  EXPECT_EQ(store.resolve("blend:latest").version, 3);
  EXPECT_EQ(store.resolve("blend:v1").metadata["total_tokens"], 100);
  ASSERT_EQ(v3.used(), std::vector<std::string>{"blend:v1"});
  EXPECT_EQ(v3.metadata["tracking"]["used_artifacts"][0]["content_digest"], v1.digest());
  EXPECT_EQ(v3.metadata["config"]["data"]["seq_length"], 32);
  // The path as published, found again while its files are as they were.
  auto found = store.find_by_path(files);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->ref(), "blend:v3");
  std::ofstream(files / "a.bin") << "three!";
  EXPECT_FALSE(store.find_by_path(files));

  // The CLI reads the same store.
  auto list = run_cli("artifacts list", env_for(dir));
  ASSERT_EQ(list.rc, 0) << list.err;
  EXPECT_NE(list.out.find("blend:v3 (latest)"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("blend:v1"), std::string::npos) << list.out;
  auto show = run_cli("artifacts show blend:v1", env_for(dir));
  ASSERT_EQ(show.rc, 0) << show.err;
  EXPECT_NE(show.out.find(v1.digest()), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("total_tokens"), std::string::npos) << show.out;
  auto js = run_cli("artifacts show blend --json", env_for(dir));
  ASSERT_EQ(js.rc, 0) << js.err;
  EXPECT_EQ(json::parse(js.out)["version"], 3);
  auto lin = run_cli("artifacts lineage blend", env_for(dir));
  ASSERT_EQ(lin.rc, 0) << lin.err;
  EXPECT_NE(lin.out.find("└─ blend:v1  PretrainBlendsArtifact  " + v1.digest()), std::string::npos) << lin.out;

  // env.toml's [artifacts] root is the store when the variable is not set.
  std::ofstream(dir / "env2.toml") << "[artifacts]\nroot = \"" << root.string() << "\"\n";
  auto via_env = run_cli("artifacts list", "-u NEMOKIT_ARTIFACTS_ROOT NEMOKIT_ENV='" + (dir / "env2.toml").string() + "'");
  ASSERT_EQ(via_env.rc, 0) << via_env.err;
  EXPECT_NE(via_env.out.find("# " + root.string()), std::string::npos) << via_env.out;
}

TEST(Artifacts, TwoProcessesPublishingOneNameLoseNothing) {
  fs::path dir = nemokit::test::temp_folder("art-race");
  const fs::path root = dir / "store";
  constexpr int kEach = 25;
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  std::vector<pid_t> kids;
  for (int w = 0; w < 2; ++w) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {  // a publisher: waits for the start, then publishes kEach versions
      ::close(go[1]);
      char c;
      if (::read(go[0], &c, 1) != 0) ::_exit(3);
      int rc = 0;
      try {
        for (int i = 0; i < kEach; ++i) {
          fs::path files = make_files(dir / ("w" + std::to_string(w) + "-" + std::to_string(i)), std::to_string(w * 1000 + i));
          publish(root, "raced", files, {{"writer", w}, {"i", i}});
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "writer %d: %s\n", w, e.what());
        rc = 1;
      }
      ::_exit(rc);
    }
    kids.push_back(pid);
  }
  ::close(go[0]);
  ::close(go[1]);  // both start now
  for (pid_t k : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(k, &status, 0), k);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a publisher failed (see its stderr)";
  }
  art::Store store(root);
  std::vector<int64_t> versions = store.versions("raced");
  ASSERT_EQ(versions.size(), size_t(2 * kEach));
  EXPECT_EQ(versions.front(), 1);
  EXPECT_EQ(versions.back(), 2 * kEach);
  std::set<std::pair<int, int>> published;
  for (int64_t v : versions) {
    art::Artifact a = store.get(art::Ref{"raced", v});
    EXPECT_EQ(a.metadata["version"], v);
    published.insert({a.metadata["writer"].get<int>(), a.metadata["i"].get<int>()});
  }
  EXPECT_EQ(published.size(), size_t(2 * kEach));  // every publish has its own version
  EXPECT_EQ(read_file(root / "raced" / "latest"), "v" + std::to_string(2 * kEach) + "\n");
  for (const auto& e : fs::directory_iterator(root / "raced"))
    EXPECT_FALSE(e.path().filename().string().starts_with(".")) << "left behind: " << e.path();
}

TEST(Artifacts, ConfigReferencesResolveInDryRunAndMissingOnesNameWhatExists) {
  fs::path dir = nemokit::test::temp_folder("art-refs");
  std::ofstream(dir / "env.toml") << "";
  const fs::path root = dir / "store";
  fs::path a = make_files(dir / "blend-a", "a"), b = make_files(dir / "blend-b", "b");
  publish(root, "blend", a, {{"total_tokens", 7}});
  publish(root, "blend", b, {{"total_tokens", 9}});
  fs::path cfg = dir / "c.toml";
  std::ofstream(cfg) << "defaults = [\"tiny\"]\n[data]\noutput = \"blend:latest\"\n"
                        "[checkpoint]\ndir = \"${art:blend:v1,path}/ckpt\"\n";
  auto r = run_cli("run nano3 pretrain -c '" + cfg.string() + "' --dry-run", env_for(dir));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("# artifact data.output = \"blend:latest\" -> blend:v2: " + b.string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("output = \"" + b.string() + "\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("dir = \"" + (a / "ckpt").string() + "\""), std::string::npos) << r.out;
  // A whole-value placeholder of a number becomes that number.
  std::ofstream(dir / "n.toml") << "defaults = [\"tiny\"]\n[train]\nmax_steps = \"${art:blend:v2,total_tokens}\"\n";
  auto n = run_cli("run nano3 pretrain -c '" + (dir / "n.toml").string() + "' --dry-run", env_for(dir));
  ASSERT_EQ(n.rc, 0) << n.err;
  EXPECT_NE(n.out.find("max_steps = 9\n"), std::string::npos) << n.out;
  // v1 by name.
  auto v1 = run_cli("run nano3 pretrain -c '" + cfg.string() + "' data.output=blend:v1 --dry-run", env_for(dir));
  ASSERT_EQ(v1.rc, 0) << v1.err;
  EXPECT_NE(v1.out.find("-> blend:v1: " + a.string()), std::string::npos) << v1.out;

  // Missing: the reference, the key and what the store holds.
  auto missing = run_cli("run nano3 pretrain -c '" + cfg.string() + "' data.output=nope:latest --dry-run", env_for(dir));
  EXPECT_EQ(missing.rc, 2);
  EXPECT_NE(missing.err.find("data.output"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("nope:latest"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("blend:v1..v2"), std::string::npos) << missing.err;
  auto version = run_cli("run nano3 pretrain -c '" + cfg.string() + "' data.output=blend:v7 --dry-run", env_for(dir));
  EXPECT_EQ(version.rc, 2);
  EXPECT_NE(version.err.find("blend:v7: no such version"), std::string::npos) << version.err;
  auto field = run_cli("run nano3 pretrain -c '" + cfg.string() + "' 'data.output=${art:blend,nofield}' --dry-run", env_for(dir));
  EXPECT_EQ(field.rc, 2);
  EXPECT_NE(field.err.find("has no field \"nofield\""), std::string::npos) << field.err;
  auto show = run_cli("artifacts show other", env_for(dir));
  EXPECT_EQ(show.rc, 2);
  EXPECT_NE(show.err.find("artifact other:latest: no such name"), std::string::npos) << show.err;
  EXPECT_NE(show.err.find("blend:v1..v2"), std::string::npos) << show.err;
  auto lineage = run_cli("artifacts lineage blend:v3", env_for(dir));
  EXPECT_EQ(lineage.rc, 2);
  EXPECT_NE(lineage.err.find("blend:v3: no such version"), std::string::npos) << lineage.err;
  auto bad_env = run_cli("artifacts list", "-u NEMOKIT_ARTIFACTS_ROOT NEMOKIT_ENV='" + (dir / "bad.toml").string() + "'");
  std::ofstream(dir / "bad.toml") << "[artifacts]\nroots = \"/x\"\n";
  bad_env = run_cli("artifacts list", "-u NEMOKIT_ARTIFACTS_ROOT NEMOKIT_ENV='" + (dir / "bad.toml").string() + "'");
  EXPECT_EQ(bad_env.rc, 2);
  EXPECT_NE(bad_env.err.find("[artifacts]: unknown key \"roots\""), std::string::npos) << bad_env.err;
}

// Data prep and a few training steps of the real pretraining stage: the model's lineage names
// the data artifact with its digest and the raw text; new text gives new data with another digest;
// then two SFT steps from that model: pretrain -> SFT, back to both kinds of raw files.
TEST(Artifacts, ModelLineageNamesItsDataAndDigestsFollowTheData) {
  if (!fs::exists(nemokit::test::kjv_bible())) GTEST_FAIL() << nemokit::test::kjv_bible() << " missing: run scripts/setup.sh";
  fs::path dir = nemokit::test::temp_folder("art-lineage");
  std::ofstream(dir / "env.toml") << "";
  const fs::path text = nemokit::test::write_bible_slice(dir);
  fs::path cfg = dir / "small.toml";
  std::ofstream(cfg) << "defaults = [\"tiny\"]\n"
                        "[model]\nhidden_size = 64\nmamba_num_heads = 4\nmamba_head_dim = 32\nssm_state_size = 16\n"
                        "chunk_size = 16\nnum_attention_heads = 4\nnum_key_value_heads = 2\nhead_dim = 16\n"
                        "intermediate_size = 128\nn_routed_experts = 4\nnum_experts_per_tok = 2\n"
                        "moe_intermediate_size = 64\nmoe_shared_expert_intermediate_size = 64\nvocab_size = 512\n"
                        "[train]\nseq_length = 32\nmicro_batch_size = 4\nglobal_batch_size = 8\nmax_steps = 8\n"
                        "warmup_steps = 1\neval_interval = 0\neval_steps = 1\nsave_interval = 0\nlog_interval = 1\n"
                        "sample_tokens = 0\n"
                        "[data]\ninputs = [\"" + text.string() + "\"]\nname = \"bible-blend\"\n"
                        "train_tokenizer = { vocab_size = 512, min_frequency = 2, special_tokens = [\"<|endoftext|>\", "
                        "\"<|im_start|>\", \"<|im_end|>\", \"<think>\", \"</think>\", \"<tool_call>\", \"</tool_call>\", "
                        "\"<tool_response>\", \"</tool_response>\"] }\n"
                        "seq_length = 32\noutput = \"" + (dir / "data").string() + "\"\n"
                        "[artifact]\nname = \"bible-model\"\n";
  const std::string env = env_for(dir);
  auto prep = run_cli("data prep nano3 pretrain -c '" + cfg.string() + "'", env);
  ASSERT_EQ(prep.rc, 0) << prep.err;
  EXPECT_NE((prep.out + prep.err).find("published artifact bible-blend:v1"), std::string::npos) << prep.out << prep.err;
  auto train = run_cli("run nano3 pretrain -c '" + cfg.string() + "' train.max_steps=2 checkpoint.dir=" + (dir / "ckpt1").string(), env);
  ASSERT_EQ(train.rc, 0) << train.err;
  art::Store store(dir / "store");
  art::Artifact data1 = store.resolve("bible-blend:v1");
  art::Artifact model1 = store.resolve("bible-model");
  EXPECT_EQ(model1.type(), "ModelArtifact");
  EXPECT_EQ(model1.metadata["step"], 2);
  EXPECT_TRUE(model1.metadata["final_loss"].is_number());
  EXPECT_EQ(model1.used(), std::vector<std::string>{"bible-blend:v1"});
  EXPECT_EQ(data1.metadata["total_tokens"].get<int64_t>() > 0, true);

  auto lin = run_cli("artifacts lineage bible-model --svg '" + (dir / "lineage.svg").string() + "'", env);
  ASSERT_EQ(lin.rc, 0) << lin.err;
  EXPECT_NE(lin.out.find("bible-model:v1  ModelArtifact"), std::string::npos) << lin.out;
  EXPECT_NE(lin.out.find("└─ bible-blend:v1  PretrainBlendsArtifact  " + data1.digest()), std::string::npos) << lin.out;
  EXPECT_NE(lin.out.find("raw " + text.string()), std::string::npos) << lin.out;
  const std::string svg = read_file(dir / "lineage.svg");
  EXPECT_TRUE(svg.starts_with("<svg")) << svg.substr(0, 200);
  EXPECT_NE(svg.find("bible-blend:v1"), std::string::npos);

  // Other text: new data, another digest, and the next model's lineage names it.
  { std::ofstream(text, std::ios::app) << "\nAnd the LORD spake unto the tester, saying, the data hath changed.\n"; }
  prep = run_cli("data prep nano3 pretrain -c '" + cfg.string() + "'", env);
  ASSERT_EQ(prep.rc, 0) << prep.err;
  train = run_cli("run nano3 pretrain -c '" + cfg.string() + "' train.max_steps=2 checkpoint.dir=" + (dir / "ckpt2").string(), env);
  ASSERT_EQ(train.rc, 0) << train.err;
  art::Artifact data2 = store.resolve("bible-blend");
  EXPECT_EQ(data2.version, 2);
  EXPECT_NE(data2.digest(), data1.digest());
  art::Artifact model2 = store.resolve("bible-model");
  EXPECT_EQ(model2.version, 2);
  EXPECT_EQ(model2.used(), std::vector<std::string>{"bible-blend:v2"});
  lin = run_cli("artifacts lineage bible-model:v2", env);
  ASSERT_EQ(lin.rc, 0) << lin.err;
  EXPECT_NE(lin.out.find("bible-blend:v2  PretrainBlendsArtifact  " + data2.digest()), std::string::npos) << lin.out;
  EXPECT_EQ(lin.out.find(data1.digest()), std::string::npos) << lin.out;
  // The first model still names the first data.
  lin = run_cli("artifacts lineage bible-model:v1", env);
  EXPECT_NE(lin.out.find("bible-blend:v1  PretrainBlendsArtifact  " + data1.digest()), std::string::npos) << lin.out;

  // SFT from `bible-model:latest` (a reference the config resolves): its model's lineage goes
  // through the packed chats and the pretrained model down to both kinds of raw files.
  const fs::path chats = nemokit::test::setup_data_dir("NEMOKIT_SFT_CHATS_DIR", "sft-chats");
  if (!fs::exists(chats / "train.jsonl")) GTEST_FAIL() << chats << " missing: run scripts/setup.sh";
  {
    std::ifstream in(chats / "train.jsonl");
    std::ofstream out(dir / "chats.jsonl");
    std::string line;
    for (int i = 0; i < 800 && std::getline(in, line); ++i) out << line << "\n";
  }
  fs::path sft = dir / "sft.toml";
  std::ofstream(sft) << "defaults = [\"tiny\"]\n[model]\ninit_from = \"bible-model:latest\"\n"
                        "[data]\ninputs = [\"" << (dir / "chats.jsonl").string() << "\"]\nvalidation = []\nvalid_fraction = 0.05\n"
                        "name = \"chat-packs\"\noutput = \"" << (dir / "sft-data").string() << "\"\n"
                        "[train]\nmax_steps = 2\neval_interval = 0\neval_steps = 1\nsave_interval = 0\nlog_interval = 1\n"
                        "[eval]\nfile = \"\"\n"
                        "[checkpoint]\ndir = \"" << (dir / "sft-ckpt").string() << "\"\n[artifact]\nname = \"chat-model\"\n";
  auto sft_run = run_cli("run nano3 sft -c '" + sft.string() + "'", env);
  ASSERT_EQ(sft_run.rc, 0) << sft_run.out << sft_run.err;
  art::Artifact chat_model = store.resolve("chat-model");
  art::Artifact packs = store.resolve("chat-packs");
  EXPECT_EQ(packs.type(), "SFTDataArtifact");
  EXPECT_EQ(chat_model.used(), (std::vector<std::string>{"chat-packs:v1", "bible-model:v2"}));
  lin = run_cli("artifacts lineage chat-model", env);
  ASSERT_EQ(lin.rc, 0) << lin.err;
  EXPECT_NE(lin.out.find("├─ chat-packs:v1  SFTDataArtifact  " + packs.digest()), std::string::npos) << lin.out;
  EXPECT_NE(lin.out.find("raw " + (dir / "chats.jsonl").string()), std::string::npos) << lin.out;
  EXPECT_NE(lin.out.find("└─ bible-model:v2  ModelArtifact  " + model2.digest()), std::string::npos) << lin.out;
  EXPECT_NE(lin.out.find("   └─ bible-blend:v2  PretrainBlendsArtifact  " + data2.digest()), std::string::npos) << lin.out;
  EXPECT_NE(lin.out.find("raw " + text.string()), std::string::npos) << lin.out;
}

// A damaged or hand-edited metadata.json is named with the key at fault, by the store and by
// `nemokit artifacts show|lineage`, never in the JSON library's words (a number as "type" or a
// used artifact's "ref" once surfaced as "[json.exception.type_error.302]"; seen while writing
// fuzz_artifact_metadata).
TEST(Artifacts, DamagedMetadataNamesTheFileAndKey) {
  const fs::path dir = nemokit::test::temp_folder("artifacts-damaged");
  const fs::path file = dir / "store" / "blend" / "v1" / "metadata.json";
  fs::create_directories(file.parent_path());
  std::ofstream(dir / "env.toml") << "";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[1, 2]", "the metadata is array, not a JSON object"},
      {R"({"type": 5})", "\"type\" is number, not a string"},
      {R"({"content_digest": ["x"]})", "\"content_digest\" is array, not a string"},
      {R"({"digest_excludes": "x"})", "\"digest_excludes\" must be a list of strings"},
      {R"({"tracking": 3})", "\"tracking\" is number, not a table"},
      {R"({"tracking": {"used_artifacts": {"ref": 1}}})", "\"tracking.used_artifacts\" must be a list"},
      {R"({"tracking": {"used_artifacts": [{"ref": 1}]}})", "tracking.used_artifacts[0] must be a reference string or a table with a string \"ref\""},
      {R"({"source_datasets": [{"path": 7}]})", "source_datasets[0] must be a table whose \"path\" is a string"},
      // found by fuzz_artifact_metadata: nlohmann's out_of_range.406 passed through as it was
      {R"({"bytes": 5e107919})", "not valid JSON: number overflow parsing '5e107919'"}};
  for (const auto& [text, expect] : cases) {
    std::ofstream(file, std::ios::trunc) << text;
    std::string error;
    try {
      (void)art::Store(dir / "store").resolve("blend:latest");
    } catch (const std::runtime_error& e) {
      error = e.what();
    }
    EXPECT_EQ(error, file.string() + ": " + expect) << text;
    for (const char* command : {"artifacts show blend", "artifacts lineage blend"}) {
      auto r = run_cli(command, env_for(dir));
      EXPECT_NE(r.rc, 0) << command << " " << text;
      EXPECT_NE(r.err.find(file.string() + ": " + expect), std::string::npos) << command << ": " << r.err;
      EXPECT_EQ(r.err.find("json.exception"), std::string::npos) << r.err;
    }
  }
}
