// secateur info MODEL [--json] [--tokenizer FILE]: architecture, format, per-block dims, parameter
// count, dtypes, sparse-stored tensors and stored size, tokenizer, file hash. Warns on stderr about
// NaN/Inf weights. secateur info --system [MODEL]: the CPU features, kernels and threads in use.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/cpu.h"
#include "core/log.h"
#include "core/threads.h"
#include "model/model_io.h"
#include "ops/ops.h"

namespace sec {
namespace {

struct InfoArgs {
  std::string model, tokenizer;
  bool json = false, system = false;
};

// Non-finite values per tensor (a broken conversion or a diverged fine-tune).
std::vector<std::pair<std::string, int64_t>> non_finite(const Model& m) {
  std::vector<std::pair<std::string, int64_t>> bad;
  for_each_tensor(m.config, m.weights, [&](const TensorRef& r) {
    const uint32_t* p = reinterpret_cast<const uint32_t*>(r.tensor.f32());
    const int64_t size = r.tensor.numel();
    int64_t n = 0;  // all-ones exponent: Inf or NaN (an integer test the compiler vectorises)
    for (int64_t i = 0; i < size; i++) n += (p[i] & 0x7f800000u) == 0x7f800000u;
    if (n) bad.emplace_back(r.name, n);
  });
  return bad;
}

// Runs of identical consecutive blocks: (first, last, dims).
struct BlockRun {
  int first, last;
  BlockDims dims;
};
std::vector<BlockRun> block_runs(const Config& c) {
  std::vector<BlockRun> runs;
  for (int l = 0; l < c.n_layers(); l++) {
    if (!runs.empty() && runs.back().dims == c.blocks[l])
      runs.back().last = l;
    else
      runs.push_back({l, l, c.blocks[l]});
  }
  return runs;
}

void run_info(const InfoArgs& a) {
  if (a.system) {
    if (a.json) {
      nlohmann::ordered_json j = {{"cpu", cpu_summary()},
                                  {"kernels", kernels_summary()},
                                  {"threads", threads_summary()},
                                  {"openblas", openblas_core_summary()}};
      std::cout << j.dump(2) << "\n";
    } else {
      std::printf("cpu           %s\nkernels       %s\nthreads       %s\nopenblas      %s\n", cpu_summary().c_str(),
                  kernels_summary().c_str(), threads_summary().c_str(), openblas_core_summary().c_str());
    }
    if (a.model.empty()) return;
  }
  SEC_CHECK(!a.model.empty(), "info needs a MODEL (or --system)");
  LoadOptions lo;
  lo.tokenizer_path = a.tokenizer;
  Model m = load_model(a.model, lo);
  const Config& c = m.config;
  for (const auto& [name, n] : non_finite(m)) log_warn(a.model, ": tensor ", name, " has ", n, " NaN/Inf values");
  const char* tok_kind = !m.tokenizer                                               ? "none"
                         : m.tokenizer->data().kind == TokenizerKind::SentencePiece ? "sentencepiece"
                                                                                    : "byte-level-bpe";
  if (a.json) {
    nlohmann::ordered_json j;
    j["path"] = m.source.path;
    j["format"] = m.source.format;
    j["architecture"] = c.architecture;
    j["dim"] = c.dim;
    j["n_layers"] = c.n_layers();
    j["head_dim"] = c.head_dim;
    j["vocab_size"] = c.vocab_size;
    j["max_seq_len"] = c.max_seq_len;
    j["norm_eps"] = c.norm_eps;
    j["rope_theta"] = c.rope_theta;
    j["rope_scaling"] = c.rope_scaling.type;
    j["tied_embeddings"] = c.tied_embeddings;
    j["attn_bias"] = c.attn_bias;
    j["uniform_blocks"] = c.uniform_blocks();
    nlohmann::ordered_json blocks = nlohmann::ordered_json::array();
    for (const auto& b : c.blocks)
      blocks.push_back({{"n_heads", b.n_heads}, {"n_kv_heads", b.n_kv_heads}, {"ffn_dim", b.ffn_dim}});
    j["blocks"] = blocks;
    j["n_params"] = param_count(c);
    j["file_dtype"] = dtype_name(m.source.file_dtype);
    j["sparse_tensors"] = m.source.sparse_tensors;
    j["stored_weight_bytes"] = m.source.stored_weight_bytes;
    j["tokenizer"] = {{"kind", tok_kind}, {"vocab_size", m.tokenizer ? m.tokenizer->vocab_size() : 0}};
    j["sha256"] = m.source.sha256;
    j["provenance"] = c.provenance;
    nlohmann::ordered_json nf = nlohmann::ordered_json::object();
    for (const auto& [name, n] : non_finite(m)) nf[name] = n;
    j["non_finite"] = nf;
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::printf("model         %s\n", m.source.path.c_str());
  std::printf("format        %s (%s weights)\n", m.source.format.c_str(), dtype_name(m.source.file_dtype));
  std::printf("stored        %.2f MiB of tensors", double(m.source.stored_weight_bytes) / (1 << 20));
  if (m.source.sparse_tensors)
    std::printf(", %d block linears sparse (f32-sparse: bitmask + f32 values; llama.cpp cannot load this file)",
                m.source.sparse_tensors);
  std::printf("\n");
  std::printf("architecture  %s%s%s\n", c.architecture.c_str(), c.tied_embeddings ? ", tied embeddings" : "",
              c.attn_bias ? ", q/k/v biases" : "");
  std::printf("dim           %d   head_dim %d   vocab %d   context %d\n", c.dim, c.head_dim, c.vocab_size,
              c.max_seq_len);
  std::printf("norm eps      %g   rope theta %g%s\n", c.norm_eps, c.rope_theta,
              c.rope_scaling.type.empty()
                  ? ""
                  : cat("   rope scaling ", c.rope_scaling.type, " x", c.rope_scaling.factor).c_str());
  std::printf("parameters    %lld (%.2f M)\n", (long long)param_count(c), param_count(c) / 1e6);
  std::printf("blocks        %d%s\n", c.n_layers(), c.uniform_blocks() ? " (all alike)" : "");
  std::printf("  %-10s %8s %8s %8s\n", "block", "heads", "kv_heads", "ffn");
  for (const auto& r : block_runs(c)) {
    std::string range = r.first == r.last ? cat(r.first) : cat(r.first, "-", r.last);
    std::printf("  %-10s %8d %8d %8d\n", range.c_str(), r.dims.n_heads, r.dims.n_kv_heads, r.dims.ffn_dim);
  }
  std::printf("tokenizer     %s", tok_kind);
  if (m.tokenizer) std::printf(" (%d tokens)", m.tokenizer->vocab_size());
  std::printf("\nsha256        %s\n", m.source.sha256.c_str());
  for (const auto& [k, v] : c.provenance) std::printf("provenance    %s = %s\n", k.c_str(), v.c_str());
}

CommandRegistration reg({"info", "Show a model's architecture, per-block sizes, parameter count, dtypes and hash", 10,
                         [](CLI::App& app) {
                           auto a = std::make_shared<InfoArgs>();
                           app.add_option("model", a->model, "Model: HF directory, GGUF file or llama2.c .bin");
                           app.add_flag("--json", a->json, "Print JSON instead of a table");
                           app.add_flag("--system", a->system,
                                        "Show the CPU features, kernels and threads in use (MODEL optional)");
                           app.add_option("--tokenizer", a->tokenizer, "Tokenizer file overriding the model's");
                           app.callback([a] { run_info(*a); });
                         }});

}  // namespace
}  // namespace sec
