// Loading and saving whole models. Every tensor name comes from the table in model/weights.h; the
// RoPE row permutation is applied for llama2.c and GGUF "llama" / "deci" files (GGUF "qwen2" uses
// rotate-half RoPE in llama.cpp, like HF, so its q/k rows are stored as is). Models whose blocks
// differ are written as GGUF "deci", the llama.cpp architecture that sizes every block from
// per-layer head / KV-head / FFN counts. See docs/formats.md.
#include "model/model_io.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "core/sparse.h"
#include "io/gguf.h"
#include "io/json.h"
#include "io/llama2c.h"
#include "io/safetensors.h"
#include "io/tokenizer_files.h"
#include "model/hf_config.h"

namespace sec {

namespace fs = std::filesystem;

ModelFormat parse_model_format(const std::string& s) {
  if (s == "hf" || s == "safetensors") return ModelFormat::HF;
  if (s == "gguf") return ModelFormat::GGUF;
  if (s == "llama2c" || s == "bin") return ModelFormat::Llama2c;
  if (s == "auto") return ModelFormat::Auto;
  fail("unknown model format '", s, "' (expected hf, gguf or llama2c)");
}

const char* model_format_name(ModelFormat f) {
  switch (f) {
    case ModelFormat::Auto:
      return "auto";
    case ModelFormat::HF:
      return "hf";
    case ModelFormat::GGUF:
      return "gguf";
    case ModelFormat::Llama2c:
      return "llama2c";
  }
  return "?";
}

static bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

static bool has_gguf_magic(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char m[4] = {};
  size_t n = std::fread(m, 1, 4, f);
  std::fclose(f);
  return n == 4 && std::memcmp(m, "GGUF", 4) == 0;
}

// An HF checkpoint named by one of its files resolves to its directory.
static std::string hf_dir_of(const std::string& path) {
  if (is_directory(path)) return path;
  std::string d = fs::path(path).parent_path().string();
  return d.empty() ? "." : d;
}

ModelFormat detect_model_format(const std::string& path) {
  if (is_directory(path)) {
    SEC_CHECK(file_exists(path + "/config.json"), path,
              ": directory has no config.json (expected a Hugging Face model directory)");
    return ModelFormat::HF;
  }
  SEC_CHECK(file_exists(path), path, ": no such file or directory");
  if (has_gguf_magic(path)) return ModelFormat::GGUF;
  if (ends_with(path, ".gguf")) fail(path, ": not a GGUF file (bad magic; expected \"GGUF\")");
  if (ends_with(path, ".safetensors") || ends_with(path, ".safetensors.index.json") || ends_with(path, "config.json"))
    return ModelFormat::HF;
  if (ends_with(path, ".bin")) return ModelFormat::Llama2c;
  fail(path, ": unrecognised model format (expected an HF directory, a .gguf file or a llama2.c .bin file)");
}

// ---------------------------------------------------------------------------------------------
// Tokenizers

static bool is_gguf_path(const std::string& p) { return ends_with(p, ".gguf") || has_gguf_magic(p); }

static TokenizerData read_tokenizer_data(const std::string& path) {
  if (is_directory(path)) {
    if (file_exists(path + "/tokenizer.json")) return read_tokenizer_json(path + "/tokenizer.json");
    if (file_exists(path + "/tokenizer.model")) return read_sentencepiece_model(path + "/tokenizer.model");
    if (file_exists(path + "/tokenizer.bin")) return read_llama2c_tokenizer(path + "/tokenizer.bin");
    fail(path, ": no tokenizer.json, tokenizer.model or tokenizer.bin in this directory");
  }
  SEC_CHECK(file_exists(path), path, ": tokenizer file not found");
  if (ends_with(path, ".json")) return read_tokenizer_json(path);
  if (ends_with(path, ".model")) return read_sentencepiece_model(path);
  if (is_gguf_path(path)) {
    GgufFile g(path);
    auto t = gguf_read_tokenizer(g);
    SEC_CHECK(t.has_value(), path, ": this GGUF file has no tokenizer (no tokenizer.ggml.* vocabulary)");
    return *t;
  }
  return read_llama2c_tokenizer(path);
}

// Tokenizer's own checks (ids, merges, scores) do not know the file: name it here.
static Tokenizer build_tokenizer(TokenizerData d, const std::string& where) {
  try {
    return Tokenizer(std::move(d));
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  }
}

Tokenizer load_tokenizer(const std::string& path) { return build_tokenizer(read_tokenizer_data(path), path); }

static std::shared_ptr<const Tokenizer> make_tokenizer(TokenizerData d, const Config& c, const std::string& where) {
  auto t = std::make_shared<const Tokenizer>(build_tokenizer(std::move(d), where));
  SEC_CHECK(t->vocab_size() <= c.vocab_size, where, ": the tokenizer has ", t->vocab_size(),
            " tokens but the model's vocabulary has only ", c.vocab_size, " rows");
  return t;
}

// ---------------------------------------------------------------------------------------------
// Shared checks

static void check_shape(const std::string& file, const std::string& name, const Shape& got, const Shape& want) {
  SEC_CHECK(got == want, file, ": tensor ", name, " has shape ", shape_str(got), " but the config requires ",
            shape_str(want));
}

static void fail_extra(const std::string& file, const std::vector<std::string>& extra) {
  std::string list;
  for (size_t i = 0; i < extra.size() && i < 10; i++) list += (i ? ", " : "") + extra[i];
  if (extra.size() > 10) list += cat(", ... (", extra.size(), " in all)");
  fail(file, ": unexpected tensors that the config does not define: ", list);
}

static DType majority(const std::map<DType, int64_t>& counts) {
  DType best = DType::F32;
  int64_t n = -1;
  for (auto [d, c] : counts)
    if (c > n) best = d, n = c;
  return best;
}

// ---------------------------------------------------------------------------------------------
// Hugging Face directories

static Model load_hf(const std::string& path, const LoadOptions& opts) {
  const std::string dir = hf_dir_of(path);
  Model m;
  m.config = read_hf_config(dir + "/config.json");
  // Copy-on-write mapping: f32 tensors are views into the file (1x memory), modifiable in memory.
  SafetensorsCheckpoint ck(is_directory(path) || ends_with(path, "config.json") ? dir : path,
                           MappedFile::Mode::CopyOnWrite);
  const std::string where = ck.files().size() == 1 ? ck.files()[0] : dir;
  // No lm_head.weight: Transformers ties the head only when tie_word_embeddings says so (Llama's and
  // Qwen2's default is false); otherwise it would initialise the head randomly.
  const std::string head = tensor_name_hf(TensorKind::LmHead);
  SEC_CHECK(m.config.tied_embeddings || ck.find(head), where, ": no ", head, " but config.json has ",
            "tie_word_embeddings false (or absent: false is the default): Transformers would initialise the head ",
            "randomly; add the head, or set \"tie_word_embeddings\": true if the embedding is meant to be shared");
  // Transformers' Llama with attention_bias has q/k/v AND o_proj biases; secateur's attn_bias is
  // Qwen2's q/k/v biases only.
  if (m.config.attn_bias && m.config.architecture == "llama") {
    for (const auto& [name, e] : ck.tensors())
      SEC_CHECK(!ends_with(name, ".self_attn.o_proj.bias"), where, ": ", name,
                " is not supported: secateur supports q/k/v biases (Qwen2) but not o_proj biases (a Llama ",
                "config.json with attention_bias true)");
    log_warn(where, ": a Llama config with attention_bias true but no o_proj biases: read as q/k/v biases only ",
             "(Transformers would add zero-initialised o_proj biases); it is saved as model_type qwen2");
  }
  std::set<std::string> used;
  std::map<DType, int64_t> dtypes;
  m.weights.blocks.resize(m.config.n_layers());
  for_each_tensor(m.config, m.weights, [&](TensorRef& r) {
    const auto* e = ck.find(r.name);
    SEC_CHECK(e != nullptr, where, ": missing tensor ", r.name, " (shape ", shape_str(r.shape), ")");
    check_shape(e->file->path(), r.name, e->tensor->shape, r.shape);
    r.tensor = e->file->load_f32(*e->tensor);
    dtypes[e->tensor->dtype] += r.tensor.numel();
    m.source.stored_weight_bytes += int64_t(e->tensor->nbytes);
    used.insert(r.name);
  });
  std::vector<std::string> extra;
  for (const auto& [name, e] : ck.tensors()) {
    if (used.count(name)) continue;
    if (ends_with(name, "rotary_emb.inv_freq")) continue;    // recomputed from the config; old checkpoints stored it
    if (name == head && m.config.tied_embeddings) continue;  // Transformers ignores it when tied
    extra.push_back(name);
  }
  if (!extra.empty()) fail_extra(where, extra);
  m.source.path = path;
  m.source.format = "hf";
  m.source.file_dtype = majority(dtypes);
  m.source.sha256 = ck.sha256();
  std::string tok = opts.tokenizer_path;
  if (tok.empty() && file_exists(dir + "/tokenizer.json")) tok = dir + "/tokenizer.json";
  if (tok.empty() && file_exists(dir + "/tokenizer.model")) tok = dir + "/tokenizer.model";
  if (!tok.empty()) m.tokenizer = make_tokenizer(read_tokenizer_data(tok), m.config, tok);
  return m;
}

static Tensor to_stored(const Tensor& t, DType d) { return t.dtype() == d ? t : t.to(d); }

// generation_config.json: the tokenizer's BOS / EOS / PAD ids (the config's without a tokenizer)
// and greedy decoding.
static nlohmann::ordered_json hf_generation_config(const Model& m) {
  int bos = m.config.bos_token_id, eos = m.config.eos_token_id, pad = -1;
  if (m.tokenizer) {
    const TokenizerData& d = m.tokenizer->data();
    bos = d.bos_id, eos = d.eos_id, pad = d.pad_id;
  }
  auto id = [](int v) { return v >= 0 ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr); };
  nlohmann::ordered_json j;
  j["bos_token_id"] = id(bos);
  j["eos_token_id"] = id(eos);
  if (pad >= 0) j["pad_token_id"] = pad;
  j["do_sample"] = false;
  return j;
}

