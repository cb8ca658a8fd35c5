#include "io/gguf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/sparse.h"

namespace sec {

static const char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
// Hard limits, far above any real model, so a corrupt header fails with a clear message.
constexpr uint64_t kMaxTensors = 1'000'000;
constexpr uint64_t kMaxKeys = 1'000'000;
constexpr uint64_t kMaxDim = (uint64_t(1) << 31) - 1;

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8:
      return "u8";
    case GgufType::I8:
      return "i8";
    case GgufType::U16:
      return "u16";
    case GgufType::I16:
      return "i16";
    case GgufType::U32:
      return "u32";
    case GgufType::I32:
      return "i32";
    case GgufType::F32:
      return "f32";
    case GgufType::Bool:
      return "bool";
    case GgufType::String:
      return "string";
    case GgufType::Array:
      return "array";
    case GgufType::U64:
      return "u64";
    case GgufType::I64:
      return "i64";
    case GgufType::F64:
      return "f64";
  }
  return "?";
}

// Size of a fixed-size scalar type; 0 for string/array/unknown.
static size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::Bool:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64:
      return 8;
    default:
      return 0;
  }
}

static bool is_int_type(GgufType t) { return scalar_size(t) > 0 && t != GgufType::F32 && t != GgufType::F64; }

// ---- GgufValue ----

GgufValue GgufValue::u32(uint32_t v) {
  GgufValue r;
  r.type = GgufType::U32;
  r.i = v;
  return r;
}
GgufValue GgufValue::i32(int32_t v) {
  GgufValue r;
  r.type = GgufType::I32;
  r.i = v;
  return r;
}
GgufValue GgufValue::u64(uint64_t v) {
  GgufValue r;
  r.type = GgufType::U64;
  r.i = int64_t(v);
  return r;
}
GgufValue GgufValue::f32(float v) {
  GgufValue r;
  r.type = GgufType::F32;
  r.f = v;
  return r;
}
GgufValue GgufValue::boolean(bool v) {
  GgufValue r;
  r.type = GgufType::Bool;
  r.i = v;
  return r;
}
GgufValue GgufValue::string(std::string v) {
  GgufValue r;
  r.type = GgufType::String;
  r.str = std::move(v);
  return r;
}
static GgufValue int_array(GgufType t, std::vector<int64_t> v) {
  GgufValue r;
  r.type = GgufType::Array;
  r.elem_type = t;
  r.ints = std::move(v);
  return r;
}
GgufValue GgufValue::array_i32(std::vector<int64_t> v) { return int_array(GgufType::I32, std::move(v)); }
GgufValue GgufValue::array_u32(std::vector<int64_t> v) { return int_array(GgufType::U32, std::move(v)); }
GgufValue GgufValue::array_f32(std::vector<double> v) {
  GgufValue r;
  r.type = GgufType::Array;
  r.elem_type = GgufType::F32;
  r.floats = std::move(v);
  return r;
}
GgufValue GgufValue::array_str(std::vector<std::string> v) {
  GgufValue r;
  r.type = GgufType::Array;
  r.elem_type = GgufType::String;
  r.strs = std::move(v);
  return r;
}

bool GgufValue::is_integer() const { return is_int_type(type); }

size_t GgufValue::array_size() const {
  if (type != GgufType::Array) return 0;
  return ints.size() + floats.size() + strs.size() + items.size();
}

std::string GgufValue::to_string(size_t max_items) const {
  switch (type) {
    case GgufType::String:
      return "\"" + str + "\"";
    case GgufType::F32:
    case GgufType::F64:
      return cat(f);
    case GgufType::Bool:
      return i ? "true" : "false";
    case GgufType::U64:
      return cat(uint64_t(i));
    case GgufType::Array: {
      std::string s = cat("[", gguf_type_name(elem_type), " x ", array_size(), ": ");
      size_t n = std::min(array_size(), max_items);
      for (size_t k = 0; k < n; k++) {
        if (k) s += ", ";
        if (!ints.empty())
          s += cat(ints[k]);
        else if (!floats.empty())
          s += cat(floats[k]);
        else if (!strs.empty())
          s += "\"" + strs[k] + "\"";
        else
          s += items[k].to_string(max_items);
      }
      return s + (array_size() > n ? ", ...]" : "]");
    }
    default:
      return cat(i);
  }
}

