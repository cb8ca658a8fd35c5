#include "core/threads.h"

#include <dlfcn.h>
#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "core/cpu.h"
#include "core/error.h"
#include "core/log.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SEC_PAUSE() _mm_pause()
#else
#define SEC_PAUSE() std::atomic_signal_fence(std::memory_order_seq_cst)
#endif

extern "C" void openblas_set_num_threads(int);

namespace sec {

namespace {

// ---- the pool ---------------------------------------------------------------------------------------
// One job at a time. The job's progress is one 64-bit word, [generation:16 | tasks:24 | next:24]: a
// thread claims task `next` with a compare-and-swap that also checks there is one left, so it can
// never claim a task of a job other than the one the word describes; fn/ctx are read after the claim
// succeeds, and the job cannot end (nor fn/ctx change) before that task is reported done.
constexpr int64_t kMaxTasks = (int64_t(1) << 24) - 1;

uint64_t pack_state(uint64_t gen, uint64_t n) { return (gen & 0xffff) << 48 | uint64_t(n) << 24; }
uint32_t state_tasks(uint64_t s) { return uint32_t(s >> 24) & 0xffffff; }
uint32_t state_next(uint64_t s) { return uint32_t(s) & 0xffffff; }

thread_local bool t_in_task = false;  // inside a task or a pool thread: nested jobs run inline

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int spin_from_env() {
  const char* e = std::getenv("SECATEUR_SPIN_US");
  if (!e || !*e) return 50;
  return std::max(0, std::atoi(e));
}

class Pool {
 public:
  ~Pool() { resize(1); }

  int threads() const { return threads_; }
  bool inline_now() const { return threads_ <= 1 || t_in_task; }

  // Stops the old workers (they are idle: the caller holds no job) and starts n - 1 new ones lazily.
  void resize(int n) {
    std::lock_guard<std::mutex> lock(run_mutex_);
    if (!workers_.empty()) {
      stop_.store(true);
      epoch_.fetch_add(1);
      epoch_.notify_all();
      for (auto& w : workers_) w.join();
      workers_.clear();
      stop_.store(false);
    }
    threads_ = std::max(1, n);
  }

  void run(int64_t n, TaskFn fn, void* ctx) {
    if (n <= 0) return;
    if (threads_ <= 1 || n == 1 || t_in_task) return run_inline(n, fn, ctx);
    std::unique_lock<std::mutex> lock(run_mutex_, std::try_to_lock);
    if (!lock.owns_lock()) return run_inline(n, fn, ctx);  // another thread's job is in flight
    if (workers_.empty()) start_workers();
    fn_ = fn;
    ctx_ = ctx;
    done_.store(0, std::memory_order_relaxed);
    gen_++;
    state_.store(pack_state(gen_, uint64_t(n)), std::memory_order_release);
    epoch_.fetch_add(1);
    if (sleepers_.load() > 0) epoch_.notify_all();
    t_in_task = true;
    run_available();
    t_in_task = false;
    wait_done(uint32_t(n));
  }

 private:
  static void run_inline(int64_t n, TaskFn fn, void* ctx) {
    const bool outer = t_in_task;
    t_in_task = true;
    for (int64_t t = 0; t < n; t++) fn(ctx, t);
    t_in_task = outer;
  }

  void start_workers() {
    for (int i = 1; i < threads_; i++) workers_.emplace_back([this] { worker_loop(); });
  }

  // Claims and runs tasks of the current job until none is left.
  void run_available() {
    uint64_t s = state_.load(std::memory_order_acquire);
    for (;;) {
      const uint32_t n = state_tasks(s), next = state_next(s);
      if (next >= n) return;
      if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      fn_(ctx_, next);
      if (done_.fetch_add(1) + 1 == n && caller_sleeping_.load()) done_.notify_all();
      s = state_.load(std::memory_order_acquire);
    }
  }

  void wait_done(uint32_t n) {
    const int64_t t0 = now_ns(), budget = int64_t(spin_us_.load(std::memory_order_relaxed)) * 1000;
    for (int i = 0; done_.load(std::memory_order_acquire) < n; i++) {
      SEC_PAUSE();
      if ((i & 63) == 63 && now_ns() - t0 > budget) {
        caller_sleeping_.store(true);
        for (uint32_t d; (d = done_.load()) < n;) done_.wait(d);
        caller_sleeping_.store(false);
        return;
      }
    }
  }

  void worker_loop() {
    t_in_task = true;
    for (;;) {
      const uint32_t seen = epoch_.load();
      if (stop_.load()) return;
      run_available();
      // Wait for the next job: spin a little (jobs often follow each other closely), then sleep.
      const int64_t t0 = now_ns(), budget = int64_t(spin_us_.load(std::memory_order_relaxed)) * 1000;
      for (int i = 0; epoch_.load(std::memory_order_relaxed) == seen; i++) {
        SEC_PAUSE();
        if ((i & 63) == 63 && now_ns() - t0 > budget) {
          sleepers_.fetch_add(1);
          while (epoch_.load() == seen) epoch_.wait(seen);
          sleepers_.fetch_sub(1);
          break;
        }
      }
    }
  }

 public:
  std::atomic<int> spin_us_{spin_from_env()};

