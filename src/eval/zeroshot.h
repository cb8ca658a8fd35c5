// Zero-shot multiple-choice tasks with lm-eval-harness conventions (see docs/evaluation.md and
// ../shared/docs/references.md): each choice is a (context, continuation) pair scored by the summed
// log-likelihood of the continuation's tokens given the context.
//
// Tokenization (lm-eval 0.4 `_encode_pair`): trailing spaces of the context move to the front of
// the continuation; whole = encode(context + continuation), ctx = encode(context); the continuation's
// tokens are whole[len(ctx):]. No BOS by default (lm-eval 0.4's default for causal HF models:
// add_special_tokens=False); `add_bos` prepends it to both (newer lm-eval / llama.cpp behaviour).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/tokenizer.h"
#include "model/model.h"

namespace sec {

struct McChoice {
  std::string context, continuation;
};

struct McItem {
  std::vector<McChoice> choices;
  int label = 0;  // 0-based index of the correct choice
};

// The seven tasks, in the order they are printed.
const std::vector<std::string>& zeroshot_task_names();
// Which metric papers usually report for the task ("acc" or "acc_norm"; references.md).
const char* zeroshot_headline_metric(const std::string& task);
// Default task folder: <shared>/data/tasks.
std::string default_task_dir();

// One item from a task file line: `query` + `choices` (continuation " " + choice), or for winogrande
// `sentence`/`option1`/`option2` with partial scoring: context = sentence before "_" + option,
// continuation = " " + (the rest after "_", stripped) for both options. Throws Error naming `where`.
McItem parse_task_item(const std::string& task, const std::string& json_line, const std::string& where);
// Reads DIR/<task>.jsonl; limit >= 0 keeps the first `limit` items.
std::vector<McItem> load_task(const std::string& task, const std::string& dir, int64_t limit);

// The token ids of a (context, continuation) pair, split as described at the top of this file.
struct EncodedChoice {
  std::vector<int32_t> context, continuation;
};
EncodedChoice encode_choice(const Tokenizer& tok, const McChoice& c, bool add_bos);

// Summed log-likelihood of each request's continuation given its context. Requests run `batch` at a
// time (right-padded; causal attention makes padding invisible to the real tokens), longest first.
// Inputs longer than max_len + 1 tokens are cut from the left as lm-eval does.
std::vector<double> continuation_loglikelihoods(const Model& m, const std::vector<EncodedChoice>& reqs, int64_t batch,
                                                int64_t max_len, bool progress = false);

struct TaskScore {
  std::string task;
  int64_t items = 0;
  double acc = 0, acc_stderr = 0;            // argmax of the summed log-likelihood
  double acc_norm = 0, acc_norm_stderr = 0;  // argmax of log-likelihood / UTF-8 bytes of the continuation
};
// Scores items given the log-likelihood of every choice (flattened in item order). Ties go to the
// lowest index (numpy argmax). Standard errors: sqrt(p (1-p) / (n-1)) (lm-eval's sample stderr).
TaskScore score_items(const std::string& task, const std::vector<McItem>& items, const std::vector<double>& lls);

struct ZeroShotOptions {
  int64_t batch = 8;     // choices per forward pass
  bool add_bos = false;  // see the top of this file
  bool progress = true;
};
struct TaskRun {
  TaskScore score;
  int64_t requests = 0, tokens = 0;  // forward-pass tokens (without padding)
  double seconds = 0;
};
TaskRun evaluate_task(const Model& m, const std::string& task, const std::vector<McItem>& items,
                      const ZeroShotOptions& opts);

}  // namespace sec
