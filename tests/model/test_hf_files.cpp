// The files an HF directory carries besides the weights, as Transformers expects them:
// tokenizer_config.json (tokenizer class, BOS / EOS / UNK / PAD, add_bos / add_eos, context),
// special_tokens_map.json and generation_config.json. Written from stories260K (SentencePiece, via
// `secateur convert`), from a GQA model with the Llama-2 tokenizer and from a Qwen2-style model
// with a byte-level tokenizer; each file's content is checked against the tokenizer's own ids and
// strings, and reading the directory back gives the same tokenizer.
#include <nlohmann/json.hpp>

#include "core/file.h"
#include "io/tokenizer_files.h"
#include "model/init.h"
#include "model/model_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

using json = nlohmann::json;

json read_json(const std::string& path) { return json::parse(read_text_file(path)); }

// The special token's text, or null.
json token_or_null(const TokenizerData& d, int id) { return id >= 0 ? json(d.tokens[size_t(id)]) : json(nullptr); }

// Checks the three files of `dir` against the tokenizer data and the model's context.
void expect_tokenizer_files(const std::string& dir, const TokenizerData& d, int context,
                            const std::string& tokenizer_class) {
  ASSERT_TRUE(file_exists(dir + "/tokenizer.json"));
  ASSERT_TRUE(file_exists(dir + "/tokenizer_config.json"));
  ASSERT_TRUE(file_exists(dir + "/special_tokens_map.json"));
  ASSERT_TRUE(file_exists(dir + "/generation_config.json"));
  json tc = read_json(dir + "/tokenizer_config.json");
  EXPECT_EQ(tc["tokenizer_class"], tokenizer_class);
  EXPECT_EQ(tc["bos_token"], token_or_null(d, d.bos_id));
  EXPECT_EQ(tc["eos_token"], token_or_null(d, d.eos_id));
  EXPECT_EQ(tc["unk_token"], token_or_null(d, d.unk_id));
  ASSERT_TRUE(tc.contains("pad_token"));
  EXPECT_EQ(tc["pad_token"], token_or_null(d, d.pad_id));
  EXPECT_EQ(tc["add_bos_token"], d.add_bos && d.bos_id >= 0);
  EXPECT_EQ(tc["add_eos_token"], d.add_eos && d.eos_id >= 0);
  EXPECT_EQ(tc["model_max_length"], context);
  EXPECT_EQ(tc["clean_up_tokenization_spaces"], false);
  if (d.kind == TokenizerKind::SentencePiece)
    EXPECT_EQ(tc["legacy"], true);
  else
    EXPECT_FALSE(tc.contains("legacy"));
  // added_tokens_decoder: exactly the control / unknown / user-defined tokens, by id.
  int n_added = 0;
  for (size_t i = 0; i < d.tokens.size(); i++) {
    TokenType t = d.types[i];
    if (t != TokenType::Control && t != TokenType::Unknown && t != TokenType::UserDefined) continue;
    n_added++;
    const json& a = tc["added_tokens_decoder"][std::to_string(i)];
    EXPECT_EQ(a["content"], d.tokens[i]) << i;
    EXPECT_EQ(a["special"], t != TokenType::UserDefined) << i;
  }
  EXPECT_EQ(int(tc["added_tokens_decoder"].size()), n_added);

  json sm = read_json(dir + "/special_tokens_map.json");
  for (auto [key, id] : {std::pair<const char*, int>{"bos_token", d.bos_id},
                         {"eos_token", d.eos_id},
                         {"unk_token", d.unk_id},
                         {"pad_token", d.pad_id}}) {
    if (id < 0) {
      EXPECT_FALSE(sm.contains(key)) << key;
    } else {
      ASSERT_TRUE(sm.contains(key)) << key;
      EXPECT_EQ(sm[key]["content"], d.tokens[size_t(id)]) << key;
      EXPECT_EQ(sm[key]["normalized"], false) << key;
    }
  }

  json gc = read_json(dir + "/generation_config.json");
  EXPECT_EQ(gc["bos_token_id"], d.bos_id >= 0 ? json(d.bos_id) : json(nullptr));
  EXPECT_EQ(gc["eos_token_id"], d.eos_id >= 0 ? json(d.eos_id) : json(nullptr));
  if (d.pad_id >= 0)
    EXPECT_EQ(gc["pad_token_id"], d.pad_id);
  else
    EXPECT_FALSE(gc.contains("pad_token_id"));
  EXPECT_EQ(gc["do_sample"], false);

  // Read back (tokenizer.json + tokenizer_config.json): the same specials and flags.
  TokenizerData back = read_tokenizer_json(dir + "/tokenizer.json");
  EXPECT_EQ(back.tokens, d.tokens);
  EXPECT_EQ(back.bos_id, d.bos_id);
  EXPECT_EQ(back.eos_id, d.eos_id);
  EXPECT_EQ(back.unk_id, d.unk_id);
  EXPECT_EQ(back.pad_id, d.pad_id);
  EXPECT_EQ(back.add_bos, d.add_bos && d.bos_id >= 0);
  EXPECT_EQ(back.add_eos, d.add_eos && d.eos_id >= 0);
}

