// The Open MPI backend of Communicator (mpi_comm.cpp), opened by open_communicator.
#pragma once
#include <memory>

#include "nemokit/runtime/comm.hpp"

namespace nemokit::rt {

// Starts MPI (once per process) and returns a communicator over a duplicate of MPI_COMM_WORLD.
// Throws std::runtime_error when the MPI world's size or this process's rank differ from
// `expected_size` / `expected_rank` (the executor's WORLD_SIZE and RANK).
std::unique_ptr<Communicator> open_mpi_communicator(int expected_size, int expected_rank, const CommOptions& options);

}  // namespace nemokit::rt
