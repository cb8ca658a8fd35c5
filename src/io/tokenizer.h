// Tokenizers: SentencePiece-style BPE with byte fallback (Llama-1/2, llama2.c) and byte-level BPE
// (GPT-2 / Llama-3). TokenizerData is the format-neutral description that every file format reads
// into and writes from (tokenizer.json, GGUF tokenizer.ggml.* metadata, llama2.c tokenizer.bin).
#pragma once
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
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
  std::vector<std::string> tokens;  // piece text as stored by the format
  std::vector<float> scores;        // SentencePiece merge priority (higher merges first); may be empty
  std::vector<TokenType> types;     // same length as tokens
  std::vector<std::string> merges;  // byte-level BPE "left right" in rank order; empty for SentencePiece
  std::string pre_tokenizer = "default";  // byte-level: "llama3" (llama-bpe) or "gpt2"
  int bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  bool add_bos = true, add_eos = false;
  bool add_space_prefix = true;  // SentencePiece: prepend U+2581 to the text (add_dummy_prefix)
};

class Tokenizer {
 public:
  explicit Tokenizer(TokenizerData data);  // validates (throws Error) and builds lookups
  const TokenizerData& data() const { return data_; }
  int vocab_size() const { return int(data_.tokens.size()); }
  int bos_id() const { return data_.bos_id; }
  int eos_id() const { return data_.eos_id; }

  // add_bos prepends BOS (when the tokenizer has one).
  std::vector<int> encode(std::string_view text, bool add_bos) const;
  // Inverse of encode: skips BOS/EOS/control tokens, maps byte tokens back to bytes, and (for
  // SentencePiece with add_space_prefix) drops the one leading space encode added.
  std::string decode(std::span<const int> ids) const;
  // Text of one token for streaming output; prev_id is the previous token (-1 at the start), used
  // to drop the dummy-prefix space after BOS as llama2.c does.
  std::string token_text(int prev_id, int id) const;

 private:
  std::vector<int> encode_sentencepiece(std::string_view text) const;
  std::vector<int> encode_byte_level(std::string_view text) const;
  TokenizerData data_;
  std::unordered_map<std::string, int> piece_to_id_;
  std::unordered_map<std::string, int> merge_rank_;  // "left right" -> rank (byte-level)
  int byte_token_[256];                              // SentencePiece <0xNN> ids, -1 if absent
};

}  // namespace sec
