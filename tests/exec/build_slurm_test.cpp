// Cluster builds on the throwaway Slurm (slurm_cluster.hpp): `nemokit build omni3-rl --run PROFILE`
// runs the build as a job on the profile's build_partition, and the image lands under the
// profile's build_cache_dir on the node, with no NEMOKIT_BUILD_CACHE_DIR in the submitting
// environment (the profile alone says where). `--dry-run` prints the job script and submits nothing.
//
// omni3-rl's Dockerfile builds FROM nemokit-base found by its tag in the build cache. The real
// base (containers/Dockerfile.base over a Debian or CUDA image) takes minutes and the network, and
// stage_image_test builds it; here a one-file base made FROM scratch stands in, placed in the
// profile's cache by a local build through a second profile with the same build_cache_dir.
#include "run_cli.hpp"
#include "slurm_cluster.hpp"
#include "support/files.hpp"
#include "support/squashfs_mount.hpp"

#include <gtest/gtest.h>

namespace nemokit {
namespace fs = std::filesystem;
using namespace test;

namespace {

const auto* const kCluster = ::testing::AddGlobalTestEnvironment(new SlurmCluster);

// `cluster` is a stage profile as a site writes one (pyxis, the default, for its stages); builds
// run on its build_partition without a container. `here` shares its cache for the base.
std::string profiles(const fs::path& cache) {
  return "[cluster]\nexecutor = \"slurm\"\npartition = \"batch\"\nbuild_partition = \"cpu\"\n"
         "build_cache_dir = \"" + cache.string() + "\"\n"
         "[here]\nexecutor = \"local\"\nbuild_cache_dir = \"" + cache.string() + "\"\n";
}

}  // namespace

TEST(exec_slurm_build, build_run_profile_writes_the_image_under_the_profile_build_cache_dir) {
  SKIP_WITHOUT_SLURM();
  const fs::path base = temp_folder("slurm-build");
  const fs::path cache = base / "site-cache";
  write_file(base / "env.toml", profiles(cache));
  write_file(base / "base/Dockerfile", "FROM scratch\nCOPY marker /marker\n");
  write_file(base / "base/marker", "the stand-in base\n");
  // Nothing names the cache but the profile: no NEMOKIT_BUILD_CACHE_DIR, and a HOME of its own so
  // a build that fell back to the default cache (HOME/.cache/nemokit) is seen.
  const fs::path home = base / "home";
  const std::string env = "-u NEMOKIT_BUILD_CACHE_DIR -u NEMOKIT_PLUGIN_PATH HOME='" + home.string() + "' NEMOKIT_ENV='" +
                          (base / "env.toml").string() + "' NEMOKIT_JOB_ROOT='" + (base / "jobs").string() + "'";

  CliResult made = run_cli("build -f '" + (base / "base/Dockerfile").string() + "' --tag nemokit-base --run here", env);
  ASSERT_EQ(made.rc, 0) << made.out << made.err;
  ASSERT_TRUE(fs::exists(cache / "containers/nemokit-base.sqsh")) << made.err;

  // The dry run prints the script it would submit and submits nothing.
  CliResult dry = run_cli("build omni3-rl --run cluster --dry-run", env);
  ASSERT_EQ(dry.rc, 0) << dry.out << dry.err;
  EXPECT_NE(dry.out.find("# plan: Slurm, sbatch --parsable"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("#SBATCH --partition=\"cpu\""), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("export NEMOKIT_BUILD_CACHE_DIR='" + cache.string() + "'"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("'build' \\\n    'omni3-rl'"), std::string::npos) << dry.out;
  EXPECT_EQ(dry.out.find("--container-image"), std::string::npos) << "a build runs without a container\n" << dry.out;
  EXPECT_FALSE(fs::exists(base / "jobs")) << "the dry run made a job folder";
  EXPECT_FALSE(fs::exists(cache / "containers/omni3-rl.sqsh"));

  CliResult built = run_cli("build omni3-rl --run cluster", env);
  ASSERT_EQ(built.rc, 0) << built.out << built.err;
  EXPECT_NE(built.err.find("built omni3-rl"), std::string::npos) << built.err;  // the job's log, streamed
  const fs::path sqsh = cache / "containers/omni3-rl.sqsh";
  ASSERT_TRUE(fs::exists(sqsh)) << built.err;
  EXPECT_FALSE(fs::exists(home / ".cache/nemokit")) << "the node's build fell back to the default cache";
  // The job's script ran on the build partition.
  std::string script;
  for (const auto& job : fs::directory_iterator(base / "jobs")) script = read_file(job.path() / "sbatch.sh");
  EXPECT_NE(script.find("#SBATCH --partition=\"cpu\""), std::string::npos) << script;
  // The image is omni3-rl's (its ENV in enroot's /etc/environment) over the base from that cache.
  SquashfsMount mount(sqsh);
  EXPECT_EQ(read_file(mount.root() / "marker"), "the stand-in base\n");
  const std::string environment = read_file(mount.root() / "etc/environment");
  EXPECT_NE(environment.find("NEMOKIT_FAMILY=omni3"), std::string::npos) << environment;
}

}  // namespace nemokit
