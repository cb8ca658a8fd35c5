// safetensors files (Hugging Face): reading (single file or sharded) and writing.
//
// Layout of one file:
//   u64 little-endian N            length of the JSON header
//   N bytes of UTF-8 JSON          {"__metadata__": {"k": "v", ...},            (optional, strings only)
//                                    "name": {"dtype": "F32", "shape": [r, c], "data_offsets": [begin, end]}, ...}
//   data                           tensors at [8 + N + begin, 8 + N + end), row-major, little-endian
// Sharded checkpoints add model.safetensors.index.json: {"weight_map": {"tensor name": "shard file", ...}}.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/file.h"
#include "core/tensor.h"

namespace sec {

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t offset = 0;  // absolute byte offset in the file
  uint64_t nbytes = 0;
};

// One .safetensors file, memory-mapped. The constructor validates the whole header (length, JSON,
// dtypes, shape x dtype size == data_offsets span, offsets inside the file, no overlaps) before any
// tensor data is touched; errors name the file and the tensor.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path, MappedFile::Mode mode = MappedFile::Mode::ReadOnly);
  const std::string& path() const { return file_.path(); }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(const std::string& name) const;  // null when absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // A copy of the tensor converted to f32 (the stored bytes need not be aligned). The copied
  // range's pages are then released from the mapping (see MappedFile::release).
  Tensor read_f32(const SafetensorsTensor& t) const;
  // The tensor as f32 for keeps: in CopyOnWrite mode, an f32 tensor whose bytes are 4-byte aligned
  // is a writable view into the mapping (no copy; writes never reach the file); anything else is
  // read_f32's copy.
  Tensor load_f32(const SafetensorsTensor& t) const;

 private:
  MappedFile file_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Every tensor of a checkpoint: a single model.safetensors, or the shards listed by
// model.safetensors.index.json (each name in weight_map must exist in the shard it names).
class SafetensorsCheckpoint {
 public:
  // `path`: a .safetensors file, a .index.json file, or an HF directory containing one of them.
  explicit SafetensorsCheckpoint(const std::string& path, MappedFile::Mode mode = MappedFile::Mode::ReadOnly);
  struct Entry {
    const SafetensorsFile* file;
    const SafetensorsTensor* tensor;
  };
  const std::map<std::string, Entry>& tensors() const { return entries_; }
  const Entry* find(const std::string& name) const;
  const std::vector<std::string>& files() const { return files_; }  // shard paths in order
  const std::map<std::string, std::string>& metadata() const;       // of the first file
  // sha256 of the single file, or of the concatenated hex hashes of the shards (in file order).
  std::string sha256() const;

 private:
  std::vector<std::string> files_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, Entry> entries_;
};

// Writes `tensors` (in their stored dtypes, in the given order) and the string metadata to `path`
// atomically. The header is padded with spaces so the data starts at a multiple of 8 bytes.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata);

// The same, with each tensor's data produced by `make` while it is written, one at a time (a
// converted copy then lives only while it is being written).
struct SafetensorsOutput {
  std::string name;
  Shape shape;
  DType dtype = DType::F32;  // stored dtype; make() must return this shape and dtype
  std::function<Tensor()> make;
};
void write_safetensors(const std::string& path, const std::vector<SafetensorsOutput>& tensors,
                       const std::map<std::string, std::string>& metadata);

const char* safetensors_dtype_name(DType t);  // "F32", "F16", "BF16"

}  // namespace sec
