// secateur generate MODEL -p PROMPT -n N [--temp T --top-p P --seed S]
#include <chrono>
#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "core/log.h"
#include "model/generate.h"
#include "model/model_io.h"

namespace sec {
namespace {

struct GenerateArgs {
  std::string model, tokenizer, prompt;
  GenerateOptions opts;
};

void run_generate(const GenerateArgs& a) {
  LoadOptions lo;
  lo.tokenizer_path = a.tokenizer;
  lo.require_tokenizer = true;
  lo.keep_sparse = true;  // forward passes only: sparse-stored linears are multiplied compressed
  Model m = load_model(a.model, lo);
  const Tokenizer& tok = *m.tokenizer;
  std::vector<int> ids = tok.encode(a.prompt, /*add_bos=*/true);
  std::vector<int32_t> prompt(ids.begin(), ids.end());
  log_info("prompt: ", prompt.size(), " tokens; generating up to ", a.opts.max_new_tokens, " (",
           a.opts.temperature > 0
               ? cat("temperature ", a.opts.temperature, ", top-p ", a.opts.top_p, ", seed ", a.opts.seed)
               : std::string("greedy"),
           ")");
  // Print the prompt as given, then stream each new token's text.
  std::cout << a.prompt << std::flush;
  int32_t prev = prompt.back();
  auto start = std::chrono::steady_clock::now();
  auto out = generate(m, prompt, a.opts, [&](int32_t id) {
    std::cout << tok.token_text(prev, id) << std::flush;
    prev = id;
  });
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "\n";
  log_info(out.size(), " tokens in ", s, " s (", s > 0 ? double(out.size()) / s : 0.0, " tokens/s)");
}

CommandRegistration reg(
    {"generate", "Generate text from a prompt (greedy, or temperature + top-p sampling)", 20, [](CLI::App& app) {
       auto a = std::make_shared<GenerateArgs>();
       app.add_option("model", a->model, "Model: HF directory, GGUF file or llama2.c .bin")->required();
       app.add_option("-p,--prompt", a->prompt, "Prompt text (default: empty, start from BOS)");
       app.add_option("-n,--n-tokens", a->opts.max_new_tokens, "Tokens to generate")->capture_default_str();
       app.add_option("--temp", a->opts.temperature, "Temperature (0 = greedy)")->capture_default_str();
       app.add_option("--top-p", a->opts.top_p, "Nucleus sampling threshold")->capture_default_str();
       app.add_option("--seed", a->opts.seed, "Sampling seed")->capture_default_str();
       app.add_option("--tokenizer", a->tokenizer, "Tokenizer file overriding the model's");
       app.add_flag(
           "--ignore-eos", [a](int64_t) { a->opts.stop_at_eos = false; },
           "Keep generating after the end-of-sequence token");
       app.callback([a] { run_generate(*a); });
     }});

}  // namespace
}  // namespace sec
