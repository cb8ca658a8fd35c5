#include "core/file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <vector>

#include "core/cpu.h"
#include "core/error.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define SEC_SHA_X86 1
#endif

namespace sec {

namespace fs = std::filesystem;

// Opens a regular file for reading; its size in *size. Throws Error naming the file.
static int open_regular_file(const std::string& path, size_t* size) {
  int fd = ::open(path.c_str(), O_RDONLY);
  SEC_CHECK(fd >= 0, path, ": cannot open: ", std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, ": not a regular file");
  }
  *size = size_t(st.st_size);
  return fd;
}

MappedFile::MappedFile(const std::string& path, Mode mode) : path_(path), mode_(mode) {
  int fd = open_regular_file(path, &size_);
  if (size_ == 0) {
    ::close(fd);
    static uint8_t empty[8] = {};
    data_ = empty;
    return;
  }
  const int prot = mode == Mode::CopyOnWrite ? PROT_READ | PROT_WRITE : PROT_READ;
  void* p = ::mmap(nullptr, size_, prot, MAP_PRIVATE, fd, 0);
  ::close(fd);
  SEC_CHECK(p != MAP_FAILED, path, ": cannot map: ", std::strerror(errno));
  data_ = static_cast<uint8_t*>(p);
  size_t n = size_;
  mapping_ = std::shared_ptr<void>(p, [n](void* q) { ::munmap(q, n); });
}

uint8_t* MappedFile::writable_data() const {
  SEC_ASSERT(mode_ == Mode::CopyOnWrite);
  return data_;
}

void MappedFile::release(uint64_t offset, uint64_t n) const {
  SEC_ASSERT(offset <= size_ && n <= size_ - offset);
  if (!mapping_) return;
  const uint64_t page = uint64_t(::sysconf(_SC_PAGESIZE));
  const uint64_t base = uint64_t(reinterpret_cast<uintptr_t>(data_));
  const uint64_t b = (base + offset + page - 1) / page * page, e = (base + offset + n) / page * page;
  if (b < e) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);  // advisory: failure is harmless
}

std::string read_text_file(const std::string& path) {
  MappedFile f(path);
  return std::string(reinterpret_cast<const char*>(f.data()), f.size());
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

bool is_directory(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec);
}

// ---- Interrupt cleanup -------------------------------------------------------------------------
// A fixed table of the paths to remove if the process is interrupted: temporary files of live
// AtomicFiles and of a pending CommitGroup, and the directories a CommitGroup created. The signal
// handler reads it without locks (a slot's path is written before its kind is published).
namespace {

enum SlotKind : int { kFree = 0, kTempFile = 1, kCreatedDir = 2 };
constexpr int kSlots = 64;
constexpr size_t kMaxPath = 4096;
struct CleanupSlot {
  std::atomic<int> kind{kFree};
  char path[kMaxPath];
};
CleanupSlot g_slots[kSlots];
std::mutex g_slots_mutex;  // registration only; the handler never locks
static_assert(std::atomic<int>::is_always_lock_free);

// The slot, or -1 when the table is full or the path too long (then the path is still removed on
// errors, only not by the signal handler).
int register_cleanup(const std::string& path, SlotKind kind) {
  if (path.size() >= kMaxPath) return -1;
  std::lock_guard<std::mutex> lock(g_slots_mutex);
  for (int i = 0; i < kSlots; i++) {
    if (g_slots[i].kind.load(std::memory_order_acquire) != kFree) continue;
    std::memcpy(g_slots[i].path, path.c_str(), path.size() + 1);
    g_slots[i].kind.store(kind, std::memory_order_release);
    return i;
  }
  return -1;
}

void unregister_cleanup(int slot) {
  if (slot >= 0) g_slots[slot].kind.store(kFree, std::memory_order_release);
}

void write_stderr(const char* s) {
  size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = ::write(2, s, n);
    if (w <= 0) return;
    s += w;
    n -= size_t(w);
  }
}

extern "C" void on_interrupt(int sig) {
  for (auto& slot : g_slots)
    if (slot.kind.load(std::memory_order_acquire) == kTempFile) ::unlink(slot.path);
  // Created directories, innermost first: repeat while some rmdir succeeds (only empty ones go).
  for (int pass = 0; pass < 16; pass++) {
    bool removed = false;
    for (auto& slot : g_slots)
      if (slot.kind.load(std::memory_order_acquire) == kCreatedDir && ::rmdir(slot.path) == 0) removed = true;
    if (!removed) break;
  }
  write_stderr(sig == SIGINT    ? "\nsecateur: interrupted (SIGINT); no output was written\n"
               : sig == SIGTERM ? "\nsecateur: terminated (SIGTERM); no output was written\n"
                                : "\nsecateur: hung up (SIGHUP); no output was written\n");
  ::_exit(128 + sig);
}

// The pending files and created directories of the live CommitGroups (main thread only).
struct PendingFile {
  std::string temp, target;
  int slot;
};
struct CreatedDir {
  std::string path;
  int slot;
};
struct GroupState {
  int depth = 0;
  std::vector<PendingFile> files;
  std::vector<CreatedDir> dirs;
};
GroupState g_group;

