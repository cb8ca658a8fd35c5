// Sparse storage in secateur's GGUF (SaveOptions::sparse, docs/formats.md "Compressed sparse weights"):
// which tensors are stored as F32_SPARSE blobs, dense -> sparse -> dense round trips that keep every
// weight's bytes, a sparse file read back compressed (keep_sparse) or expanded, the forward pass on
// compressed weights, and files / options that must be refused.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/random.h"
#include "core/sparse.h"
#include "io/gguf.h"
#include "model/forward.h"
#include "model/init.h"
#include "model/model_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

// A random tiny model whose block linears have `zeros` of their elements set to +0.0 (every other
// block linear of block 1 keeps all its elements, so it must stay dense in a sparse file).
Model pruned_model(const Config& c, double zeros, uint64_t seed) {
  Model m = init_random_model(c, seed, 0.3f, 0.1f);
  Rng rng(seed + 1);
  for_each_tensor(m.config, m.weights, [&](TensorRef& r) {
    if (!sparse_storable(r.kind)) return;
    if (r.layer == 1 && (r.kind == TensorKind::K || r.kind == TensorKind::Up)) return;
    float* p = r.tensor.f32();
    for (int64_t i = 0; i < r.tensor.numel(); i++)
      if (rng.uniform() < zeros) p[i] = 0.f;
  });
  return m;
}

std::vector<uint8_t> bytes_of(const Tensor& t) {
  const Tensor d = t.dtype() == DType::F32 ? t : t.to(DType::F32);
  const auto* p = static_cast<const uint8_t*>(d.raw());
  return std::vector<uint8_t>(p, p + d.nbytes());
}

void expect_same_weights(const Model& a, const Model& b, const std::string& what) {
  std::vector<std::vector<uint8_t>> wa, wb;
  for_each_tensor(a.config, a.weights, [&](const TensorRef& r) { wa.push_back(bytes_of(r.tensor)); });
  for_each_tensor(b.config, b.weights, [&](const TensorRef& r) { wb.push_back(bytes_of(r.tensor)); });
  ASSERT_EQ(wa.size(), wb.size()) << what;
  for (size_t i = 0; i < wa.size(); i++) EXPECT_TRUE(wa[i] == wb[i]) << what << ": tensor " << i << " differs";
}

// Two GGUF files hold the same tensors (names, types, shapes, bytes) in the same order.
void expect_same_tensor_bytes(const std::string& pa, const std::string& pb, bool some_sparse) {
  GgufFile a(pa), b(pb);
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  int sparse = 0;
  for (size_t i = 0; i < a.tensors().size(); i++) {
    const GgufTensorInfo &ta = a.tensors()[i], &tb = b.tensors()[i];
    EXPECT_EQ(ta.name, tb.name);
    EXPECT_EQ(ta.dtype, tb.dtype) << ta.name;
    EXPECT_EQ(ta.shape, tb.shape) << ta.name;
    sparse += tb.dtype == DType::F32_SPARSE;
    ASSERT_EQ(ta.nbytes, tb.nbytes) << ta.name;
    EXPECT_EQ(std::memcmp(a.data(ta), b.data(tb), ta.nbytes), 0) << ta.name;
  }
  EXPECT_EQ(sparse > 0, some_sparse) << pb;
}

void save(const Model& m, const std::string& path, bool sparse) {
  SaveOptions so;
  so.format = ModelFormat::GGUF;
  so.sparse = sparse;
  save_model(m, path, so);
}

std::vector<Config> configs() {
  Config gqa = testing::tiny_config(4, 2, true, false);    // llama: q/k rows permuted in the file
  Config qwen = testing::tiny_config(4, 4, false, true);   // qwen2: biases, rotate-half rows
  Config deci = testing::tiny_config(4, 2, false, false);  // per-block sizes: deci
  deci.blocks = {{4, 2, 72}, {2, 1, 30}, {4, 2, 40}};
  return {gqa, qwen, deci};
}

TEST(SparseGguf, BlockLinearsWithZerosAreStoredSparseTheRestDense) {
  testing::TempDir d;
  Model m = pruned_model(testing::tiny_config(4, 2, true, false), 0.5, 1);
  save(m, d.file("s.gguf"), true);
  GgufFile g(d.file("s.gguf"));
  int sparse = 0;
  for (const auto& t : g.tensors()) {
    const bool expect_sparse = t.name.rfind("blk.", 0) == 0 && t.shape.size() == 2 &&
                               t.name.find("blk.1.attn_k.") == std::string::npos &&
                               t.name.find("blk.1.ffn_up.") == std::string::npos;
    EXPECT_EQ(t.dtype == DType::F32_SPARSE, expect_sparse) << t.name;
    if (t.dtype == DType::F32_SPARSE) {
      EXPECT_EQ(t.ggml_type, kGgmlTypeF32Sparse);
      sparse++;
    }
  }
  EXPECT_EQ(sparse, 3 * 7 - 2);
  // Tied and sparse: no duplicate output.weight (llama.cpp, which wants it, cannot load the file anyway).
  EXPECT_EQ(g.find_tensor("output.weight"), nullptr);
  Model back = load_model(d.file("s.gguf"));
  EXPECT_TRUE(back.config.tied_embeddings);
  EXPECT_EQ(back.source.sparse_tensors, sparse);
  EXPECT_EQ(back.source.file_dtype, DType::F32);
}