static void save_hf(const Model& m, const std::string& dir, const SaveOptions& opts) {
  SEC_CHECK(!opts.sparse, dir, ": sparse storage is GGUF only (safetensors has no compressed sparse dtype); ",
            "write a .gguf, or store dense");
  if (!m.config.plain_residual())
    log_warn(dir, ": a rotated / sliced model (model_type ", kSlicedModelType,
             ", shortcut matrices): Transformers and llama.cpp cannot build this model; secateur can");
  else if (!m.config.uniform_blocks())
    log_warn(dir, ": the blocks differ in size (config.json secateur_layers): Transformers cannot build this ",
             "model; secateur and llama.cpp (GGUF) can");
  if (m.config.attn_bias && m.config.architecture != "qwen2")
    log_warn(dir, ": the model has q/k/v biases, so it is written as model_type qwen2 (a Transformers Llama with ",
             "attention_bias would also need o_proj biases)");
  else if (!m.config.attn_bias && m.config.architecture == "qwen2")
    log_warn(dir, ": the model has no q/k/v biases, so it is written as model_type llama (Transformers' Qwen2 always ",
             "has them)");
  std::error_code ec;
  create_output_directory(dir);
  // A stale shard index from an earlier save would be preferred over our single file.
  if (file_exists(dir + "/model.safetensors.index.json")) {
    log_warn(dir, ": removing the stale model.safetensors.index.json");
    fs::remove(dir + "/model.safetensors.index.json", ec);
  }
  // Converted tensor by tensor while writing: at most one converted copy exists at a time.
  std::vector<SafetensorsOutput> tensors;
  for_each_tensor(m.config, m.weights, [&](const TensorRef& r) {
    SEC_CHECK(r.tensor.defined() && r.tensor.shape() == r.shape, "cannot save: tensor ", r.name, " has shape ",
              shape_str(r.tensor.shape()), " but the config requires ", shape_str(r.shape));
    // 1-D tensors (norms, biases) stay f32, as in our GGUF files, so HF <-> GGUF is lossless.
    const DType d = r.tensor.ndim() == 1 ? DType::F32 : opts.dtype;
    tensors.push_back({r.name, r.shape, d, [t = r.tensor, d] { return to_stored(t, d); }});
  });
  Config c = m.config;
  c.provenance["version"] = SECATEUR_VERSION;  // the writer's version
  std::map<std::string, std::string> meta = c.provenance;
  meta["format"] = "pt";
  auto j = config_to_hf_json(c);
  j["torch_dtype"] = opts.dtype == DType::F32 ? "float32" : opts.dtype == DType::F16 ? "float16" : "bfloat16";
  write_safetensors(dir + "/model.safetensors", tensors, meta);
  write_file_atomic(dir + "/config.json", j.dump(2) + "\n");
  write_file_atomic(dir + "/generation_config.json", hf_generation_config(m).dump(2) + "\n");
  if (m.tokenizer) {
    const TokenizerData& d = m.tokenizer->data();
    write_tokenizer_json(d, dir + "/tokenizer.json");
    write_file_atomic(dir + "/tokenizer_config.json", hf_tokenizer_config(d, c.max_seq_len).dump(2) + "\n");
    write_file_atomic(dir + "/special_tokens_map.json", hf_special_tokens_map(d).dump(2) + "\n");
  }
}