TEST(HfFiles, Stories260KSentencePiece) {
  const char* kModel = "models/stories260K/stories260K.bin";
  SEC_REQUIRE_SHARED(kModel);
  testing::TempDir d;
  auto r = testing::run_cli({"convert", testing::shared_path(kModel), "-o", d.file("hf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Model src = load_model(testing::shared_path(kModel));
  ASSERT_TRUE(src.tokenizer);
  const TokenizerData& t = src.tokenizer->data();
  EXPECT_EQ(t.bos_id, 1);
  EXPECT_EQ(t.eos_id, 2);
  EXPECT_EQ(t.unk_id, 0);
  EXPECT_EQ(t.pad_id, -1);
  expect_tokenizer_files(d.file("hf"), t, 512, "LlamaTokenizerFast");
  json tc = read_json(d.file("hf/tokenizer_config.json"));
  EXPECT_EQ(tc["bos_token"], "<s>");
  EXPECT_EQ(tc["eos_token"], "</s>");
  EXPECT_EQ(tc["unk_token"], "<unk>");
  EXPECT_EQ(tc["pad_token"], nullptr);
  EXPECT_EQ(tc["add_bos_token"], true);
  json gc = read_json(d.file("hf/generation_config.json"));
  EXPECT_EQ(gc["bos_token_id"], 1);
  EXPECT_EQ(gc["eos_token_id"], 2);
  // The reloaded directory tokenizes like the original.
  Model back = load_model(d.file("hf"));
  const std::string text = "Once upon a time, there was a little girl named Lily.";
  EXPECT_EQ(back.tokenizer->encode(text, true), src.tokenizer->encode(text, true));
}

TEST(HfFiles, GqaModelWithLlama2Tokenizer) {
  const char* kTok = "tokenizers/llama2/tokenizer.model";
  SEC_REQUIRE_SHARED(kTok);
  testing::TempDir d;
  Config c;
  c.dim = 64;
  c.head_dim = 16;
  c.vocab_size = 32000;
  c.max_seq_len = 4096;
  c.blocks = {{4, 2, 96}, {4, 2, 96}};  // GQA: 2 query heads per KV head
  Model m = init_random_model(c, 5);
  m.tokenizer = std::make_shared<const Tokenizer>(load_tokenizer(testing::shared_path(kTok)));
  save_model(m, d.file("hf"), SaveOptions{});
  const TokenizerData& t = m.tokenizer->data();
  expect_tokenizer_files(d.file("hf"), t, 4096, "LlamaTokenizerFast");
  json tc = read_json(d.file("hf/tokenizer_config.json"));
  EXPECT_EQ(tc["bos_token"], "<s>");
  EXPECT_EQ(tc["eos_token"], "</s>");
  EXPECT_EQ(tc["unk_token"], "<unk>");
  EXPECT_EQ(tc["pad_token"], nullptr);  // Llama-2 has no padding token
  json cfg = read_json(d.file("hf/config.json"));
  EXPECT_EQ(cfg["model_type"], "llama");
  EXPECT_EQ(cfg["num_key_value_heads"], 2);
  Model back = load_model(d.file("hf"));
  const std::string text = "Hello world! Ça va? 1234";
  EXPECT_EQ(back.tokenizer->encode(text, true), m.tokenizer->encode(text, true));
}

// GPT-2's printable alphabet for the bytes (as byte-level BPE stores them).
std::string gpt2_char(int b) {
  int n = 0;
  for (int x = 0; x < b; x++)
    if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) n++;
  bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  unsigned cp = printable ? unsigned(b) : 256u + unsigned(n);
  std::string r;
  if (cp < 0x80)
    r += char(cp);
  else
    r += char(0xC0 | (cp >> 6)), r += char(0x80 | (cp & 0x3F));
  return r;
}

// A Qwen2-like byte-level tokenizer: 256 byte pieces, a few merges, <|endoftext|> as EOS and PAD,
// no BOS, <|im_start|> / <|im_end|> specials.
TokenizerData qwen2_like_tokenizer() {
  TokenizerData d;
  d.kind = TokenizerKind::ByteLevelBpe;
  d.pre_tokenizer = "qwen2";
  for (int b = 0; b < 256; b++) d.tokens.push_back(gpt2_char(b));
  d.merges = {"Ġ t", "h e", "Ġt he", "Ġ c", "Ġc a", "Ġca t"};
  for (const char* p : {"Ġt", "he", "Ġthe", "Ġc", "Ġca", "Ġcat"}) d.tokens.push_back(p);
  d.types.assign(d.tokens.size(), TokenType::Normal);
  for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    d.tokens.push_back(s);
    d.types.push_back(TokenType::Control);
  }
  d.eos_id = d.pad_id = int(d.tokens.size()) - 3;
  d.bos_id = d.unk_id = -1;
  d.add_bos = false;
  d.add_space_prefix = false;
  return d;
}

TEST(HfFiles, Qwen2StyleModelWithByteLevelTokenizer) {
  testing::TempDir d;
  Config c = testing::tiny_config(4, 2, false, true);
  c.architecture = "qwen2";
  c.max_seq_len = 32768;
  TokenizerData td = qwen2_like_tokenizer();
  c.vocab_size = int(td.tokens.size()) + 5;  // padded, as Qwen2's embedding is
  c.bos_token_id = c.eos_token_id = td.eos_id;
  Model m = init_random_model(c, 7);
  m.tokenizer = std::make_shared<const Tokenizer>(td);
  save_model(m, d.file("hf"), SaveOptions{});
  expect_tokenizer_files(d.file("hf"), m.tokenizer->data(), 32768, "PreTrainedTokenizerFast");
  json tc = read_json(d.file("hf/tokenizer_config.json"));
  // Not Qwen2's defaults: exactly this tokenizer's specials (no BOS, no UNK).
  EXPECT_EQ(tc["bos_token"], nullptr);
  EXPECT_EQ(tc["unk_token"], nullptr);
  EXPECT_EQ(tc["eos_token"], "<|endoftext|>");
  EXPECT_EQ(tc["pad_token"], "<|endoftext|>");
  EXPECT_EQ(tc["add_bos_token"], false);
  EXPECT_EQ(tc["added_tokens_decoder"][std::to_string(td.eos_id + 1)]["content"], "<|im_start|>");
  json gc = read_json(d.file("hf/generation_config.json"));
  EXPECT_EQ(gc["bos_token_id"], nullptr);
  EXPECT_EQ(gc["eos_token_id"], td.eos_id);
  EXPECT_EQ(gc["pad_token_id"], td.eos_id);
  json cfg = read_json(d.file("hf/config.json"));
  EXPECT_EQ(cfg["model_type"], "qwen2");
  Model back = load_model(d.file("hf"));
  EXPECT_EQ(back.config.architecture, "qwen2");
  EXPECT_TRUE(back.config.attn_bias);
  EXPECT_EQ(back.tokenizer->data().pad_id, td.pad_id);
  const std::string text = "the cat<|im_end|> the";
  EXPECT_EQ(back.tokenizer->encode(text, false), m.tokenizer->encode(text, false));
}

// Without a tokenizer (secateur init): generation_config.json from the config's ids, and no
// tokenizer files.
TEST(HfFiles, NoTokenizer) {
  testing::TempDir d;
  Config c = testing::tiny_config(4, 4, true, false);
  c.bos_token_id = 5;
  c.eos_token_id = 6;
  save_model(init_random_model(c, 1), d.file("hf"), SaveOptions{});
  EXPECT_FALSE(file_exists(d.file("hf/tokenizer.json")));
  EXPECT_FALSE(file_exists(d.file("hf/tokenizer_config.json")));
  EXPECT_FALSE(file_exists(d.file("hf/special_tokens_map.json")));
  json gc = read_json(d.file("hf/generation_config.json"));
  EXPECT_EQ(gc["bos_token_id"], 5);
  EXPECT_EQ(gc["eos_token_id"], 6);
  EXPECT_EQ(gc["do_sample"], false);
}

}  // namespace
}  // namespace sec
