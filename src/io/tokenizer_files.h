// Tokenizer file formats: Hugging Face tokenizer.json (read/write), llama2.c tokenizer.bin (read) and
// SentencePiece tokenizer.model (read).
// (GGUF tokenizer.ggml.* metadata is read and written by io/gguf with the model.)
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "io/tokenizer.h"

namespace sec {

// tokenizer.json: "model.type" BPE with byte_fallback (SentencePiece-style, Llama-1/2) or byte-level
// BPE (GPT-2 / Llama-3 pre_tokenizer ByteLevel). Throws Error naming the file on anything it does
// not understand.
TokenizerData read_tokenizer_json(const std::string& path);
// Writes a tokenizer.json that Hugging Face tokenizers and read_tokenizer_json load. Atomic.
void write_tokenizer_json(const TokenizerData& data, const std::string& path);

// The tokenizer_config.json and special_tokens_map.json Hugging Face writes next to tokenizer.json,
// describing the same special tokens (docs/formats.md lists the fields). tokenizer_class is
// LlamaTokenizerFast for SentencePiece-style BPE and PreTrainedTokenizerFast for byte-level BPE
// (it takes everything from tokenizer.json, where Qwen2TokenizerFast would assume Qwen2's
// <|endoftext|> specials). model_max_length is the model's context. read_tokenizer_json reads
// the BOS / EOS / PAD and add_bos / add_eos back from tokenizer_config.json.
nlohmann::ordered_json hf_tokenizer_config(const TokenizerData& data, int64_t model_max_length);
nlohmann::ordered_json hf_special_tokens_map(const TokenizerData& data);

// llama2.c tokenizer.bin: int32 max_token_length, then per token: float32 score, int32 length,
// bytes. BOS = 1, EOS = 2, unknown = 0, byte tokens "<0xNN>" detected by name.
TokenizerData read_llama2c_tokenizer(const std::string& path);

// SentencePiece tokenizer.model (protobuf ModelProto), BPE models only (Llama-1/2, Mistral).
TokenizerData read_sentencepiece_model(const std::string& path);

}  // namespace sec
