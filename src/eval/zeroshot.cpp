#include "eval/zeroshot.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "core/threads.h"
#include "io/json.h"
#include "model/forward.h"

namespace sec {

const std::vector<std::string>& zeroshot_task_names() {
  static const std::vector<std::string> names = {"piqa",       "arc_easy",   "arc_challenge", "hellaswag",
                                                 "winogrande", "openbookqa", "siqa"};
  return names;
}

const char* zeroshot_headline_metric(const std::string& task) {
  if (task == "arc_easy" || task == "winogrande" || task == "siqa") return "acc";
  return "acc_norm";
}

std::string default_task_dir() {
  const char* shared = std::getenv("SECATEUR_SHARED");
  return std::string(shared && *shared ? shared : "../shared") + "/data/tasks";
}

static std::string strip(const std::string& s) {
  const char* ws = " \t\r\n";
  size_t a = s.find_first_not_of(ws);
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(ws) - a + 1);
}

McItem parse_task_item(const std::string& task, const std::string& line, const std::string& where) {
  const nlohmann::json j = parse_json(line, where);
  auto str = [&](const char* key) {
    SEC_CHECK(j.is_object() && j.contains(key) && j[key].is_string(), where, ": no string field \"", key, "\"");
    return j[key].get<std::string>();
  };
  SEC_CHECK(j.is_object() && j.contains("label") && j["label"].is_number_integer(), where,
            ": no integer field \"label\"");
  McItem item;
  const int64_t label = j["label"].get<int64_t>();  // (a huge unsigned value wraps to negative: rejected below)
  item.label = label >= 0 && label <= (int64_t(1) << 30) ? int(label) : -1;
  if (task == "winogrande") {
    // Partial scoring (lm-eval): the option fills the blank in the context; the rest of the
    // sentence is the same continuation for both options.
    std::string sentence = str("sentence");
    size_t blank = sentence.find('_');
    SEC_CHECK(blank != std::string::npos, where, ": the sentence has no '_'");
    std::string rest = " ";  // (built with += to dodge a GCC 12 -Wrestrict false positive)
    rest += strip(sentence.substr(blank + 1));
    for (const char* opt : {"option1", "option2"}) item.choices.push_back({sentence.substr(0, blank) + str(opt), rest});
  } else {
    std::string query = str("query");
    SEC_CHECK(j.contains("choices") && j["choices"].is_array() && j["choices"].size() >= 2, where,
              ": \"choices\" must be an array of at least 2 strings");
    for (const auto& c : j["choices"]) {
      SEC_CHECK(c.is_string(), where, ": \"choices\" must contain strings");
      std::string cont = " ";
      cont += c.get<std::string>();
      item.choices.push_back({query, cont});
    }
  }
  SEC_CHECK(item.label >= 0 && item.label < int(item.choices.size()), where, ": label ", j["label"].dump(),
            " is not the index of a choice (", item.choices.size(), " choices)");
  return item;
}

std::vector<McItem> load_task(const std::string& task, const std::string& dir, int64_t limit) {
  const auto& names = zeroshot_task_names();
  SEC_CHECK(std::find(names.begin(), names.end(), task) != names.end(), "unknown task '", task,
            "' (known: piqa, arc_easy, arc_challenge, hellaswag, winogrande, openbookqa, siqa)");
  std::string path = dir + "/" + task + ".jsonl";
  SEC_CHECK(file_exists(path), path, ": task file not found (set --data-dir to the folder with <task>.jsonl files)");
  std::string text = read_text_file(path);
  std::vector<McItem> items;
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < text.size() && (limit < 0 || int64_t(items.size()) < limit)) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    line_no++;
    if (strip(line).empty()) continue;
    items.push_back(parse_task_item(task, line, cat(path, ":", line_no)));
  }
  SEC_CHECK(!items.empty(), path, ": no items");
  return items;
}