TEST(SparseGguf, DenseSparseDenseRoundTripKeepsEveryWeightExactly) {
  for (const Config& c : configs()) {
    SCOPED_TRACE(c.attn_bias ? "qwen2" : c.uniform_blocks() ? "llama" : "deci");
    testing::TempDir d;
    Model m = pruned_model(c, 0.5, 2);
    // Stored values that are not +0.0 survive: -0.0, NaN, denormals.
    float* q = m.weights.blocks[0].wq.f32();
    q[0] = -0.f, q[1] = std::numeric_limits<float>::quiet_NaN(), q[2] = 1e-40f;
    save(m, d.file("dense.gguf"), false);
    save(m, d.file("sparse.gguf"), true);
    LoadOptions keep;
    keep.keep_sparse = true;
    Model expanded = load_model(d.file("sparse.gguf"));
    Model compressed = load_model(d.file("sparse.gguf"), keep);
    EXPECT_GT(compressed.source.sparse_tensors, 0);
    int in_memory = 0;
    for_each_tensor(expanded.config, expanded.weights,
                    [&](const TensorRef& r) { EXPECT_EQ(r.tensor.dtype(), DType::F32) << r.name; });
    for_each_tensor(compressed.config, compressed.weights,
                    [&](const TensorRef& r) { in_memory += r.tensor.dtype() == DType::F32_SPARSE; });
    EXPECT_EQ(in_memory, compressed.source.sparse_tensors);
    expect_same_weights(m, expanded, "sparse file, expanded");
    expect_same_weights(m, compressed, "sparse file, compressed");
    // Back to dense, from the compressed model: the tensors of the dense file, byte for byte.
    save(compressed, d.file("back.gguf"), false);
    expect_same_tensor_bytes(d.file("dense.gguf"), d.file("back.gguf"), false);
    // Sparse again from the compressed model: the same file as the first sparse save.
    save(compressed, d.file("again.gguf"), true);
    expect_same_tensor_bytes(d.file("sparse.gguf"), d.file("again.gguf"), true);
  }
}

TEST(SparseGguf, ForwardOnCompressedWeightsEqualsDense) {
  for (const Config& c : configs()) {
    testing::TempDir d;
    Model m = pruned_model(c, 0.5, 3);
    save(m, d.file("s.gguf"), true);
    LoadOptions keep;
    keep.keep_sparse = true;
    Model s = load_model(d.file("s.gguf"), keep);
    const int64_t T = 20;
    auto tokens = testing::random_tokens(T, c.vocab_size, 4);
    Tensor a = model_forward(m, tokens, 1, T), b = model_forward(s, tokens, 1, T);
    const float scale = testing::max_abs(a.f32(), size_t(a.numel()));
    // Only the order of the f32 sums differs (the sparse kernels skip the zero products).
    EXPECT_LE(testing::max_abs_diff(a.f32(), b.f32(), size_t(a.numel())),
              testing::f32_reordering_tolerance(c, T) * scale);
  }
}

TEST(SparseGguf, RefusedOptionsAndCorruptBlobs) {
  testing::TempDir d;
  Model m = pruned_model(testing::tiny_config(4, 2, false, false), 0.5, 5);
  SaveOptions hf;
  hf.format = ModelFormat::HF;
  hf.sparse = true;
  EXPECT_THROW(save_model(m, d.file("hf"), hf), Error);
  SaveOptions bf16;
  bf16.format = ModelFormat::GGUF;
  bf16.sparse = true;
  bf16.dtype = DType::BF16;
  EXPECT_THROW(save_model(m, d.file("x.gguf"), bf16), Error);
  EXPECT_FALSE(file_exists(d.file("hf")));
  EXPECT_FALSE(file_exists(d.file("x.gguf")));

  save(m, d.file("s.gguf"), true);
  GgufFile g(d.file("s.gguf"));
  const GgufTensorInfo* t = g.find_tensor("blk.0.ffn_down.weight");
  ASSERT_TRUE(t && t->dtype == DType::F32_SPARSE);
  const std::string good = read_text_file(d.file("s.gguf"));
  auto corrupt = [&](uint64_t at, uint8_t x, const std::string& name) {
    std::string bad = good;
    bad[at] = char(uint8_t(bad[at]) ^ x);
    std::ofstream(d.file(name), std::ios::binary) << bad;
    return d.file(name);
  };
  const uint64_t rows = uint64_t(t->shape[0]);
  const uint64_t mask_at = t->offset + (64 + 8 * (rows + 1) + 63) / 64 * 64;
  EXPECT_THROW(load_model(corrupt(t->offset, 1, "magic.gguf")), Error);            // header magic
  EXPECT_THROW(load_model(corrupt(mask_at, 0x01, "mask.gguf")), Error);            // popcount != row length
  EXPECT_THROW(load_model(corrupt(t->offset + 32 + 7, 0x40, "nnz.gguf")), Error);  // absurd nnz
  LoadOptions keep;
  keep.keep_sparse = true;
  EXPECT_THROW(load_model(corrupt(mask_at, 0x01, "mask2.gguf"), keep), Error);
}

}  // namespace
}  // namespace sec
