// Step folders of a checkpoint dir: `latest` names the newest, folders beyond `keep` go, and what
// a killed run left (a folder it was removing, renamed `.removing` first so that no half-removed
// step_NNNNNNN is ever seen, and its `latest.tmp-PID-N`: scripts/crash_consistency.sh) is swept
// by the next save.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "nemokit/runtime/run/checkpoint_dir.hpp"
#include "scratch_path.hpp"

namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) { return nemokit::rt::testing::fresh_dir("runtime_checkpoint_dir_test", name); }

void make_step(const nemokit::rt::CheckpointDir& ckpts, int64_t step) {
  const fs::path d = ckpts.for_step(step);
  fs::create_directories(d);
  std::ofstream(d / "trainer_state.json") << "{\"step\": " << step << "}\n";
  std::ofstream(d / "model.safetensors") << "weights";
}

}  // namespace

TEST(CheckpointDir, KeepsTheNewestAndSweepsAFolderAKilledRunWasRemoving) {
  const fs::path root = fresh_dir("keep");
  nemokit::rt::CheckpointDir ckpts(root, 2);
  // What a kill in the middle of pruning leaves: the folder renamed, some of its files gone.
  fs::create_directories(root / "step_0000000.removing");
  std::ofstream(root / "step_0000000.removing" / "optimizer.safetensors") << "half";
  std::ofstream(root / "latest.tmp-99999999-7") << "step_0000000\n";  // a killed writer's (no such pid)
  const fs::path live_tmp = root / ("latest.tmp-" + std::to_string(::getppid()) + "-7");
  std::ofstream(live_tmp) << "step_0000000\n";
  for (int64_t s = 1; s <= 3; ++s) {
    make_step(ckpts, s);
    ckpts.mark_latest(s);
  }
  EXPECT_EQ(ckpts.latest(), ckpts.for_step(3));
  EXPECT_FALSE(fs::exists(ckpts.for_step(1)));
  EXPECT_TRUE(fs::exists(ckpts.for_step(2) / "model.safetensors"));
  EXPECT_TRUE(fs::exists(ckpts.for_step(3) / "model.safetensors"));
  for (const auto& e : fs::directory_iterator(root))
    EXPECT_EQ(e.path().filename().string().find(".removing"), std::string::npos) << e.path();
  EXPECT_FALSE(fs::exists(root / "latest.tmp-99999999-7"));
  EXPECT_TRUE(fs::exists(live_tmp)) << "a live process's temporary stays";
}
