// Text corpora for calibration, evaluation and training: plain text, or JSONL with a "text" field
// per line (documents joined with a separator, e.g. "\n\n" for WikiText-style, " " for C4).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/tokenizer.h"

namespace sec {

struct Corpus {
  std::string path;
  std::string sha256;                  // of the file as stored
  std::vector<std::string> documents;  // plain text: one document (the whole file)
  bool jsonl = false;
  std::string joined(const std::string& separator) const;
};

struct CorpusOptions {
  std::string jsonl_field = "text";
  int64_t max_documents = -1;  // JSONL: keep only the first N documents (-1: all)
};

// Detects JSONL by the extension .jsonl/.json (or a first line starting with '{'). Throws Error
// naming the file for unreadable files, bad JSON lines (with the line number) or an empty corpus.
Corpus load_corpus(const std::string& path, const CorpusOptions& opts = {});

// Token stream of text: one BOS at the start (if add_bos and the tokenizer has one), no EOS.
std::vector<int32_t> tokenize_text(const Tokenizer& tok, const std::string& text, bool add_bos);

}  // namespace sec