// ---------------------------------------------------------------------------------------------
// GGUF

// Per-block sizes in llama.cpp: its "llama" and "qwen2" loaders read head_count, head_count_kv and
// feed_forward_length per layer (arrays are accepted) but size every block's tensors from layer 0's
// values, so a model whose blocks differ fails there ("blk.1.attn_q.weight has wrong shape").
// Its "deci" architecture (Nemotron / DeciLM) sizes each block from its own entries, creates no
// attention tensors for a block with 0 heads, no FFN tensors for a block with FFN 0, and takes
// optional q/k/v biases of each block's size; it uses llama's interleaved RoPE. Two cases its
// graph gets wrong are written with placeholders that compute exactly zero:
//  * FFN 0 in a block that has attention: llama.cpp skips the rest of such a block (it was meant
//    for Nemotron's blocks that have neither), dropping the attention output; and in the last
//    block it skips the selection of the output rows too. So every FFN-free block is written with
//    an FFN of width 1 whose weights are zero (its output is exactly 0).
//  * 0 heads in block 0: llama.cpp derives the head size (and reads key_length) only when block
//    0 has heads. Block 0 is then written with one head whose q/k/v/o weights are zero.
// The placeholders are listed in secateur.placeholder_ffn_blocks / placeholder_attention_blocks
// (INT32 arrays), and the reader turns them back into FFN 0 / 0 heads.
constexpr const char* kPlaceholderFfnKey = "secateur.placeholder_ffn_blocks";
constexpr const char* kPlaceholderAttnKey = "secateur.placeholder_attention_blocks";

// The GGUF architecture a model is written as: llama / qwen2 when every block has the same sizes
// and none lacks attention or FFN (those outputs are unchanged), deci otherwise; a model whose
// residual stream is rotated / sliced with shortcut matrices (SliceGPT) is secateur's own
// "slicegpt", which llama.cpp refuses as an unknown architecture instead of misreading it.
//   slicegpt.* keys: the deci keys (per-block INT32 arrays, key_length / value_length), plus
//   residual_widths (INT32, 2L+1 points), attn_shortcut / mlp_shortcut (INT32 0/1 per block),
//   norm_mean_dim (UINT32, 0: each norm's own width), attention_bias (BOOL) and base_architecture
//   (llama | qwen2); q/k rows interleaved as in llama; tensors blk.N.attn_shortcut.weight /
//   blk.N.ffn_shortcut.weight ([out, in] = [mid, in] / [out, mid]).
static std::string gguf_architecture_for(const Config& c) {
  if (!c.plain_residual()) return "slicegpt";
  const bool plain = c.uniform_blocks() && c.blocks[0].n_heads > 0 && c.blocks[0].ffn_dim > 0;
  return plain ? (c.attn_bias ? "qwen2" : "llama") : "deci";
}

static std::vector<int64_t> per_layer(const GgufFile& g, const std::string& key, int n_layers, bool required,
                                      int64_t def) {
  const GgufValue* v = g.find(key);
  if (!v) {
    SEC_CHECK(!required, g.path(), ": missing GGUF metadata key ", key);
    return std::vector<int64_t>(size_t(n_layers), def);
  }
  if (v->is_array()) {
    SEC_CHECK(!v->ints.empty() || v->array_size() == 0, g.path(), ": ", key,
              " must be an integer or an array of integers");
    SEC_CHECK(int64_t(v->ints.size()) == n_layers, g.path(), ": ", key, " lists ", v->ints.size(),
              " values but block_count is ", n_layers);
    return v->ints;
  }
  SEC_CHECK(v->is_integer(), g.path(), ": ", key, " must be an integer or an array of integers, not ",
            gguf_type_name(v->type));
  return std::vector<int64_t>(size_t(n_layers), v->i);
}

static int checked_int(const GgufFile& g, const std::string& key, int64_t v, int64_t lo = 0) {
  SEC_CHECK(v >= lo && v < (int64_t(1) << 31), g.path(), ": GGUF metadata ", key, " = ", v, " is out of range");
  return int(v);
}

// A float parameter: finite and within float range (narrowing an f64 1e300 is undefined behaviour).
static float checked_float(const GgufFile& g, const std::string& key, double def) {
  const double v = g.get_float(key, def);
  SEC_CHECK(std::isfinite(v) && std::fabs(v) <= std::numeric_limits<float>::max(), g.path(), ": GGUF metadata ", key,
            " = ", v, " is out of range");
  return float(v);
}

