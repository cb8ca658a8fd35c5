// Regression tests for what fuzzing the readers found (fuzz/, scripts/fuzz.sh): each malformed input
// is built here byte by byte and must end in a clean sec::Error that names the file and the problem
// (before the fix: undefined behaviour, a huge allocation, a crash or a non-Error exception).
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "calib/dataset.h"
#include "core/error.h"
#include "core/file.h"
#include "eval/zeroshot.h"
#include "io/gguf.h"
#include "io/json.h"
#include "io/llama2c.h"
#include "io/safetensors.h"
#include "io/tokenizer_files.h"
#include "model/hf_config.h"
#include "model/init.h"
#include "model/model_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

// Little-endian bytes.
struct Bytes {
  std::string b;
  template <class T>
  Bytes& put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    b += s;
    return *this;
  }
};

std::string safetensors_bytes(const std::string& header, size_t data_bytes) {
  return Bytes().put<uint64_t>(header.size()).b + header + std::string(data_bytes, '\0');
}

// ---- safetensors ----

TEST(FuzzRegressions, SafetensorsShapeTimesDtypeSizeCannotWrap) {
  testing::TempDir d;
  const std::string p = d.file("x.safetensors");
  auto check = [&](const std::string& header, std::initializer_list<const char*> needles) {
    write_file_atomic(p, safetensors_bytes(header, 0));
    testing::expect_file_error([&] { SafetensorsFile f(p); }, p, needles);
  };
  // 2^62 f32 elements are 2^64 bytes, which wrapped to 0 and matched an empty span: the tensor was
  // accepted, and reading it asked for 2^64 bytes. Every dim must now fit an int, and the byte count
  // is computed without wrapping.
  check(R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", {"'w'", "absurd shape"});
  check(R"({"w":{"dtype":"F32","shape":[2147483647,2147483647,4],"data_offsets":[0,0]}})",
        {"'w'", "needs more than 2^64 bytes"});
  check(R"({"w":{"dtype":"F32","shape":[1073741824,4],"data_offsets":[0,0]}})", {"'w'", "needs 17179869184 bytes"});
  // A zero dim made any other dim pass, and 2^63 became a negative shape.
  check(R"({"w":{"dtype":"F32","shape":[0,9223372036854775808],"data_offsets":[0,0]}})", {"'w'", "absurd shape"});
  check(R"({"w":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}})", {"'w'", "9 dimensions"});
  // A zero-size tensor is fine.
  write_file_atomic(p, safetensors_bytes(R"({"w":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]}})", 0));
  EXPECT_EQ(SafetensorsFile(p).tensors().at(0).nbytes, 0u);
}

// ---- GGUF ----

TEST(FuzzRegressions, GgufDimensionsFitAnInt) {
  testing::TempDir d;
  const std::string p = d.file("x.gguf");
  // One tensor "w" with ne = [0, 2^63]: the zero let the second dim through unchecked, and the shape
  // became negative.
  Bytes g;
  g.b = "GGUF";
  g.put<uint32_t>(3).put<uint64_t>(1).put<uint64_t>(0);
  g.str("w").put<uint32_t>(2).put<uint64_t>(0).put<uint64_t>(uint64_t(1) << 63).put<uint32_t>(0).put<uint64_t>(0);
  g.b.append(64, '\0');
  write_file_atomic(p, g.b);
  testing::expect_file_error([&] { GgufFile f(p); }, p, {"'w'", "absurd shape", "exceeds 2^31 - 1"});
}

Config tiny() {
  Config c;
  c.dim = 8;
  c.vocab_size = 16;
  c.head_dim = 4;
  c.blocks = {{2, 1, 12}};
  return c;
}

// Writes `m` as GGUF to `path`, then rewrites it with `edit` applied to its metadata and tensors.
void write_edited_gguf(const Model& m, const std::string& path,
                       const std::function<void(GgufWriter&, std::vector<std::pair<std::string, Tensor>>&)>& edit) {
  SaveOptions so;
  so.format = ModelFormat::GGUF;
  save_model(m, path, so);
  GgufWriter w;
  std::vector<std::pair<std::string, Tensor>> tensors;
  {
    GgufFile g(path);
    for (const auto& [k, v] : g.metadata()) w.set(k, v);
    for (const auto& t : g.tensors()) tensors.emplace_back(t.name, g.read_f32(t));
  }
  edit(w, tensors);
  for (auto& [name, t] : tensors) w.add_tensor(name, t);
  w.write(path);
}

GgufValue f64(double v) {
  GgufValue r;
  r.type = GgufType::F64;
  r.f = v;
  return r;
}

TEST(FuzzRegressions, GgufFloatMetadataMustFitAFloat) {
  testing::TempDir d;
  const std::string p = d.file("m.gguf");
  Model m = init_random_model(tiny(), 1);
  // An f64 1e300 narrowed to float is undefined behaviour (UBSan: float-cast-overflow).
  for (const char* key : {"llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon"}) {
    write_edited_gguf(m, p, [&](GgufWriter& w, auto&) { w.set(key, f64(1e300)); });
    testing::expect_file_error([&] { load_model(p); }, p, {key, "out of range"});
  }
  write_edited_gguf(m, p, [&](GgufWriter& w, auto&) {
    w.set("llama.rope.scaling.type", GgufValue::string("linear"));
    w.set("llama.rope.scaling.factor", f64(-1e300));
  });
  testing::expect_file_error([&] { load_model(p); }, p, {"llama.rope.scaling.factor", "out of range"});
  write_edited_gguf(m, p, [&](GgufWriter& w, auto&) {
    w.set("llama.rope.scaling.type", GgufValue::string("linear"));
    w.set("llama.rope.scaling.factor", GgufValue::f32(0.f));
  });
  testing::expect_file_error([&] { load_model(p); }, p, {"rope_scaling factor must be positive"});
}

TEST(FuzzRegressions, GgufRopeFreqsWithAnOddHeadDim) {
  testing::TempDir d;
  const std::string p = d.file("m.gguf");
  Model m = init_random_model(tiny(), 1);
  // key_length 1 made rope_freqs.weight's expected shape [0]; its maximum was read from an empty
  // tensor (a heap overflow) before the config was validated. The config is now checked first.
  write_edited_gguf(m, p, [&](GgufWriter& w, auto& tensors) {
    w.set("llama.attention.key_length", GgufValue::u32(1));
    tensors.emplace_back("rope_freqs.weight", Tensor::zeros({0}));
  });
  testing::expect_file_error([&] { load_model(p); }, p, {"head_dim must be even"});
}

TEST(FuzzRegressions, GgufLlama3ProvenanceNumbers) {
  testing::TempDir d;
  const std::string p = d.file("m.gguf");
  Config c = tiny();
  c.rope_scaling = {"llama3", 8.f, 1.f, 4.f, 32};
  Model m = init_random_model(c, 1);
  // std::stod threw std::invalid_argument (main: "internal error"); a huge number overflowed int.
  write_edited_gguf(m, p,
                    [&](GgufWriter& w, auto&) { w.set("secateur.rope_scaling.factor", GgufValue::string("eight")); });
  testing::expect_file_error([&] { load_model(p); }, p, {"secateur.rope_scaling.factor", "not a number"});
  write_edited_gguf(m, p, [&](GgufWriter& w, auto&) {
    w.set("secateur.rope_scaling.original_max_position", GgufValue::string("1e300"));
  });
  testing::expect_file_error([&] { load_model(p); }, p,
                             {"secateur.rope_scaling.original_max_position", "out of range"});
  write_edited_gguf(
      m, p, [&](GgufWriter& w, auto&) { w.set("secateur.rope_scaling.high_freq_factor", GgufValue::string("1")); });
  testing::expect_file_error([&] { load_model(p); }, p, {"low_freq_factor < high_freq_factor"});
}

TEST(FuzzRegressions, GgufHeadsTimesHeadDimFitsAnInt) {
  testing::TempDir d;
  const std::string p = d.file("m.gguf");
  Model m = init_random_model(tiny(), 1);
  // q width = heads x head_dim is an int (Config::q_dim): 2 x 2^30 overflowed it.
  write_edited_gguf(m, p, [&](GgufWriter& w, auto&) { w.set("llama.attention.key_length", GgufValue::u32(1u << 30)); });
  testing::expect_file_error([&] { load_model(p); }, p, {"heads x head_dim", "exceeds 2^31 - 1"});
}

TEST(FuzzRegressions, GgufTokenizerScores) {
  testing::TempDir d;
  const std::string p = d.file("t.gguf");
  auto write_vocab = [&](GgufValue scores) {
    GgufWriter w;
    w.set("tokenizer.ggml.model", GgufValue::string("llama"));
    w.set("tokenizer.ggml.tokens", GgufValue::array_str({"<unk>", "<s>", "</s>", "a"}));
    w.set("tokenizer.ggml.scores", std::move(scores));
    w.write(p);
  };
  // f64 scores were narrowed to float without a range check (undefined behaviour for 1e300).
  GgufValue f64s = GgufValue::array_f32({0, 0, 0, 1e300});
  f64s.elem_type = GgufType::F64;
  write_vocab(f64s);
  testing::expect_file_error([&] { gguf_read_tokenizer(GgufFile(p)); }, p, {"tokenizer.ggml.scores", "out-of-range"});
  write_vocab(GgufValue::array_f32({0, 0, 0, std::numeric_limits<double>::quiet_NaN()}));
  testing::expect_file_error([&] { gguf_read_tokenizer(GgufFile(p)); }, p, {"tokenizer.ggml.scores", "non-finite"});
}

TEST(FuzzRegressions, TokenizerScoresMustBeFiniteAndErrorsNameTheFile) {
  testing::TempDir d;
  const std::string p = d.file("tokenizer.bin");
  // A NaN score breaks the strict ordering the merge queue (and the writer's sort) rely on. The
  // Tokenizer rejects it; its messages did not name the file, the loader now adds it.
  Bytes b;
  b.put<int32_t>(8);
  for (const char* piece : {"<unk>", "\n<s>\n", "\n</s>\n", "a", "b", "ab"}) {
    b.put<float>(std::string(piece) == "ab" ? std::numeric_limits<float>::quiet_NaN() : 0.f);
    b.put<int32_t>(int32_t(std::strlen(piece)));
    b.b += piece;
  }
  write_file_atomic(p, b.b);
  testing::expect_file_error([&] { load_tokenizer(p); }, p, {"score of token 5", "finite"});
}

// ---- HF config.json ----

TEST(FuzzRegressions, HfConfigValuesInRange) {
  testing::TempDir d;
  const std::string p = d.file("config.json");
  const nlohmann::json base = nlohmann::json::parse(
      R"({"model_type":"llama","hidden_size":8,"intermediate_size":12,"num_hidden_layers":1,
          "num_attention_heads":2,"vocab_size":16})");
  auto check = [&](const std::string& patch, std::initializer_list<const char*> needles) {
    nlohmann::json j = base;
    j.merge_patch(nlohmann::json::parse(patch));
    write_file_atomic(p, j.dump());
    testing::expect_file_error([&] { read_hf_config(p); }, p, needles);
  };
  write_file_atomic(p, base.dump());
  EXPECT_EQ(read_hf_config(p).head_dim, 4);
  // float(1e300) is undefined behaviour.
  check(R"({"rms_norm_eps": 1e300})", {"rms_norm_eps", "out of range"});
  check(R"({"rope_theta": -1e39})", {"rope_theta", "out of range"});
  // heads x head_dim overflowed the int q width when the tensor list was built.
  check(R"({"head_dim": 1073741824})", {"heads x head_dim", "exceeds 2^31 - 1"});
  check(R"({"max_position_embeddings": 0})", {"maximum sequence length must be positive"});
  check(R"({"rope_scaling": {"type": "linear", "factor": 0}})", {"rope_scaling factor must be positive"});
  check(R"({"rope_scaling": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 4}})",
        {"low_freq_factor < high_freq_factor"});
  // get<int> wrapped 2^64 - 1 to -1 silently.
  check(R"({"eos_token_id": [18446744073709551615]})", {"eos_token_id", "out of range"});
}

