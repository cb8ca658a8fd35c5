// Alpaca-format training data with the stories260K tokenizer: the loss covers only the response.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "model/model_io.h"
#include "testing/testing.h"
#include "train/data.h"

namespace sec {
namespace {

TEST(TrainDataStories, AlpacaLossCoversOnlyTheResponseAndEos) {
  SEC_REQUIRE_SHARED("models/stories260K/tok512.bin");
  Tokenizer tok = load_tokenizer(testing::shared_path("models/stories260K/tok512.bin"));
  testing::TempDir dir;
  {
    std::ofstream f(dir.file("a.jsonl"));
    f << R"({"instruction": "Tell a story.", "input": "", "output": "Lily saw a cat."})"
      << "\n"
      << R"({"instruction": "Name a color.", "input": "A red ball", "output": "Red."})"
      << "\n";
  }
  const int seqlen = 160;
  auto samples = load_train_samples(tok, dir.file("a.jsonl"), DataFormat::Alpaca, seqlen);
  ASSERT_EQ(samples.size(), 2u);
  const char* instructions[] = {"Tell a story.", "Name a color."};
  const char* inputs[] = {"", "A red ball"};
  const char* outputs[] = {"Lily saw a cat.", "Red."};
  for (int i = 0; i < 2; i++) {
    const TrainSample& s = samples[size_t(i)];
    ASSERT_EQ(s.tokens.size(), size_t(seqlen));
    ASSERT_EQ(s.targets.size(), size_t(seqlen));
    std::vector<int> prompt = tok.encode(alpaca_prompt(instructions[i], inputs[i]), true);
    ASSERT_LT(prompt.size(), size_t(seqlen));
    for (size_t t = 0; t < prompt.size(); t++) EXPECT_EQ(s.tokens[t], prompt[t]);
    std::vector<int> expected = tok.encode(outputs[i], false);
    expected.push_back(tok.eos_id());
    std::vector<int> scored;
    for (size_t t = 0; t < s.targets.size(); t++) {
      if (s.targets[t] < 0) continue;
      EXPECT_GE(t + 1, prompt.size()) << "a prompt token is scored";
      scored.push_back(s.targets[t]);
    }
    EXPECT_EQ(scored, expected);
    EXPECT_EQ(tok.decode(std::vector<int>(scored.begin(), scored.end() - 1)), outputs[i]);
  }
}

TEST(TrainDataStories, AlpacaRecordWithoutOutputNamesTheFile) {
  SEC_REQUIRE_SHARED("models/stories260K/tok512.bin");
  Tokenizer tok = load_tokenizer(testing::shared_path("models/stories260K/tok512.bin"));
  testing::TempDir dir;
  std::ofstream(dir.file("bad.jsonl")) << R"({"instruction": "Tell a story."})"
                                       << "\n";
  try {
    load_train_samples(tok, dir.file("bad.jsonl"), DataFormat::Alpaca, 64);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sec
