// Files: read-only memory maps, whole-file reads, atomic writes (temp file + rename) and hashing.
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

namespace sec {

// An mmap of a whole file. Copies share the mapping (shared_ptr keeps it alive, so tensor views
// into a file can outlive the MappedFile object that created them).
//   ReadOnly:    PROT_READ.
//   CopyOnWrite: MAP_PRIVATE + PROT_READ|PROT_WRITE. Pages are the page cache's until written;
//                a write copies that page for this process only and never reaches the file. Lets
//                weights be views into the file (1x memory) that pruning may still modify.
// Pages of the file that were read count in the process's RSS (as file-backed, shared with the
// page cache) for as long as they stay mapped; release() gives back the ones no longer needed.
class MappedFile {
 public:
  enum class Mode { ReadOnly, CopyOnWrite };
  explicit MappedFile(const std::string& path, Mode mode = Mode::ReadOnly);  // throws Error naming the file
  const uint8_t* data() const { return data_; }
  uint8_t* writable_data() const;  // CopyOnWrite only
  size_t size() const { return size_; }
  Mode mode() const { return mode_; }
  const std::string& path() const { return path_; }
  std::shared_ptr<void> keepalive() const { return mapping_; }
  // Unmaps the pages lying wholly inside [offset, offset + n) from this process (madvise
  // MADV_DONTNEED): they leave the RSS and are re-read from the file if touched again. Only for
  // ranges that were never written (in CopyOnWrite mode, written pages would be lost).
  void release(uint64_t offset, uint64_t n) const;

 private:
  std::string path_;
  Mode mode_ = Mode::ReadOnly;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::shared_ptr<void> mapping_;
};

std::string read_text_file(const std::string& path);  // throws Error naming the file
bool file_exists(const std::string& path);
bool is_directory(const std::string& path);

// Writes to "<target>.tmp.XXXX" in the target's directory; commit() flushes and renames over the
// target. If destroyed without commit() (error, exception) the temporary file is removed, so an
// interrupted write never leaves a half-written output. While it exists, the temporary file is also
// listed for install_interrupt_cleanup()'s signal handler. Inside a CommitGroup, commit() only
// finishes the file and the group renames it with the others.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* data, size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  void pad_to(uint64_t offset_multiple);  // writes zero bytes up to the next multiple
  uint64_t offset() const { return written_; }
  void commit();

 private:
  std::string target_, temp_;
  std::FILE* f_ = nullptr;
  uint64_t written_ = 0;
  int slot_ = -1;  // the temporary file's entry in the interrupt-cleanup table
};

// Writes a whole string atomically.
void write_file_atomic(const std::string& path, std::string_view content);

// Several outputs that appear together or not at all (an HF directory's files, a model and its
// report). While a group is alive, AtomicFile::commit() writes, flushes and closes its temporary
// file but leaves it in place; commit() then renames every file of the group. Destroyed without
// commit() (an error), the group removes its temporary files and the directories it created. A
// group made while another is alive joins it: only the outermost one renames. Main thread only.
class CommitGroup {
 public:
  CommitGroup();
  ~CommitGroup();
  CommitGroup(const CommitGroup&) = delete;
  CommitGroup& operator=(const CommitGroup&) = delete;
  void commit();

 private:
  size_t first_file_ = 0, first_dir_ = 0;  // this group's share of the pending lists
  bool done_ = false;
};

// Creates the directory (and its missing parents). The ones it creates are removed again, if still
// empty, when an enclosing CommitGroup fails or the process is interrupted before the group commits.
void create_output_directory(const std::string& dir);

// Installs SIGINT / SIGTERM / SIGHUP handlers that remove every temporary file an AtomicFile or a
// CommitGroup owns (and the empty directories a CommitGroup created), print one line on stderr and
// exit with status 128 + signal number. Async-signal-safe: the handler only walks a static table
// of paths with unlink() / rmdir() / write() / _exit().
void install_interrupt_cleanup();

// SHA-256, hex encoded. sha256_file streams the file with read() (no mapping, so hashing a
// multi-GB model adds nothing to the RSS).
// Both use the CPU's SHA extensions where it has them (cpuid); sha256_hex_portable never does
// (tests compare the two).
std::string sha256_hex(const void* data, size_t n);
std::string sha256_file(const std::string& path);
std::string sha256_hex_portable(const void* data, size_t n);
bool sha256_hardware();  // whether the SHA extensions are in use

}  // namespace sec
