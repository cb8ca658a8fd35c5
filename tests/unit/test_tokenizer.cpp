// Tokenizers on tiny hand-made vocabularies: SentencePiece-style BPE (merge order, ties, byte
// fallback, spaces, round trips), byte-level BPE (llama3 / gpt2 regex splits, merges by rank,
// added tokens), tokenizer.json / tokenizer.bin reading, writing and malformed files.
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/tokenizer.h"
#include "io/tokenizer_files.h"
#include "testing/testing.h"

namespace {

using sec::TokenType;
using Ids = std::vector<int>;

// <unk> <s> </s>, optionally the 256 byte tokens, then the given (piece, score) pairs.
sec::TokenizerData spm_data(const std::vector<std::pair<std::string, float>>& pieces, bool byte_tokens = true) {
  sec::TokenizerData d;
  d.kind = sec::TokenizerKind::SentencePiece;
  d.tokens = {"<unk>", "<s>", "</s>"};
  d.scores = {0, 0, 0};
  d.types = {TokenType::Unknown, TokenType::Control, TokenType::Control};
  if (byte_tokens) {
    for (int b = 0; b < 256; b++) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", b);
      d.tokens.push_back(buf);
      d.scores.push_back(0);
      d.types.push_back(TokenType::Byte);
    }
  }
  for (const auto& [p, s] : pieces) {
    d.tokens.push_back(p);
    d.scores.push_back(s);
    d.types.push_back(TokenType::Normal);
  }
  d.unk_id = 0, d.bos_id = 1, d.eos_id = 2;
  return d;
}

const std::string S = "\xE2\x96\x81";  // ▁

sec::Tokenizer small_spm(bool byte_tokens = true) {
  return sec::Tokenizer(spm_data({{S, -100},
                                  {"a", -101},
                                  {"b", -102},
                                  {"c", -103},
                                  {"ab", -1},
                                  {"bc", -2},
                                  {S + "a", -3},
                                  {S + "ab", -4},
                                  {"abc", -5},
                                  {"ba", -1}},
                                 byte_tokens));
}

std::vector<std::string> pieces(const sec::Tokenizer& t, const Ids& ids) {
  std::vector<std::string> r;
  for (int id : ids) r.push_back(t.piece(id));
  return r;
}

using P = std::vector<std::string>;

TEST(Tokenizer, SentencePieceMergesHighestScoreFirst) {
  auto t = small_spm();
  // ▁ a b c: "ab" (-1) beats "bc" (-2) and "▁a" (-3); then "▁ab" (-4) beats "abc" (-5).
  EXPECT_EQ(pieces(t, t.encode("abc", false)), (P{S + "ab", "c"}));
  EXPECT_EQ(pieces(t, t.encode("bc ab", false)), (P{S, "bc", S + "ab"}));
  EXPECT_EQ(t.encode("abc", true).front(), 1);
}

TEST(Tokenizer, SentencePieceTiesGoLeftMost) {
  auto d = spm_data({{"a", -101}, {"b", -102}, {"ab", -1}, {"ba", -1}});
  d.add_space_prefix = false;
  sec::Tokenizer t(d);
  EXPECT_EQ(pieces(t, t.encode("aba", false)), (P{"ab", "a"}));
  EXPECT_EQ(pieces(t, t.encode("bab", false)), (P{"ba", "b"}));
  EXPECT_EQ(pieces(t, t.encode("abab", false)), (P{"ab", "ab"}));
}

TEST(Tokenizer, SentencePieceByteFallbackAndUnicode) {
  auto t = small_spm();
  // é = C3 A9 is not in the vocabulary: its bytes; 😀 = F0 9F 98 80.
  EXPECT_EQ(t.encode("a\xC3\xA9", false), (Ids{t.token_id(S + "a"), 3 + 0xC3, 3 + 0xA9}));
  Ids emoji = t.encode("\xF0\x9F\x98\x80", false);
  EXPECT_EQ(emoji, (Ids{t.token_id(S), 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80}));
  EXPECT_EQ(t.decode(emoji), "\xF0\x9F\x98\x80");
  // A multi-byte character that is in the vocabulary stays whole.
  auto d = spm_data({{S, -100}, {"\xC3\xA9", -101}});
  sec::Tokenizer u(d);
  EXPECT_EQ(pieces(u, u.encode("\xC3\xA9", false)), (P{S, "\xC3\xA9"}));
}

TEST(Tokenizer, SentencePieceWithoutByteTokensUsesOneUnknownPerRun) {
  auto t = small_spm(false);
  EXPECT_EQ(t.encode("a\xC3\xA9\xC3\xA9", false), (Ids{t.token_id(S + "a"), 0}));
  EXPECT_EQ(t.encode("a\xC3\xA9 b", false), (Ids{t.token_id(S + "a"), 0, t.token_id(S), t.token_id("b")}));
}