// A number secateur wrote as a string key (secateur.rope_scaling.*): the whole string must parse.
static double provenance_number(const std::string& path, const std::string& key, const std::string& text) {
  const char* b = text.c_str();
  char* e = nullptr;
  errno = 0;
  const double v = std::strtod(b, &e);
  SEC_CHECK(e != b && *e == '\0' && errno == 0 && std::isfinite(v), path, ": GGUF metadata secateur.", key, " = '",
            text, "' is not a number");
  return v;
}

// Factors llama.cpp stores in rope_freqs.weight for llama3 RoPE: unscaled / scaled inverse frequency.
static std::vector<float> llama3_rope_factors(const Config& c) {
  Config plain = c;
  plain.rope_scaling = RopeScaling{};
  auto base = rope_inv_freq(plain), scaled = rope_inv_freq(c);
  std::vector<float> f(base.size());
  for (size_t i = 0; i < f.size(); i++) f[i] = base[i] / scaled[i];
  return f;
}

static Model load_gguf(const std::string& path, const LoadOptions& opts) {
  GgufFile g(path, MappedFile::Mode::CopyOnWrite);  // f32 tensors become views, as in load_hf
  Model m;
  Config& c = m.config;
  const std::string arch = g.get_string("general.architecture");
  SEC_CHECK(arch == "llama" || arch == "qwen2" || arch == "deci" || arch == "slicegpt", path,
            ": unsupported GGUF architecture '", arch, "' (supported: llama, qwen2, deci, slicegpt)");
  c.architecture = arch;
  c.attn_bias = arch == "qwen2";
  const std::string a = arch + ".";
  c.dim = checked_int(g, a + "embedding_length", g.get_int(a + "embedding_length"), 1);
  const int L = checked_int(g, a + "block_count", g.get_int(a + "block_count"), 1);
  SEC_CHECK(L <= kMaxLayers, path, ": absurd block_count ", L, " (the limit is ", kMaxLayers, ")");
  auto heads = per_layer(g, a + "attention.head_count", L, true, 0);
  auto kv = per_layer(g, a + "attention.head_count_kv", L, false, -1);
  auto ffn = per_layer(g, a + "feed_forward_length", L, true, 0);
  int max_heads = 0;
  for (int l = 0; l < L; l++) {
    int h = checked_int(g, a + "attention.head_count", heads[l]);
    int k = kv[l] < 0 ? h : checked_int(g, a + "attention.head_count_kv", kv[l]);
    c.blocks.push_back(BlockDims{h, k, checked_int(g, a + "feed_forward_length", ffn[l])});
    max_heads = std::max(max_heads, h);
  }
  SEC_CHECK(max_heads > 0, path, ": every block has zero attention heads");
  if (arch == "slicegpt") {
    const std::string base = g.get_string(a + "base_architecture", "llama");
    SEC_CHECK(base == "llama" || base == "qwen2", path, ": ", a, "base_architecture '", base,
              "' is not llama or qwen2");
    c.architecture = base;
    c.attn_bias = g.get_int(a + "attention_bias", 0) != 0;
    auto flags = [&](const char* key) { return per_layer(g, a + key, L, true, 0); };
    const auto attn_sc = flags("attn_shortcut"), mlp_sc = flags("mlp_shortcut");
    for (int l = 0; l < L; l++) {
      c.blocks[size_t(l)].attn_shortcut = attn_sc[size_t(l)] != 0;
      c.blocks[size_t(l)].mlp_shortcut = mlp_sc[size_t(l)] != 0;
    }
    const GgufValue* widths = g.find(a + "residual_widths");
    SEC_CHECK(widths && widths->is_array() && int64_t(widths->ints.size()) == 2 * int64_t(L) + 1, path, ": ", a,
              "residual_widths must be an integer array of 2 x block_count + 1 widths");
    for (int64_t v : widths->ints) c.resid_dims.push_back(checked_int(g, a + "residual_widths", v, 1));
    c.norm_mean_dim = checked_int(g, a + "norm_mean_dim", g.get_int(a + "norm_mean_dim", 0));
  }
  // deci: per-block q/k/v biases (a Qwen2-style model), the same in every block that has attention.
  if (arch == "deci") {
    int with = 0, attn_blocks = 0;
    for (int l = 0; l < L; l++) {
      if (c.blocks[l].n_heads == 0) continue;
      attn_blocks++;
      with += g.find_tensor(tensor_name_gguf(TensorKind::QBias, l)) != nullptr;
    }
    SEC_CHECK(with == 0 || with == attn_blocks, path, ": ", with, " of ", attn_blocks,
              " blocks with attention have q/k/v biases (all or none must)");
    c.attn_bias = with > 0;
    c.architecture = c.attn_bias ? "qwen2" : "llama";  // what save_gguf writes as deci
  }
  // Placeholder sub-blocks secateur writes for llama.cpp's deci (see the top of this section).
  std::set<std::string> placeholder_tensors;
  auto placeholders = [&](const char* key, bool ffn_part) {
    const GgufValue* v = g.find(key);
    if (!v) return;
    SEC_CHECK(arch == "deci" && v->is_array() && (!v->ints.empty() || v->array_size() == 0), path, ": ", key,
              " must be an integer array in a deci file");
    for (int64_t l : v->ints) {
      SEC_CHECK(l >= 0 && l < L, path, ": ", key, " lists block ", l, " but the model has ", L, " blocks");
      BlockDims& b = c.blocks[size_t(l)];
      if (ffn_part) {
        SEC_CHECK(b.ffn_dim == 1, path, ": block ", l, " is listed in ", key, " but its FFN has width ", b.ffn_dim);
        b.ffn_dim = 0;
      } else {
        SEC_CHECK(b.n_heads == 1 && b.n_kv_heads == 1, path, ": block ", l, " is listed in ", key, " but has ",
                  b.n_heads, " heads");
        b.n_heads = b.n_kv_heads = 0;
      }
      for (const auto& rule : tensor_name_rules()) {
        if (rule.sub != (ffn_part ? SubLayer::Mlp : SubLayer::Attention)) continue;
        const std::string name = tensor_name_gguf(rule.kind, int(l));
        const GgufTensorInfo* t = g.find_tensor(name);
        if (!t) continue;  // e.g. no biases; a missing weight is reported as unexpected/missing below
        // The weights that produce the sub-block's output must be zero, or dropping it changes the model.
        if (rule.kind == TensorKind::Down || rule.kind == TensorKind::O) {
          Tensor w = g.read_f32(*t);
          const float* p = w.f32();
          SEC_CHECK(std::all_of(p, p + w.numel(), [](float x) { return x == 0.f; }), path, ": tensor ", name,
                    " of placeholder block ", l, " is not zero");
        }
        placeholder_tensors.insert(name);
      }
    }
  };
  placeholders(kPlaceholderFfnKey, true);
  placeholders(kPlaceholderAttnKey, false);
  int64_t hd = g.get_int(a + "attention.key_length", g.get_int(a + "rope.dimension_count", c.dim / max_heads));
  c.head_dim = checked_int(g, a + "attention.key_length", hd, 1);
  c.max_seq_len = checked_int(g, a + "context_length", g.get_int(a + "context_length", 2048), 1);
  c.rope_theta = checked_float(g, a + "rope.freq_base", 10000.0);
  c.norm_eps = checked_float(g, a + "attention.layer_norm_rms_epsilon", 1e-5);
  std::string scaling = g.get_string(a + "rope.scaling.type", "");
  if (scaling == "linear") {
    c.rope_scaling.type = "linear";
    c.rope_scaling.factor = checked_float(g, a + "rope.scaling.factor", 1.0);
  } else {
    SEC_CHECK(scaling.empty() || scaling == "none", path, ": unsupported ", a, "rope.scaling.type '", scaling, "'");
  }
  const GgufTensorInfo* embd = g.find_tensor(tensor_name_gguf(TensorKind::Embed));
  SEC_CHECK(embd && embd->shape.size() == 2, path, ": missing tensor ", tensor_name_gguf(TensorKind::Embed));
  c.vocab_size = checked_int(g, a + "vocab_size", g.get_int(a + "vocab_size", embd->shape[0]), 1);
  for (const auto& [k, v] : g.metadata()) {
    if (k.rfind("secateur.", 0) != 0 || v.type != GgufType::String) continue;
    // Provenance goes to JSON (config.json, reports), whose strings must be UTF-8.
    if (!valid_utf8(k) || !valid_utf8(v.str)) {
      log_warn(path, ": ignoring metadata key ", k.size() > 64 ? k.substr(0, 64) + "..." : k, ": not valid UTF-8");
      continue;
    }
    c.provenance[k.substr(9)] = v.str;
  }
  check_config_from_file(c, path);  // the dims are sane before anything is sized by them
  // llama3 RoPE: llama.cpp keeps only the per-frequency factors (rope_freqs.weight). We also write
  // the parameters as provenance keys; without them, assume Llama 3's (low 1, high 4, 8192) and check.
  const GgufTensorInfo* freqs = g.find_tensor("rope_freqs.weight");
  if (freqs) {
    SEC_CHECK(freqs->shape == Shape{c.head_dim / 2}, path, ": tensor rope_freqs.weight has shape ",
              shape_str(freqs->shape), ", expected [", c.head_dim / 2, "]");
    Tensor f = g.read_f32(*freqs);
    RopeScaling& rs = c.rope_scaling;
    rs.type = "llama3";
    auto num = [&](const char* key, double def, double lo, double hi) {
      auto it = c.provenance.find(key);
      const double v = it == c.provenance.end() ? def : provenance_number(path, key, it->second);
      SEC_CHECK(v >= lo && v <= hi, path, ": GGUF metadata secateur.", key, " = ", v, " is out of range");
      return v;
    };
    const double max_factor = f.numel() ? double(*std::max_element(f.f32(), f.f32() + f.numel())) : 1.0;
    const double fmax = std::numeric_limits<float>::max();
    rs.factor = float(num("rope_scaling.factor", max_factor, -fmax, fmax));
    rs.low_freq_factor = float(num("rope_scaling.low_freq_factor", 1.0, -fmax, fmax));
    rs.high_freq_factor = float(num("rope_scaling.high_freq_factor", 4.0, -fmax, fmax));
    rs.original_max_position = int(num("rope_scaling.original_max_position", 8192, 1, double(INT32_MAX)));
    for (const char* k : {"rope_scaling.factor", "rope_scaling.low_freq_factor", "rope_scaling.high_freq_factor",
                          "rope_scaling.original_max_position"})
      c.provenance.erase(k);
    check_config_from_file(c, path);  // the parameters are sane before the factors are computed from them
    auto expect = llama3_rope_factors(c);
    for (size_t i = 0; i < expect.size(); i++)
      SEC_CHECK(std::fabs(expect[i] - f.f32()[i]) <= 1e-3f * std::fabs(expect[i]), path,
                ": rope_freqs.weight does not match llama3 RoPE scaling with factor ", rs.factor,
                " (low 1, high 4, original context 8192); other RoPE factor tables are not supported");
  }
  // Tied: no output.weight, or one byte-identical to token_embd.weight (llama.cpp's llama2.c
  // converter writes the tied classifier out explicitly).
  const GgufTensorInfo* out = g.find_tensor(tensor_name_gguf(TensorKind::LmHead));
  c.tied_embeddings = !out || (out->shape == embd->shape && out->dtype == embd->dtype &&
                               std::memcmp(g.data(*out), g.data(*embd), out->nbytes) == 0);
  if (out) g.release(*out);  // the pages memcmp read; when not tied, loading reads them again
  // bos/eos live with the tokenizer metadata in GGUF.
  // (llama.cpp writes 0xFFFFFFFF for "none": any value outside int range means none.)
  auto token_id = [&](const char* key, int def) {
    const int64_t v = g.get_int(key, def);
    return v >= 0 && v < (int64_t(1) << 31) ? int(v) : -1;
  };
  c.bos_token_id = token_id("tokenizer.ggml.bos_token_id", c.bos_token_id);
  c.eos_token_id = token_id("tokenizer.ggml.eos_token_id", c.eos_token_id);
  check_config_from_file(c, path);

  std::set<std::string> used = placeholder_tensors;
  used.insert("rope_freqs.weight");
  if (c.tied_embeddings && out) used.insert(out->name);
  std::map<DType, int64_t> dtypes;
  m.weights.blocks.resize(c.n_layers());
  const bool interleaved = arch == "llama" || arch == "deci" || arch == "slicegpt";
  for_each_tensor(c, m.weights, [&](TensorRef& r) {
    std::string name = tensor_name_gguf(r.kind, r.layer);
    const GgufTensorInfo* t = g.find_tensor(name);
    SEC_CHECK(t != nullptr, path, ": missing tensor ", name, " (shape ", shape_str(r.shape), ")");
    check_shape(path, name, t->shape, r.shape);
    SEC_CHECK(t->dtype != DType::F32_SPARSE || sparse_storable(r.kind), path, ": tensor ", name,
              " is stored sparse, which only block linears may be");
    const bool keep = opts.keep_sparse && t->dtype == DType::F32_SPARSE;
    RopeRows rope = tensor_rule(r.kind).rope;
    if (interleaved && rope != RopeRows::None) {  // permuted into an owned copy (expanded, then compressed again)
      r.tensor = rope_rows_from_interleaved(
          g.read_f32(*t), rope == RopeRows::QueryHeads ? c.blocks[r.layer].n_heads : c.blocks[r.layer].n_kv_heads);
      if (keep) r.tensor = compress_sparse(r.tensor);
    } else {
      r.tensor = keep ? g.load_stored(*t) : g.load_f32(*t);
    }
    // Sparse values are f32: the majority dtype counts them as f32.
    if (t->shape.size() > 1) dtypes[t->dtype == DType::F32_SPARSE ? DType::F32 : t->dtype] += t->shape[0] * t->shape[1];
    m.source.sparse_tensors += t->dtype == DType::F32_SPARSE;
    used.insert(name);
  });
  std::vector<std::string> extra;
  for (const auto& t : g.tensors())
    if (!used.count(t.name)) extra.push_back(t.name);
  if (!extra.empty()) fail_extra(path, extra);
  m.source.path = path;
  m.source.format = "gguf";
  m.source.file_dtype = majority(dtypes);
  for (const auto& t : g.tensors()) m.source.stored_weight_bytes += int64_t(t.nbytes);
  m.source.sha256 = sha256_file(path);
  if (!opts.tokenizer_path.empty()) {
    m.tokenizer = make_tokenizer(read_tokenizer_data(opts.tokenizer_path), c, opts.tokenizer_path);
  } else if (auto td = gguf_read_tokenizer(g)) {
    m.tokenizer = make_tokenizer(std::move(*td), c, path);
  }
  return m;
}

