// secateur convert IN -o OUT [--to hf|gguf] [--dtype f32|f16|bf16] [--sparse | --dense] [--tokenizer FILE]
#include "cli/command.h"
#include "cli/output.h"
#include "core/log.h"
#include "model/model_io.h"

namespace sec {
namespace {

struct ConvertArgs {
  std::string in, tokenizer;
  OutputArgs out;
};

void run_convert(const ConvertArgs& a) {
  output_save_options(a.out, DType::F32);  // a contradicting --to fails before the model is read
  LoadOptions lo;
  lo.tokenizer_path = a.tokenizer;
  lo.keep_sparse = true;  // written as stored, or expanded tensor by tensor while writing
  Model m = load_model(a.in, lo);
  log_info("loaded ", a.in, " (", m.source.format, ", ", m.config.n_layers(), " blocks, ", param_count(m.config),
           " parameters", m.tokenizer ? "" : ", no tokenizer", ")");
  m.config.provenance.emplace("source_sha256", m.source.sha256);
  m.config.provenance.emplace("source_format", m.source.format);
  const SaveOptions so = output_save_options(a.out, m.source.file_dtype, m.source.sparse_tensors > 0);
  if (m.source.sparse_tensors > 0 && !so.sparse)
    log_info(a.in, " has ", m.source.sparse_tensors, " sparse-stored tensors; ", a.out.path, " stores them dense");
  save_model(m, a.out.path, so);
  log_info("wrote ", a.out.path, " (", model_format_name(so.format), ", ", dtype_name(so.dtype),
           so.sparse ? ", sparse block linears" : "", ")");
}

CommandRegistration reg(
    {"convert", "Convert a model between formats (HF safetensors, GGUF, llama2.c) and dtypes", 15, [](CLI::App& app) {
       auto a = std::make_shared<ConvertArgs>();
       app.add_option("input", a->in, "Model: HF directory, GGUF file or llama2.c .bin")->required();
       add_output_options(app, a->out, "Output model");
       add_storage_options(app, a->out);
       app.add_option("--tokenizer", a->tokenizer,
                      "Tokenizer (tokenizer.json, tokenizer.bin or .gguf) overriding the model's");
       app.callback([a] { run_convert(*a); });
     }});

}  // namespace
}  // namespace sec
