#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json.h"

namespace sec {

using json = nlohmann::json;

const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "F32";
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
    case DType::F32_SPARSE:  // never written: safetensors files hold dense tensors
      break;
  }
  return "?";
}

static bool parse_st_dtype(const std::string& s, DType* out) {
  if (s == "F32")
    *out = DType::F32;
  else if (s == "F16")
    *out = DType::F16;
  else if (s == "BF16")
    *out = DType::BF16;
  else
    return false;
  return true;
}

// Hard limits, far above any real checkpoint, so a corrupt header fails with a clear message instead
// of asking for absurd amounts of memory. (The safetensors library itself caps headers at 100 MB.)
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr size_t kMaxTensors = 1'000'000;
constexpr uint64_t kMaxDim = (uint64_t(1) << 31) - 1;

SafetensorsFile::SafetensorsFile(const std::string& path, MappedFile::Mode mode) : file_(path, mode) {
  const uint64_t size = file_.size();
  SEC_CHECK(size >= 8, path, ": not a safetensors file: ", size, " bytes is too short for the 8-byte header length");
  uint64_t n = 0;
  std::memcpy(&n, file_.data(), 8);  // little-endian host assumed (x86-64, aarch64)
  SEC_CHECK(n <= size - 8, path, ": safetensors header length ", n, " goes beyond the end of the file (", size,
            " bytes); the file is truncated or not a safetensors file");
  SEC_CHECK(n <= kMaxHeaderBytes, path, ": safetensors header length ", n, " exceeds the limit of ", kMaxHeaderBytes,
            " bytes; not a safetensors file");
  const json header = parse_json(std::string_view(reinterpret_cast<const char*>(file_.data()) + 8, size_t(n)), path,
                                 "safetensors header is not valid JSON");
  SEC_CHECK(header.is_object(), path, ": safetensors header is not a JSON object");
  SEC_CHECK(header.size() <= kMaxTensors, path, ": safetensors header lists ", header.size(),
            " entries, more than the limit of ", kMaxTensors, " tensors");
  const uint64_t data_start = 8 + n, data_size = size - data_start;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      SEC_CHECK(v.is_object(), path, ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        SEC_CHECK(m.value().is_string(), path, ": __metadata__ value '", m.key(), "' is not a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    SEC_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"), path,
              ": tensor '", name, "': entry needs dtype, shape and data_offsets");
    SafetensorsTensor t;
    t.name = name;
    SEC_CHECK(v["dtype"].is_string(), path, ": tensor '", name, "': dtype is not a string");
    std::string dt = v["dtype"].get<std::string>();
    SEC_CHECK(parse_st_dtype(dt, &t.dtype), path, ": tensor '", name, "' has unsupported dtype ", dt,
              " (supported: F32, F16, BF16)");
    SEC_CHECK(v["shape"].is_array(), path, ": tensor '", name, "': shape is not an array");
    SEC_CHECK(v["shape"].size() <= 8, path, ": tensor '", name, "': shape has ", v["shape"].size(),
              " dimensions (at most 8 supported)");
    const json& off = v["data_offsets"];
    SEC_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(), path,
              ": tensor '", name, "': data_offsets must be two non-negative integers");
    const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    SEC_CHECK(b <= e && e <= data_size, path, ": tensor '", name, "': data_offsets [", b, ", ", e,
              "] lie outside the data section (", data_size, " bytes); the file is truncated or corrupt");
    // numel x dtype size must equal the span, computed without wrapping (a wrapped product of
    // 0 would let [2^62] F32 pass with an empty span).
    uint64_t numel = 1, nbytes = 0;
    bool zero = false, overflow = false;
    for (const auto& d : v["shape"]) {
      SEC_CHECK(d.is_number_unsigned(), path, ": tensor '", name, "': shape has a non-integer or negative entry");
      const uint64_t x = d.get<uint64_t>();
      SEC_CHECK(x <= kMaxDim, path, ": tensor '", name, "': absurd shape (dimension ", x, " exceeds 2^31 - 1)");
      t.shape.push_back(int64_t(x));
      if (x == 0)
        zero = true;
      else
        overflow |= __builtin_mul_overflow(numel, x, &numel);
    }
    if (zero) numel = 0, overflow = false;
    overflow |= __builtin_mul_overflow(numel, uint64_t(dtype_size(t.dtype)), &nbytes);
    SEC_CHECK(!overflow && nbytes == e - b, path, ": tensor '", name, "': shape ", shape_str(t.shape), " x ",
              dtype_name(t.dtype), " needs ", overflow ? std::string("more than 2^64") : cat(nbytes),
              " bytes but data_offsets span ", e - b);
    t.nbytes = nbytes;
    t.offset = data_start + b;
    index_[name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  // No two tensors may share bytes.
  std::vector<const SafetensorsTensor*> byoff;
  for (const auto& t : tensors_) byoff.push_back(&t);
  std::sort(byoff.begin(), byoff.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < byoff.size(); i++)
    SEC_CHECK(byoff[i - 1]->offset + byoff[i - 1]->nbytes <= byoff[i]->offset, path, ": tensors '", byoff[i - 1]->name,
              "' and '", byoff[i]->name, "' overlap in the data section");
}

