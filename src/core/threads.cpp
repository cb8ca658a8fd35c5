#include "core/threads.h"

#include <omp.h>

extern "C" void openblas_set_num_threads(int);

namespace sec {

// n <= 0 keeps OpenMP's default: OMP_NUM_THREADS when set, else every core.
void set_num_threads(int n) {
  if (n > 0) omp_set_num_threads(n);
  openblas_set_num_threads(omp_get_max_threads());
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace sec