// ---- reading ----

namespace {
// Bounds-checked little-endian cursor over the mapped file.
struct Cursor {
  const uint8_t* p;
  uint64_t size, pos = 0;
  const std::string& path;
  uint64_t left() const { return size - pos; }
  void need(uint64_t n, const char* what) const {
    SEC_CHECK(n <= left(), path, ": truncated GGUF file: ", what, " at byte ", pos, " needs ", n, " bytes but only ",
              left(), " remain");
  }
  template <class T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::string str(const char* what) {
    uint64_t n = get<uint64_t>(what);
    SEC_CHECK(n <= left(), path, ": ", what, " at byte ", pos - 8, " claims a string of ", n, " bytes but only ",
              left(), " remain in the file");
    std::string s(reinterpret_cast<const char*>(p + pos), n);
    pos += n;
    return s;
  }
};

GgufValue read_value(Cursor& c, GgufType t, const std::string& key, int depth);

int64_t read_int_scalar(Cursor& c, GgufType t, const char* what) {
  switch (t) {
    case GgufType::U8:
      return c.get<uint8_t>(what);
    case GgufType::I8:
      return c.get<int8_t>(what);
    case GgufType::Bool:
      return c.get<uint8_t>(what) != 0;
    case GgufType::U16:
      return c.get<uint16_t>(what);
    case GgufType::I16:
      return c.get<int16_t>(what);
    case GgufType::U32:
      return c.get<uint32_t>(what);
    case GgufType::I32:
      return c.get<int32_t>(what);
    case GgufType::U64:
      return int64_t(c.get<uint64_t>(what));
    case GgufType::I64:
      return c.get<int64_t>(what);
    default:
      SEC_ASSERT(false);
  }
  return 0;
}

GgufType check_type(Cursor& c, uint32_t t, const std::string& key) {
  SEC_CHECK(t <= uint32_t(GgufType::F64), c.path, ": metadata key '", key, "' has unknown value type ", t);
  return GgufType(t);
}

GgufValue read_value(Cursor& c, GgufType t, const std::string& key, int depth) {
  GgufValue v;
  v.type = t;
  if (t == GgufType::String) {
    v.str = c.str("string value");
  } else if (t == GgufType::F32) {
    v.f = c.get<float>("f32 value");
  } else if (t == GgufType::F64) {
    v.f = c.get<double>("f64 value");
  } else if (t == GgufType::Array) {
    SEC_CHECK(depth < 4, c.path, ": metadata key '", key, "': arrays nested too deeply");
    v.elem_type = check_type(c, c.get<uint32_t>("array type"), key);
    uint64_t n = c.get<uint64_t>("array length");
    // Every element takes at least one byte (strings 8): reject absurd counts before allocating.
    uint64_t min_elem =
        v.elem_type == GgufType::String || v.elem_type == GgufType::Array ? 8 : scalar_size(v.elem_type);
    SEC_CHECK(n <= c.left() / min_elem, c.path, ": metadata key '", key, "' claims an array of ", n, " ",
              gguf_type_name(v.elem_type), " elements, more than the ", c.left(), " bytes left in the file");
    if (v.elem_type == GgufType::String) {
      v.strs.reserve(n);
      for (uint64_t k = 0; k < n; k++) v.strs.push_back(c.str("array string"));
    } else if (v.elem_type == GgufType::F32 || v.elem_type == GgufType::F64) {
      v.floats.reserve(n);
      for (uint64_t k = 0; k < n; k++)
        v.floats.push_back(v.elem_type == GgufType::F32 ? c.get<float>("f32 element") : c.get<double>("f64 element"));
    } else if (v.elem_type == GgufType::Array) {
      for (uint64_t k = 0; k < n; k++) v.items.push_back(read_value(c, GgufType::Array, key, depth + 1));
    } else {
      v.ints.reserve(n);
      for (uint64_t k = 0; k < n; k++) v.ints.push_back(read_int_scalar(c, v.elem_type, "array element"));
    }
  } else {
    v.i = read_int_scalar(c, t, "integer value");
  }
  return v;
}

const char* ggml_type_name(uint32_t t) {
  static const char* names[] = {"F32",     "F16",    "Q4_0",    "Q4_1",  "Q4_2",   "Q4_3",  "Q5_0",  "Q5_1",
                                "Q8_0",    "Q8_1",   "Q2_K",    "Q3_K",  "Q4_K",   "Q5_K",  "Q6_K",  "Q8_K",
                                "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS",
                                "I8",      "I16",    "I32",     "I64",   "F64",    "IQ1_M", "BF16"};
  return t < sizeof(names) / sizeof(names[0]) ? names[t] : "unknown";
}
}  // namespace

