// GGUF (llama.cpp's model file), versions 2 and 3: reading, and writing version 3.
//
// Layout (all little-endian):
//   "GGUF" magic, u32 version, u64 n_tensors, u64 n_kv
//   n_kv times:      string key, u32 value type, value
//                    (string = u64 length + bytes; array = u32 element type, u64 count, elements)
//   n_tensors times: string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset
//   padding to general.alignment (default 32), then the data section; each tensor's offset is
//   relative to the data section and a multiple of the alignment.
// ggml lists dims innermost first: ne[0] is the row length (the `in` dimension of a weight), so
// ne = [in, out] is the PyTorch shape [out, in]. GgufTensorInfo::shape is in PyTorch order.
// The reader validates every count, string length, offset and size against the file before
// reading it. Tensor types: F32, F16, BF16, and secateur's compressed sparse blob (F32_SPARSE,
// core/sparse.h) under a type id ggml does not have (kGgmlTypeF32Sparse), so that llama.cpp refuses
// such a file ("invalid ggml type") instead of misreading it; a blob's size is not given by its
// shape: the reader takes it from the blob's header (its nnz) and validates the whole blob before it
// is used. Anything else is an "unsupported tensor type" error.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/file.h"
#include "core/tensor.h"
#include "io/tokenizer.h"

namespace sec {

enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12
};
const char* gguf_type_name(GgufType t);

// One metadata value. Scalars live in `i` (integers and bools), `f` (floats) or `str`; arrays hold
// their elements in `ints`, `floats`, `strs` or `items` (arrays of arrays) by element type.
struct GgufValue {
  GgufType type = GgufType::U32;
  GgufType elem_type = GgufType::U8;  // arrays only
  int64_t i = 0;
  double f = 0;
  std::string str;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strs;
  std::vector<GgufValue> items;

  static GgufValue u32(uint32_t v);
  static GgufValue i32(int32_t v);
  static GgufValue u64(uint64_t v);
  static GgufValue f32(float v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  static GgufValue array_i32(std::vector<int64_t> v);
  static GgufValue array_u32(std::vector<int64_t> v);
  static GgufValue array_f32(std::vector<double> v);
  static GgufValue array_str(std::vector<std::string> v);

  bool is_integer() const;  // any integer scalar type or bool
  bool is_float() const { return type == GgufType::F32 || type == GgufType::F64; }
  bool is_array() const { return type == GgufType::Array; }
  size_t array_size() const;
  std::string to_string(size_t max_items = 8) const;  // for info / error messages
};

// The tensor type id of an F32_SPARSE blob in secateur's GGUF files: far outside ggml's type range
// (0..~40), so that ggml's reader rejects the file.
constexpr uint32_t kGgmlTypeF32Sparse = 0x5350;  // "SP"

struct GgufTensorInfo {
  std::string name;
  Shape shape;             // PyTorch order (ggml ne reversed)
  uint32_t ggml_type = 0;  // 0 F32, 1 F16, 30 BF16, kGgmlTypeF32Sparse
  DType dtype = DType::F32;
  uint64_t offset = 0;  // absolute byte offset in the file
  uint64_t nbytes = 0;
};

class GgufFile {
 public:
  // Maps and validates; throws Error naming the file.
  explicit GgufFile(const std::string& path, MappedFile::Mode mode = MappedFile::Mode::ReadOnly);
  const std::string& path() const { return file_.path(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufValue* find(const std::string& key) const;  // null when absent
  const GgufTensorInfo* find_tensor(const std::string& name) const;

  // Typed lookups: throw Error naming the file and key when the key is missing (unless a default is
  // given) or has the wrong type.
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t def) const;
  double get_float(const std::string& key, double def) const;
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& def) const;
  bool get_bool(const std::string& key, bool def) const;

  // Converted copy in PyTorch shape; the copied range's pages are then released from the mapping.
  Tensor read_f32(const GgufTensorInfo& t) const;
  // For keeps: in CopyOnWrite mode an aligned F32 tensor is a writable view into the mapping (no
  // copy; writes never reach the file), anything else read_f32's copy.
  Tensor load_f32(const GgufTensorInfo& t) const;
  // The tensor as stored when it is F32_SPARSE (an owned copy of the validated blob); otherwise
  // load_f32. read_f32 / load_f32 of a sparse tensor give its dense f32 form.
  Tensor load_stored(const GgufTensorInfo& t) const;
  const uint8_t* data(const GgufTensorInfo& t) const { return file_.data() + t.offset; }
  // Gives back the pages of a tensor that was only read, not loaded (see MappedFile::release).
  void release(const GgufTensorInfo& t) const { file_.release(t.offset, t.nbytes); }

 private:
  MappedFile file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// Builds a GGUF v3 file: metadata in insertion order (a repeated key replaces the earlier value),
// tensors in insertion order (stored dtype = the tensor's dtype; shape in PyTorch order).
class GgufWriter {
 public:
  void set(const std::string& key, GgufValue v);
  void add_tensor(const std::string& name, Tensor t);
  // A tensor of this shape and stored dtype whose data `make` produces while write() runs, one
  // tensor at a time: a converted or permuted copy then lives only while it is being written. A
  // packed dtype (F32_SPARSE) needs the blob's size `nbytes` up front (the offsets are written first).
  void add_tensor(const std::string& name, const Shape& shape, DType dtype, std::function<Tensor()> make,
                  uint64_t nbytes = 0);
  void write(const std::string& path, uint64_t alignment = 32) const;  // atomic

 private:
  struct Pending {
    std::string name;
    Shape shape;
    DType dtype;
    std::function<Tensor()> make;
    uint64_t nbytes;
  };
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Pending> tensors_;
};

uint32_t gguf_ggml_type(DType t);  // F32 0, F16 1, BF16 30, F32_SPARSE kGgmlTypeF32Sparse

// Tokenizer metadata (tokenizer.ggml.*). read returns nullopt when the file has no vocabulary (no
// tokenizer.ggml.model, or the placeholder model "no_vocab"/"none").
std::optional<TokenizerData> gguf_read_tokenizer(const GgufFile& f);
void gguf_write_tokenizer(GgufWriter& w, const TokenizerData& t);

}  // namespace sec
