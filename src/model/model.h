// A loaded model: architecture, parameters, tokenizer, and where it came from.
#pragma once
#include <memory>
#include <string>

#include "core/dtype.h"
#include "io/tokenizer.h"
#include "model/config.h"
#include "model/weights.h"

namespace sec {

struct ModelSource {
  std::string path;                 // file or directory it was loaded from
  std::string format;               // "hf", "gguf", "llama2c", "init"
  DType file_dtype = DType::F32;    // dtype of the (majority of the) stored weights
  std::string sha256;               // of the weights file(s): the file itself, or of the shards' hashes
  int sparse_tensors = 0;           // tensors stored compressed (F32_SPARSE, GGUF only)
  int64_t stored_weight_bytes = 0;  // bytes of all tensors as stored in the file(s)
};

struct Model {
  Config config;
  Weights weights;  // f32 in memory; block linears of a sparse GGUF stay F32_SPARSE with LoadOptions::keep_sparse
  std::shared_ptr<const Tokenizer> tokenizer;  // null when the model has none
  ModelSource source;
};

}  // namespace sec