TEST(FuzzRegressions, JsonNestingIsBounded) {
  testing::TempDir d;
  // nlohmann's copy and dump recurse once per level: a few hundred kB of '[' overflowed the stack
  // (tokenizer.json's normalizer is copied; config.json values are dumped into messages).
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  write_file_atomic(d.file("config.json"),
                    R"({"model_type":"llama","hidden_size":8,"intermediate_size":12,"num_hidden_layers":1,)"
                    R"("num_attention_heads":2,"vocab_size":16,"secateur_provenance":{"x":)" +
                        deep + "}}");
  testing::expect_file_error([&] { read_hf_config(d.file("config.json")); }, d.file("config.json"),
                             {"nested more than 100"});
  write_file_atomic(d.file("tokenizer.json"), R"({"normalizer":)" + deep + R"(,"model":{"type":"BPE"}})");
  testing::expect_file_error([&] { read_tokenizer_json(d.file("tokenizer.json")); }, d.file("tokenizer.json"),
                             {"nested more than 100"});
  write_file_atomic(d.file("x.safetensors"), safetensors_bytes(R"({"__metadata__":)" + deep + "}", 0));
  testing::expect_file_error([&] { SafetensorsFile f(d.file("x.safetensors")); }, d.file("x.safetensors"),
                             {"nested more than 100"});
  // Brackets inside strings do not count.
  write_file_atomic(d.file("data.jsonl"), "{\"text\": \"" + std::string(1000, '[') + "\"}\n");
  EXPECT_EQ(load_corpus(d.file("data.jsonl")).documents.at(0).size(), 1000u);
}