 private:
  int threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  uint64_t gen_ = 0;
  std::atomic<uint64_t> state_{0};
  std::atomic<uint32_t> done_{0};
  std::atomic<uint32_t> epoch_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_{false};
};

Pool& pool() {
  static Pool* p = [] {
    auto* q = new Pool;  // never destroyed: workers may outlive static destructors of other files
    q->resize(omp_get_max_threads());
    return q;
  }();
  return *p;
}

// ---- OpenBLAS's core ----------------------------------------------------------------------------------
// OpenBLAS (DYNAMIC_ARCH builds, as Debian's) exports gotoblas_dynamic_quit/init, which forget and
// redo its choice of kernels; init reads OPENBLAS_CORETYPE. Looked up with dlsym, so a BLAS without
// them is simply left alone.
int core_level(const std::string& name) {  // instruction-set level of an OpenBLAS x86-64 core name
  std::string l = name;
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
  if (l == "cooperlake" || l == "sapphirerapids") return 5;
  if (l == "skylakex") return 4;
  if (l == "haswell" || l == "zen" || l == "excavator" || l == "steamroller") return 3;
  if (l == "sandybridge" || l == "bulldozer" || l == "piledriver") return 2;
  return 1;
}

std::string openblas_corename() {
  using Fn = char* (*)();
  auto f = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* n = f ? f() : nullptr;
  return n ? n : "";
}

std::string& openblas_summary_storage() {
  static std::string s;
  return s;
}

void select_openblas_core() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::string& summary = openblas_summary_storage();
    const std::string before = openblas_corename();
    summary = before.empty() ? "not OpenBLAS" : before;
    const char* keep = std::getenv("SECATEUR_OPENBLAS_CORETYPE");
    if (before.empty() || (keep && std::strcmp(keep, "keep") == 0)) return;
    const CpuFeatures& f = cpu_features();
    struct Choice {
      int level;
      const char *name, *table;
    };
    std::vector<Choice> choices;
    if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma && f.avx2) {
      if (f.avx512_bf16) choices.push_back({5, "Cooperlake", "gotoblas_COOPERLAKE"});
      choices.push_back({4, "SkylakeX", "gotoblas_SKYLAKEX"});
    }
    if (f.avx2 && f.fma) choices.push_back({3, "Haswell", "gotoblas_HASWELL"});
    if (f.avx) choices.push_back({2, "Sandybridge", "gotoblas_SANDYBRIDGE"});
    using Fn = void (*)();
    auto quit = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit"));
    auto init = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init"));
    if (!quit || !init) return;
    for (const Choice& c : choices) {
      if (c.level <= core_level(before)) return;    // OpenBLAS already chose this well
      if (!dlsym(RTLD_DEFAULT, c.table)) continue;  // this build lacks the core
      const char* old_env = std::getenv("OPENBLAS_CORETYPE");
      const std::string saved = old_env ? old_env : "";
      setenv("OPENBLAS_CORETYPE", c.name, 1);
      quit();
      init();
      if (old_env)
        setenv("OPENBLAS_CORETYPE", saved.c_str(), 1);
      else
        unsetenv("OPENBLAS_CORETYPE");
      const std::string after = openblas_corename();
      summary = before + " -> " + after + " (by cpuid)";
      log_debug("openblas: chose ", before, ", switched to ", after, " from cpuid");
      return;
    }
  });
}

// Before main: OpenBLAS is initialised by then (its constructor), and no BLAS call has run yet.
[[maybe_unused]] const bool openblas_core_selected = [] {
  select_openblas_core();
  return true;
}();

}  // namespace

void set_num_threads(int n) {
  select_openblas_core();
  if (n > 0) omp_set_num_threads(n);
  n = omp_get_max_threads();
  openblas_set_num_threads(n);
  if (n != pool().threads()) pool().resize(n);
}

int num_threads() { return pool().threads(); }

bool parallel_inline() { return pool().inline_now(); }

void set_spin_us(int us) { pool().spin_us_.store(std::max(0, us)); }
int spin_us() { return pool().spin_us_.load(); }

void parallel_run(int64_t n_tasks, TaskFn fn, void* ctx) {
  if (n_tasks <= kMaxTasks) return pool().run(n_tasks, fn, ctx);
  // More tasks than the state word counts: run them in groups.
  struct Group {
    int64_t n, per;
    TaskFn fn;
    void* ctx;
  } g{n_tasks, (n_tasks + kMaxTasks - 1) / kMaxTasks, fn, ctx};
  pool().run((n_tasks + g.per - 1) / g.per,
             [](void* c, int64_t t) {
               auto* g = static_cast<Group*>(c);
               for (int64_t i = t * g->per, e = std::min(g->n, i + g->per); i < e; i++) g->fn(g->ctx, i);
             },
             &g);
}

int64_t task_count(int64_t n, double work_per_item, double min_work) {
  if (n <= 1) return 1;
  const int64_t by_work = int64_t(std::floor(double(n) * work_per_item / std::max(min_work, 1e-30)));
  const int64_t wanted = int64_t(4) * num_threads();
  return std::max<int64_t>(1, std::min({n, by_work, std::max<int64_t>(wanted, 1)}));
}

std::string threads_summary() {
  return std::to_string(num_threads()) + " threads (pool, spin " + std::to_string(spin_us()) + " us); openblas " +
         openblas_core_summary();
}

std::string openblas_core_summary() {
  select_openblas_core();
  return openblas_summary_storage();
}

}  // namespace sec
