#include "calib/dataset.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "io/json.h"

namespace sec {

std::string Corpus::joined(const std::string& separator) const {
  std::string out;
  for (size_t i = 0; i < documents.size(); i++) {
    if (i) out += separator;
    out += documents[i];
  }
  return out;
}

static bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Corpus load_corpus(const std::string& path, const CorpusOptions& opts) {
  Corpus c;
  c.path = path;
  std::string text = read_text_file(path);
  c.sha256 = sha256_hex(text.data(), text.size());
  size_t first = text.find_first_not_of(" \t\r\n");
  c.jsonl = ends_with(path, ".jsonl") || ends_with(path, ".json") || (first != std::string::npos && text[first] == '{');
  if (!c.jsonl) {
    SEC_CHECK(first != std::string::npos, path, ": the file is empty");
    c.documents.push_back(std::move(text));
    return c;
  }
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    line_no++;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json j = parse_json(line, cat(path, ":", line_no));
    SEC_CHECK(j.is_object() && j.contains(opts.jsonl_field) && j[opts.jsonl_field].is_string(), path, ":", line_no,
              ": no string field \"", opts.jsonl_field, "\"");
    c.documents.push_back(j[opts.jsonl_field].get<std::string>());
    if (opts.max_documents >= 0 && int64_t(c.documents.size()) >= opts.max_documents) break;
  }
  SEC_CHECK(!c.documents.empty(), path, ": no documents found");
  return c;
}

std::vector<int32_t> tokenize_text(const Tokenizer& tok, const std::string& text, bool add_bos) {
  std::vector<int> ids = tok.encode(text, add_bos);
  return std::vector<int32_t>(ids.begin(), ids.end());
}

}  // namespace sec
