// Read bandwidth of this machine (bench/membw.h): bench/membw [--mb 2048] [--threads N] [--repeat 5]
// Threads default to all cores; the buffer (2 GB) is four times the largest L3 we have met.
#include "membw.h"

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  size_t mb = 2048;
  int threads = int(std::thread::hardware_concurrency()), repeat = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--mb") mb = size_t(std::atol(argv[i + 1]));
    if (k == "--threads") threads = std::atoi(argv[i + 1]);
    if (k == "--repeat") repeat = std::atoi(argv[i + 1]);
  }
  double sum = 0;
  for (int t = 1; t <= threads; t++) {
    if (t != 1 && t != threads) continue;
    const double gbs = measure_read_bandwidth(mb << 20, t, repeat, &sum);
    std::printf("membw read: %zu MB, %d thread%s: %.1f GB/s (checksum %.3g)\n", mb, t, t > 1 ? "s" : "", gbs, sum);
  }
  return 0;
}