EncodedChoice encode_choice(const Tokenizer& tok, const McChoice& c, bool add_bos) {
  std::string context = c.context, continuation = c.continuation;
  // lm-eval: trailing whitespace of the context belongs to the continuation.
  size_t keep = context.find_last_not_of(" \t\r\n");
  keep = keep == std::string::npos ? 0 : keep + 1;
  continuation = context.substr(keep) + continuation;
  context.resize(keep);
  const bool bos = add_bos && tok.bos_id() >= 0;
  std::vector<int> whole = tok.encode(context + continuation, bos);
  std::vector<int> ctx;
  if (!context.empty()) {
    ctx = tok.encode(context, bos);
  } else if (bos) {
    ctx = {tok.bos_id()};
  } else if (tok.bos_id() >= 0) {
    // An empty context: lm-eval conditions on a single start token.
    ctx = {tok.bos_id()};
    whole.insert(whole.begin(), tok.bos_id());
  }
  SEC_CHECK(!ctx.empty(), "a choice has an empty context and the tokenizer has no BOS to condition on");
  EncodedChoice e;
  e.context.assign(ctx.begin(), ctx.end());
  size_t n = std::min(ctx.size(), whole.size());
  e.continuation.assign(whole.begin() + int64_t(n), whole.end());
  SEC_CHECK(!e.continuation.empty(), "the continuation \"", c.continuation, "\" encodes to no tokens");
  return e;
}

std::vector<double> continuation_loglikelihoods(const Model& m, const std::vector<EncodedChoice>& reqs, int64_t batch,
                                                int64_t max_len, bool progress) {
  SEC_CHECK(batch >= 1, "--batch must be at least 1 (got ", batch, ")");
  SEC_CHECK(max_len >= 2, "maximum context length ", max_len, " is too short");
  const int64_t C = m.config.final_dim(), V = m.config.vocab_size;
  // The model input is (context + continuation)[-(max_len+1):][:-1]; its last n_cont positions'
  // logits predict the continuation tokens.
  struct Req {
    std::vector<int32_t> input;
    const std::vector<int32_t>* cont;
  };
  std::vector<Req> rs(reqs.size());
  int64_t total_tokens = 0;
  for (size_t i = 0; i < reqs.size(); i++) {
    std::vector<int32_t> full = reqs[i].context;
    full.insert(full.end(), reqs[i].continuation.begin(), reqs[i].continuation.end());
    SEC_CHECK(int64_t(reqs[i].continuation.size()) <= max_len, "a continuation of ", reqs[i].continuation.size(),
              " tokens does not fit the model's context of ", max_len);
    int64_t keep = std::min<int64_t>(int64_t(full.size()), max_len + 1);
    rs[i].input.assign(full.end() - keep, full.end() - 1);
    rs[i].cont = &reqs[i].continuation;
    total_tokens += int64_t(rs[i].input.size());
  }
  // Longest first, so each batch pads little (stable: equal lengths keep their order).
  std::vector<size_t> order(rs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return rs[a].input.size() > rs[b].input.size(); });

  std::vector<double> out(reqs.size(), 0.0);
  std::unique_ptr<Progress> prog;
  if (progress) prog = std::make_unique<Progress>("zero-shot", total_tokens, "tok");
  int64_t done = 0;
  for (size_t i0 = 0; i0 < order.size(); i0 += size_t(batch)) {
    const size_t B = std::min(size_t(batch), order.size() - i0);
    const int64_t T = int64_t(rs[order[i0]].input.size());
    // Right padding with the last real token: positions after a sequence's end never influence
    // its real positions under causal attention.
    std::vector<int32_t> tokens(B * size_t(T));
    int64_t R = 0;
    for (size_t b = 0; b < B; b++) {
      const auto& in = rs[order[i0 + b]].input;
      std::copy(in.begin(), in.end(), tokens.begin() + int64_t(b) * T);
      std::fill(tokens.begin() + int64_t(b) * T + int64_t(in.size()), tokens.begin() + int64_t(b + 1) * T, in.back());
      R += int64_t(rs[order[i0 + b]].cont->size());
    }
    const std::vector<float> x = final_hidden(m, tokens.data(), int64_t(B), T);
    // Gather only the rows whose logits are needed, then one LM-head matmul for them.
    std::vector<float> rows(size_t(R * C));
    std::vector<int32_t> targets(static_cast<size_t>(R));
    int64_t r = 0;
    for (size_t b = 0; b < B; b++) {
      const Req& q = rs[order[i0 + b]];
      const int64_t n_in = int64_t(q.input.size()), n_cont = int64_t(q.cont->size());
      for (int64_t k = 0; k < n_cont; k++, r++) {
        const int64_t pos = n_in - n_cont + k;
        std::copy_n(x.data() + (int64_t(b) * T + pos) * C, C, rows.data() + r * C);
        targets[size_t(r)] = (*q.cont)[size_t(k)];
      }
    }
    std::vector<float> logits(size_t(R * V));
    head_forward(m, rows.data(), R, logits.data());
    std::vector<double> lp(static_cast<size_t>(R));
    parallel_ranges(R, double(V), 32768.0, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; k++) {
        const float* row = logits.data() + k * V;
        float mx = row[0];
        for (int64_t v = 1; v < V; v++) mx = std::max(mx, row[v]);
        double s = 0;
        for (int64_t v = 0; v < V; v++) s += std::exp(double(row[v]) - mx);
        lp[size_t(k)] = double(row[targets[size_t(k)]]) - mx - std::log(s);
      }
    });
    r = 0;
    for (size_t b = 0; b < B; b++) {
      const Req& q = rs[order[i0 + b]];
      double sum = 0;
      for (size_t k = 0; k < q.cont->size(); k++) sum += lp[size_t(r++)];
      out[order[i0 + b]] = sum;
      done += int64_t(q.input.size());
    }
    if (prog) prog->update(done);
  }
  if (prog) prog->finish();
  return out;
}

