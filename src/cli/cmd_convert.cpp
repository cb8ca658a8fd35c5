// secateur convert IN OUT [--to hf|gguf] [--dtype f32|f16|bf16] [--tokenizer FILE]
#include "cli/command.h"
#include "core/log.h"
#include "model/model_io.h"

namespace sec {
namespace {

struct ConvertArgs {
  std::string in, out, to, dtype = "f32", tokenizer;
};

bool ends_with(const std::string& s, const std::string& x) {
  return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
}

void run_convert(const ConvertArgs& a) {
  SaveOptions so;
  so.format =
      a.to.empty() ? (ends_with(a.out, ".gguf") ? ModelFormat::GGUF : ModelFormat::HF) : parse_model_format(a.to);
  SEC_CHECK(so.format == ModelFormat::HF || so.format == ModelFormat::GGUF, "--to must be hf or gguf");
  so.dtype = parse_dtype(a.dtype);
  LoadOptions lo;
  lo.tokenizer_path = a.tokenizer;
  Model m = load_model(a.in, lo);
  log_info("loaded ", a.in, " (", m.source.format, ", ", m.config.n_layers(), " blocks, ", param_count(m.config),
           " parameters", m.tokenizer ? "" : ", no tokenizer", ")");
  m.config.provenance.emplace("source_sha256", m.source.sha256);
  m.config.provenance.emplace("source_format", m.source.format);
  save_model(m, a.out, so);
  log_info("wrote ", a.out, " (", model_format_name(so.format), ", ", dtype_name(so.dtype), ")");
}

CommandRegistration reg(
    {"convert", "Convert a model between formats (HF safetensors, GGUF, llama2.c) and dtypes", 15, [](CLI::App& app) {
       auto a = std::make_shared<ConvertArgs>();
       app.add_option("input", a->in, "Model: HF directory, GGUF file or llama2.c .bin")->required();
       app.add_option("output", a->out, "Output: HF directory, or a .gguf file")->required();
       app.add_option("--to", a->to,
                      "Output format: hf or gguf (default: gguf if OUTPUT ends "
                      "in .gguf, else hf)");
       app.add_option("--dtype", a->dtype,
                      "Stored weight type: f32, f16 or bf16 (GGUF norms "
                      "stay f32)")
           ->capture_default_str();
       app.add_option("--tokenizer", a->tokenizer,
                      "Tokenizer (tokenizer.json, tokenizer.bin or .gguf) overriding the model's");
       app.callback([a] { run_convert(*a); });
     }});

}  // namespace
}  // namespace sec
