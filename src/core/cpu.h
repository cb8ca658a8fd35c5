// What the CPU can do, from cpuid and the OS's enabled register state (xgetbv) -- never from its
// model name. Kernels are chosen from these flags (ops/kernels.h); `cpu_summary()` says what was found.
#pragma once
#include <string>

namespace sec {

struct CpuFeatures {
  std::string vendor, brand;  // "GenuineIntel", "Intel(R) Xeon(R) Processor" (informational only)
  int family = 0, model = 0;  // informational only
  // Instruction sets, each true only when the CPU has it AND the OS saves its registers.
  bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512_bf16 = false, avx512_fp16 = false, avx512_vbmi2 = false, avx512_vpopcntdq = false;
  bool amx_tile = false, amx_bf16 = false;
  bool sha = false;  // SHA extensions (sha256rnds2): file hashing, not the kernels
};

// Detected once; thread-safe.
const CpuFeatures& cpu_features();

// Kernel families, from the least to the most capable; each level needs all of the one below it:
//   Avx2       = AVX2 + FMA + F16C
//   Avx512     = Avx2 + AVX-512 F/BW/VL/DQ
//   Avx512Bf16 = Avx512 + AVX512_BF16 (vdpbf16ps for bf16 weights)
enum class KernelIsa { Scalar = 0, Avx2 = 1, Avx512 = 2, Avx512Bf16 = 3 };
const char* kernel_isa_name(KernelIsa isa);  // "scalar", "avx2", "avx512", "avx512bf16"

// The best level this CPU supports.
KernelIsa best_kernel_isa();
// The level the kernels use: the best one, capped by the environment variable SECATEUR_KERNELS
// (scalar | avx2 | avx512 | avx512bf16), or by set_kernel_isa (tests use it to cover every path on
// one machine).
KernelIsa kernel_isa();
// Caps the kernels at `isa` (never above best_kernel_isa()); returns the level now in use.
KernelIsa set_kernel_isa(KernelIsa isa);

// How the AVX-512 GEMV places a sparse row's packed values at their columns (decode): vpermps with
// per-lane indices from vpopcntd where AVX512_VPOPCNTDQ is present (about 2x vexpandps's speed on
// AMD Zen 5, the same instruction count on Intel: docs/HACKING.md), else vexpandps.
bool sparse_vpopcnt();
// Switches vpopcntd off (tests and bench_gemv cover both on one machine); never on without the CPU's
// support. Returns the setting now in use.
bool set_sparse_vpopcnt(bool on);

// One line: "Intel(R) Xeon(R) Processor (GenuineIntel family 6 model 167): avx2 fma f16c avx512f/bw/vl/dq ..."
std::string cpu_summary();

}  // namespace sec