TaskScore score_items(const std::string& task, const std::vector<McItem>& items, const std::vector<double>& lls) {
  TaskScore s;
  s.task = task;
  s.items = int64_t(items.size());
  size_t k = 0;
  int64_t correct = 0, correct_norm = 0;
  for (const auto& item : items) {
    int best = 0, best_norm = 0;
    double best_v = 0, best_norm_v = 0;
    for (size_t c = 0; c < item.choices.size(); c++) {
      SEC_ASSERT(k < lls.size());
      double ll = lls[k++];
      // acc_norm divides by the continuation's length in UTF-8 bytes (std::string::size()).
      double norm = ll / double(std::max<size_t>(1, item.choices[c].continuation.size()));
      if (c == 0 || ll > best_v) best = int(c), best_v = ll;
      if (c == 0 || norm > best_norm_v) best_norm = int(c), best_norm_v = norm;
    }
    correct += best == item.label;
    correct_norm += best_norm == item.label;
  }
  SEC_ASSERT(k == lls.size());
  auto stderr_of = [&](double p) { return s.items > 1 ? std::sqrt(p * (1 - p) / double(s.items - 1)) : 0.0; };
  s.acc = s.items ? double(correct) / double(s.items) : 0;
  s.acc_norm = s.items ? double(correct_norm) / double(s.items) : 0;
  s.acc_stderr = stderr_of(s.acc);
  s.acc_norm_stderr = stderr_of(s.acc_norm);
  return s;
}

TaskRun evaluate_task(const Model& m, const std::string& task, const std::vector<McItem>& items,
                      const ZeroShotOptions& opts) {
  SEC_CHECK(m.tokenizer != nullptr, "zero-shot tasks need the model's tokenizer (the model has none)");
  TaskRun run;
  std::vector<EncodedChoice> reqs;
  for (const auto& item : items)
    for (const auto& c : item.choices) reqs.push_back(encode_choice(*m.tokenizer, c, opts.add_bos));
  auto t0 = std::chrono::steady_clock::now();
  if (opts.progress) log_info(task, ": ", items.size(), " items, ", reqs.size(), " choices");
  std::vector<double> lls = continuation_loglikelihoods(m, reqs, opts.batch, m.config.max_seq_len, opts.progress);
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  run.requests = int64_t(reqs.size());
  for (const auto& r : reqs) run.tokens += int64_t(r.context.size() + r.continuation.size()) - 1;
  run.score = score_items(task, items, lls);
  return run;
}

}  // namespace sec
