// Malformed inputs: every reader must end with sec::Error naming the file and the problem, before
// touching memory it has not validated (these tests also run under ASan/UBSan).
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/init.h"
#include "model/model_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

std::string safetensors_bytes(const std::string& header, size_t data_bytes) {
  uint64_t n = header.size();
  std::string b(reinterpret_cast<const char*>(&n), 8);
  return b + header + std::string(data_bytes, '\0');
}

TEST(CorruptSafetensors, Header) {
  testing::TempDir d;
  std::string p = d.file("x.safetensors");
  auto check = [&](const std::string& bytes, std::initializer_list<const char*> needles) {
    write_file_atomic(p, bytes);
    testing::expect_file_error([&] { SafetensorsFile f(p); }, p, needles);
  };
  check("abc", {"too short"});
  uint64_t huge = 1000;
  check(std::string(reinterpret_cast<const char*>(&huge), 8) + "{}", {"header length", "beyond"});
  check(safetensors_bytes("{not json", 0), {"not valid JSON"});
  check(safetensors_bytes("[1,2]", 0), {"not a JSON object"});
  check(safetensors_bytes(R"({"w":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", 16),
        {"'w'", "unsupported dtype I64"});
  check(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", 8), {"'w'", "outside"});
  check(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), {"'w'", "needs 12 bytes"});
  check(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[-3],"data_offsets":[0,8]}})", 8), {"'w'", "shape"});
  check(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), {"'w'", "data_offsets"});
  check(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[2]}})", 8), {"'w'", "data_offsets"});
  check(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                          12),
        {"overlap"});
  check(safetensors_bytes(R"({"__metadata__":{"k":1}})", 0), {"__metadata__"});
  check(
      safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})", 8),
      {"absurd shape"});
}

// A valid GGUF, then corrupted in targeted places.
std::string good_gguf(const std::string& path) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("llama"));
  w.set("arr", GgufValue::array_i32({1, 2, 3}));
  Tensor t = Tensor::zeros({4, 8});
  w.add_tensor("w", t);
  w.write(path);
  return read_text_file(path);
}

TEST(CorruptGguf, Header) {
  testing::TempDir d;
  std::string p = d.file("x.gguf");
  const std::string good = good_gguf(p);
  auto check = [&](std::string bytes, std::initializer_list<const char*> needles) {
    write_file_atomic(p, bytes);
    testing::expect_file_error([&] { GgufFile f(p); }, p, needles);
  };
  auto patch = [&](size_t at, const void* v, size_t n) {
    std::string b = good;
    std::memcpy(b.data() + at, v, n);
    return b;
  };
  check("GGUX" + good.substr(4), {"bad magic"});
  check("GG", {"bad magic"});
  uint32_t v1 = 1, v9 = 9;
  check(patch(4, &v1, 4), {"unsupported GGUF version 1"});
  check(patch(4, &v9, 4), {"unsupported GGUF version 9"});
  uint64_t absurd = uint64_t(1) << 60;
  check(patch(8, &absurd, 8), {"absurd tensor count"});
  check(patch(16, &absurd, 8), {"absurd metadata count"});
  // The first key's length (at byte 24).
  check(patch(24, &absurd, 8), {"claims a string of"});
  // Truncations anywhere inside the header or the data.
  for (size_t cut : {size_t(10), size_t(30), size_t(60), good.size() / 2, good.size() - 4})
    check(good.substr(0, cut), {});
  check(good.substr(0, good.size() - 4), {"'w'", "outside the data section"});
  // The array count of "arr": find the key, skip its type (4) and element type (4).
  size_t arr = good.find("arr") + 3 + 8;
  check(patch(arr, &absurd, 8), {"'arr'", "array"});
  uint32_t bad_type = 77;
  check(patch(good.find("arr") + 3, &bad_type, 4), {"'arr'", "unknown value type 77"});
  // Tensor info: name "w" then n_dims, dims, type, offset.
  size_t ti = good.find(std::string("\1\0\0\0\0\0\0\0w", 9)) + 9;
  uint32_t five = 5, q4 = 2;
  check(patch(ti, &five, 4), {"'w'", "5 dimensions"});
  check(patch(ti + 4 + 16, &q4, 4), {"'w'", "unsupported tensor type Q4_0"});
  uint64_t off = 4096, mis = 3;
  check(patch(ti + 4 + 16 + 4, &off, 8), {"'w'", "outside the data section"});
  check(patch(ti + 4 + 16 + 4, &mis, 8), {"'w'", "alignment"});
  uint64_t big_dim = uint64_t(1) << 40;
  check(patch(ti + 4, &big_dim, 8), {"'w'"});
}

Config tiny() {
  Config c;
  c.dim = 8;
  c.vocab_size = 16;
  c.head_dim = 4;
  c.blocks = {{2, 1, 12}};
  return c;
}

