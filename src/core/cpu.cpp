#include "core/cpu.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "core/log.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define SEC_X86 1
#endif

namespace sec {

namespace {

#ifdef SEC_X86
struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(unsigned leaf, unsigned sub = 0) {
  Regs r;
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
  return r;
}

// XCR0: which register states the OS saves on a context switch.
unsigned long long xgetbv0() {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}

bool bit(unsigned v, int i) { return (v >> i) & 1u; }
#endif

CpuFeatures detect() {
  CpuFeatures f;
#ifdef SEC_X86
  const Regs r0 = cpuid(0);
  const unsigned max_leaf = r0.a;
  char vendor[13] = {};
  std::memcpy(vendor, &r0.b, 4);
  std::memcpy(vendor + 4, &r0.d, 4);
  std::memcpy(vendor + 8, &r0.c, 4);
  f.vendor = vendor;
  if (cpuid(0x80000000).a >= 0x80000004) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; i++) {
      Regs r = cpuid(0x80000002 + i);
      std::memcpy(brand + 16 * i, &r, 16);
    }
    f.brand = brand;
    size_t a = f.brand.find_first_not_of(' '), b = f.brand.find_last_not_of(' ');
    f.brand = a == std::string::npos ? "" : f.brand.substr(a, b - a + 1);
  }
  if (max_leaf < 1) return f;
  const Regs r1 = cpuid(1);
  unsigned fam = (r1.a >> 8) & 0xf, mod = (r1.a >> 4) & 0xf;
  if (fam == 0xf) fam += (r1.a >> 20) & 0xff;
  if (fam == 0x6 || fam >= 0xf) mod += ((r1.a >> 16) & 0xf) << 4;
  f.family = int(fam);
  f.model = int(mod);
  const bool osxsave = bit(r1.c, 27);
  const unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_ymm = (xcr0 & 0x6) == 0x6;              // SSE + AVX state
  const bool os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0;  // + opmask, ZMM0-15 upper halves, ZMM16-31
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;      // XTILECFG + XTILEDATA
  f.sse42 = bit(r1.c, 20);
  f.avx = os_ymm && bit(r1.c, 28);
  f.fma = f.avx && bit(r1.c, 12);
  f.f16c = f.avx && bit(r1.c, 29);
  if (max_leaf >= 7) {
    const Regs r7 = cpuid(7, 0);
    f.avx2 = f.avx && bit(r7.b, 5);
    f.avx512f = os_zmm && bit(r7.b, 16);
    f.avx512dq = f.avx512f && bit(r7.b, 17);
    f.avx512bw = f.avx512f && bit(r7.b, 30);
    f.avx512vl = f.avx512f && bit(r7.b, 31);
    f.avx512_vbmi2 = f.avx512f && bit(r7.c, 6);
    f.avx512_vpopcntdq = f.avx512f && bit(r7.c, 14);
    f.avx512_fp16 = f.avx512f && bit(r7.d, 23);
    f.amx_bf16 = os_amx && bit(r7.d, 22);
    f.amx_tile = os_amx && bit(r7.d, 24);
    f.sha = bit(r7.b, 29);
    if (r7.a >= 1) f.avx512_bf16 = f.avx512f && bit(cpuid(7, 1).a, 5);
  }
#endif
  return f;
}

KernelIsa best_from(const CpuFeatures& f) {
  const bool avx2 = f.avx2 && f.fma && f.f16c;
  if (avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq)
    return f.avx512_bf16 ? KernelIsa::Avx512Bf16 : KernelIsa::Avx512;
  if (avx2) return KernelIsa::Avx2;
  return KernelIsa::Scalar;
}

KernelIsa from_env(KernelIsa best) {
  const char* e = std::getenv("SECATEUR_KERNELS");
  if (!e || !*e) return best;
  KernelIsa want;
  if (!std::strcmp(e, "scalar"))
    want = KernelIsa::Scalar;
  else if (!std::strcmp(e, "avx2"))
    want = KernelIsa::Avx2;
  else if (!std::strcmp(e, "avx512"))
    want = KernelIsa::Avx512;
  else if (!std::strcmp(e, "avx512bf16"))
    want = KernelIsa::Avx512Bf16;
  else {
    log_warn("SECATEUR_KERNELS=", e, " is not one of scalar, avx2, avx512, avx512bf16; using ", kernel_isa_name(best));
    return best;
  }
  if (int(want) > int(best)) {
    log_warn("SECATEUR_KERNELS=", e, ": this CPU supports at most ", kernel_isa_name(best));
    return best;
  }
  return want;
}

std::atomic<int>& isa_in_use() {
  static std::atomic<int> isa{int(from_env(best_kernel_isa()))};
  return isa;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

const char* kernel_isa_name(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::Scalar:
      return "scalar";
    case KernelIsa::Avx2:
      return "avx2";
    case KernelIsa::Avx512:
      return "avx512";
    case KernelIsa::Avx512Bf16:
      return "avx512bf16";
  }
  return "?";
}

KernelIsa best_kernel_isa() {
  static const KernelIsa best = best_from(cpu_features());
  return best;
}

KernelIsa kernel_isa() { return KernelIsa(isa_in_use().load(std::memory_order_relaxed)); }

KernelIsa set_kernel_isa(KernelIsa isa) {
  if (int(isa) > int(best_kernel_isa())) isa = best_kernel_isa();
  isa_in_use().store(int(isa));
  return isa;
}

namespace {
std::atomic<bool>& sparse_vpopcnt_in_use() {
  static std::atomic<bool> on{cpu_features().avx512_vpopcntdq};
  return on;
}
}  // namespace

bool sparse_vpopcnt() { return sparse_vpopcnt_in_use().load(std::memory_order_relaxed); }

bool set_sparse_vpopcnt(bool on) {
  on = on && cpu_features().avx512_vpopcntdq;
  sparse_vpopcnt_in_use().store(on);
  return on;
}

std::string cpu_summary() {
  const CpuFeatures& f = cpu_features();
  std::string s = f.brand.empty() ? std::string("unknown CPU") : f.brand;
  s += " (" + (f.vendor.empty() ? std::string("?") : f.vendor) + " family " + std::to_string(f.family) + " model " +
       std::to_string(f.model) + "):";
  auto add = [&](bool on, const char* name) {
    if (on) s += std::string(" ") + name;
  };
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  if (f.avx512f) {
    s += " avx512f";
    if (f.avx512bw) s += "/bw";
    if (f.avx512vl) s += "/vl";
    if (f.avx512dq) s += "/dq";
  }
  add(f.avx512_bf16, "avx512_bf16");
  add(f.avx512_fp16, "avx512_fp16");
  add(f.avx512_vpopcntdq, "avx512_vpopcntdq");
  add(f.amx_bf16 && f.amx_tile, "amx_bf16");
  add(f.sha, "sha");
  if (!f.avx2 && !f.avx512f) s += " (no avx2)";
  return s;
}

}  // namespace sec