// Removes the pending files and created directories from these indices on.
void roll_back(size_t first_file, size_t first_dir) {
  for (size_t i = first_file; i < g_group.files.size(); i++) {
    std::remove(g_group.files[i].temp.c_str());
    unregister_cleanup(g_group.files[i].slot);
  }
  g_group.files.resize(std::min(first_file, g_group.files.size()));
  for (size_t i = g_group.dirs.size(); i > first_dir; i--) {
    ::rmdir(g_group.dirs[i - 1].path.c_str());  // only when empty: a failure is harmless
    unregister_cleanup(g_group.dirs[i - 1].slot);
  }
  g_group.dirs.resize(std::min(first_dir, g_group.dirs.size()));
}

}  // namespace

void install_interrupt_cleanup() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&sa.sa_mask, s);  // one handler run at a time
  for (int s : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(s, &sa, nullptr);
}

CommitGroup::CommitGroup() {
  first_file_ = g_group.files.size();
  first_dir_ = g_group.dirs.size();
  g_group.depth++;
}

CommitGroup::~CommitGroup() {
  g_group.depth--;
  if (!done_) roll_back(first_file_, first_dir_);
}

void CommitGroup::commit() {
  SEC_ASSERT(!done_);
  done_ = true;
  if (g_group.depth > 1) return;  // the outermost group renames
  for (size_t i = 0; i < g_group.files.size(); i++) {
    const PendingFile& f = g_group.files[i];
    if (std::rename(f.temp.c_str(), f.target.c_str()) != 0) {
      std::string why = std::strerror(errno);
      unregister_cleanup(f.slot);
      std::remove(f.temp.c_str());
      roll_back(i + 1, g_group.dirs.size());
      g_group.files.clear();
      for (const auto& d : g_group.dirs) unregister_cleanup(d.slot);
      g_group.dirs.clear();
      fail(f.target, ": cannot finish writing: ", why);
    }
    unregister_cleanup(f.slot);
  }
  g_group.files.clear();
  for (const auto& d : g_group.dirs) unregister_cleanup(d.slot);
  g_group.dirs.clear();
}

void create_output_directory(const std::string& dir) {
  if (is_directory(dir)) return;
  fs::path p = fs::path(dir).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // "out/" -> "out"
  std::vector<std::string> missing;            // innermost first
  std::error_code ec;
  for (fs::path q = p; !q.empty() && !fs::exists(q, ec); q = q.parent_path()) {
    missing.push_back(q.string());
    if (q == q.parent_path()) break;
  }
  if (g_group.depth > 0)  // listed before they exist, so an interruption in between misses none
    for (auto it = missing.rbegin(); it != missing.rend(); ++it)
      g_group.dirs.push_back({*it, register_cleanup(*it, kCreatedDir)});
  fs::create_directories(p, ec);
  SEC_CHECK(is_directory(dir), dir,
            ": cannot create the output directory: ", ec ? ec.message() : std::string("a file of that name exists"));
}

AtomicFile::AtomicFile(const std::string& target) : target_(target) {
  std::random_device rd;
  temp_ = target + ".tmp." + std::to_string(rd() % 1000000);
  slot_ = register_cleanup(temp_, kTempFile);  // before the file exists: an interruption misses nothing
  f_ = std::fopen(temp_.c_str(), "wb");
  if (!f_) {
    int err = errno;
    unregister_cleanup(slot_);
    fail(target, ": cannot write: ", std::strerror(err));
  }
}

AtomicFile::~AtomicFile() {
  if (f_) {
    std::fclose(f_);
    std::remove(temp_.c_str());
    unregister_cleanup(slot_);
  }
}

void AtomicFile::write(const void* data, size_t n) {
  SEC_ASSERT(f_ != nullptr);
  if (n == 0) return;
  SEC_CHECK(std::fwrite(data, 1, n, f_) == n, target_, ": write failed: ", std::strerror(errno));
  written_ += n;
}

void AtomicFile::pad_to(uint64_t multiple) {
  static const std::array<uint8_t, 64> zeros{};
  while (written_ % multiple != 0) {
    size_t n = std::min<uint64_t>(multiple - written_ % multiple, zeros.size());
    write(zeros.data(), n);
  }
}

void AtomicFile::commit() {
  SEC_ASSERT(f_ != nullptr);
  bool ok = std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0;
  ok = (std::fclose(f_) == 0) && ok;
  f_ = nullptr;
  if (ok && g_group.depth > 0) {  // renamed by the group, with the others
    g_group.files.push_back({temp_, target_, slot_});
    return;
  }
  if (!ok || std::rename(temp_.c_str(), target_.c_str()) != 0) {
    std::string why = std::strerror(errno);
    std::remove(temp_.c_str());
    unregister_cleanup(slot_);
    fail(target_, ": cannot finish writing: ", why);
  }
  unregister_cleanup(slot_);
}