bool sparse_storable(TensorKind k) { return tensor_rule(k).is_linear; }  // q, k, v, o, gate, up, down

// Sparse storage (SaveOptions::sparse): a block linear is written as an F32_SPARSE blob (type id
// kGgmlTypeF32Sparse, which ggml does not know: llama.cpp refuses the file) when the blob is smaller
// than the dense f32 tensor. Everything else about the file (architecture, keys, names, q/k row
// order) is what the dense file has, so `convert --dense` gives back exactly the dense file.
static void save_gguf(const Model& m, const std::string& path, const SaveOptions& opts) {
  const Config& c = m.config;
  SEC_CHECK(!opts.sparse || opts.dtype == DType::F32, path, ": sparse storage keeps f32 values; it cannot be ",
            "combined with --dtype ", dtype_name(opts.dtype));
  SEC_CHECK(!c.attn_bias || c.architecture == "qwen2" || c.architecture == "llama", "cannot save architecture ",
            c.architecture, " as GGUF");
  const std::string arch = gguf_architecture_for(c);
  const bool deci = arch == "deci", sliced = arch == "slicegpt";
  const std::string a = arch + ".";
  // The block sizes stored in the file: deci placeholders (see above) where llama.cpp needs them.
  std::vector<BlockDims> stored = c.blocks;
  std::vector<int64_t> placeholder_ffn, placeholder_attn;
  if (deci) {
    for (int l = 0; l < c.n_layers(); l++) {
      if (c.blocks[l].ffn_dim == 0) {
        stored[l].ffn_dim = 1;
        placeholder_ffn.push_back(l);
      }
    }
    if (c.blocks[0].n_heads == 0) {
      stored[0].n_heads = stored[0].n_kv_heads = 1;
      placeholder_attn.push_back(0);
    }
  }
  GgufWriter w;
  w.set("general.architecture", GgufValue::string(arch));
  auto pname = c.provenance.find("name");
  w.set("general.name",
        GgufValue::string(pname != c.provenance.end() ? pname->second : fs::path(path).stem().string()));
  w.set("general.file_type", GgufValue::u32(opts.dtype == DType::F32 ? 0 : opts.dtype == DType::F16 ? 1 : 32));
  w.set("general.alignment", GgufValue::u32(32));
  w.set(a + "vocab_size", GgufValue::u32(uint32_t(c.vocab_size)));
  w.set(a + "context_length", GgufValue::u32(uint32_t(c.max_seq_len)));
  w.set(a + "embedding_length", GgufValue::u32(uint32_t(c.dim)));
  w.set(a + "block_count", GgufValue::u32(uint32_t(c.n_layers())));
  // Scalars for llama / qwen2 (uniform); one INT32 entry per block for deci.
  auto dims = [&](const char* key, int BlockDims::*field) {
    std::vector<int64_t> v;
    for (const auto& b : stored) v.push_back(b.*field);
    w.set(a + key, deci || sliced ? GgufValue::array_i32(v) : GgufValue::u32(uint32_t(v[0])));
  };
  dims("feed_forward_length", &BlockDims::ffn_dim);
  dims("attention.head_count", &BlockDims::n_heads);
  dims("attention.head_count_kv", &BlockDims::n_kv_heads);
  // llama.cpp assumes head_dim = embedding_length / head_count (of block 0) unless key_length says
  // otherwise; deci files always state it.
  if (sliced) {
    std::vector<int64_t> widths, attn_sc, mlp_sc;
    for (int p = 0; p < c.n_resid_points(); p++) widths.push_back(c.resid_width(p));
    for (const auto& b : c.blocks) attn_sc.push_back(b.attn_shortcut), mlp_sc.push_back(b.mlp_shortcut);
    w.set(a + "base_architecture", GgufValue::string(c.attn_bias ? "qwen2" : "llama"));
    w.set(a + "attention_bias", GgufValue::boolean(c.attn_bias));
    w.set(a + "residual_widths", GgufValue::array_i32(widths));
    w.set(a + "attn_shortcut", GgufValue::array_i32(attn_sc));
    w.set(a + "mlp_shortcut", GgufValue::array_i32(mlp_sc));
    w.set(a + "norm_mean_dim", GgufValue::u32(uint32_t(c.norm_mean_dim)));
  }
  if (deci || sliced || c.blocks[0].n_heads * c.head_dim != c.dim) {
    w.set(a + "attention.key_length", GgufValue::u32(uint32_t(c.head_dim)));
    w.set(a + "attention.value_length", GgufValue::u32(uint32_t(c.head_dim)));
  }
  w.set(a + "rope.dimension_count", GgufValue::u32(uint32_t(c.head_dim)));
  w.set(a + "rope.freq_base", GgufValue::f32(c.rope_theta));
  w.set(a + "attention.layer_norm_rms_epsilon", GgufValue::f32(c.norm_eps));
  if (c.rope_scaling.type == "linear") {
    w.set(a + "rope.scaling.type", GgufValue::string("linear"));
    w.set(a + "rope.scaling.factor", GgufValue::f32(c.rope_scaling.factor));
  }
  if (m.tokenizer) {
    gguf_write_tokenizer(w, m.tokenizer->data());
  } else {
    // No vocabulary: llama.cpp's placeholder vocab type, so llama.cpp still loads the file.
    w.set("tokenizer.ggml.model", GgufValue::string("no_vocab"));
    w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(uint32_t(c.bos_token_id)));
    w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(uint32_t(c.eos_token_id)));
  }
  std::map<std::string, std::string> prov = c.provenance;
  prov["version"] = SECATEUR_VERSION;  // the writer's version
  if (c.rope_scaling.type == "llama3") {
    prov["rope_scaling.factor"] = cat(c.rope_scaling.factor);
    prov["rope_scaling.low_freq_factor"] = cat(c.rope_scaling.low_freq_factor);
    prov["rope_scaling.high_freq_factor"] = cat(c.rope_scaling.high_freq_factor);
    prov["rope_scaling.original_max_position"] = cat(c.rope_scaling.original_max_position);
  }
  for (const auto& [k, v] : prov) w.set("secateur." + k, GgufValue::string(v));
  if (!placeholder_ffn.empty()) w.set(kPlaceholderFfnKey, GgufValue::array_i32(placeholder_ffn));
  if (!placeholder_attn.empty()) w.set(kPlaceholderAttnKey, GgufValue::array_i32(placeholder_attn));

  // Tensors: 1-D ones (norms, biases) always f32, as llama.cpp does.
  // Permuted and converted tensor by tensor while writing: at most one copy exists at a time.
  struct Entry {
    std::string name;
    Shape shape;
    DType dtype;
    std::function<Tensor()> make;
    int layer;
    uint64_t nbytes = 0;  // F32_SPARSE: the blob's size
  };
  std::vector<Entry> entries;
  int n_sparse = 0;
  const bool interleaved = arch == "llama" || deci || sliced;
  std::function<Tensor()> embed_stored;
  for_each_tensor(c, m.weights, [&](const TensorRef& r) {
    SEC_CHECK(r.tensor.defined() && r.tensor.shape() == r.shape, "cannot save: tensor ", r.name, " has shape ",
              shape_str(r.tensor.shape()), " but the config requires ", shape_str(r.shape));
    RopeRows rope = tensor_rule(r.kind).rope;
    const int heads = !interleaved || rope == RopeRows::None ? 0
                      : rope == RopeRows::QueryHeads         ? c.blocks[r.layer].n_heads
                                                             : c.blocks[r.layer].n_kv_heads;
    DType d = r.tensor.ndim() == 1 ? DType::F32 : opts.dtype;
    uint64_t nbytes = 0;
    if (opts.sparse && sparse_storable(r.kind) && r.tensor.ndim() == 2) {
      // The blob's size does not depend on the row order, so the unpermuted tensor gives it.
      const size_t sparse_bytes = sparse_stored_bytes(r.tensor);
      if (sparse_bytes < size_t(r.tensor.numel()) * 4) d = DType::F32_SPARSE, nbytes = sparse_bytes, n_sparse++;
    }
    auto make = [t = r.tensor, heads, d] {
      if (!heads) return to_stored(t, d);
      return to_stored(rope_rows_to_interleaved(t.dtype() == DType::F32_SPARSE ? t.to(DType::F32) : t, heads), d);
    };
    if (r.kind == TensorKind::Embed) embed_stored = make;
    entries.push_back({tensor_name_gguf(r.kind, r.layer), r.shape, d, make, r.layer, nbytes});
  });
  // Placeholder tensors go where their block's tensors would be: before the first tensor of a later
  // block or the final norm. Norms are ones, everything else zero (the sub-block outputs exactly 0).
  auto add_placeholders = [&](int l, std::initializer_list<TensorKind> kinds) {
    auto at =
        std::find_if(entries.begin() + 1, entries.end(), [&](const Entry& e) { return e.layer < 0 || e.layer > l; });
    std::vector<Entry> add;
    for (TensorKind k : kinds) {
      if ((k == TensorKind::QBias || k == TensorKind::KBias || k == TensorKind::VBias) && !c.attn_bias) continue;
      const int hd = c.head_dim;
      Shape shape;
      switch (k) {
        case TensorKind::AttnNorm:
        case TensorKind::FfnNorm:
          shape = {c.dim};
          break;
        case TensorKind::Q:
        case TensorKind::K:
        case TensorKind::V:
          shape = {hd, c.dim};
          break;
        case TensorKind::QBias:
        case TensorKind::KBias:
        case TensorKind::VBias:
          shape = {hd};
          break;
        case TensorKind::O:
          shape = {c.dim, hd};
          break;
        case TensorKind::Gate:
        case TensorKind::Up:
          shape = {1, c.dim};
          break;
        case TensorKind::Down:
          shape = {c.dim, 1};
          break;
        default:
          SEC_ASSERT(false);
      }
      const bool norm = k == TensorKind::AttnNorm || k == TensorKind::FfnNorm;
      const DType d = shape.size() == 1 ? DType::F32 : opts.dtype;
      add.push_back({tensor_name_gguf(k, l), shape, d,
                     [shape, d, norm] {
                       Tensor t = Tensor::zeros(shape);
                       if (norm) std::fill(t.f32(), t.f32() + t.numel(), 1.f);
                       return to_stored(t, d);
                     },
                     l});
    }
    entries.insert(at, add.begin(), add.end());
  };
  for (int64_t l : placeholder_attn)
    add_placeholders(int(l), {TensorKind::AttnNorm, TensorKind::Q, TensorKind::K, TensorKind::V, TensorKind::QBias,
                              TensorKind::KBias, TensorKind::VBias, TensorKind::O});
  for (int64_t l : placeholder_ffn)
    add_placeholders(int(l), {TensorKind::FfnNorm, TensorKind::Gate, TensorKind::Up, TensorKind::Down});
  for (const Entry& e : entries) w.add_tensor(e.name, e.shape, e.dtype, e.make, e.nbytes);
  if (opts.sparse && n_sparse == 0)
    log_warn(path, ": --sparse: no block linear has enough zeros to be smaller stored sparse; the file is dense");
  // A tied classifier is written out as output.weight too, like llama.cpp's llama2.c converter;
  // the reader recognises it as tied because its bytes equal token_embd.weight. A sparse file, which
  // llama.cpp cannot load anyway, leaves that copy out (no output.weight also means tied).
  if (c.tied_embeddings && n_sparse == 0)
    w.add_tensor(tensor_name_gguf(TensorKind::LmHead), m.weights.embed.shape(), opts.dtype, embed_stored);
  if (c.rope_scaling.type == "llama3") {
    auto f = llama3_rope_factors(c);
    w.add_tensor("rope_freqs.weight", Tensor::from_vector(f, Shape{int64_t(f.size())}));
  }
  w.write(path, 32);
}