const SafetensorsTensor* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Tensor SafetensorsFile::read_f32(const SafetensorsTensor& t) const {
  SEC_ASSERT(t.offset + t.nbytes <= file_.size());
  Tensor raw = Tensor::empty(t.shape, t.dtype);
  if (t.nbytes) std::memcpy(raw.raw(), file_.data() + t.offset, t.nbytes);
  file_.release(t.offset, t.nbytes);
  return t.dtype == DType::F32 ? raw : raw.to(DType::F32);
}

Tensor SafetensorsFile::load_f32(const SafetensorsTensor& t) const {
  SEC_ASSERT(t.offset + t.nbytes <= file_.size());
  if (file_.mode() == MappedFile::Mode::CopyOnWrite && t.dtype == DType::F32 && t.nbytes > 0 &&
      reinterpret_cast<uintptr_t>(file_.data() + t.offset) % alignof(float) == 0)
    return Tensor::view(file_.writable_data() + t.offset, t.shape, DType::F32, file_.keepalive());
  return read_f32(t);
}

// ---- checkpoints (single or sharded) ----

SafetensorsCheckpoint::SafetensorsCheckpoint(const std::string& path, MappedFile::Mode mode) {
  namespace fs = std::filesystem;
  std::string index_path, single;
  if (is_directory(path)) {
    if (file_exists(path + "/model.safetensors.index.json"))
      index_path = path + "/model.safetensors.index.json";
    else if (file_exists(path + "/model.safetensors"))
      single = path + "/model.safetensors";
    else
      fail(path, ": no model.safetensors or model.safetensors.index.json in this directory");
  } else if (path.size() > 5 && path.substr(path.size() - 5) == ".json") {
    index_path = path;
  } else {
    single = path;
  }
  if (!single.empty()) {
    shards_.push_back(std::make_unique<SafetensorsFile>(single, mode));
    files_.push_back(single);
    for (const auto& t : shards_[0]->tensors()) entries_[t.name] = Entry{shards_[0].get(), &t};
    return;
  }
  const json idx = parse_json(read_text_file(index_path), index_path);
  SEC_CHECK(idx.is_object() && idx.contains("weight_map") && idx["weight_map"].is_object(), index_path,
            ": no \"weight_map\" object");
  const std::string dir = fs::path(index_path).parent_path().string();
  std::map<std::string, size_t> shard_of_file;
  for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
    SEC_CHECK(it.value().is_string(), index_path, ": weight_map entry '", it.key(), "' is not a file name");
    std::string f = it.value().get<std::string>();
    SEC_CHECK(f.find('/') == std::string::npos && f != ".." && !f.empty(), index_path, ": weight_map entry '", it.key(),
              "' names '", f, "', which is not a plain file name");
    auto s = shard_of_file.find(f);
    if (s == shard_of_file.end()) {
      std::string full = dir.empty() ? f : dir + "/" + f;
      shards_.push_back(std::make_unique<SafetensorsFile>(full, mode));
      files_.push_back(full);
      s = shard_of_file.emplace(f, shards_.size() - 1).first;
    }
    const SafetensorsFile* sf = shards_[s->second].get();
    const SafetensorsTensor* t = sf->find(it.key());
    SEC_CHECK(t != nullptr, index_path, ": tensor '", it.key(), "' is listed in weight_map but missing from ",
              sf->path());
    entries_[it.key()] = Entry{sf, t};
  }
  SEC_CHECK(!shards_.empty(), index_path, ": weight_map is empty");
}

const SafetensorsCheckpoint::Entry* SafetensorsCheckpoint::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

const std::map<std::string, std::string>& SafetensorsCheckpoint::metadata() const { return shards_[0]->metadata(); }

std::string SafetensorsCheckpoint::sha256() const {
  if (files_.size() == 1) return sha256_file(files_[0]);
  std::string cat_hashes;
  for (const auto& f : files_) cat_hashes += sha256_file(f);
  return sha256_hex(cat_hashes.data(), cat_hashes.size());
}

// ---- writing ----

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsOutput> out;
  for (const auto& [name, t] : tensors) {
    SEC_ASSERT(t.defined() || t.numel() == 0);
    out.push_back({name, t.shape(), t.dtype(), [t = t] { return t; }});
  }
  write_safetensors(path, out, metadata);
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsOutput>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // nlohmann's ordered_json keeps our tensor order in the header (readers do not care; humans do).
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    SEC_CHECK(t.name != "__metadata__", path, ": a tensor cannot be named __metadata__");
    const uint64_t nbytes = uint64_t(shape_numel(t.shape)) * dtype_size(t.dtype);
    nlohmann::ordered_json e;
    e["dtype"] = safetensors_dtype_name(t.dtype);
    e["shape"] = t.shape;
    e["data_offsets"] = {offset, offset + nbytes};
    header[t.name] = e;
    offset += nbytes;
  }
  std::string h = header.dump();
  h.append((8 - (8 + h.size()) % 8) % 8, ' ');
  uint64_t n = h.size();
  AtomicFile f(path);
  f.write(&n, 8);
  f.write(h);
  for (const auto& e : tensors) {
    const Tensor t = e.make();  // one tensor's (possibly converted) data at a time
    SEC_ASSERT(t.shape() == e.shape && t.dtype() == e.dtype);
    if (t.nbytes()) f.write(t.raw(), t.nbytes());
  }
  f.commit();
}

}  // namespace sec