TEST(Tokenizer, SentencePieceSpacesNewlinesAndEmpty) {
  auto t = small_spm();
  EXPECT_TRUE(t.encode("", false).empty());
  EXPECT_EQ(t.encode("", true), (Ids{1}));
  EXPECT_EQ(t.decode(Ids{}), "");
  EXPECT_EQ(pieces(t, t.encode("  a  ", false)), (P{S, S, S + "a", S, S}));
  EXPECT_EQ(pieces(t, t.encode("a\nb", false)), (P{S + "a", "<0x0A>", "b"}));
  EXPECT_EQ(pieces(t, t.encode("\n", false)), (P{S, "<0x0A>"}));
}

TEST(Tokenizer, SentencePieceRoundTrip) {
  auto t = small_spm();
  for (const std::string& s :
       std::vector<std::string>{"", " ", "  ", "a", " a", "a ", "  a  b  ", "abc bca cab", "\n", "\n\n a\n",
                                "tab\there", "caf\xC3\xA9 na\xC3\xAFve \xE6\x97\xA5\xE6\x9C\xAC", "\xF0\x9F\x98\x80!",
                                "a\r\nb", std::string("nul\0byte", 8)}) {
    EXPECT_EQ(t.decode(t.encode(s, false)), s) << "'" << s << "'";
    EXPECT_EQ(t.decode(t.encode(s, true)), s) << "'" << s << "' with BOS";
  }
}

TEST(Tokenizer, SentencePieceTokenTextDropsPrefixSpaceAtStartOnly) {
  auto t = small_spm();
  int a = t.token_id(S + "a");
  EXPECT_EQ(t.token_text(1, a), "a");   // after BOS
  EXPECT_EQ(t.token_text(-1, a), "a");  // at the start
  EXPECT_EQ(t.token_text(a, a), " a");
  EXPECT_EQ(t.token_text(a, 3 + '\n'), "\n");
  EXPECT_EQ(t.token_text(a, 1), "");  // control
  // decode removes the dummy prefix once, even after BOS.
  EXPECT_EQ(t.decode(Ids{1, a, a}), "a a");
}

TEST(Tokenizer, SentencePieceUserDefinedPiecesAreMatchedLiterally) {
  auto d = spm_data({{S, -100}, {"a", -101}, {"b", -102}, {"ab", -1}, {"<sep>", 0}});
  d.types.back() = TokenType::UserDefined;
  sec::Tokenizer t(d);
  EXPECT_EQ(pieces(t, t.encode("ab<sep>ab", false)), (P{S, "ab", "<sep>", "ab"}));
  // Control tokens are not: "<s>" in the text is plain characters (here: bytes).
  Ids ids = t.encode("<s>", false);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 1), 0);
  EXPECT_EQ(t.decode(ids), "<s>");
}

TEST(Tokenizer, RejectsInconsistentData) {
  auto d = spm_data({{"a", -1}});
  d.bos_id = 99999;
  EXPECT_THROW(sec::Tokenizer{d}, sec::Error);
  d = spm_data({{"a", -1}});
  d.scores.pop_back();
  EXPECT_THROW(sec::Tokenizer{d}, sec::Error);
  d = spm_data({{"a", -1}});
  d.scores.clear();
  EXPECT_THROW(sec::Tokenizer{d}, sec::Error);  // neither scores nor merges
  sec::Tokenizer t(spm_data({{"a", -1}}));
  EXPECT_THROW(t.decode(Ids{100000}), sec::Error);
}

// ---- byte-level BPE ---------------------------------------------------------------------------

std::string gpt2_char(int b) {  // GPT-2's printable alphabet, as the tokenizer maps bytes
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

// A tokenizer.json with the 256 byte pieces, a few merges and <|begin_of_text|> as BOS.
std::string write_byte_level_json(const sec::testing::TempDir& dir, const std::string& pre) {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (int b = 0; b < 256; b++) vocab[gpt2_char(b)] = b;
  std::vector<std::string> merges = {"Ġ t",  "h e", "Ġt he", "' s", "' S",  "1 2",
                                     "12 3", "! !", "!! !",  "Ġ c", "Ġc a", "Ġca t"};
  int next = 256;
  for (const auto& m : merges) {
    std::string joined = m.substr(0, m.find(' ')) + m.substr(m.find(' ') + 1);
    if (!vocab.contains(joined)) vocab[joined] = next++;
  }
  nlohmann::ordered_json j;
  j["added_tokens"] = {{{"id", next}, {"content", "<|begin_of_text|>"}, {"special", true}},
                       {{"id", next + 1}, {"content", "<|eot_id|>"}, {"special", true}}};
  j["normalizer"] = nullptr;
  if (pre == "gpt2") {
    j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  } else {
    j["pre_tokenizer"] = {
        {"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", sec::pre_tokenizer_pattern("llama3")}}}, {"behavior", "Isolated"}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  }
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single",
                          {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                           {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}};
  j["decoder"] = {{"type", "ByteLevel"}};
  j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}};
  std::string path = dir.file(pre + ".json");
  std::ofstream(path) << j.dump(1);
  return path;
}