// ---------------------------------------------------------------------------------------------
// llama2.c

static std::string find_llama2c_tokenizer(const std::string& bin, int vocab) {
  std::string dir = fs::path(bin).parent_path().string();
  if (dir.empty()) dir = ".";
  if (file_exists(dir + "/tokenizer.bin")) return dir + "/tokenizer.bin";
  std::string exact = dir + "/tok" + std::to_string(vocab) + ".bin";
  if (file_exists(exact)) return exact;
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind("tok", 0) == 0 && ends_with(n, ".bin") && e.is_regular_file()) found.push_back(e.path().string());
  }
  if (found.size() == 1) return found[0];
  if (found.size() > 1)
    log_warn(bin, ": several tok*.bin tokenizers next to it and none named tok", vocab,
             ".bin; pass the tokenizer explicitly");
  return "";
}

static Model load_llama2c(const std::string& path, const LoadOptions& opts) {
  Llama2cCheckpoint ck = read_llama2c(path);
  Model m;
  m.config = ck.config;
  m.weights = std::move(ck.weights);
  // q/k rows become owned permuted copies; the other tensors stay views into the file.
  auto permuted = [&](const Tensor& view, int heads) {
    Tensor t = rope_rows_from_interleaved(view, heads);
    ck.file.release(uint64_t(static_cast<const uint8_t*>(view.raw()) - ck.file.data()), view.nbytes());
    return t;
  };
  for (int l = 0; l < m.config.n_layers(); l++) {
    auto& b = m.weights.blocks[l];
    b.wq = permuted(b.wq, m.config.blocks[l].n_heads);
    b.wk = permuted(b.wk, m.config.blocks[l].n_kv_heads);
  }
  m.source.path = path;
  m.source.format = "llama2c";
  m.source.file_dtype = DType::F32;
  m.source.stored_weight_bytes = int64_t(fs::file_size(path));
  m.source.sha256 = sha256_file(path);
  std::string tok =
      opts.tokenizer_path.empty() ? find_llama2c_tokenizer(path, m.config.vocab_size) : opts.tokenizer_path;
  if (!tok.empty()) m.tokenizer = make_tokenizer(read_tokenizer_data(tok), m.config, tok);
  return m;
}

