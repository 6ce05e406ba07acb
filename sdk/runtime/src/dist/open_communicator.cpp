// Which communicator a process gets: the executors say how many ranks the job has (WORLD_SIZE);
// several ranks talk over Open MPI, which only works between processes Open MPI's launcher
// started (Open MPI 4 cannot join independently started processes without an ompi-server, and
// that path is unreliable), so a multi-rank job elsewhere is refused with the way to start it.
#include <cstdlib>
#include <string>

#include "mpi_comm.hpp"
#include "nemokit/runtime/comm.hpp"
#include "nemokit/runtime/dist.hpp"
#include "nccl_comm.hpp"

namespace nemokit::rt {
namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  try {
    size_t used = 0;
    int x = std::stoi(v, &used);
    if (used != std::string(v).size()) throw std::invalid_argument(v);
    return x;
  } catch (const std::exception&) {
    throw std::runtime_error(std::string(name) + "=" + v + ": expected a whole number");
  }
}

bool started_by_mpi_launcher() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_RANK");
}

}  // namespace

std::chrono::milliseconds comm_timeout_from_env(std::chrono::milliseconds fallback) {
  const char* v = std::getenv("NEMOKIT_COMM_TIMEOUT_S");
  if (!v || !*v) return fallback;
  char* end = nullptr;
  double s = std::strtod(v, &end);
  if (end == v || *end || !(s > 0)) throw std::runtime_error(std::string("NEMOKIT_COMM_TIMEOUT_S=") + v + ": expected a positive number of seconds");
  return std::chrono::milliseconds(static_cast<long long>(s * 1000.0));
}

CommBackend parse_comm_backend(const std::string& word, const std::string& key) {
  if (word.empty() || word == "auto") return CommBackend::automatic;
  if (word == "mpi") return CommBackend::mpi;
  if (word == "nccl") return CommBackend::nccl;
  throw std::invalid_argument(key + ": '" + word + "' is not a backend; use \"mpi\" (CPU processes) or \"nccl\" (GPUs)");
}

std::unique_ptr<Communicator> open_communicator(const CommOptions& options) {
  // The executors set WORLD_SIZE; a program started by mpirun directly has Open MPI's own.
  int world = env_int("WORLD_SIZE", env_int("OMPI_COMM_WORLD_SIZE", 1));
  if (world < 1) throw std::runtime_error("WORLD_SIZE=" + std::to_string(world) + ": expected at least 1");
  if (options.backend == CommBackend::nccl) {
    // NCCL needs no launcher: the executors' RANK/LOCAL_RANK/MASTER_* are enough (mpirun's own
    // variables stand in when it started the ranks).
    RankInfo self;
    self.world_size = world;
    self.rank = env_int("RANK", env_int("OMPI_COMM_WORLD_RANK", 0));
    self.local_rank = env_int("LOCAL_RANK", env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0));
    if (const char* a = std::getenv("MASTER_ADDR"); a && *a) self.master_addr = a;
    self.master_port = env_int("MASTER_PORT", 29500);
    return open_nccl_communicator(self, options);
  }
  if (world == 1) return single_rank_communicator();
  if (!started_by_mpi_launcher())
    throw std::runtime_error("WORLD_SIZE=" + std::to_string(world) +
                             " but this rank was not started by Open MPI's launcher, so the ranks cannot reach each other: "
                             "run them through `nemokit run` (several local ranks start under mpirun), `mpirun -n " +
                             std::to_string(world) + "`, or `srun --mpi=pmix` on Slurm (mpi = \"pmix\" in the profile)");
  return open_mpi_communicator(world, env_int("RANK", env_int("OMPI_COMM_WORLD_RANK", 0)), options);
}

}  // namespace nemokit::rt