// ---- llama2.c ----

TEST(FuzzRegressions, Llama2cHeaderSizeArithmeticCannotOverflow) {
  testing::TempDir d;
  const std::string p = d.file("m.bin");
  // n_layers x dim x dim = 2^16 x 2^30 x 2^30 overflowed int64 (undefined behaviour), and the
  // wrapped size could even match the file.
  const int32_t h[7] = {1 << 30, 1 << 30, 1 << 16, 1 << 10, 1 << 10, 1 << 30, 1 << 30};
  write_file_atomic(p, std::string(reinterpret_cast<const char*>(h), sizeof(h)));
  testing::expect_file_error([&] { read_llama2c(p); }, p, {"implies exactly more than 2^64 bytes"});
  const int32_t many_layers[7] = {8, 8, 200000, 2, 2, 4, 4};
  write_file_atomic(p, std::string(reinterpret_cast<const char*>(many_layers), sizeof(many_layers)));
  testing::expect_file_error([&] { read_llama2c(p); }, p, {"200000 layers", "limit"});
}

// ---- tokenizer.json ----

TEST(FuzzRegressions, TokenizerJsonSparseIdsDoNotAllocate) {
  testing::TempDir d;
  const std::string p = d.file("tokenizer.json");
  // One entry with id 2e9 allocated two billion strings (tens of GB) before finding the gap.
  write_file_atomic(p, R"({"model":{"type":"BPE","vocab":{"a":2000000000},"merges":[],"byte_fallback":true}})");
  testing::expect_file_error([&] { read_tokenizer_json(p); }, p, {"no token with id 0", "largest is 2000000000"});
  write_file_atomic(p, R"({"model":{"type":"BPE","vocab":{"a":0},"merges":[]},)"
                       R"("added_tokens":[{"id":1999999999,"content":"x"}]})");
  testing::expect_file_error([&] { read_tokenizer_json(p); }, p, {"no token with id 1"});
}