uint32_t gguf_ggml_type(DType t) {
  switch (t) {
    case DType::F32:
      return 0;
    case DType::F16:
      return 1;
    case DType::BF16:
      return 30;
    case DType::F32_SPARSE:
      return kGgmlTypeF32Sparse;
  }
  return 0;
}

GgufFile::GgufFile(const std::string& path, MappedFile::Mode mode) : file_(path, mode) {
  Cursor c{file_.data(), file_.size(), 0, path};
  SEC_CHECK(file_.size() >= 4 && std::memcmp(file_.data(), kMagic, 4) == 0, path,
            ": not a GGUF file (bad magic; expected \"GGUF\")");
  c.pos = 4;
  version_ = c.get<uint32_t>("version");
  SEC_CHECK(version_ == 2 || version_ == 3, path, ": unsupported GGUF version ", version_, " (supported: 2, 3)");
  uint64_t n_tensors = c.get<uint64_t>("tensor count");
  uint64_t n_kv = c.get<uint64_t>("metadata count");
  // A key-value pair takes at least 8 + 4 + 1 bytes, a tensor info at least 8 + 4 + 4 + 8.
  SEC_CHECK(n_kv <= c.left() / 13, path, ": absurd metadata count ", n_kv, " for a file of ", file_.size(), " bytes");
  SEC_CHECK(n_tensors <= c.left() / 24, path, ": absurd tensor count ", n_tensors, " for a file of ", file_.size(),
            " bytes");
  SEC_CHECK(n_kv <= kMaxKeys, path, ": absurd metadata count ", n_kv, " (the limit is ", kMaxKeys, ")");
  SEC_CHECK(n_tensors <= kMaxTensors, path, ": absurd tensor count ", n_tensors, " (the limit is ", kMaxTensors, ")");
  for (uint64_t k = 0; k < n_kv; k++) {
    std::string key = c.str("metadata key");
    GgufType t = check_type(c, c.get<uint32_t>("value type"), key);
    GgufValue v = read_value(c, t, key, 0);
    SEC_CHECK(!kv_index_.count(key), path, ": metadata key '", key, "' appears twice");
    kv_index_[key] = kv_.size();
    kv_.emplace_back(key, std::move(v));
  }
  if (const GgufValue* a = find("general.alignment")) {
    SEC_CHECK(a->is_integer() && a->i > 0 && a->i <= (1 << 20) && (a->i & (a->i - 1)) == 0, path,
              ": general.alignment must be a power of two, got ", a->to_string());
    alignment_ = uint64_t(a->i);
  }
  for (uint64_t k = 0; k < n_tensors; k++) {
    GgufTensorInfo t;
    t.name = c.str("tensor name");
    uint32_t nd = c.get<uint32_t>("tensor dims");
    SEC_CHECK(nd >= 1 && nd <= kMaxDims, path, ": tensor '", t.name, "' has ", nd, " dimensions (1..4 allowed)");
    uint64_t ne[kMaxDims];
    uint64_t numel = 1;
    for (uint32_t d = 0; d < nd; d++) {
      ne[d] = c.get<uint64_t>("tensor dim");
      // Each dim fits an int (the model's sizes are ints) and, with numel <= 2^60, nbytes cannot wrap.
      SEC_CHECK(ne[d] <= kMaxDim, path, ": tensor '", t.name, "' has an absurd shape (dimension ", ne[d],
                " exceeds 2^31 - 1)");
      SEC_CHECK(ne[d] == 0 || numel <= (uint64_t(1) << 60) / ne[d], path, ": tensor '", t.name,
                "' has an absurd shape");
      numel *= ne[d];
    }
    for (int d = int(nd) - 1; d >= 0; d--) t.shape.push_back(int64_t(ne[d]));
    t.ggml_type = c.get<uint32_t>("tensor type");
    if (t.ggml_type == 0)
      t.dtype = DType::F32;
    else if (t.ggml_type == 1)
      t.dtype = DType::F16;
    else if (t.ggml_type == 30)
      t.dtype = DType::BF16;
    else if (t.ggml_type == kGgmlTypeF32Sparse)
      t.dtype = DType::F32_SPARSE;
    else
      fail(path, ": tensor '", t.name, "' has unsupported tensor type ", ggml_type_name(t.ggml_type), " (ggml type ",
           t.ggml_type, "); secateur reads F32, F16 and BF16 GGUF files (quantized models are not supported)");
    SEC_CHECK(t.dtype != DType::F32_SPARSE || nd == 2, path, ": sparse tensor '", t.name, "' has ", nd,
              " dimensions (a sparse tensor is a matrix)");
    t.nbytes = t.dtype == DType::F32_SPARSE ? 0 : numel * dtype_size(t.dtype);  // sparse: from its header below
    t.offset = c.get<uint64_t>("tensor offset");                                // relative for now
    SEC_CHECK(t.offset % alignment_ == 0, path, ": tensor '", t.name, "' offset ", t.offset,
              " is not a multiple of the alignment ", alignment_);
    SEC_CHECK(!tensor_index_.count(t.name), path, ": tensor '", t.name, "' appears twice");
    tensor_index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  uint64_t data_start = (c.pos + alignment_ - 1) / alignment_ * alignment_;
  SEC_CHECK(n_tensors == 0 || data_start <= file_.size(), path,
            ": truncated GGUF file: the data section would start at byte ", data_start, " but the file has ",
            file_.size(), " bytes");
  uint64_t data_size = file_.size() >= data_start ? file_.size() - data_start : 0;
  for (auto& t : tensors_) {
    if (t.dtype == DType::F32_SPARSE) {  // the blob's size follows from its header (rows, cols, nnz)
      SEC_CHECK(t.offset <= data_size && kSparseHeaderBytes <= data_size - t.offset, path, ": sparse tensor '", t.name,
                "' at data offset ", t.offset, " has no room for its header in the data section (", data_size,
                " bytes); the file is truncated or corrupt");
      const uint64_t nnz = sparse_header_nnz(file_.data() + data_start + t.offset);
      const uint64_t numel = uint64_t(t.shape[0]) * uint64_t(t.shape[1]);
      SEC_CHECK(nnz <= numel, path, ": sparse tensor '", t.name, "' claims ", nnz, " values for ", numel, " elements");
      t.nbytes = sparse_blob_bytes(t.shape[0], t.shape[1], int64_t(nnz));
    }
    SEC_CHECK(t.offset <= data_size && t.nbytes <= data_size - t.offset, path, ": tensor '", t.name, "' (",
              shape_str(t.shape), " ", dtype_name(t.dtype), ", ", t.nbytes, " bytes at data offset ", t.offset,
              ") lies outside the data section (", data_size, " bytes); the file is truncated or corrupt");
    t.offset += data_start;
  }
  std::vector<const GgufTensorInfo*> byoff;
  for (const auto& t : tensors_) byoff.push_back(&t);
  std::sort(byoff.begin(), byoff.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < byoff.size(); i++)
    SEC_CHECK(byoff[i - 1]->offset + byoff[i - 1]->nbytes <= byoff[i]->offset, path, ": tensors '", byoff[i - 1]->name,
              "' and '", byoff[i]->name, "' overlap in the data section");
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

int64_t GgufFile::get_int(const std::string& key) const {
  const GgufValue* v = find(key);
  SEC_CHECK(v, path(), ": missing GGUF metadata key ", key);
  SEC_CHECK(v->is_integer(), path(), ": GGUF metadata key ", key, " should be an integer, but is ",
            gguf_type_name(v->type));
  return v->i;
}
int64_t GgufFile::get_int(const std::string& key, int64_t def) const { return find(key) ? get_int(key) : def; }

double GgufFile::get_float(const std::string& key, double def) const {
  const GgufValue* v = find(key);
  if (!v) return def;
  if (v->is_integer()) return double(v->i);
  SEC_CHECK(v->is_float(), path(), ": GGUF metadata key ", key, " should be a number, but is ",
            gguf_type_name(v->type));
  return v->f;
}

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  SEC_CHECK(v, path(), ": missing GGUF metadata key ", key);
  SEC_CHECK(v->type == GgufType::String, path(), ": GGUF metadata key ", key, " should be a string, but is ",
            gguf_type_name(v->type));
  return v->str;
}
std::string GgufFile::get_string(const std::string& key, const std::string& def) const {
  return find(key) ? get_string(key) : def;
}

bool GgufFile::get_bool(const std::string& key, bool def) const {
  const GgufValue* v = find(key);
  if (!v) return def;
  SEC_CHECK(v->is_integer(), path(), ": GGUF metadata key ", key, " should be a bool, but is ",
            gguf_type_name(v->type));
  return v->i != 0;
}

Tensor GgufFile::read_f32(const GgufTensorInfo& t) const {
  SEC_ASSERT(t.offset + t.nbytes <= file_.size());
  if (t.dtype == DType::F32_SPARSE) return load_stored(t).to(DType::F32);
  Tensor raw = Tensor::empty(t.shape, t.dtype);
  if (t.nbytes) std::memcpy(raw.raw(), file_.data() + t.offset, t.nbytes);
  file_.release(t.offset, t.nbytes);
  return t.dtype == DType::F32 ? raw : raw.to(DType::F32);
}

Tensor GgufFile::load_f32(const GgufTensorInfo& t) const {
  SEC_ASSERT(t.offset + t.nbytes <= file_.size());
  if (file_.mode() == MappedFile::Mode::CopyOnWrite && t.dtype == DType::F32 && t.nbytes > 0 &&
      reinterpret_cast<uintptr_t>(file_.data() + t.offset) % alignof(float) == 0)
    return Tensor::view(file_.writable_data() + t.offset, t.shape, DType::F32, file_.keepalive());
  return read_f32(t);
}

Tensor GgufFile::load_stored(const GgufTensorInfo& t) const {
  if (t.dtype != DType::F32_SPARSE) return load_f32(t);
  SEC_ASSERT(t.offset + t.nbytes <= file_.size());
  validate_sparse_blob(file_.data() + t.offset, t.nbytes, t.shape, path() + ": tensor '" + t.name + "'");
  Tensor blob = Tensor::empty_packed(t.shape, DType::F32_SPARSE, t.nbytes);
  std::memcpy(blob.raw(), file_.data() + t.offset, t.nbytes);
  file_.release(t.offset, t.nbytes);
  return blob;
}

// ---- writing ----

void GgufWriter::set(const std::string& key, GgufValue v) {
  for (auto& kv : kv_)
    if (kv.first == key) {
      kv.second = std::move(v);
      return;
    }
  kv_.emplace_back(key, std::move(v));
}

void GgufWriter::add_tensor(const std::string& name, Tensor t) {
  SEC_ASSERT(t.defined());
  Shape shape = t.shape();
  DType dtype = t.dtype();
  const uint64_t nbytes = t.nbytes();
  add_tensor(
      name, shape, dtype, [t] { return t; }, nbytes);
}

void GgufWriter::add_tensor(const std::string& name, const Shape& shape, DType dtype, std::function<Tensor()> make,
                            uint64_t nbytes) {
  SEC_ASSERT(shape.size() >= 1 && shape.size() <= kMaxDims && make);
  if (!dtype_is_packed(dtype)) nbytes = uint64_t(shape_numel(shape)) * dtype_size(dtype);
  SEC_ASSERT(nbytes > 0 || shape_numel(shape) == 0);
  tensors_.push_back({name, shape, dtype, std::move(make), nbytes});
}

namespace {
struct Buf {
  std::string b;
  template <class T>
  void put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    b += s;
  }
  void int_scalar(GgufType t, int64_t v) {
    switch (t) {
      case GgufType::U8:
      case GgufType::Bool:
        put<uint8_t>(uint8_t(v));
        break;
      case GgufType::I8:
        put<int8_t>(int8_t(v));
        break;
      case GgufType::U16:
        put<uint16_t>(uint16_t(v));
        break;
      case GgufType::I16:
        put<int16_t>(int16_t(v));
        break;
      case GgufType::U32:
        put<uint32_t>(uint32_t(v));
        break;
      case GgufType::I32:
        put<int32_t>(int32_t(v));
        break;
      case GgufType::U64:
        put<uint64_t>(uint64_t(v));
        break;
      case GgufType::I64:
        put<int64_t>(v);
        break;
      default:
        SEC_ASSERT(false);
    }
  }
  void value(const GgufValue& v) {
    if (v.type == GgufType::String) {
      str(v.str);
    } else if (v.type == GgufType::F32) {
      put<float>(float(v.f));
    } else if (v.type == GgufType::F64) {
      put<double>(v.f);
    } else if (v.type == GgufType::Array) {
      put<uint32_t>(uint32_t(v.elem_type));
      put<uint64_t>(v.array_size());
      for (const auto& s : v.strs) str(s);
      for (double f : v.floats) {
        if (v.elem_type == GgufType::F32)
          put<float>(float(f));
        else
          put<double>(f);
      }
      for (int64_t i : v.ints) int_scalar(v.elem_type, i);
      for (const auto& it : v.items) value(it);
    } else {
      int_scalar(v.type, v.i);
    }
  }
};
}  // namespace

