// secateur tokenize: show how a model's tokenizer splits the text on stdin (like llama.cpp's
// tokenize tool). Default: one line per token "id -> 'piece'"; --ids: a Python-style list;
// --count: the number of tokens.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include "cli/command.h"
#include "core/error.h"
#include "io/tokenizer.h"
#include "model/model_io.h"

namespace sec {
namespace {

struct TokenizeOptions {
  std::string model, tokenizer;
  bool ids = false, count = false, no_bos = false;
};

void run_tokenize(const TokenizeOptions& o) {
  SEC_CHECK(!o.model.empty() || !o.tokenizer.empty(), "tokenize needs a MODEL or --tokenizer FILE");
  std::shared_ptr<const Tokenizer> tok;
  if (!o.tokenizer.empty()) {
    tok = std::make_shared<const Tokenizer>(load_tokenizer(o.tokenizer));
  } else {
    LoadOptions lo;
    lo.require_tokenizer = true;
    tok = load_model(o.model, lo).tokenizer;
    SEC_CHECK(tok != nullptr, o.model, ": the model has no tokenizer (pass --tokenizer FILE)");
  }
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  std::vector<int> ids = tok->encode(text, !o.no_bos && tok->data().add_bos);

  if (o.count) {
    std::printf("%zu\n", ids.size());
  } else if (o.ids) {
    std::string line = "[";
    for (size_t i = 0; i < ids.size(); i++) line += (i ? ", " : "") + std::to_string(ids[i]);
    std::printf("%s]\n", line.c_str());
  } else {
    for (int id : ids) {
      TokenType type = tok->data().types[size_t(id)];
      // Control and byte tokens show their piece ("<s>", "<0x0A>") so each token stays on one line;
      // others their text, with prev = the token itself so no leading space is dropped.
      std::string shown =
          type == TokenType::Control || type == TokenType::Byte ? tok->piece(id) : tok->token_text(id, id);
      std::printf("%6d -> '%s'\n", id, shown.c_str());
    }
  }
}

CommandRegistration reg({"tokenize", "Split the text on stdin into tokens (ids and pieces, or a count)", 90,
                         [](CLI::App& app) {
                           auto o = std::make_shared<TokenizeOptions>();
                           app.add_option("model", o->model,
                                          "Model (HF directory, GGUF, or llama2.c .bin) whose tokenizer to use");
                           app.add_option("--tokenizer", o->tokenizer,
                                          "Tokenizer file instead of a model (tokenizer.json, tokenizer.bin, GGUF)");
                           auto* ids = app.add_flag("--ids", o->ids, "Print only the ids, as a Python-style list");
                           auto* count = app.add_flag("--count", o->count, "Print only the number of tokens");
                           ids->excludes(count);
                           app.add_flag("--no-bos", o->no_bos, "Do not prepend the BOS token");
                           app.callback([o] { run_tokenize(*o); });
                         }});

}  // namespace
}  // namespace sec