TEST(FuzzRegressions, TokenizerJsonWrongMemberTypesAreErrors) {
  testing::TempDir d;
  const std::string p = d.file("tokenizer.json");
  // json::value() threw json::type_error for a member of an unexpected type: not a sec::Error, so
  // `secateur` reported an internal error.
  const std::string vocab = R"("vocab":{"<unk>":0,"a":1,"b":2,"ab":3},"merges":["a b"])";
  auto check = [&](const std::string& text, std::initializer_list<const char*> needles) {
    write_file_atomic(p, text);
    testing::expect_file_error([&] { read_tokenizer_json(p); }, p, needles);
  };
  check(R"({"model":{"type":5,)" + vocab + "}}", {"\"type\" should be a string"});
  check(R"({"model":{"type":"BPE","byte_fallback":"yes",)" + vocab + "}}", {"\"byte_fallback\" should be true"});
  check(R"({"model":{"type":"BPE","byte_fallback":true,)" + vocab +
            R"(},"added_tokens":[{"id":4,"content":"<s>","special":1}]})",
        {"\"special\" should be true or false"});
  check(R"({"model":{"type":"BPE",)" + vocab +
            R"(},"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":7}},)"
            R"({"type":"ByteLevel","use_regex":false}]}})",
        {"\"Regex\" should be a string"});
  check(R"({"model":{"type":"BPE","byte_fallback":true,)" + vocab +
            R"(},"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":"<s>"},{"Sequence":{}}]}})",
        {"special token that is not in the vocabulary"});
  // Shapes that are merely unusual still load.
  write_file_atomic(p, R"({"model":{"type":"BPE","byte_fallback":true,)" + vocab +
                           R"(},"normalizer":{"type":"Replace","pattern":"x","content":7},"added_tokens":[]})");
  EXPECT_EQ(read_tokenizer_json(p).tokens.size(), 4u);
}

