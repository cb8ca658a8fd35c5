// Copy-on-write loading (docs/formats.md): f32 weights are views into a private writable mapping of
// the file. Modifying them in memory must never reach the file, for every format; tensors that need
// a conversion or the RoPE permutation are owned copies; saving over the input path works.
#include <cstring>

#include "core/file.h"
#include "model/init.h"
#include "model/model_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

Config tiny() {
  Config c;
  c.architecture = "llama";
  c.dim = 16;
  c.vocab_size = 32;
  c.head_dim = 4;
  c.blocks = {{4, 2, 24}, {4, 2, 24}};
  c.max_seq_len = 64;
  return c;
}

// Loads `path`, overwrites every weight in memory, reloads: the file and a fresh load are unchanged.
void expect_file_never_written(const std::string& path, const std::string& file) {
  const std::string hash = sha256_file(file);
  Model a = load_model(path);
  Model ref = load_model(path);
  const float down0 = ref.weights.blocks[0].w_down.f32()[0], q0 = ref.weights.blocks[1].wq.f32()[3];
  for_each_tensor(a.config, a.weights, [](TensorRef& r) {
    float* p = r.tensor.f32();
    for (int64_t i = 0; i < r.tensor.numel(); i++) p[i] = 1234.5f;
  });
  // Another load while `a` is modified, and after it is gone: both see the file's values.
  Model b = load_model(path);
  EXPECT_EQ(b.weights.blocks[0].w_down.f32()[0], down0) << path;
  EXPECT_EQ(b.weights.blocks[1].wq.f32()[3], q0) << path;
  EXPECT_EQ(ref.weights.blocks[0].w_down.f32()[0], down0) << path;  // loads do not share memory
  EXPECT_EQ(a.weights.blocks[0].w_down.f32()[0], 1234.5f);
  a = Model{};
  Model c = load_model(path);
  EXPECT_EQ(c.weights.blocks[0].w_down.f32()[0], down0) << path;
  EXPECT_EQ(sha256_file(file), hash) << path;
}

TEST(LoadFormatsCopyOnWrite, HfFileNeverWritten) {
  testing::TempDir d;
  save_model(init_random_model(tiny(), 1), d.file("hf"), SaveOptions{ModelFormat::HF, DType::F32});
  expect_file_never_written(d.file("hf"), d.file("hf/model.safetensors"));
}

TEST(LoadFormatsCopyOnWrite, GgufFileNeverWritten) {
  testing::TempDir d;
  save_model(init_random_model(tiny(), 2), d.file("m.gguf"), SaveOptions{ModelFormat::GGUF, DType::F32});
  expect_file_never_written(d.file("m.gguf"), d.file("m.gguf"));  // q/k (permuted copies) and views alike
}

TEST(LoadFormatsCopyOnWrite, Llama2cFileNeverWritten) {
  testing::TempDir d;
  // dim 16, hidden 24, 2 layers, 4 heads, 2 kv heads, vocab 32 (tied), seq_len 8; float i = i / 1000.
  int32_t h[7] = {16, 24, 2, 4, 2, 32, 8};
  const int64_t n = 32 * 16 + 2 * 16 + 2 * 2 * 16 * 16 + 2 * 2 * 8 * 16 + 2 * 16 + 3 * 2 * 24 * 16 + 16 + 8 * 4;
  std::string b(reinterpret_cast<const char*>(h), sizeof(h));
  for (int64_t i = 0; i < n; i++) {
    float f = float(i) / 1000.f;
    b.append(reinterpret_cast<const char*>(&f), 4);
  }
  write_file_atomic(d.file("m.bin"), b);
  expect_file_never_written(d.file("m.bin"), d.file("m.bin"));
}

TEST(LoadFormatsCopyOnWrite, ConvertedTensorsAreCopies) {
  // bf16 weights (converted) next to f32 norms (views) in one file.
  testing::TempDir d;
  Model m = init_random_model(tiny(), 3, 0.1f, 0.1f);
  save_model(m, d.file("bf"), SaveOptions{ModelFormat::HF, DType::BF16});
  Model a = load_model(d.file("bf"));
  a.weights.blocks[0].w_up.f32()[0] = 7.f;
  a.weights.blocks[0].attn_norm.f32()[0] = 9.f;
  Model b = load_model(d.file("bf"));
  EXPECT_NE(b.weights.blocks[0].w_up.f32()[0], 7.f);
  EXPECT_EQ(b.weights.blocks[0].attn_norm.f32()[0], m.weights.blocks[0].attn_norm.f32()[0]);
}

TEST(LoadFormatsCopyOnWrite, SaveOverOwnInput) {
  // The output replaces the input's directory entry (AtomicFile renames a new file) while the
  // loaded model still maps the old one: the saved file has the modified values.
  for (ModelFormat f : {ModelFormat::HF, ModelFormat::GGUF}) {
    testing::TempDir d;
    const std::string path = d.file(f == ModelFormat::HF ? "hf" : "m.gguf");
    save_model(init_random_model(tiny(), 4), path, SaveOptions{f, DType::F32});
    Model a = load_model(path);
    const float up1 = a.weights.blocks[1].w_up.f32()[1];
    a.weights.blocks[0].w_down.f32()[0] = 42.f;
    a.weights.blocks[1].wk.f32()[2] = -3.f;
    save_model(a, path, SaveOptions{f, DType::F32});
    Model b = load_model(path);
    EXPECT_EQ(b.weights.blocks[0].w_down.f32()[0], 42.f);
    EXPECT_EQ(b.weights.blocks[1].wk.f32()[2], -3.f);
    EXPECT_EQ(b.weights.blocks[1].w_up.f32()[1], up1);
  }
}

}  // namespace
}  // namespace sec
