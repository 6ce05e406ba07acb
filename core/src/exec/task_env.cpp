#include "exec/task_env.hpp"

#include "exec/process.hpp"

#include <cstdlib>
#include <sstream>

namespace nemokit {

namespace {
std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}
int env_int(const char* name, int fallback) {
  try {
    return std::stoi(env_or(name, std::to_string(fallback)));
  } catch (const std::exception&) {
    return fallback;
  }
}
}  // namespace

TaskIdentity adopt_task_identity() {
  if (!std::getenv("RANK") && std::getenv("SLURM_PROCID")) {
    setenv("RANK", env_or("SLURM_PROCID", "0").c_str(), 1);
    setenv("LOCAL_RANK", env_or("SLURM_LOCALID", "0").c_str(), 1);
    setenv("WORLD_SIZE", env_or("SLURM_NTASKS", "1").c_str(), 1);
    // SLURM_NTASKS_PER_NODE may read "2" or "2(x3)"; the leading number is this node's count.
    std::string per_node = env_or("SLURM_NTASKS_PER_NODE", env_or("SLURM_STEP_TASKS_PER_NODE", "1"));
    setenv("LOCAL_WORLD_SIZE", per_node.substr(0, per_node.find_first_not_of("0123456789")).c_str(), 1);
    setenv("NODE_RANK", env_or("SLURM_NODEID", "0").c_str(), 1);
  }
  // Ranks started by Open MPI's mpirun (the local executor's launcher for several ranks) learn
  // who they are from it.
  if (!std::getenv("RANK") && std::getenv("OMPI_COMM_WORLD_RANK")) {
    setenv("RANK", env_or("OMPI_COMM_WORLD_RANK", "0").c_str(), 1);
    setenv("LOCAL_RANK", env_or("OMPI_COMM_WORLD_LOCAL_RANK", "0").c_str(), 1);
    setenv("WORLD_SIZE", env_or("OMPI_COMM_WORLD_SIZE", "1").c_str(), 1);
    setenv("LOCAL_WORLD_SIZE", env_or("OMPI_COMM_WORLD_LOCAL_SIZE", "1").c_str(), 1);
  }
  TaskIdentity t;
  t.rank = env_int("RANK", 0);
  t.world_size = env_int("WORLD_SIZE", 1);
  t.local_rank = env_int("LOCAL_RANK", 0);
  t.master_addr = env_or("MASTER_ADDR", "");
  t.master_port = env_or("MASTER_PORT", "");
  return t;
}

int visible_gpu_count() {
  if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES")) {
    std::string s = v;
    if (s.empty() || s == "-1" || s == "NoDevFiles") return 0;
    int n = 1;
    for (char c : s) n += c == ',';
    return n;
  }
  if (!on_path("nvidia-smi")) return 0;
  try {
    CommandResult r = run_command({"nvidia-smi", "-L"});
    if (r.exit_code != 0) return 0;
    int n = 0;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);)
      if (line.starts_with("GPU ")) ++n;
    return n;
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace nemokit
