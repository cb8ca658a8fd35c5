// secateur bench MODEL [--prompt-tokens N] [--gen-tokens M] [--weights f32|bf16|f16|sparse] [--json]
// Prefill and decode speed with the KV cache, peak memory, size and FLOPs per token (eval/bench.h).
#include <cstdio>
#include <map>
#include <memory>

#include "cli/command.h"
#include "core/log.h"
#include "core/threads.h"
#include "eval/bench.h"
#include "eval/report.h"
#include "model/model_io.h"
#include "ops/ops.h"

namespace sec {
namespace {

struct BenchArgs {
  std::string model;
  BenchOptions opts;
  std::string weights;  // block linears' format in memory; "" = as loaded
  bool json = false;
};

// The block linears (sparse_storable kinds) converted in memory to `format` (f32, bf16, f16 or sparse),
// so that one file measures every kernel family; returns the format's name. A half-precision format
// converts a separate LM head too, as a bf16 / f16 file stores it (pruning never makes it sparse; a
// tied head stays f32, since the embedding lookup reads it).
std::string convert_linears(Model& m, const std::string& format) {
  const DType d = format == "sparse" || format == "f32-sparse" ? DType::F32_SPARSE : parse_dtype(format);
  for_each_tensor(m.config, m.weights, [&](TensorRef& r) {
    if (sparse_storable(r.kind) && r.tensor.ndim() == 2 && r.tensor.dtype() != d) r.tensor = r.tensor.to(d);
  });
  if ((d == DType::BF16 || d == DType::F16) && m.weights.lm_head.defined()) m.weights.lm_head = m.weights.lm_head.to(d);
  return dtype_name(d);
}

// What the block linears are in memory: "f32", "f32-sparse", or "f32 + f32-sparse (N of M)".
std::string linear_formats(const Model& m) {
  std::map<std::string, int> n;
  int all = 0;
  for_each_tensor(m.config, m.weights, [&](const TensorRef& r) {
    if (sparse_storable(r.kind)) n[dtype_name(r.tensor.dtype())]++, all++;
  });
  std::string s;
  for (const auto& [name, k] : n)
    s += (s.empty() ? "" : " + ") + name + (n.size() > 1 ? cat(" (", k, " of ", all, ")") : "");
  return s;
}

void run_bench_cmd(const BenchArgs& a) {
  LoadOptions lo;
  lo.keep_sparse = true;  // sparse-stored linears are multiplied compressed
  Model m = load_model(a.model, lo);
  if (!a.weights.empty()) convert_linears(m, a.weights);
  const std::string formats = linear_formats(m);
  log_info("bench: ", a.opts.prompt_tokens, " prompt tokens, ", a.opts.gen_tokens, " generated tokens, ", num_threads(),
           " threads");
  log_info(kernels_summary());
  BenchResult r = run_bench(m, a.opts);
  if (a.json) {
    ReportJson j = report_header("bench");
    j["model"] = model_record(m);
    j["threads"] = num_threads();
    j["kernels"] = kernels_summary();
    j["linear_weights"] = formats;
    j["head_weights"] = dtype_name(m.weights.head().dtype());
    j["sparse_stored_tensors"] = m.source.sparse_tensors;
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
  std::printf("  %-22s %10.1f MiB in memory (block linears %s, head %s), %.1f MiB as stored (%s%s)\n", "weights",
              double(r.weight_bytes) / (1 << 20), formats.c_str(), dtype_name(m.weights.head().dtype()),
              double(r.file_weight_bytes) / (1 << 20), dtype_name(m.source.file_dtype),
              m.source.sparse_tensors ? cat(", ", m.source.sparse_tensors, " tensors sparse").c_str() : "");
  std::printf("  %-22s %s\n", "kernels", kernels_summary().c_str());
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
       app.add_option("--weights", a->weights,
                      "Convert the block linears (and, for bf16 / f16, a separate LM head) in memory before "
                      "measuring: f32 | bf16 | f16 | sparse (default: as loaded: f32, sparse-stored ones compressed)");
       app.add_flag("--json", a->json, "Print a JSON report instead of the table");
       app.callback([a] { run_bench_cmd(*a); });
     }});

}  // namespace
}  // namespace sec
