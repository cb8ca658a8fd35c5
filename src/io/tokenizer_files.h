// Tokenizer file formats: Hugging Face tokenizer.json (read/write), llama2.c tokenizer.bin (read) and
// SentencePiece tokenizer.model (read).
// (GGUF tokenizer.ggml.* metadata is read and written by io/gguf with the model.)
#pragma once
#include <string>

#include "io/tokenizer.h"

namespace sec {

// tokenizer.json: "model.type" BPE with byte_fallback (SentencePiece-style, Llama-1/2) or byte-level
// BPE (GPT-2 / Llama-3 pre_tokenizer ByteLevel). Throws Error naming the file on anything it does
// not understand.
TokenizerData read_tokenizer_json(const std::string& path);
// Writes a tokenizer.json that Hugging Face tokenizers and read_tokenizer_json load. Atomic.
void write_tokenizer_json(const TokenizerData& data, const std::string& path);

// llama2.c tokenizer.bin: int32 max_token_length, then per token: float32 score, int32 length,
// bytes. BOS = 1, EOS = 2, unknown = 0, byte tokens "<0xNN>" detected by name.
TokenizerData read_llama2c_tokenizer(const std::string& path);

// SentencePiece tokenizer.model (protobuf ModelProto), BPE models only (Llama-1/2, Mistral).
TokenizerData read_sentencepiece_model(const std::string& path);

}  // namespace sec
