// Loading and saving whole models in every supported format.
//   HF directory: config.json + model.safetensors (or sharded with model.safetensors.index.json)
//                 + tokenizer.json
//   GGUF file (v2/v3): llama.* / qwen2.* metadata, tokenizer.ggml.* metadata, F32/F16/BF16 tensors,
//                 and secateur's compressed sparse F32_SPARSE ones (docs/formats.md)
//   llama2.c: legacy .bin checkpoint + tokenizer.bin (next to it, or LoadOptions::tokenizer_path)
#pragma once
#include <string>

#include "model/model.h"

namespace sec {

enum class ModelFormat { Auto, HF, GGUF, Llama2c };
ModelFormat parse_model_format(const std::string& s);  // "hf", "gguf", "llama2c"/"bin"
const char* model_format_name(ModelFormat f);

struct LoadOptions {
  std::string tokenizer_path;  // overrides the tokenizer found next to the model
  bool require_tokenizer = false;
  // Block linears stored sparse (F32_SPARSE in a GGUF) stay compressed in memory: forward passes
  // (eval, generate, bench) multiply them directly. Otherwise (the default: pruning, training and
  // everything that edits weights) they are expanded to f32 on load.
  bool keep_sparse = false;
};

ModelFormat detect_model_format(const std::string& path);  // throws Error if unrecognised
Model load_model(const std::string& path, const LoadOptions& opts = {});

struct SaveOptions {
  ModelFormat format = ModelFormat::HF;  // HF or GGUF
  DType dtype = DType::F32;              // dtype of the stored weights (norms stay f32 in GGUF)
  // GGUF only, dtype f32: each block linear (q, k, v, o, gate, up, down) whose F32_SPARSE blob is
  // smaller than its dense f32 bytes (more than ~3.2% of its elements +0.0) is stored compressed;
  // embeddings, head, norms, biases and SliceGPT shortcut matrices stay dense. false: every tensor
  // dense (a sparse tensor in memory is expanded).
  bool sparse = false;
};
// Whether sparse storage applies to a tensor kind (the block linears).
bool sparse_storable(TensorKind k);
// Writes atomically: a GGUF file via temp+rename; an HF directory's files each via temp+rename.
void save_model(const Model& m, const std::string& out_path, const SaveOptions& opts);

// Loads only the tokenizer (tokenizer.json, tokenizer.bin, or a GGUF's metadata).
Tokenizer load_tokenizer(const std::string& path);

}  // namespace sec
