// The one output rule of every command that writes a model (prune, finetune --merge, distill,
// convert, init): a name ending in .gguf is a GGUF file, anything else a Hugging Face directory;
// --to overrides the name, and a --to that contradicts a .gguf name is an error. Each option is
// declared here once. (Tests: tests/model/test_cli_outputs.cpp.)
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "core/dtype.h"
#include "core/error.h"
#include "model/model_io.h"

namespace sec {

struct OutputArgs {
  std::string path, to, dtype;
  bool sparse = false, dense = false;  // --sparse / --dense (commands that call add_storage_options)
};

inline void add_output_options(CLI::App& app, OutputArgs& o, const std::string& what) {
  app.add_option("-o,--output", o.path, what + ": a .gguf file, or else a Hugging Face directory")->required();
  app.add_option("--to", o.to, "Output format hf | gguf (default: gguf when the name ends in .gguf, else hf)");
  app.add_option("--dtype", o.dtype, "Stored weight type f32 | f16 | bf16 (default: the input's; norms stay f32)");
}

// --sparse / --dense (convert, prune): GGUF only. --sparse stores each block linear with enough zeros
// compressed (F32_SPARSE: bitmask + packed f32 values, docs/formats.md); llama.cpp refuses such a
// file. --dense stores every tensor dense. Neither: a sparse input stays sparse in a GGUF output.
inline void add_storage_options(CLI::App& app, OutputArgs& o) {
  app.add_flag("--sparse", o.sparse,
               "GGUF, f32 only: store each block linear with more than ~3% zeros compressed (bitmask + f32 "
               "values; secateur reads it, llama.cpp refuses it). A sparse input stays sparse unless --dense");
  app.add_flag("--dense", o.dense, "Store every tensor dense (a sparse GGUF input becomes a plain one)");
}

inline bool names_gguf(const std::string& path) {
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".gguf") == 0;
}

// The format, dtype and storage of the output; `input_dtype` is used when --dtype is not given, and
// `input_sparse` (the input has sparse-stored tensors) when neither --sparse nor --dense is.
inline SaveOptions output_save_options(const OutputArgs& o, DType input_dtype, bool input_sparse = false) {
  SaveOptions so;
  so.format = names_gguf(o.path) ? ModelFormat::GGUF : ModelFormat::HF;
  if (!o.to.empty()) {
    const ModelFormat f = parse_model_format(o.to);
    SEC_CHECK(f == ModelFormat::HF || f == ModelFormat::GGUF, "--to must be hf or gguf, not ", o.to);
    SEC_CHECK(!(f == ModelFormat::HF && names_gguf(o.path)), "--to hf contradicts the output name ", o.path,
              ": a .gguf name is a GGUF file (drop --to, or name the HF directory without .gguf)");
    so.format = f;
  }
  SEC_CHECK(!(o.sparse && o.dense), "--sparse and --dense contradict each other: give one of them");
  SEC_CHECK(!o.sparse || so.format == ModelFormat::GGUF, "--sparse needs a GGUF output (safetensors has no ",
            "compressed sparse dtype): name the output .gguf, or drop --sparse");
  so.dtype = o.dtype.empty() ? input_dtype : parse_dtype(o.dtype);
  SEC_CHECK(!o.sparse || o.dtype.empty() || so.dtype == DType::F32, "--sparse stores f32 values; it cannot be ",
            "combined with --dtype ", o.dtype, " (drop one of them)");
  so.sparse = o.sparse || (input_sparse && !o.dense && so.format == ModelFormat::GGUF && so.dtype == DType::F32);
  if (so.sparse) so.dtype = DType::F32;
  return so;
}

// finetune / distill with LoRA and no --merge write the adapter alone: always a PEFT directory
// (adapter_config.json + adapter_model.safetensors), so a .gguf name or any --to is a mistake.
inline void check_adapter_output(const OutputArgs& o) {
  SEC_CHECK(!names_gguf(o.path), "the adapter alone is written as a PEFT directory; ", o.path,
            " names a GGUF file (add --merge to write the whole model)");
  SEC_CHECK(o.to.empty(), "--to ", o.to, " applies to whole models; the adapter alone is always a PEFT directory ",
            "(add --merge to write the whole model as ", o.to, ")");
  SEC_CHECK(o.dtype.empty(), "--dtype applies to whole models; the adapter is stored as f32 (add --merge to write ",
            "the whole model)");
}

}  // namespace sec
