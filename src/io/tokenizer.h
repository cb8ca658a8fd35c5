// Tokenizers: SentencePiece-style BPE with byte fallback (Llama-1/2, llama2.c) and byte-level BPE
// (GPT-2 / Llama-3). TokenizerData is the format-neutral description that every file format reads
// into and writes from (tokenizer.json, GGUF tokenizer.ggml.* metadata, llama2.c tokenizer.bin).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace sec {

enum class TokenizerKind {
  SentencePiece,  // "llama" in GGUF: U+2581 for spaces, merges by piece score, <0xNN> byte fallback
  ByteLevelBpe,   // "gpt2" in GGUF: bytes mapped to printable unicode, merges by rank, regex pre-split
};

// GGUF's token types.
enum class TokenType : int { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct TokenizerData {
  TokenizerKind kind = TokenizerKind::SentencePiece;
  std::vector<std::string> tokens;        // piece text as stored by the format
  std::vector<float> scores;              // SentencePiece merge priority (higher merges first); may be empty
  std::vector<TokenType> types;           // same length as tokens
  std::vector<std::string> merges;        // byte-level BPE "left right" in rank order; empty for SentencePiece
  std::string pre_tokenizer = "default";  // byte-level: "llama3" (llama-bpe) or "gpt2"
  int bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  bool add_bos = true, add_eos = false;
  bool add_space_prefix = true;  // SentencePiece: prepend U+2581 to the text (add_dummy_prefix)
};

// The pre-tokenizer regex of a byte-level pre_tokenizer name ("gpt2", "llama3" a.k.a. "llama-bpe",
// "qwen2"), or "" if unknown; and the name of a pattern ("" if it is none of them).
std::string pre_tokenizer_pattern(std::string_view name);
std::string pre_tokenizer_name(std::string_view pattern);

// Hard limits on what any tokenizer reader accepts (the largest real vocabularies are ~260k tokens).
constexpr size_t kMaxVocab = 10'000'000;
constexpr size_t kMaxMerges = 10'000'000;

class Tokenizer {
 public:
  // Validates (throws Error, without a file name: readers and loaders prefix theirs) and builds lookups.
  explicit Tokenizer(TokenizerData data);
  const TokenizerData& data() const { return data_; }
  int vocab_size() const { return int(data_.tokens.size()); }
  int bos_id() const { return data_.bos_id; }
  int eos_id() const { return data_.eos_id; }
  const std::string& piece(int id) const { return data_.tokens.at(size_t(id)); }
  int token_id(std::string_view piece) const;  // -1 if the piece is not in the vocabulary

  // add_bos prepends BOS (when the tokenizer has one); EOS is never appended (callers decide). SentencePiece follows
  // sentencepiece exactly: only user-defined pieces are matched literally in the text (never <s>, </s>, <unk>);
  // byte-level BPE follows Hugging Face: every added token (control or user-defined) is matched literally.
  std::vector<int> encode(std::string_view text, bool add_bos) const;
  // Inverse of encode: skips BOS/EOS/control tokens, maps byte tokens back to bytes, and (for
  // SentencePiece with add_space_prefix) drops the one leading space encode added.
  std::string decode(std::span<const int> ids) const;
  // Text of one token for streaming output (byte tokens give their single, possibly partial UTF-8
  // byte); prev_id is the previous token (-1 at the start), used to drop the dummy-prefix space at
  // the start and after BOS as llama2.c does.
  std::string token_text(int prev_id, int id) const;
  // Byte-level BPE: the words the text is split into before BPE (added tokens are words of their
  // own); SentencePiece: the whole text. For tests and debugging.
  std::vector<std::string> pre_tokenize(std::string_view text) const;

 private:
  std::vector<int> encode_sentencepiece(std::string_view text) const;
  std::vector<int> encode_byte_level(std::string_view text) const;
  struct Segment;
  std::vector<Segment> split_literals(std::string_view text) const;
  std::vector<std::string_view> split_words(std::string_view text) const;  // regex pre-tokenizer

  struct StringHash {  // lets the maps be searched with a string_view without a copy
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  TokenizerData data_;
  std::unordered_map<std::string, int, StringHash, std::equal_to<>> piece_to_id_;
  std::unordered_map<uint64_t, std::pair<int, int>> merges_;  // byte-level: (left id, right id) -> (rank, merged id)
  std::vector<std::vector<int>> literals_by_first_byte_;      // tokens matched literally, longest first
  int byte_token_[256];                                       // SentencePiece <0xNN> ids, -1 if absent
  std::unordered_set<uint64_t> piece_bigrams_;                // SentencePiece: adjacent characters inside pieces
  std::string byte_to_unicode_[256];                          // byte-level: GPT-2 byte -> printable char
  std::unordered_map<uint32_t, uint8_t> unicode_to_byte_;     // and back (code point -> byte)
  std::shared_ptr<void> pre_regex_;                           // byte-level: compiled pcre2 pattern
};

}  // namespace sec
