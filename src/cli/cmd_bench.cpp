// secateur bench MODEL [--prompt-tokens N] [--gen-tokens M] [--json]
// Prefill and decode speed with the KV cache, peak memory, size and FLOPs per token (eval/bench.h).
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "core/log.h"
#include "core/threads.h"
#include "eval/bench.h"
#include "eval/report.h"
#include "model/model_io.h"

namespace sec {
namespace {

struct BenchArgs {
  std::string model;
  BenchOptions opts;
  bool json = false;
};

void run_bench_cmd(const BenchArgs& a) {
  Model m = load_model(a.model, LoadOptions{});
  log_info("bench: ", a.opts.prompt_tokens, " prompt tokens, ", a.opts.gen_tokens, " generated tokens, ", num_threads(),
           " threads");
  BenchResult r = run_bench(m, a.opts);
  if (a.json) {
    ReportJson j = report_header("bench");
    j["model"] = model_record(m);
    j["threads"] = num_threads();
    j["prompt"] = "seeded random token ids (seed " + std::to_string(a.opts.seed) + ")";
    j["prompt_tokens"] = r.prompt_tokens;
    j["gen_tokens"] = r.gen_tokens;
    j["prefill_seconds"] = r.prefill_seconds;
    j["prefill_tokens_per_second"] = r.prefill_tokens_per_second;
    j["decode_seconds"] = r.decode_seconds;
    j["decode_tokens_per_second"] = r.decode_tokens_per_second;
    j["peak_rss_bytes"] = r.peak_rss_bytes;
    j["params"] = r.params;
    j["linear_params"] = r.linear_params;
    j["weight_bytes"] = r.weight_bytes;
    j["file_weight_bytes"] = r.file_weight_bytes;
    j["flops_per_token"] = r.flops_per_token;
    j["flops_per_token_linear"] = r.flops_per_token_linear;
    j["flops_formula"] = "2*linear_params + 4*ctx*sum_l(n_heads_l*head_dim), ctx = prompt_tokens";
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("bench  %s  (%d threads)\n", a.model.c_str(), num_threads());
  std::printf("  %-22s %10.1f tok/s  (%lld tokens in %.3f s)\n", "prefill", r.prefill_tokens_per_second,
              (long long)r.prompt_tokens, r.prefill_seconds);
  std::printf("  %-22s %10.1f tok/s  (%lld tokens in %.3f s)\n", "decode", r.decode_tokens_per_second,
              (long long)r.gen_tokens, r.decode_seconds);
  std::printf("  %-22s %10.1f MiB\n", "peak RSS", double(r.peak_rss_bytes) / (1 << 20));
  std::printf("  %-22s %10lld\n", "parameters", (long long)r.params);
  std::printf("  %-22s %10.1f MiB in memory (f32), %.1f MiB as stored (%s)\n", "weights",
              double(r.weight_bytes) / (1 << 20), double(r.file_weight_bytes) / (1 << 20),
              dtype_name(m.source.file_dtype));
  std::printf("  %-22s %10.4g  (%.4g linear + attention at context %lld)\n", "FLOPs per token", r.flops_per_token,
              r.flops_per_token_linear, (long long)r.prompt_tokens);
}

CommandRegistration reg(
    {"bench", "Measure prefill/decode speed, peak memory, size and FLOPs per token", 80, [](CLI::App& app) {
       auto a = std::make_shared<BenchArgs>();
       app.add_option("model", a->model, "Model: HF directory, GGUF file or llama2.c .bin")->required();
       app.add_option("--prompt-tokens", a->opts.prompt_tokens, "Prompt length (prefill)")->capture_default_str();
       app.add_option("--gen-tokens", a->opts.gen_tokens, "Tokens decoded one at a time")->capture_default_str();
       app.add_option("--seed", a->opts.seed, "Seed of the random prompt")->capture_default_str();
       app.add_flag("--json", a->json, "Print a JSON report instead of the table");
       app.callback([a] { run_bench_cmd(*a); });
     }});

}  // namespace
}  // namespace sec