TEST(Tokenizer, Llama3RegexSplits) {
  sec::testing::TempDir dir;
  sec::Tokenizer t(sec::read_tokenizer_json(write_byte_level_json(dir, "llama3")));
  EXPECT_EQ(t.data().kind, sec::TokenizerKind::ByteLevelBpe);
  EXPECT_EQ(t.data().pre_tokenizer, "llama3");
  // Contractions (case-insensitive), numbers in groups of three, punctuation runs with newlines.
  EXPECT_EQ(t.pre_tokenize("I'm sure IT'S 1234567 cats!!!\n\nOK"),
            (P{"I", "'m", " sure", " IT", "'S", " ", "123", "456", "7", " cats", "!!!\n\n", "OK"}));
  EXPECT_EQ(t.pre_tokenize("a  b\n  c"), (P{"a", " ", " b", "\n", " ", " c"}));
  EXPECT_EQ(t.pre_tokenize("x<|eot_id|>y, z"), (P{"x", "<|eot_id|>", "y", ",", " z"}));
  EXPECT_EQ(t.pre_tokenize("caf\xC3\xA9 3.14"), (P{"caf\xC3\xA9", " ", "3", ".", "14"}));
}

TEST(Tokenizer, Gpt2RegexSplits) {
  sec::testing::TempDir dir;
  sec::Tokenizer t(sec::read_tokenizer_json(write_byte_level_json(dir, "gpt2")));
  EXPECT_EQ(t.data().pre_tokenizer, "gpt2");
  EXPECT_EQ(t.pre_tokenize("I'm sure IT'S 1234567 cats!!!\n\nOK"),
            (P{"I", "'m", " sure", " IT", "'", "S", " 1234567", " cats", "!!!", "\n", "\n", "OK"}));
}

TEST(Tokenizer, ByteLevelMergesByRankAndAddedTokens) {
  sec::testing::TempDir dir;
  sec::Tokenizer t(sec::read_tokenizer_json(write_byte_level_json(dir, "llama3")));
  int bot = t.token_id("<|begin_of_text|>");
  EXPECT_EQ(t.bos_id(), bot);
  EXPECT_TRUE(t.data().add_bos);
  // "!!!!": "! !" (rank 7) merges left-most first, then again at the right before "!! !" (rank 8).
  EXPECT_EQ(pieces(t, t.encode("the cat's 1234!!!!", true)),
            (P{"<|begin_of_text|>", "t", "he", "Ġcat", "'s", "Ġ", "123", "4", "!!", "!!"}));
  EXPECT_EQ(pieces(t, t.encode("!!!", false)), (P{"!!!"}));
  // "Ġt he" merges only after "h e" exists; "Ġ t" has a lower rank than "h e" so Ġt forms first.
  EXPECT_EQ(pieces(t, t.encode(" the", false)), (P{"Ġthe"}));
  Ids ids = t.encode("<|begin_of_text|>x<|eot_id|>", false);
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], bot);
  for (std::string s : {"", " the cat's!!\n", "caf\xC3\xA9 \xF0\x9F\x98\x80  \t end ", "x\n\n\ny"})
    EXPECT_EQ(t.decode(t.encode(s, true)), s) << "'" << s << "'";
  EXPECT_EQ(t.token_text(-1, t.token_id("Ġcat")), " cat");
}

TEST(Tokenizer, ByteLevelWriteReadRoundTrip) {
  sec::testing::TempDir dir;
  sec::Tokenizer a(sec::read_tokenizer_json(write_byte_level_json(dir, "llama3")));
  sec::write_tokenizer_json(a.data(), dir.file("out.json"));
  sec::Tokenizer b(sec::read_tokenizer_json(dir.file("out.json")));
  EXPECT_EQ(b.data().pre_tokenizer, "llama3");
  EXPECT_EQ(b.bos_id(), a.bos_id());
  for (std::string s : {"the cat's 1234!!!!", " the\n\nthe", "<|begin_of_text|>hi"})
    EXPECT_EQ(b.encode(s, true), a.encode(s, true)) << s;
}

// ---- SentencePiece files ----------------------------------------------------------------------

