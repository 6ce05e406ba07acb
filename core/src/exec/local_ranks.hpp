#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace nemokit {

// One process per rank on this machine, torchrun-style.
struct LocalRanks {
  std::filesystem::path exe;          // the program every rank runs (this nemokit: /proc/self/exe)
  std::vector<std::string> args;      // its arguments (argv[1..])
  int nproc = 1;
  std::filesystem::path log_dir;      // rank-R.log for each rank
  std::string master_addr = "127.0.0.1";
  int master_port = 0;                // 0: a free port picked now
  int grace_seconds = 30;             // after asking ranks to stop, SIGKILL those still running
  // Non-empty: Open MPI's mpirun starts the ranks (one MPI world, so the stage's collectives can
  // run over MPI); the ranks read RANK from OMPI_COMM_WORLD_RANK (adopt_task_identity). Empty:
  // this process forks each rank itself.
  std::filesystem::path mpirun;
};

// Starts the ranks with RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and
// MASTER_PORT set, each in its own process group so that only this process decides what they
// get: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to this process are passed to
// every rank (a second SIGINT or SIGTERM kills them). Their output goes to this process's
// stdout/stderr (lines prefixed "[R] " when there are several ranks) and to rank-R.log. When a
// rank fails the others are sent SIGTERM, as they could wait forever for it in a collective.
// Returns 0 when every rank succeeded, else the code of the rank that failed first (128+N for
// signal N). Through mpirun the same holds, with mpirun as the one child: its tagged output is
// split back into the "[R] " lines and rank-R.log files (mpirun's own lines go to mpirun.log),
// signals go to mpirun (which passes SIGUSR1/SIGUSR2 on and ends the ranks on SIGTERM/SIGINT),
// and a failed rank makes mpirun end the others and name the rank.
int run_local_ranks(const LocalRanks& spec);

// Open MPI's launcher when it is installed (`mpirun` on PATH) and NEMOKIT_LAUNCHER is not
// "fork"; else empty (ranks forked by this process, without an MPI world).
std::filesystem::path mpi_launcher();

// A TCP port on 127.0.0.1 that nothing listens on now.
int pick_free_port();

}  // namespace nemokit