// ---- writing what was read: JSON strings must be UTF-8 ----

TEST(FuzzRegressions, NonUtf8StringsDoNotReachJsonWriters) {
  EXPECT_TRUE(valid_utf8("plain \xE2\x96\x81 caf\xC3\xA9 \xF0\x9F\x98\x80"));
  for (const char* bad : {"\xFF", "\xC3", "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "a\x80"})
    EXPECT_FALSE(valid_utf8(bad)) << bad;
  testing::TempDir d;
  // GGUF and tokenizer.bin pieces are bytes; nlohmann's dump threw json::type_error (an
  // "internal error") when such a tokenizer was written as tokenizer.json.
  TokenizerData t;
  t.tokens = {"<unk>", "<s>", "</s>", "\xFF", "a"};
  t.scores = {0, 0, 0, 0, 0};
  t.unk_id = 0, t.bos_id = 1, t.eos_id = 2;
  testing::expect_file_error([&] { write_tokenizer_json(t, d.file("tokenizer.json")); }, d.file("tokenizer.json"),
                             {"token 3", "not valid UTF-8"});
  // Provenance keys of a GGUF go to config.json: invalid ones are skipped when reading.
  const std::string p = d.file("m.gguf");
  write_edited_gguf(init_random_model(tiny(), 1), p,
                    [&](GgufWriter& w, auto&) { w.set("secateur.note", GgufValue::string("\xFF\xFE")); });
  Model m = load_model(p);
  EXPECT_EQ(m.config.provenance.count("note"), 0u);
  save_model(m, d.file("hf"), SaveOptions{});
  EXPECT_TRUE(file_exists(d.file("hf/config.json")));
}

// ---- task files ----

TEST(FuzzRegressions, TaskLabelOutOfIntRange) {
  // get<int> wrapped 4294967296 to 0, so a corrupt label silently became the first choice.
  testing::expect_file_error(
      [] { parse_task_item("piqa", R"({"query":"q","choices":["a","b"],"label":4294967296})", "piqa.jsonl:3"); },
      "piqa.jsonl:3", {"label 4294967296", "not the index of a choice"});
  testing::expect_file_error(
      [] { parse_task_item("piqa", R"({"query":"q","choices":["a","b"],"label":-1})", "piqa.jsonl:4"); },
      "piqa.jsonl:4", {"label -1"});
}

}  // namespace
}  // namespace sec