// ---------------------------------------------------------------------------------------------

Model load_model(const std::string& path, const LoadOptions& opts) {
  Model m;
  switch (detect_model_format(path)) {
    case ModelFormat::HF:
      m = load_hf(path, opts);
      break;
    case ModelFormat::GGUF:
      m = load_gguf(path, opts);
      break;
    case ModelFormat::Llama2c:
      m = load_llama2c(path, opts);
      break;
    case ModelFormat::Auto:
      SEC_ASSERT(false);
  }
  SEC_CHECK(
      m.tokenizer || !opts.require_tokenizer, path,
      ": no tokenizer found (give one with --tokenizer: tokenizer.json, tokenizer.model, tokenizer.bin or a .gguf)");
  check_weights(m.config, m.weights);
  return m;
}

void save_model(const Model& m, const std::string& out_path, const SaveOptions& opts) {
  m.config.validate();
  CommitGroup group;  // all of an HF directory's files, or none
  switch (opts.format) {
    case ModelFormat::HF:
      save_hf(m, out_path, opts);
      break;
    case ModelFormat::GGUF:
      // Its directory is created as an HF directory would be (and removed again on failure).
      if (std::string parent = fs::path(out_path).parent_path().string(); !parent.empty())
        create_output_directory(parent);
      save_gguf(m, out_path, opts);
      break;
    default:
      fail(out_path, ": can only save as hf or gguf, not ", model_format_name(opts.format));
  }
  group.commit();
}

}  // namespace sec
