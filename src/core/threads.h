// Threads: secateur's own pool (parallel_for), the one threading mechanism of src/, plus the thread
// counts of OpenBLAS (the LAPACK-style routines that remain its job) and of the OpenMP runtime its
// OpenMP build runs on.
//
// The pool is built to stay fast on a machine that is busy with other work (docs/HACKING.md,
// "Threads"):
//  - work is cut into many more tasks than threads, and every thread, the caller included, claims
//    the next task from one atomic counter: a thread that the OS deschedules holds up at most the
//    one task it is running, the others take the rest (no static split, no barrier of all threads);
//  - the caller waits only for the tasks to finish, not for every worker to check in;
//  - idle threads spin for a short, bounded time (SECATEUR_SPIN_US, default 50 us) and then sleep
//    on a futex (C++20 atomic wait), so they never burn a core that another process needs.
#pragma once
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace sec {

// n <= 0: OMP_NUM_THREADS if set, else every core this process may run on. Sets the pool, OpenMP
// and OpenBLAS alike. Call it from the main thread while no parallel_for is running.
void set_num_threads(int n);
int num_threads();

// How long an idle pool thread (or the caller waiting for the last task) spins before it sleeps.
void set_spin_us(int us);
int spin_us();

using TaskFn = void (*)(void* ctx, int64_t task);
// Runs fn(ctx, t) once for every t in [0, n_tasks), on the pool's threads and the calling thread,
// in no particular order; returns when all have finished. Tasks must not throw. Called from inside
// a task (or while another thread's parallel_run is in flight), it runs the tasks inline.
void parallel_run(int64_t n_tasks, TaskFn fn, void* ctx);

// True when a parallel_run from this thread would run inline (one thread, or inside a task):
// kernels then skip cutting work for threads that are not there.
bool parallel_inline();

// parallel_for(n, [&](int64_t t) { ... }): the lambda form of parallel_run.
template <class F>
void parallel_for(int64_t n_tasks, F&& f) {
  using Fn = std::remove_reference_t<F>;
  parallel_run(
      n_tasks, [](void* ctx, int64_t t) { (*static_cast<Fn*>(ctx))(t); },
      const_cast<void*>(static_cast<const void*>(&f)));
}

// The task count for splitting `n` items of `work_per_item` (any unit) into tasks of at least
// `min_work` each, at most `n`, and about 4 tasks per thread when there is enough work (so that
// a slow or descheduled thread is covered by the others). Returns at least 1.
int64_t task_count(int64_t n, double work_per_item, double min_work);

// parallel_ranges(n, work_per_item, min_work, [&](int64_t begin, int64_t end) { ... }): [0, n) cut
// into task_count(...) runs of consecutive items.
template <class F>
void parallel_ranges(int64_t n, double work_per_item, double min_work, F&& f) {
  if (n <= 0) return;
  const int64_t tasks = task_count(n, work_per_item, min_work), per = (n + tasks - 1) / tasks;
  parallel_for((n + per - 1) / per, [&](int64_t t) {
    const int64_t b = t * per, e = b + per < n ? b + per : n;
    f(b, e);
  });
}

// parallel_sum<T>(n, work_per_item, min_work, [&](int64_t begin, int64_t end) -> T { ... }): the
// runs of parallel_ranges each give a partial sum, added in run order, so the result depends on
// the thread count but never on timing.
template <class T, class F>
T parallel_sum(int64_t n, double work_per_item, double min_work, F&& f) {
  if (n <= 0) return T(0);
  const int64_t tasks = task_count(n, work_per_item, min_work), per = (n + tasks - 1) / tasks;
  std::vector<T> partial(size_t((n + per - 1) / per), T(0));
  parallel_for(int64_t(partial.size()), [&](int64_t t) {
    const int64_t b = t * per, e = b + per < n ? b + per : n;
    partial[size_t(t)] = f(b, e);
  });
  T sum = T(0);
  for (const T& p : partial) sum += p;
  return sum;
}

// "2 threads (pool, spin 50 us); openblas SkylakeX" -- what the threads and OpenBLAS were set to.
std::string threads_summary();

// OpenBLAS picks its kernels from the CPU model number, and falls back to its SSE3 "Prescott"
// kernels on a CPU it does not know. At start-up (and in set_num_threads) secateur compares the
// core OpenBLAS chose with what cpuid reports and, when OpenBLAS chose less than the CPU can do,
// switches it to the best core it ships for these instruction sets (Cooperlake, SkylakeX, Haswell,
// Sandybridge). SECATEUR_OPENBLAS_CORETYPE=keep leaves OpenBLAS's choice alone.
// Returns "SkylakeX", or "Prescott -> SkylakeX (by cpuid)" when it switched.
std::string openblas_core_summary();

}  // namespace sec
