// A STREAM-like read bandwidth measure: `threads` threads (std::thread, not secateur's pool) sum a
// buffer much larger than the last-level cache, claiming 1 MB chunks from an atomic counter (so that
// on a shared machine one descheduled thread does not stall the measure: the same scheduling the
// kernels use). Returns the best of `repeat` passes in GB/s (1e9 bytes/s).
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

inline double measure_read_bandwidth(size_t bytes, int threads, int repeat, double* checksum = nullptr) {
  constexpr size_t kChunk = size_t(1) << 18;  // floats (1 MB)
  const size_t chunks = std::max<size_t>(1, bytes / 4 / kChunk), n = chunks * kChunk;
  float* buf = static_cast<float*>(std::aligned_alloc(64, n * 4));
  std::vector<double> sums(static_cast<size_t>(threads));
  auto run = [&](bool init) {
    std::atomic<size_t> next{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; t++)
      ts.emplace_back([&, t] {
        double s = 0;
        for (size_t c; (c = next.fetch_add(1)) < chunks;) {
          float* p = buf + c * kChunk;
          if (init) {
            for (size_t i = 0; i < kChunk; i++) p[i] = float(i % 1024) * 1e-3f;
            continue;
          }
          float acc[64] = {};
          for (size_t i = 0; i < kChunk; i += 64)
#pragma omp simd
            for (int l = 0; l < 64; l++) acc[l] += p[i + size_t(l)];
          for (float a : acc) s += a;
        }
        sums[size_t(t)] = s;
      });
    for (auto& t : ts) t.join();
  };
  run(true);
  double best = 1e30;
  for (int r = 0; r < repeat; r++) {
    auto t0 = std::chrono::steady_clock::now();
    run(false);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  double total = 0;
  for (double s : sums) total += s;
  if (checksum) *checksum = total;
  std::free(buf);
  return double(n) * 4 / best / 1e9;
}
