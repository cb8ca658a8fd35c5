// safetensors: write/read round trips in every dtype, header padding, metadata, shards, and HF
// directories saved in f16/bf16.
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "model/init.h"
#include "model/model_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

Tensor ramp(const Shape& s, float scale = 0.25f) {
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); i++) t.f32()[i] = float(i) * scale - 3.f;
  return t;
}

TEST(Safetensors, RoundTripAllDtypes) {
  testing::TempDir d;
  std::vector<std::pair<std::string, Tensor>> ts = {
      {"a", ramp({3, 5})}, {"b.f16", ramp({7}).to(DType::F16)}, {"c.bf16", ramp({2, 2, 3}).to(DType::BF16)}};
  write_safetensors(d.file("x.safetensors"), ts, {{"format", "pt"}, {"method", "wanda"}});
  SafetensorsFile f(d.file("x.safetensors"));
  uint64_t n;
  std::memcpy(&n, read_text_file(d.file("x.safetensors")).data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);  // data section aligned to 8
  EXPECT_EQ(f.metadata().at("method"), "wanda");
  ASSERT_EQ(f.tensors().size(), 3u);
  for (const auto& [name, t] : ts) {
    const SafetensorsTensor* s = f.find(name);
    ASSERT_TRUE(s) << name;
    EXPECT_EQ(s->dtype, t.dtype());
    EXPECT_EQ(s->shape, t.shape());
    Tensor back = f.read_f32(*s);
    EXPECT_EQ(back.to_vector(), t.to_vector()) << name;
  }
  EXPECT_EQ(f.find("nope"), nullptr);
}

TEST(Safetensors, EmptyTensorAndNoMetadata) {
  testing::TempDir d;
  write_safetensors(d.file("e.safetensors"), {{"z", Tensor::empty({0, 4})}}, {});
  SafetensorsFile f(d.file("e.safetensors"));
  EXPECT_TRUE(f.metadata().empty());
  EXPECT_EQ(f.find("z")->nbytes, 0u);
}

Config tiny_config() {
  Config c;
  c.dim = 16;
  c.vocab_size = 40;
  c.head_dim = 4;
  c.blocks = {{4, 2, 24}, {2, 1, 8}, {4, 2, 24}};
  c.tied_embeddings = false;
  return c;
}

void expect_same(const Model& a, const Model& b) {
  std::vector<std::vector<float>> va, vb;
  for_each_tensor(a.config, a.weights, [&](const TensorRef& r) { va.push_back(r.tensor.to_vector()); });
  for_each_tensor(b.config, b.weights, [&](const TensorRef& r) { vb.push_back(r.tensor.to_vector()); });
  ASSERT_EQ(va.size(), vb.size());
  for (size_t i = 0; i < va.size(); i++) EXPECT_EQ(va[i], vb[i]) << i;
}

TEST(Safetensors, ShardedCheckpointLoads) {
  testing::TempDir d;
  Model m = init_random_model(tiny_config(), 7, 0.1f, 0.1f);
  SaveOptions so;
  save_model(m, d.file("one"), so);
  // Split model.safetensors into two shards with an index, as Transformers does for big models.
  std::filesystem::create_directories(d.file("sharded"));
  SafetensorsFile whole(d.file("one/model.safetensors"));
  std::vector<std::pair<std::string, Tensor>> s1, s2;
  nlohmann::json idx;
  idx["metadata"] = {{"total_size", 0}};
  int i = 0;
  for (const auto& t : whole.tensors()) {
    bool first = i++ % 2 == 0;
    (first ? s1 : s2).emplace_back(t.name, whole.read_f32(t));
    idx["weight_map"][t.name] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  write_safetensors(d.file("sharded/model-00001-of-00002.safetensors"), s1, {{"format", "pt"}});
  write_safetensors(d.file("sharded/model-00002-of-00002.safetensors"), s2, {{"format", "pt"}});
  write_file_atomic(d.file("sharded/model.safetensors.index.json"), idx.dump());
  write_file_atomic(d.file("sharded/config.json"), read_text_file(d.file("one/config.json")));
  SafetensorsCheckpoint ck(d.file("sharded"));
  EXPECT_EQ(ck.files().size(), 2u);
  std::string hashes = sha256_file(d.file("sharded/model-00001-of-00002.safetensors")) +
                       sha256_file(d.file("sharded/model-00002-of-00002.safetensors"));
  Model back = load_model(d.file("sharded"));
  EXPECT_EQ(back.source.sha256, sha256_hex(hashes.data(), hashes.size()));
  EXPECT_EQ(back.config.blocks, m.config.blocks);
  expect_same(m, back);
  // An index naming a tensor its shard lacks is an error naming both.
  idx["weight_map"]["model.extra.weight"] = "model-00001-of-00002.safetensors";
  write_file_atomic(d.file("sharded/model.safetensors.index.json"), idx.dump());
  try {
    load_model(d.file("sharded"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.extra.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model-00001-of-00002.safetensors"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, HalfPrecisionDirectoriesLoad) {
  for (DType dt : {DType::F16, DType::BF16}) {
    testing::TempDir d;
    Model m = init_random_model(tiny_config(), 3, 0.1f, 0.1f);
    SaveOptions so;
    so.dtype = dt;
    save_model(m, d.file("hf"), so);
    SafetensorsFile f(d.file("hf/model.safetensors"));
    for (const auto& t : f.tensors()) EXPECT_EQ(t.dtype, t.shape.size() == 1 ? DType::F32 : dt) << t.name;
    Model back = load_model(d.file("hf"));
    EXPECT_EQ(back.source.file_dtype, dt);
    // Every value equals the f32 original rounded once to the half type.
    for_each_tensor(m.config, m.weights, [&](const TensorRef& r) {
      std::vector<float> want = r.tensor.ndim() == 1 ? r.tensor.to_vector() : r.tensor.to(dt).to_vector();
      const Tensor* got = nullptr;
      for_each_tensor(back.config, back.weights, [&](const TensorRef& q) {
        if (q.name == r.name) got = &q.tensor;
      });
      ASSERT_TRUE(got);
      EXPECT_EQ(got->to_vector(), want) << r.name;
    });
    auto cfg = nlohmann::json::parse(read_text_file(d.file("hf/config.json")));
    EXPECT_EQ(cfg["torch_dtype"], dt == DType::F16 ? "float16" : "bfloat16");
  }
}

TEST(Safetensors, TiedWhenLmHeadAbsent) {
  testing::TempDir d;
  Config c = tiny_config();
  c.tied_embeddings = true;
  Model m = init_random_model(c, 1);
  save_model(m, d.file("hf"), SaveOptions{});
  SafetensorsFile f(d.file("hf/model.safetensors"));
  EXPECT_EQ(f.find("lm_head.weight"), nullptr);
  EXPECT_TRUE(load_model(d.file("hf")).config.tied_embeddings);
  // When config.json says untied, a missing lm_head.weight is an error: Transformers would
  // initialise the head randomly (tests/unit/test_hf_conventions.cpp).
  auto cfg = nlohmann::json::parse(read_text_file(d.file("hf/config.json")));
  cfg["tie_word_embeddings"] = false;
  write_file_atomic(d.file("hf/config.json"), cfg.dump());
  EXPECT_THROW(load_model(d.file("hf")), Error);
}

}  // namespace
}  // namespace sec
