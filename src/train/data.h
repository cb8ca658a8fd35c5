// Training data: fixed-length samples of tokens and next-token targets.
//   text:   the corpus is tokenized once (one BOS at the start), cut into windows of seqlen + 1 tokens
//           (consecutive windows share one token), tokens = window[0..seqlen), targets = window[1..].
//   alpaca: a JSON array or JSONL of {"instruction", "input", "output"} records; each becomes the
//           Stanford-Alpaca prompt + output + EOS, truncated / padded to seqlen; the loss covers only
//           the response tokens (prompt and padding targets are -1).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/tokenizer.h"

namespace sec {

struct TrainSample {
  std::vector<int32_t> tokens;   // (seqlen)
  std::vector<int32_t> targets;  // (seqlen), < 0: no loss
};

enum class DataFormat { Text, Alpaca };
DataFormat parse_data_format(const std::string& s);  // "text" | "alpaca"

std::vector<TrainSample> text_samples(const std::vector<int32_t>& stream, int seqlen);
std::string alpaca_prompt(const std::string& instruction, const std::string& input);
// Throws Error naming the file for unreadable / malformed data or when no sample results.
std::vector<TrainSample> load_train_samples(const Tokenizer& tok, const std::string& path, DataFormat format,
                                            int seqlen);

}  // namespace sec
