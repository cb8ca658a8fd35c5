// secateur init --config CONFIG.json -o OUT [--seed S] [--to hf|gguf] [--layers N] [--dtype D (default f32)]
// A randomly initialised model with a real architecture's shapes (benchmarks, scale tests).
#include "cli/command.h"
#include "cli/output.h"
#include "core/log.h"
#include "model/hf_config.h"
#include "model/init.h"
#include "model/model_io.h"

namespace sec {
namespace {

struct InitArgs {
  std::string config;
  OutputArgs out;
  uint64_t seed = 0;
  int layers = 0;
  float std = 0.02f;
};

void run_init(const InitArgs& a) {
  Config c = read_hf_config(a.config);
  if (a.layers > 0) {
    SEC_CHECK(a.layers <= c.n_layers(), "--layers ", a.layers, " is more than the ", c.n_layers(), " blocks in ",
              a.config);
    c.blocks.resize(size_t(a.layers));  // keep the first N blocks
  }
  const SaveOptions so = output_save_options(a.out, DType::F32);
  c.provenance["method"] = "init";
  c.provenance["seed"] = std::to_string(a.seed);
  c.provenance["init_std"] = cat(a.std);
  log_info("initialising ", c.n_layers(), " blocks, ", param_count(c), " parameters (seed ", a.seed, ")");
  Model m = init_random_model(c, a.seed, a.std);
  save_model(m, a.out.path, so);
  log_info("wrote ", a.out.path, " (", model_format_name(so.format), ", ", dtype_name(so.dtype), ", no tokenizer)");
}

CommandRegistration reg(
    {"init", "Create a randomly initialised model from an HF config.json (for benchmarks)", 90, [](CLI::App& app) {
       auto a = std::make_shared<InitArgs>();
       app.add_option("--config", a->config, "HF config.json giving the architecture")->required();
       add_output_options(app, a->out, "Output model");
       app.add_option("--seed", a->seed, "Random seed")->capture_default_str();
       app.add_option("--layers", a->layers, "Keep only the first N blocks (0 = all)")->capture_default_str();
       app.add_option("--std", a->std, "Standard deviation of the weights")->capture_default_str();
       app.callback([a] { run_init(*a); });
     }});

}  // namespace
}  // namespace sec