void GgufWriter::write(const std::string& path, uint64_t alignment) const {
  Buf h;
  h.b.append(kMagic, 4);
  h.put<uint32_t>(3);
  h.put<uint64_t>(tensors_.size());
  bool has_alignment = false;
  for (const auto& kv : kv_) has_alignment |= kv.first == "general.alignment";
  h.put<uint64_t>(kv_.size() + (has_alignment || alignment == 32 ? 0 : 1));
  for (const auto& [k, v] : kv_) {
    h.str(k);
    h.put<uint32_t>(uint32_t(v.type));
    h.value(v);
  }
  if (!has_alignment && alignment != 32) {
    h.str("general.alignment");
    h.put<uint32_t>(uint32_t(GgufType::U32));
    h.put<uint32_t>(uint32_t(alignment));
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    h.str(t.name);
    h.put<uint32_t>(uint32_t(t.shape.size()));
    for (size_t d = t.shape.size(); d-- > 0;) h.put<uint64_t>(uint64_t(t.shape[d]));
    h.put<uint32_t>(gguf_ggml_type(t.dtype));
    h.put<uint64_t>(offset);
    offset = (offset + t.nbytes + alignment - 1) / alignment * alignment;
  }
  AtomicFile f(path);
  f.write(h.b);
  f.pad_to(alignment);
  const uint64_t data_start = f.offset();
  for (const auto& p : tensors_) {
    f.pad_to(alignment);
    SEC_ASSERT((f.offset() - data_start) % alignment == 0);
    const Tensor t = p.make();  // one tensor's (possibly converted) data at a time
    SEC_ASSERT(t.shape() == p.shape && t.dtype() == p.dtype && t.nbytes() == p.nbytes);
    f.write(t.raw(), t.nbytes());
  }
  f.commit();
}

