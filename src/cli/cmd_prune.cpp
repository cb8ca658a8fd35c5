// secateur prune MODEL -o OUT --method wanda|sparsegpt|magnitude (--sparsity S | --nm N:M)
//   [--owl [--owl-m 5 --owl-lambda 0.08]] --calib FILE [--nsamples 128 --seqlen 2048 --seed 0]
//   [--skip REGEX] [--to hf|gguf] [--dtype f32|f16|bf16] [--report FILE] [--json]
// Writes the pruned model (the input's format by default; llama2.c inputs are written as GGUF), the
// JSON report (default OUT.report.json) and prints a summary table (or the report with --json).
#include <cstdio>
#include <iostream>

#include "calib/sampling.h"
#include "cli/command.h"
#include "core/file.h"
#include "core/log.h"
#include "model/model_io.h"
#include "prune/prune.h"

namespace sec {
namespace {

struct PruneArgs {
  std::string model, out, method = "wanda", nm, calib, to, dtype, report, tokenizer, skip;
  double sparsity = 0.5;
  bool owl = false, per_row = false, json = false;
  double owl_m = 5.0, owl_lambda = 0.08, percdamp = 0.01;
  int blocksize = 128;
  int64_t nsamples = 128, seqlen = 2048, batch = 1;
  uint64_t seed = 0;
};

void run_prune(const PruneArgs& a) {
  PruneOptions o;
  o.method = parse_prune_method(a.method);
  if (!a.nm.empty())
    o.target = parse_nm(a.nm);
  else
    o.target.ratio = a.sparsity;
  o.owl = a.owl;
  o.owl_m = a.owl_m;
  o.owl_lambda = a.owl_lambda;
  o.magnitude_per_row = a.per_row;
  o.sparsegpt.percdamp = a.percdamp;
  o.sparsegpt.blocksize = a.blocksize;
  o.skip_regex = a.skip;
  o.layerwise.batch = a.batch;
  const bool calibrated = o.method != PruneMethod::Magnitude;
  SEC_CHECK(!calibrated || !a.calib.empty(), "--method ", a.method, " needs calibration data: --calib FILE");

  LoadOptions lo;
  lo.tokenizer_path = a.tokenizer;
  lo.require_tokenizer = calibrated;
  Model m = load_model(a.model, lo);
  SaveOptions so;
  ModelFormat in_format = detect_model_format(a.model);
  so.format =
      !a.to.empty() ? parse_model_format(a.to) : (in_format == ModelFormat::HF ? ModelFormat::HF : ModelFormat::GGUF);
  SEC_CHECK(so.format == ModelFormat::HF || so.format == ModelFormat::GGUF, "--to must be hf or gguf");
  so.dtype = a.dtype.empty() ? m.source.file_dtype : parse_dtype(a.dtype);

  CalibSamples samples;
  if (calibrated) {
    SamplingOptions sopt;
    sopt.nsamples = a.nsamples;
    sopt.seqlen = a.seqlen;
    sopt.seed = a.seed;
    Corpus corpus = load_corpus(a.calib);
    samples = sample_calibration(corpus, *m.tokenizer, sopt);
    log_info("calibration: ", a.calib, " (", samples.stream_tokens, " tokens), ", a.nsamples, " x ", a.seqlen,
             " tokens, seed ", a.seed);
  }
  log_info("pruning ", a.model, " with ", a.method, " to ", o.target.str(), o.owl ? " (OWL)" : "",
           a.skip.empty() ? "" : cat(", skipping /", a.skip, "/"));
  PruneReport rep = prune_model(m, o, calibrated ? &samples : nullptr);
  set_prune_provenance(m.config, rep);
  save_model(m, a.out, so);
  std::string report_path = a.report.empty() ? a.out + ".report.json" : a.report;
  nlohmann::ordered_json j = rep.to_json();
  j["output"] = {{"path", a.out}, {"format", model_format_name(so.format)}, {"dtype", dtype_name(so.dtype)}};
  write_file_atomic(report_path, j.dump(2) + "\n");
  log_info("wrote ", a.out, " and ", report_path);

  if (a.json) {
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::printf("%-44s %14s %8s %9s\n", "layer", "shape", "target", "sparsity");
  for (const auto& l : rep.layers)
    std::printf("%-44s %14s %7.2f%% %8.2f%%\n", l.name.c_str(), cat("[", l.rows, ", ", l.cols, "]").c_str(),
                100 * l.target, 100 * l.sparsity());
  for (const auto& s : rep.skipped) std::printf("%-44s %14s %8s %9s\n", s.c_str(), "", "skipped", "");
  std::printf("total: %lld of %lld block linear weights are zero (%.2f%%), %.1f s (%s)\n",
              (long long)rep.pruned_zeros(), (long long)rep.prunable_params(), 100 * rep.overall_sparsity(),
              rep.seconds, a.method.c_str());
}

CommandRegistration reg(
    {"prune", "Prune a model: magnitude, Wanda or SparseGPT (unstructured or N:M), optionally OWL", 40,
     [](CLI::App& app) {
       auto a = std::make_shared<PruneArgs>();
       app.add_option("model", a->model, "Model: HF directory, GGUF file or llama2.c .bin")->required();
       app.add_option("-o,--output", a->out, "Output model (HF directory or .gguf file)")->required();
       app.add_option("--method", a->method, "magnitude | wanda | sparsegpt")->capture_default_str();
       auto* sp = app.add_option("--sparsity", a->sparsity, "Fraction of weights to zero")->capture_default_str();
       auto* nm = app.add_option("--nm", a->nm, "N:M semi-structured pattern, e.g. 2:4");
       sp->excludes(nm);
       app.add_flag("--owl", a->owl, "OWL per-block sparsity (unstructured, wanda/sparsegpt)");
       app.add_option("--owl-m", a->owl_m, "OWL outlier threshold M")->capture_default_str();
       app.add_option("--owl-lambda", a->owl_lambda, "OWL sparsity spread lambda")->capture_default_str();
       app.add_option("--calib", a->calib, "Calibration text or JSONL file");
       app.add_option("--nsamples", a->nsamples, "Calibration windows")->capture_default_str();
       app.add_option("--seqlen", a->seqlen, "Tokens per window")->capture_default_str();
       app.add_option("--seed", a->seed, "Sampling seed")->capture_default_str();
       app.add_option("--skip", a->skip, "Leave linear layers whose canonical name matches this regex dense");
       app.add_flag("--per-row", a->per_row, "Magnitude: one threshold per output row instead of per matrix");
       app.add_option("--percdamp", a->percdamp, "SparseGPT dampening")->capture_default_str();
       app.add_option("--blocksize", a->blocksize, "SparseGPT column block")->capture_default_str();
       app.add_option("--batch", a->batch, "Calibration samples per forward call")->capture_default_str();
       app.add_option("--to", a->to, "Output format hf | gguf (default: the input's; llama2.c -> gguf)");
       app.add_option("--dtype", a->dtype, "Stored dtype f32 | f16 | bf16 (default: the input's)");
       app.add_option("--tokenizer", a->tokenizer, "Tokenizer file overriding the model's");
       app.add_option("--report", a->report, "JSON report path (default OUT.report.json)");
       app.add_flag("--json", a->json, "Print the JSON report instead of a table");
       app.callback([a] { run_prune(*a); });
     }});

}  // namespace
}  // namespace sec
