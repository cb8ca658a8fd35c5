// secateur prune MODEL -o OUT --method magnitude|wanda|sparsegpt|llm-pruner [method options]
//   --calib FILE [--nsamples N --seqlen T --seed S] [--to hf|gguf] [--dtype D] [--sparse|--dense]
//   [--report FILE] [--json]
// Writes the pruned model (the output rule of cli/output.h), the JSON report (default
// OUT.report.json) and prints a summary table (or the report with --json).
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "calib/sampling.h"
#include "cli/command.h"
#include "cli/context.h"
#include "cli/output.h"
#include "core/file.h"
#include "core/log.h"
#include "model/model_io.h"
#include "prune/prune.h"

namespace sec {
namespace {

struct PruneArgs {
  std::string model, method = "wanda", nm, calib, report, tokenizer, skip;
  OutputArgs out;
  double sparsity = 0.5;
  bool owl = false, per_row = false, json = false, allow_long_context = false;
  double owl_m = 5.0, owl_lambda = 0.08, percdamp = 0.01;
  int blocksize = 128;
  int64_t nsamples = 0, seqlen = 0, batch = 1;  // 0: the method's default
  uint64_t seed = 0;
  // structured (llm-pruner, minitron)
  std::string importance, taylor = "first", aggregate = "sum", attn_unit = "kv-group", attn_layers, mlp_layers;
  double attn_ratio = 0, mlp_ratio = 0, hidden_ratio = 0, target_params = 0;
  bool global = false, allow_empty = false;
  int round = 0;
  // minitron
  int hidden = 0, ffn = 0, heads = 0, kv_heads = 0, layers = 0, candidates = 6;
  std::string reduce_batch = "l2", reduce_seq = "mean", depth = "bi";
  bool contiguous = false;
  int64_t search_steps = 20, search_windows = 16;
  // slicegpt
  bool uniform = false, slice_head = false;
  std::string orientation = "pca";
};

// Options only some methods read: giving one to another method is a mistake worth saying.
void check_options_apply(const CLI::App& app, const std::string& method) {
  const std::vector<std::pair<std::vector<const char*>, std::vector<std::string>>> table = {
      {{"--nm", "--owl", "--owl-m", "--owl-lambda", "--skip", "--per-row", "--percdamp", "--blocksize"},
       {"magnitude", "wanda", "sparsegpt"}},
      {{"--sparsity"}, {"magnitude", "wanda", "sparsegpt", "slicegpt"}},
      {{"--uniform", "--slice-head", "--orientation"}, {"slicegpt"}},
      {{"--taylor", "--aggregate", "--attn-ratio", "--mlp-ratio", "--hidden-ratio", "--attn-unit", "--attn-layers",
        "--mlp-layers", "--global", "--allow-empty"},
       {"llm-pruner"}},
      {{"--importance", "--target-params"}, {"llm-pruner", "minitron"}},
      {{"--round"}, {"llm-pruner", "minitron", "slicegpt"}},
      {{"--hidden", "--ffn", "--heads", "--kv-heads", "--layers", "--reduce-batch", "--reduce-seq", "--depth",
        "--contiguous", "--candidates", "--search-steps", "--search-windows"},
       {"minitron"}},
  };
  for (const auto& [options, methods] : table) {
    if (std::find(methods.begin(), methods.end(), method) != methods.end()) continue;
    for (const char* o : options) SEC_CHECK(app.count(o) == 0, o, " does not apply to --method ", method);
  }
}

void print_table(const PruneReport& r, const Config& before, const Config& after) {
  const auto& p = r.plan;
  if (p.contains("layers")) {  // unstructured: per linear layer
    std::printf("%-44s %14s %8s %9s\n", "layer", "shape", "target", "sparsity");
    for (const auto& l : p["layers"])
      std::printf("%-44s %14s %7.2f%% %8.2f%%\n", l["name"].get<std::string>().c_str(),
                  cat("[", l["shape"][0].get<int64_t>(), ", ", l["shape"][1].get<int64_t>(), "]").c_str(),
                  100 * l["target"].get<double>(), 100 * l["sparsity"].get<double>());
    for (const auto& s : p["skipped"])
      std::printf("%-44s %14s %8s %9s\n", s.get<std::string>().c_str(), "", "skipped", "");
    std::printf("total: %lld of %lld block linear weights are zero (%.2f%%), %.1f s (%s)\n",
                (long long)p["zeros"].get<int64_t>(), (long long)p["prunable_params"].get<int64_t>(),
                100 * p["sparsity"].get<double>(), r.seconds, r.method.c_str());
    return;
  }
  // structured: the architecture before and after, per block
  if (p.contains("search")) {
    std::printf("%-34s %12s %12s %14s\n", "candidate", "params", "KL pruned", "KL distilled");
    for (const auto& cd : p["search"]["candidates"]) {
      const auto& a = cd["architecture"];
      std::printf("%-34s %12lld %12.5f %14.5f\n",
                  cat("layers ", a["layers"].get<int>(), ", hidden ", a["hidden"].get<int>(), ", ffn ",
                      a["ffn"].get<int>(), ", heads ", a["heads"].get<int>(), "/", a["kv_heads"].get<int>())
                      .c_str(),
                  (long long)cd["params"].get<int64_t>(), cd["kl_pruned"].get<double>(),
                  cd["kl_distilled"].get<double>());
    }
  }
  std::printf("%-6s %14s %14s %14s\n", "block", "heads", "kv heads", "ffn");
  for (int l = 0, k = 0; l < before.n_layers(); l++) {
    const BlockDims& b = before.blocks[size_t(l)];
    const bool kept = !p.contains("blocks_removed") ||
                      std::find(p["blocks_removed"].begin(), p["blocks_removed"].end(), l) == p["blocks_removed"].end();
    if (!kept) {
      std::printf("%-6d %14s\n", l, "removed");
      continue;
    }
    const BlockDims& n = after.blocks[size_t(k++)];
    std::printf("%-6d %14s %14s %14s\n", l, cat(b.n_heads, " -> ", n.n_heads).c_str(),
                cat(b.n_kv_heads, " -> ", n.n_kv_heads).c_str(), cat(b.ffn_dim, " -> ", n.ffn_dim).c_str());
  }
  if (after.dim != before.dim) std::printf("hidden size: %d -> %d\n", before.dim, after.dim);
  std::printf("parameters: %lld -> %lld (%.2f%%), %.1f s (%s)\n", (long long)r.params_before, (long long)r.params_after,
              100.0 * double(r.params_after) / double(r.params_before), r.seconds, r.method.c_str());
}

void run_prune(const CLI::App& app, const PruneArgs& a) {
  const PruneMethodInfo& info = prune_method(a.method);
  check_options_apply(app, info.name);
  PruneOptions o;
  o.method = info.name;
  UnstructuredOptions& u = o.unstructured;
  if (!a.nm.empty())
    u.target = parse_nm(a.nm);
  else
    u.target.ratio = a.sparsity;
  u.owl = a.owl;
  u.owl_m = a.owl_m;
  u.owl_lambda = a.owl_lambda;
  u.magnitude_per_row = a.per_row;
  u.sparsegpt.percdamp = a.percdamp;
  u.sparsegpt.blocksize = a.blocksize;
  u.skip_regex = a.skip;
  u.layerwise.batch = a.batch;
  LlmPrunerOptions& lp = o.llm_pruner;
  const bool minitron = std::string(info.name) == "minitron";
  if (!minitron) lp.importance = parse_group_importance(a.importance.empty() ? "taylor" : a.importance);
  lp.taylor = parse_taylor_order(a.taylor);
  lp.aggregate = parse_aggregate(a.aggregate);
  lp.attn_ratio = a.attn_ratio;
  lp.mlp_ratio = a.mlp_ratio;
  lp.hidden_ratio = a.hidden_ratio;
  lp.attn_unit = parse_attn_unit(a.attn_unit);
  lp.attn_layers = a.attn_layers;
  lp.mlp_layers = a.mlp_layers;
  lp.global = a.global;
  lp.target_params = a.target_params;
  lp.round = a.round > 0 ? a.round : 1;
  lp.allow_empty = a.allow_empty;
  lp.seed = a.seed;
  lp.micro_batch = a.batch;
  MinitronOptions& mo = o.minitron;
  if (minitron) mo.importance = parse_width_importance(a.importance.empty() ? "activation" : a.importance);
  mo.hidden = a.hidden;
  mo.ffn = a.ffn;
  mo.heads = a.heads;
  mo.kv_heads = a.kv_heads;
  mo.layers = a.layers;
  mo.target_params = a.target_params;
  mo.reduce_batch = parse_reduce(a.reduce_batch);
  mo.reduce_seq = parse_reduce(a.reduce_seq);
  mo.depth = parse_depth_importance(a.depth);
  mo.contiguous = a.contiguous;
  mo.round = a.round;
  mo.candidates = a.candidates;
  mo.search_steps = a.search_steps;
  mo.search_windows = a.search_windows;
  mo.seed = a.seed;
  mo.batch = a.batch;
  SliceGptOptions& sg = o.slicegpt;
  sg.sparsity = app.count("--sparsity") ? a.sparsity : 0.25;
  sg.uniform = a.uniform;
  sg.slice_head = a.slice_head;
  sg.round = a.round > 0 ? a.round : 8;
  sg.orientation = parse_orientation(a.orientation);
  sg.seed = a.seed;
  sg.batch = a.batch;
  const bool calibrated = needs_calibration(o);
  SEC_CHECK(!calibrated || !a.calib.empty(), "--method ", a.method, " needs calibration data: --calib FILE");
  const int64_t nsamples = a.nsamples > 0 ? a.nsamples : info.nsamples;

  LoadOptions lo;
  lo.tokenizer_path = a.tokenizer;
  lo.require_tokenizer = calibrated;
  Model m = load_model(a.model, lo);
  const SaveOptions so = output_save_options(a.out, m.source.file_dtype, m.source.sparse_tensors > 0);
  CalibSamples samples;
  if (calibrated) {
    const int64_t seqlen =
        resolve_seqlen(a.seqlen > 0, a.seqlen > 0 ? a.seqlen : info.seqlen, a.allow_long_context, {&m});
    SamplingOptions sopt;
    sopt.nsamples = nsamples;
    sopt.seqlen = seqlen;
    sopt.seed = a.seed;
    Corpus corpus = load_corpus(a.calib);
    samples = sample_calibration(corpus, *m.tokenizer, sopt);
    log_info("calibration: ", a.calib, " (", samples.stream_tokens, " tokens), ", nsamples, " x ", seqlen,
             " tokens, seed ", a.seed);
  }
  log_info("pruning ", a.model, " with ", a.method);
  const Config before = m.config;
  PruneReport rep = prune_model(m, o, calibrated ? &samples : nullptr);
  set_prune_provenance(m.config, rep);
  const std::string report_path = a.report.empty() ? a.out.path + ".report.json" : a.report;
  nlohmann::ordered_json j = rep.to_json();
  j["output"] = {{"path", a.out.path},
                 {"format", model_format_name(so.format)},
                 {"dtype", dtype_name(so.dtype)},
                 {"sparse", so.sparse}};
  CommitGroup outputs;  // the model and its report appear together, or neither does
  save_model(m, a.out.path, so);
  write_file_atomic(report_path, j.dump(2) + "\n");
  outputs.commit();
  log_info("wrote ", a.out.path, " and ", report_path);
  if (a.json)
    std::cout << j.dump(2) << "\n";
  else
    print_table(rep, before, m.config);
}

std::string method_list() {
  std::string s;
  for (const auto& m : prune_methods()) s += cat("\n  ", m.name, ": ", m.summary);
  return s;
}

CommandRegistration reg(
    {"prune",
     "Prune a model: unstructured / N:M (magnitude, Wanda, SparseGPT, OWL) or structured (LLM-Pruner, Minitron, "
     "SliceGPT)",
     40, [](CLI::App& app) {
       auto a = std::make_shared<PruneArgs>();
       app.add_option("model", a->model, "Model: HF directory, GGUF file or llama2.c .bin")->required();
       add_output_options(app, a->out, "Output model");
       add_storage_options(app, a->out);
       app.add_option("--method", a->method, "Pruning method:" + method_list())->capture_default_str();
       app.add_option("--calib", a->calib, "Calibration text or JSONL file");
       app.add_option("--nsamples", a->nsamples,
                      "Calibration windows (default: the method's, 128 for wanda/sparsegpt, 10 for llm-pruner)");
       app.add_option("--seqlen", a->seqlen,
                      "Tokens per window (default: the method's, 2048 for wanda/sparsegpt, 64 for llm-pruner)");
       add_long_context_option(app, a->allow_long_context);
       app.add_option("--seed", a->seed, "Sampling seed (and the seed of --importance random)")->capture_default_str();
       app.add_option("--batch", a->batch, "Calibration samples per forward/backward call")->capture_default_str();
       // unstructured
       auto* sp = app.add_option("--sparsity", a->sparsity,
                                 "Unstructured: fraction of weights to zero (default 0.5); slicegpt: fraction of the "
                                 "hidden size sliced away (default 0.25)");
       auto* nm = app.add_option("--nm", a->nm, "Unstructured: N:M semi-structured pattern, e.g. 2:4");
       sp->excludes(nm);
       app.add_flag("--owl", a->owl, "OWL per-block sparsity (unstructured, wanda/sparsegpt)");
       app.add_option("--owl-m", a->owl_m, "OWL outlier threshold M")->capture_default_str();
       app.add_option("--owl-lambda", a->owl_lambda, "OWL sparsity spread lambda")->capture_default_str();
       app.add_option("--skip", a->skip, "Leave linear layers whose canonical name matches this regex dense");
       app.add_flag("--per-row", a->per_row, "Magnitude: one threshold per output row instead of per matrix");
       app.add_option("--percdamp", a->percdamp, "SparseGPT dampening")->capture_default_str();
       app.add_option("--blocksize", a->blocksize, "SparseGPT column block")->capture_default_str();
       // structured
       app.add_option("--importance", a->importance,
                      "llm-pruner: taylor (default) | l1 | l2 | random; minitron: activation (default) | magnitude | "
                      "random");
       app.add_option("--taylor", a->taylor, "LLM-Pruner Taylor order: vector | first | second | mix")
           ->capture_default_str();
       app.add_option("--aggregate", a->aggregate, "LLM-Pruner group aggregation: sum | mean | max | prod | last")
           ->capture_default_str();
       app.add_option("--attn-ratio", a->attn_ratio, "LLM-Pruner: fraction of KV groups (or heads) removed per block")
           ->capture_default_str();
       app.add_option("--attn-unit", a->attn_unit,
                      "LLM-Pruner: kv-group (a KV head with its query heads) | head (query heads, equal counts per "
                      "KV group)")
           ->capture_default_str();
       app.add_option("--mlp-ratio", a->mlp_ratio, "LLM-Pruner: fraction of MLP channels removed per block")
           ->capture_default_str();
       app.add_option("--hidden-ratio", a->hidden_ratio, "LLM-Pruner: fraction of hidden (embedding) channels removed")
           ->capture_default_str();
       app.add_option("--attn-layers", a->attn_layers,
                      "LLM-Pruner: blocks A-B (inclusive) whose attention is pruned (default all)");
       app.add_option("--mlp-layers", a->mlp_layers,
                      "LLM-Pruner: blocks A-B (inclusive) whose MLP is pruned (default all)");
       app.add_flag("--global", a->global,
                    "LLM-Pruner: rank KV groups and MLP channels of all blocks together (importance per parameter)");
       app.add_option("--target-params", a->target_params,
                      "llm-pruner: keep this fraction of the parameters (finds the ratio; with --global the budget); "
                      "minitron: the budget (a fraction, or a count) of the architecture search");
       app.add_option("--round", a->round,
                      "llm-pruner: keep FFN sizes a multiple of K (default 1); minitron search: sizes a multiple of K "
                      "(default min(64, dim/8)); slicegpt: sliced widths a multiple of K (default 8)");
       // minitron
       app.add_option("--hidden", a->hidden, "Minitron: hidden (embedding) size kept (default: the model's)");
       app.add_option("--ffn", a->ffn, "Minitron: MLP size kept in every block");
       app.add_option("--heads", a->heads, "Minitron: query heads kept per block (default: KV heads x group size)");
       app.add_option("--kv-heads", a->kv_heads, "Minitron: KV groups kept per block");
       app.add_option("--layers", a->layers, "Minitron: blocks kept (the most important by --depth)");
       app.add_option("--reduce-batch", a->reduce_batch, "Minitron: reduction over samples mean | l2 | var")
           ->capture_default_str();
       app.add_option("--reduce-seq", a->reduce_seq, "Minitron: reduction over positions mean | l2 | var")
           ->capture_default_str();
       app.add_option("--depth", a->depth, "Minitron: block importance bi | ppl (perplexity without the block)")
           ->capture_default_str();
       app.add_flag("--contiguous", a->contiguous, "Minitron: remove a contiguous window of blocks");
       app.add_option("--candidates", a->candidates, "Minitron search: architectures scored")->capture_default_str();
       app.add_option("--search-steps", a->search_steps,
                      "Minitron search: distillation steps before a candidate's KL (0: KL right after pruning)")
           ->capture_default_str();
       app.add_option("--search-windows", a->search_windows, "Minitron search: held-out calibration windows")
           ->capture_default_str();
       app.add_flag("--allow-empty", a->allow_empty, "LLM-Pruner: a block may lose every head or every MLP channel");
       // slicegpt
       app.add_flag("--uniform", a->uniform,
                    "SliceGPT: one rotation for the whole stream (no shortcut matrices; a plain model llama.cpp runs)");
       app.add_flag("--slice-head", a->slice_head, "SliceGPT: slice the head's input too");
       app.add_option("--orientation", a->orientation, "SliceGPT: final orientation pca | random")
           ->capture_default_str();
       // common
       app.add_option("--tokenizer", a->tokenizer, "Tokenizer file overriding the model's");
       app.add_option("--report", a->report, "JSON report path (default OUT.report.json)");
       app.add_flag("--json", a->json, "Print the JSON report instead of a table");
       app.callback([&app, a] { run_prune(app, *a); });
     }});

}  // namespace
}  // namespace sec
