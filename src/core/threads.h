// Thread settings: OpenMP loops in our kernels and OpenBLAS's own threads for GEMMs.
#pragma once

namespace sec {
void set_num_threads(int n);  // n <= 0: OMP_NUM_THREADS if set, else all cores
int num_threads();
}  // namespace sec
