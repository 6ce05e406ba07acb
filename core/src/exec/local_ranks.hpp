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
};

// Starts the ranks with RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and
// MASTER_PORT set, each in its own process group so that only this process decides what they
// get: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to this process are passed to
// every rank (a second SIGINT or SIGTERM kills them). Their output goes to this process's
// stdout/stderr (lines prefixed "[R] " when there are several ranks) and to rank-R.log. When a
// rank fails the others are sent SIGTERM, as they could wait forever for it in a collective.
// Returns 0 when every rank succeeded, else the code of the rank that failed first (128+N for
// signal N).
int run_local_ranks(const LocalRanks& spec);

// A TCP port on 127.0.0.1 that nothing listens on now.
int pick_free_port();

}  // namespace nemokit
