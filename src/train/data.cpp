#include "train/data.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "calib/dataset.h"
#include "core/error.h"
#include "core/file.h"

namespace sec {

DataFormat parse_data_format(const std::string& s) {
  if (s == "text") return DataFormat::Text;
  if (s == "alpaca") return DataFormat::Alpaca;
  fail("unknown data format '", s, "' (expected text or alpaca)");
}

std::vector<TrainSample> text_samples(const std::vector<int32_t>& stream, int seqlen) {
  SEC_CHECK(seqlen > 0, "sequence length must be positive, got ", seqlen);
  std::vector<TrainSample> out;
  for (size_t start = 0; start + size_t(seqlen) + 1 <= stream.size(); start += size_t(seqlen)) {
    TrainSample s;
    s.tokens.assign(stream.begin() + long(start), stream.begin() + long(start + seqlen));
    s.targets.assign(stream.begin() + long(start + 1), stream.begin() + long(start + seqlen + 1));
    out.push_back(std::move(s));
  }
  return out;
}

std::string alpaca_prompt(const std::string& instruction, const std::string& input) {
  if (input.empty())
    return "Below is an instruction that describes a task. Write a response that appropriately completes the "
           "request.\n\n### Instruction:\n" +
           instruction + "\n\n### Response:\n";
  return "Below is an instruction that describes a task, paired with an input that provides further context. Write a "
         "response that appropriately completes the request.\n\n### Instruction:\n" +
         instruction + "\n\n### Input:\n" + input + "\n\n### Response:\n";
}

static std::vector<nlohmann::json> read_records(const std::string& path) {
  std::string text = read_text_file(path);
  size_t first = text.find_first_not_of(" \t\r\n");
  SEC_CHECK(first != std::string::npos, path, ": the file is empty");
  std::vector<nlohmann::json> recs;
  if (text[first] == '[') {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
      fail(path, ": invalid JSON: ", e.what());
    }
    for (auto& r : j) recs.push_back(r);
  } else {
    std::istringstream is(text);
    std::string line;
    int n = 0;
    while (std::getline(is, line)) {
      n++;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      try {
        recs.push_back(nlohmann::json::parse(line));
      } catch (const std::exception& e) {
        fail(path, ":", n, ": invalid JSON line: ", e.what());
      }
    }
  }
  return recs;
}

std::vector<TrainSample> load_train_samples(const Tokenizer& tok, const std::string& path, DataFormat format,
                                            int seqlen) {
  SEC_CHECK(seqlen > 1, "sequence length must be at least 2, got ", seqlen);
  std::vector<TrainSample> out;
  if (format == DataFormat::Text) {
    Corpus c = load_corpus(path);
    out = text_samples(tokenize_text(tok, c.joined("\n\n"), true), seqlen);
    SEC_CHECK(!out.empty(), path, ": too short for one training sequence of ", seqlen + 1, " tokens");
    return out;
  }
  auto recs = read_records(path);
  const int32_t pad = tok.eos_id() >= 0 ? tok.eos_id() : 0;
  for (size_t i = 0; i < recs.size(); i++) {
    const auto& r = recs[i];
    SEC_CHECK(r.is_object() && r.contains("instruction") && r.contains("output") && r["instruction"].is_string() &&
                  r["output"].is_string(),
              path, ": record ", i + 1, " needs string fields \"instruction\" and \"output\"");
    std::string input = r.contains("input") && r["input"].is_string() ? r["input"].get<std::string>() : "";
    std::vector<int> prompt = tok.encode(alpaca_prompt(r["instruction"].get<std::string>(), input), true);
    std::vector<int> response = tok.encode(r["output"].get<std::string>(), false);
    if (tok.eos_id() >= 0) response.push_back(tok.eos_id());
    std::vector<int32_t> ids(prompt.begin(), prompt.end());
    ids.insert(ids.end(), response.begin(), response.end());
    const size_t n_prompt = prompt.size();
    if (n_prompt >= size_t(seqlen)) continue;  // no response token would fit
    TrainSample s;
    s.tokens.assign(size_t(seqlen), pad);
    s.targets.assign(size_t(seqlen), -1);
    for (size_t t = 0; t < size_t(seqlen) && t < ids.size(); t++) {
      s.tokens[t] = ids[t];
      if (t + 1 < ids.size() && t + 1 >= n_prompt) s.targets[t] = ids[t + 1];  // predicts a response token
    }
    out.push_back(std::move(s));
  }
  SEC_CHECK(!out.empty(), path, ": no usable alpaca record (each needs a prompt shorter than ", seqlen, " tokens)");
  return out;
}

}  // namespace sec