TEST(CorruptModel, HfShapeMissingExtra) {
  testing::TempDir d;
  Model m = init_random_model(tiny(), 1);
  save_model(m, d.file("hf"), SaveOptions{});
  const std::string st = d.file("hf/model.safetensors"), cfg = d.file("hf/config.json");
  const std::string cfg_text = read_text_file(cfg);
  // Shape disagreeing with the config.
  auto j = nlohmann::json::parse(cfg_text);
  j["intermediate_size"] = 10;
  write_file_atomic(cfg, j.dump());
  testing::expect_file_error([&] { load_model(d.file("hf")); }, st,
                             {"model.layers.0.mlp.gate_proj.weight", "[12, 8]", "[10, 8]"});
  write_file_atomic(cfg, cfg_text);
  // Missing tensor.
  SafetensorsFile f(st);
  std::vector<std::pair<std::string, Tensor>> ts;
  for (const auto& t : f.tensors())
    if (t.name != "model.layers.0.self_attn.k_proj.weight") ts.emplace_back(t.name, f.read_f32(t));
  write_safetensors(d.file("hf/model.safetensors"), ts, {});
  testing::expect_file_error([&] { load_model(d.file("hf")); }, st,
                             {"missing tensor model.layers.0.self_attn.k_proj.weight"});
  // Unexpected extra tensor.
  for (const auto& t : f.tensors())
    if (t.name == "model.layers.0.self_attn.k_proj.weight") ts.emplace_back(t.name, f.read_f32(t));
  ts.emplace_back("model.layers.7.mystery.weight", Tensor::zeros({2}));
  write_safetensors(d.file("hf/model.safetensors"), ts, {});
  testing::expect_file_error([&] { load_model(d.file("hf")); }, st,
                             {"unexpected tensors", "model.layers.7.mystery.weight"});
  // A config.json that is not JSON.
  write_file_atomic(cfg, "{");
  testing::expect_file_error([&] { load_model(d.file("hf")); }, cfg, {"not valid JSON"});
}

TEST(CorruptModel, GgufShapeMissingExtra) {
  testing::TempDir d;
  Model m = init_random_model(tiny(), 1);
  SaveOptions so;
  so.format = ModelFormat::GGUF;
  const std::string p = d.file("m.gguf");
  save_model(m, p, so);
  GgufFile good(p);
  // Rewrite with one tensor changed / removed / added.
  auto rewrite = [&](const std::string& skip, const std::string& add, const Shape& add_shape) {
    GgufWriter w;
    for (const auto& [k, v] : good.metadata()) w.set(k, v);
    for (const auto& t : good.tensors())
      if (t.name != skip) w.add_tensor(t.name, good.read_f32(t));
    if (!add.empty()) w.add_tensor(add, Tensor::zeros(add_shape));
    w.write(d.file("bad.gguf"));
  };
  rewrite("blk.0.ffn_up.weight", "blk.0.ffn_up.weight", {12, 9});
  testing::expect_file_error([&] { load_model(d.file("bad.gguf")); }, d.file("bad.gguf"),
                             {"blk.0.ffn_up.weight", "[12, 9]", "[12, 8]"});
  rewrite("blk.0.attn_v.weight", "", {});
  testing::expect_file_error([&] { load_model(d.file("bad.gguf")); }, d.file("bad.gguf"),
                             {"missing tensor blk.0.attn_v.weight"});
  rewrite("", "blk.3.extra.weight", {2});
  testing::expect_file_error([&] { load_model(d.file("bad.gguf")); }, d.file("bad.gguf"),
                             {"unexpected tensors", "blk.3.extra.weight"});
  // An architecture we do not know.
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("falcon"));
  w.write(d.file("arch.gguf"));
  testing::expect_file_error([&] { load_model(d.file("arch.gguf")); }, d.file("arch.gguf"),
                             {"unsupported GGUF architecture"});
  // Missing required metadata.
  GgufWriter w2;
  w2.set("general.architecture", GgufValue::string("llama"));
  w2.write(d.file("nokeys.gguf"));
  testing::expect_file_error([&] { load_model(d.file("nokeys.gguf")); }, d.file("nokeys.gguf"),
                             {"llama.embedding_length"});
}

TEST(CorruptModel, UnreadableTokenizer) {
  testing::TempDir d;
  Model m = init_random_model(tiny(), 1);
  save_model(m, d.file("hf"), SaveOptions{});
  write_file_atomic(d.file("hf/tokenizer.json"), "this is not a tokenizer");
  testing::expect_file_error([&] { load_model(d.file("hf")); }, d.file("hf/tokenizer.json"), {});
  LoadOptions lo;
  lo.tokenizer_path = d.file("absent.bin");
  testing::expect_file_error([&] { load_model(d.file("hf"), lo); }, d.file("absent.bin"), {});
  write_file_atomic(d.file("garbage.bin"), std::string("\xff\xff\xff\x7f\x01\x02", 6));
  lo.tokenizer_path = d.file("garbage.bin");
  testing::expect_file_error([&] { load_model(d.file("hf"), lo); }, d.file("garbage.bin"), {});
}

TEST(CorruptModel, Detection) {
  testing::TempDir d;
  testing::expect_file_error([&] { load_model(d.file("nothing")); }, d.file("nothing"), {"no such file"});
  testing::expect_file_error([&] { load_model(d.path()); }, d.path(), {"config.json"});
  write_file_atomic(d.file("x.txt"), "hello");
  testing::expect_file_error([&] { load_model(d.file("x.txt")); }, d.file("x.txt"), {"unrecognised"});
  write_file_atomic(d.file("x.gguf"), "hello");
  testing::expect_file_error([&] { load_model(d.file("x.gguf")); }, d.file("x.gguf"), {"bad magic"});
}

}  // namespace
}  // namespace sec