TEST(Tokenizer, SentencePieceWriteReadGivesIdenticalIds) {
  sec::testing::TempDir dir;
  auto d = spm_data({{S, -100},
                     {"a", -101},
                     {"b", -102},
                     {"c", -103},
                     {"ab", -1},
                     {"bc", -2},
                     {S + "a", -3},
                     {S + "ab", -4},
                     {"abc", -5},
                     {"ca", -6},
                     {S + "c", -7}});
  sec::Tokenizer a(d);
  sec::write_tokenizer_json(d, dir.file("tokenizer.json"));
  auto rd = sec::read_tokenizer_json(dir.file("tokenizer.json"));
  EXPECT_EQ(rd.kind, sec::TokenizerKind::SentencePiece);
  EXPECT_EQ(rd.tokens, d.tokens);
  EXPECT_EQ(rd.types, d.types);
  EXPECT_EQ(rd.bos_id, 1);
  EXPECT_EQ(rd.eos_id, 2);
  EXPECT_EQ(rd.unk_id, 0);
  EXPECT_TRUE(rd.add_bos);
  EXPECT_TRUE(rd.add_space_prefix);
  EXPECT_EQ(rd.scores.size(), rd.tokens.size());
  sec::Tokenizer b(rd);
  for (std::string s : {"abc", "bc ab", "cab abc  c\n", "abcabcab ca c a b", "\xC3\xA9 abc"})
    EXPECT_EQ(b.encode(s, true), a.encode(s, true)) << s;
  // And writing the re-read data again reproduces the same merges.
  sec::write_tokenizer_json(rd, dir.file("again.json"));
  EXPECT_EQ(sec::read_tokenizer_json(dir.file("again.json")).merges, rd.merges);
}

TEST(Tokenizer, Llama2cTokenizerBin) {
  sec::testing::TempDir dir;
  auto write = [&](const std::vector<std::pair<std::string, float>>& toks, size_t cut = 0) {
    std::string bytes;
    auto put = [&](const void* p, size_t n) { bytes.append(static_cast<const char*>(p), n); };
    int32_t max_len = 8;
    put(&max_len, 4);
    for (const auto& [p, s] : toks) {
      int32_t n = int32_t(p.size());
      put(&s, 4), put(&n, 4), put(p.data(), p.size());
    }
    bytes.resize(bytes.size() - cut);
    std::ofstream(dir.file("tok.bin"), std::ios::binary) << bytes;
    return dir.file("tok.bin");
  };
  std::vector<std::pair<std::string, float>> toks = {{"<unk>", 0}, {"\n<s>\n", 0}, {"\n</s>\n", 0}, {"<0x0A>", 0},
                                                     {" a", -1},   {"a", -2},      {" ", -3}};
  auto d = sec::read_llama2c_tokenizer(write(toks));
  EXPECT_EQ(d.tokens, (P{"<unk>", "<s>", "</s>", "<0x0A>", S + "a", "a", S}));
  EXPECT_EQ(d.types[3], TokenType::Byte);
  EXPECT_EQ(d.types[1], TokenType::Control);
  EXPECT_EQ(d.scores[4], -1);
  sec::Tokenizer t(d);
  EXPECT_EQ(t.encode("a\na", true), (Ids{1, 4, 3, 5}));
  EXPECT_EQ(t.decode(t.encode("a\na", true)), "a\na");

  for (size_t cut : {1, 4, 5}) {
    try {
      sec::read_llama2c_tokenizer(write(toks, cut));
      ADD_FAILURE() << "truncated file accepted";
    } catch (const sec::Error& e) {
      EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("tok.bin"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(sec::read_llama2c_tokenizer(dir.file("missing.bin")), sec::Error);
}

TEST(Tokenizer, TokenizerJsonErrorsNameTheFile) {
  sec::testing::TempDir dir;
  auto expect_error = [&](const std::string& content, const std::string& words) {
    std::ofstream(dir.file("t.json")) << content;
    try {
      sec::read_tokenizer_json(dir.file("t.json"));
      ADD_FAILURE() << "accepted: " << content;
    } catch (const sec::Error& e) {
      EXPECT_NE(std::string(e.what()).find("t.json"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  expect_error("{\"model\": ", "not valid JSON");
  expect_error("[1, 2]", "no \"model\"");
  expect_error(R"({"model": {"type": "Unigram", "vocab": []}})", "unsupported tokenizer model type 'Unigram'");
  expect_error(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 2}, "merges": [], "byte_fallback": true}})",
               "no token with id 1");
  expect_error(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a c"], "byte_fallback": true}})",
               "not in the vocabulary");
  EXPECT_THROW(sec::read_tokenizer_json(dir.file("missing.json")), sec::Error);
}

}  // namespace
