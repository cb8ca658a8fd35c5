// secateur eval MODEL [--ppl FILE ...] [--ref DENSE] [--tasks LIST ...] [--json]
// Perplexity (papers or llama.cpp window protocol), distance to a reference model, and zero-shot
// multiple-choice accuracy. A table on stdout, or with --json a report recording the whole protocol.
// See docs/evaluation.md.
#include <cstdio>
#include <memory>
#include <sstream>

#include "calib/dataset.h"
#include "cli/command.h"
#include "cli/context.h"
#include "core/error.h"
#include "core/log.h"
#include "eval/perplexity.h"
#include "eval/report.h"
#include "eval/zeroshot.h"
#include "model/model_io.h"

namespace sec {
namespace {

struct EvalArgs {
  std::string model, tokenizer, ppl, ref, protocol = "papers", tasks, data_dir, doc_separator = " ";
  int64_t seqlen = 2048, max_windows = -1, batch = 1, limit = -1, max_documents = -1, task_batch = 8;
  bool json = false, task_bos = false, allow_long_context = false, seqlen_given = false;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string pm(double v, double e, int prec) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.*f ± %.*f", prec, v, prec, e);
  return buf;
}

ReportJson run_ppl(const EvalArgs& a, const Model& m, const Model* ref) {
  CorpusOptions co;
  co.max_documents = a.max_documents;
  Corpus corpus = load_corpus(a.ppl, co);
  // Plain text is one document; JSONL documents are joined as references.md says for C4 (" ").
  std::string text = corpus.jsonl ? corpus.joined(a.doc_separator) : corpus.documents[0];
  const int32_t bos = model_bos_id(m);
  std::vector<int32_t> stream = tokenize_text(*m.tokenizer, text, bos >= 0);
  PplOptions po;
  po.protocol = parse_ppl_protocol(a.protocol);
  std::vector<const Model*> models = {&m};
  if (ref) models.push_back(ref);
  po.seqlen = resolve_seqlen(a.seqlen_given, a.seqlen, a.allow_long_context, models);
  po.max_windows = a.max_windows;
  po.batch = a.batch;
  log_info("perplexity: ", a.ppl, " (", stream.size(), " tokens), protocol ", ppl_protocol_name(po.protocol),
           ", seqlen ", po.seqlen, ", batch ", po.batch, ref ? ", with reference model" : "");
  PplResult r = evaluate_perplexity(m, stream, po, ref);
  const PplWindows& w = r.windows;

  ReportJson dataset = dataset_record(corpus);
  if (corpus.jsonl) {
    dataset["documents_joined_with"] = a.doc_separator;
    dataset["max_documents"] = a.max_documents;
  }
  std::string bos_handling =
      bos < 0 ? "no BOS (the tokenizer adds none)"
      : po.protocol == PplProtocol::Papers
          ? "one BOS at the start of the token stream only"
          : "one BOS at the start of the token stream; token 0 of every window overwritten with BOS";
  ReportJson j = {{"dataset", dataset},
                  {"protocol", ppl_protocol_name(po.protocol)},
                  {"seqlen", w.seqlen},
                  {"stream_tokens", w.stream_tokens},
                  {"windows", w.windows},
                  {"windows_available", w.windows_available},
                  {"remainder_dropped_tokens", w.stream_tokens - w.windows_available * w.seqlen},
                  {"scored_per_window", w.scored_per_window()},
                  {"first_scored_position", w.first_target},
                  {"scored_tokens", r.scored_tokens},
                  {"bos_id", bos},
                  {"bos_handling", bos_handling},
                  {"batch", po.batch},
                  {"mean_nll", r.mean_nll},
                  {"nll_stderr", r.nll_stderr},
                  {"ppl", r.ppl},
                  {"ppl_stderr", r.ppl_stderr},
                  {"seconds", r.seconds},
                  {"tokens_per_second", r.tokens_per_second}};
  if (r.has_reference) {
    j["reference"] = {{"ppl", r.ref_ppl},
                      {"ppl_stderr", r.ref_ppl_stderr},
                      {"kl_mean", r.kl_mean},
                      {"kl_stderr", r.kl_stderr},
                      {"top1_agreement", r.top1},
                      {"top1_agreement_stderr", r.top1_stderr},
                      {"abs_dp_mean", r.abs_dp_mean},
                      {"abs_dp_stderr", r.abs_dp_stderr}};
  }
  if (!a.json) {
    std::printf("perplexity  %s\n", a.ppl.c_str());
    std::printf(
        "  protocol %s, seqlen %lld, %lld of %lld windows, %lld scored tokens (%lld per window, from position %lld)\n",
        ppl_protocol_name(po.protocol), (long long)w.seqlen, (long long)w.windows, (long long)w.windows_available,
        (long long)r.scored_tokens, (long long)w.scored_per_window(), (long long)w.first_target);
    std::printf("  %-24s %s\n", "PPL", pm(r.ppl, r.ppl_stderr, 4).c_str());
    if (r.has_reference) {
      std::printf("  %-24s %s\n", "reference PPL", pm(r.ref_ppl, r.ref_ppl_stderr, 4).c_str());
      std::printf("  %-24s %s\n", "KL(reference || model)", pm(r.kl_mean, r.kl_stderr, 6).c_str());
      std::printf("  %-24s %s %%\n", "top-1 agreement", pm(100 * r.top1, 100 * r.top1_stderr, 2).c_str());
      std::printf("  %-24s %s\n", "mean |delta p|", pm(r.abs_dp_mean, r.abs_dp_stderr, 6).c_str());
    }
    std::printf("  %.1f tokens/s\n", r.tokens_per_second);
  }
  return j;
}

ReportJson run_tasks(const EvalArgs& a, const Model& m) {
  std::vector<std::string> tasks = a.tasks == "all" ? zeroshot_task_names() : split_list(a.tasks);
  SEC_CHECK(!tasks.empty(), "--tasks is empty");
  std::string dir = a.data_dir.empty() ? default_task_dir() : a.data_dir;
  ZeroShotOptions zo;
  zo.batch = a.task_batch;
  zo.add_bos = a.task_bos;
  ReportJson per_task = ReportJson::object();
  std::vector<TaskRun> runs;
  double headline_sum = 0;
  for (const auto& t : tasks) {
    std::vector<McItem> items = load_task(t, dir, a.limit);
    TaskRun run = evaluate_task(m, t, items, zo);
    runs.push_back(run);
    const TaskScore& s = run.score;
    const char* metric = zeroshot_headline_metric(t);
    double headline = std::string(metric) == "acc" ? s.acc : s.acc_norm;
    headline_sum += headline;
    ReportJson f = file_record(dir + "/" + t + ".jsonl");
    per_task[t] = {{"file", f},
                   {"items", s.items},
                   {"choices", run.requests},
                   {"acc", s.acc},
                   {"acc_stderr", s.acc_stderr},
                   {"acc_norm", s.acc_norm},
                   {"acc_norm_stderr", s.acc_norm_stderr},
                   {"headline_metric", metric},
                   {"seconds", run.seconds}};
  }
  double mean = headline_sum / double(tasks.size());
  if (!a.json) {
    std::printf("zero-shot  %s%s\n", dir.c_str(),
                a.limit >= 0 ? cat(" (first ", a.limit, " items per task)").c_str() : "");
    std::printf("  %-14s %6s  %-18s %-18s %s\n", "task", "items", "acc", "acc_norm", "usually reported");
    for (const auto& run : runs) {
      const TaskScore& s = run.score;
      std::printf("  %-14s %6lld  %-19s %-19s %s\n", s.task.c_str(), (long long)s.items,
                  pm(100 * s.acc, 100 * s.acc_stderr, 2).c_str(),
                  pm(100 * s.acc_norm, 100 * s.acc_norm_stderr, 2).c_str(), zeroshot_headline_metric(s.task));
    }
    std::printf("  %-14s %6s  %.2f (mean of the usually reported metric)\n", "mean", "", 100 * mean);
  }
  return ReportJson{
      {"data_dir", dir},
      {"limit", a.limit},
      {"bos", a.task_bos ? "BOS prepended to context and context+continuation"
                         : "no BOS (lm-eval 0.4 default add_special_tokens=False)"},
      {"tokenization",
       "lm-eval _encode_pair: continuation tokens = encode(context + continuation)[len(encode(context)):]"},
      {"acc_norm", "log-likelihood / UTF-8 bytes of the continuation (with its leading space)"},
      {"stderr", "sqrt(p (1 - p) / (n - 1))"},
      {"batch", zo.batch},
      {"tasks", per_task},
      {"mean_headline_metric", mean}};
}

void run_eval(const EvalArgs& a) {
  SEC_CHECK(!a.ppl.empty() || !a.tasks.empty(), "eval needs --ppl FILE and/or --tasks LIST");
  SEC_CHECK(a.ref.empty() || !a.ppl.empty(), "--ref compares the models over the --ppl windows: pass --ppl FILE too");
  LoadOptions lo;
  lo.tokenizer_path = a.tokenizer;
  lo.require_tokenizer = true;
  lo.keep_sparse = true;  // forward passes only: sparse-stored linears are multiplied compressed
  Model m = load_model(a.model, lo);
  SEC_CHECK(m.tokenizer != nullptr, a.model, ": the model has no tokenizer (pass --tokenizer FILE)");
  std::unique_ptr<Model> ref;
  LoadOptions ref_options;
  ref_options.keep_sparse = true;
  if (!a.ref.empty()) ref = std::make_unique<Model>(load_model(a.ref, ref_options));

  ReportJson report = report_header("eval");
  report["model"] = model_record(m);
  if (ref) report["reference_model"] = model_record(*ref);
  if (!a.ppl.empty()) report["perplexity"] = run_ppl(a, m, ref.get());
  if (!a.tasks.empty()) report["zeroshot"] = run_tasks(a, m);
  if (a.json) std::printf("%s\n", report.dump(2).c_str());
}

CommandRegistration reg(
    {"eval", "Evaluate a model: perplexity, KL / top-1 agreement to a reference, zero-shot tasks", 40,
     [](CLI::App& app) {
       auto a = std::make_shared<EvalArgs>();
       app.add_option("model", a->model, "Model: HF directory, GGUF file or llama2.c .bin")->required();
       app.add_option("--ppl", a->ppl, "Perplexity text: plain text, or JSONL with a \"text\" field");
       auto* seqlen = app.add_option("--seqlen", a->seqlen,
                                     "Window length in tokens (default: 2048, or the model's context if shorter)");
       add_long_context_option(app, a->allow_long_context);
       app.add_option("--max-windows", a->max_windows, "Evaluate only the first N windows (-1: all)")
           ->capture_default_str();
       app.add_option("--batch", a->batch, "Windows per forward pass")->capture_default_str();
       app.add_option("--protocol", a->protocol,
                      "papers (one BOS, every prediction scored) or llama.cpp (BOS per window, "
                      "second half scored)")
           ->capture_default_str();
       app.add_option("--max-documents", a->max_documents,
                      "JSONL: use only the first N documents (C4 papers: 1100; -1: all)")
           ->capture_default_str();
       app.add_option("--doc-separator", a->doc_separator, "JSONL: string joining the documents")
           ->capture_default_str();
       app.add_option("--ref", a->ref, "Reference (dense) model: adds KL, top-1 agreement, |delta p|");
       app.add_option("--tasks", a->tasks,
                      "Zero-shot tasks, comma-separated, or 'all' (piqa, arc_easy, arc_challenge, "
                      "hellaswag, winogrande, openbookqa, siqa)");
       app.add_option("--limit", a->limit, "Zero-shot: first N items per task (-1: all)")->capture_default_str();
       app.add_option("--data-dir", a->data_dir,
                      "Folder with <task>.jsonl (default: $SECATEUR_SHARED/data/tasks or "
                      "../shared/data/tasks)");
       app.add_option("--task-batch", a->task_batch, "Zero-shot: choices per forward pass")->capture_default_str();
       app.add_flag("--task-bos", a->task_bos, "Zero-shot: prepend BOS to every request (lm-eval 0.4 does not)");
       app.add_option("--tokenizer", a->tokenizer, "Tokenizer file overriding the model's");
       app.add_flag("--json", a->json, "Print a JSON report (the whole protocol) instead of tables");
       app.callback([a, seqlen] {
         a->seqlen_given = seqlen->count() > 0;
         run_eval(*a);
       });
     }});

}  // namespace
}  // namespace sec