// ---- tokenizer metadata ----

std::optional<TokenizerData> gguf_read_tokenizer(const GgufFile& f) {
  std::string model = f.get_string("tokenizer.ggml.model", "");
  if (model.empty() || model == "no_vocab" || model == "none") return std::nullopt;
  TokenizerData t;
  if (model == "llama")
    t.kind = TokenizerKind::SentencePiece;
  else if (model == "gpt2")
    t.kind = TokenizerKind::ByteLevelBpe;
  else
    fail(f.path(), ": unsupported tokenizer.ggml.model '", model, "' (supported: llama, gpt2)");
  const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
  SEC_CHECK(tokens && tokens->is_array() && tokens->elem_type == GgufType::String, f.path(),
            ": tokenizer.ggml.tokens is missing or not an array of strings");
  t.tokens = tokens->strs;
  const size_t n = t.tokens.size();
  if (const GgufValue* s = f.find("tokenizer.ggml.scores")) {
    SEC_CHECK(
        s->is_array() && (s->elem_type == GgufType::F32 || s->elem_type == GgufType::F64) && s->floats.size() == n,
        f.path(), ": tokenizer.ggml.scores must be an array of ", n, " floats");
    t.scores.reserve(n);
    for (double x : s->floats) {
      // f64 scores are narrowed to float: out of float range would be undefined behaviour.
      SEC_CHECK(std::isfinite(x) && std::fabs(x) <= std::numeric_limits<float>::max(), f.path(),
                ": tokenizer.ggml.scores has a non-finite or out-of-range score ", x, " (token ", t.scores.size(), ")");
      t.scores.push_back(float(x));
    }
  }
  if (const GgufValue* ty = f.find("tokenizer.ggml.token_type")) {
    SEC_CHECK(ty->is_array() && is_int_type(ty->elem_type) && ty->ints.size() == n, f.path(),
              ": tokenizer.ggml.token_type must be an array of ", n, " integers");
    for (int64_t x : ty->ints) {
      SEC_CHECK(x >= 1 && x <= 6, f.path(), ": tokenizer.ggml.token_type has invalid type ", x);
      t.types.push_back(TokenType(int(x)));
    }
  } else {
    t.types.assign(n, TokenType::Normal);
  }
  if (const GgufValue* m = f.find("tokenizer.ggml.merges")) {
    SEC_CHECK(m->is_array() && m->elem_type == GgufType::String, f.path(),
              ": tokenizer.ggml.merges must be an array of strings");
    t.merges = m->strs;
  }
  t.pre_tokenizer = f.get_string("tokenizer.ggml.pre", "default");
  // Ids: missing or out-of-range values (llama.cpp writes 0xFFFFFFFF for "none") mean -1.
  auto id = [&](const char* key) -> int {
    int64_t v = f.get_int(key, -1);
    return v >= 0 && v < int64_t(n) ? int(v) : -1;
  };
  t.bos_id = id("tokenizer.ggml.bos_token_id");
  t.eos_id = id("tokenizer.ggml.eos_token_id");
  t.unk_id = id("tokenizer.ggml.unknown_token_id");
  t.pad_id = id("tokenizer.ggml.padding_token_id");
  // llama.cpp's defaults: SentencePiece adds BOS and a space prefix; byte-level BPE neither.
  bool spm = t.kind == TokenizerKind::SentencePiece;
  t.add_bos = f.get_bool("tokenizer.ggml.add_bos_token", spm);
  t.add_eos = f.get_bool("tokenizer.ggml.add_eos_token", false);
  t.add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix", spm);
  return t;
}