void write_file_atomic(const std::string& path, std::string_view content) {
  AtomicFile f(path);
  f.write(content);
  f.commit();
}

// ---- SHA-256 (FIPS 180-4) ----
namespace {
constexpr uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

#ifdef SEC_SHA_X86
// The compression function on the SHA extensions, n blocks: ~7x the portable code (hashing a
// multi-GB model at load took longer than loading it). The state lives as the instructions want
// it: {A,B,E,F} and {C,D,G,H}, highest lane first; each sha256rnds2 does two rounds, and
// sha256msg1/msg2 extend the message schedule four words at a time.
__attribute__((target("sha,sse4.1,ssse3"))) void sha256_blocks_shani(uint32_t h[8], const uint8_t* p, size_t n) {
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
  const __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)), 0xB1);
  const __m128i hgfe = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 4)), 0x1B);
  __m128i abef = _mm_alignr_epi8(dcba, hgfe, 8), cdgh = _mm_blend_epi16(hgfe, dcba, 0xF0);
  for (; n > 0; n--, p += 64) {
    const __m128i abef0 = abef, cdgh0 = cdgh;
    __m128i w[4];  // w[g % 4]: schedule words 4g .. 4g + 3
    for (int g = 0; g < 4; g++)
      w[g] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * g)), bswap);
    for (int g = 0; g < 16; g++) {
      if (g >= 4) {  // W[i] = s1(W[i-2]) + W[i-7] + s0(W[i-15]) + W[i-16], for i = 4g .. 4g + 3
        const __m128i w7 = _mm_alignr_epi8(w[(g + 3) % 4], w[(g + 2) % 4], 4);
        w[g % 4] =
            _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(w[g % 4], w[(g + 1) % 4]), w7), w[(g + 3) % 4]);
      }
      __m128i wk = _mm_add_epi32(w[g % 4], _mm_loadu_si128(reinterpret_cast<const __m128i*>(K + 4 * g)));
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
      wk = _mm_shuffle_epi32(wk, 0x0E);
      abef = _mm_sha256rnds2_epu32(abef, cdgh, wk);
    }
    abef = _mm_add_epi32(abef, abef0);
    cdgh = _mm_add_epi32(cdgh, cdgh0);
  }
  const __m128i feba = _mm_shuffle_epi32(abef, 0x1B), dchg = _mm_shuffle_epi32(cdgh, 0xB1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h), _mm_blend_epi16(feba, dchg, 0xF0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h + 4), _mm_alignr_epi8(dchg, feba, 8));
}
#endif

struct Sha256 {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint8_t buf[64];
  size_t buf_len = 0;
  uint64_t total = 0;
  bool hardware = sha256_hardware();

  void blocks(const uint8_t* p, size_t n) {
#ifdef SEC_SHA_X86
    if (hardware) return sha256_blocks_shani(h, p, n);
#endif
    for (; n > 0; n--, p += 64) block(p);
  }

  void block(const uint8_t* p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
      w[i] = uint32_t(p[4 * i]) << 24 | uint32_t(p[4 * i + 1]) << 16 | uint32_t(p[4 * i + 2]) << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
      uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
      uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
      uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
  }

  void update(const uint8_t* p, size_t n) {
    total += n;
    if (buf_len) {
      size_t take = std::min(n, 64 - buf_len);
      std::memcpy(buf + buf_len, p, take);
      buf_len += take;
      p += take;
      n -= take;
      if (buf_len == 64) {
        blocks(buf, 1);
        buf_len = 0;
      }
    }
    blocks(p, n / 64);
    p += n / 64 * 64;
    n %= 64;
    std::memcpy(buf, p, n);
    buf_len += n;
  }

  std::string hex() {
    uint64_t bits = total * 8;
    uint8_t pad = 0x80;
    update(&pad, 1);
    uint8_t zero = 0;
    while (buf_len != 56) update(&zero, 1);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = uint8_t(bits >> (56 - 8 * i));
    update(len, 8);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (uint32_t v : h)
      for (int s = 28; s >= 0; s -= 4) out += digits[(v >> s) & 0xf];
    return out;
  }
};
}  // namespace

std::string sha256_hex(const void* data, size_t n) {
  Sha256 s;
  s.update(static_cast<const uint8_t*>(data), n);
  return s.hex();
}

bool sha256_hardware() {
#ifdef SEC_SHA_X86
  static const bool on = cpu_features().sha && cpu_features().sse42;
  return on;
#else
  return false;
#endif
}

std::string sha256_hex_portable(const void* data, size_t n) {
  Sha256 s;
  s.hardware = false;
  s.update(static_cast<const uint8_t*>(data), n);
  return s.hex();
}

std::string sha256_file(const std::string& path) {
  size_t size;
  int fd = open_regular_file(path, &size);
  Sha256 s;
  std::vector<uint8_t> buf(size_t(1) << 20);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      SEC_CHECK(n == 0, path, ": read failed: ", std::strerror(err));
      break;
    }
    s.update(buf.data(), size_t(n));
  }
  return s.hex();
}

}  // namespace sec
