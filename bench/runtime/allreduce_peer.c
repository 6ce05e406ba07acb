/* The peer of bench_allreduce.cpp: Open MPI's own blocking MPI_Allreduce (sum, float) on the same
   sizes, timed the same way, the figure the OSU osu_allreduce benchmark reports. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc < 3) {
    if (rank == 0) fprintf(stderr, "usage: %s ITERS BYTES... (under mpirun)\n", argv[0]);
    MPI_Finalize();
    return 2;
  }
  int iters = atoi(argv[1]);
  for (int a = 2; a < argc; ++a) {
    size_t bytes = strtoul(argv[a], NULL, 10);
    int n = (int)(bytes / sizeof(float));
    float* buf = malloc(bytes);
    for (int i = 0; i < n; ++i) buf[i] = 1.0f;
    for (int i = 0; i < 3; ++i) MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int i = 0; i < iters; ++i) MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double secs = (MPI_Wtime() - t0) / iters;
    double algbw = (double)bytes / secs / 1e9;
    if (rank == 0) printf("%zu %.2f %.4f %.4f\n", bytes, secs * 1e6, algbw, algbw * 2.0 * (size - 1) / size);
    free(buf);
  }
  MPI_Finalize();
  return 0;
}