void gguf_write_tokenizer(GgufWriter& w, const TokenizerData& t) {
  bool spm = t.kind == TokenizerKind::SentencePiece;
  w.set("tokenizer.ggml.model", GgufValue::string(spm ? "llama" : "gpt2"));
  if (!spm) w.set("tokenizer.ggml.pre", GgufValue::string(t.pre_tokenizer));
  w.set("tokenizer.ggml.tokens", GgufValue::array_str(t.tokens));
  if (!t.scores.empty() || spm) {
    std::vector<double> s(t.tokens.size(), 0.0);
    for (size_t i = 0; i < t.scores.size() && i < s.size(); i++) s[i] = t.scores[i];
    w.set("tokenizer.ggml.scores", GgufValue::array_f32(std::move(s)));
  }
  std::vector<int64_t> types(t.tokens.size(), int64_t(TokenType::Normal));
  for (size_t i = 0; i < t.types.size() && i < types.size(); i++) types[i] = int64_t(t.types[i]);
  w.set("tokenizer.ggml.token_type", GgufValue::array_i32(std::move(types)));
  if (!t.merges.empty()) w.set("tokenizer.ggml.merges", GgufValue::array_str(t.merges));
  if (t.bos_id >= 0) w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(uint32_t(t.bos_id)));
  if (t.eos_id >= 0) w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(uint32_t(t.eos_id)));
  if (t.unk_id >= 0) w.set("tokenizer.ggml.unknown_token_id", GgufValue::u32(uint32_t(t.unk_id)));
  if (t.pad_id >= 0) w.set("tokenizer.ggml.padding_token_id", GgufValue::u32(uint32_t(t.pad_id)));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(t.add_bos));
  w.set("tokenizer.ggml.add_eos_token", GgufValue::boolean(t.add_eos));
  if (spm) w.set("tokenizer.ggml.add_space_prefix", GgufValue::boolean(t.add_space_prefix));
}

}  // namespace sec
