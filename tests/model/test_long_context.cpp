// --seqlen beyond the model's context (stories260K.bin: 512) is an error naming the context and
// --allow-long-context, for eval --ppl, prune calibration and finetune / distill training; with
// --allow-long-context it runs (with a warning); a default --seqlen longer than the context is
// shortened to it. And a long evaluation window still shows progress (per block) before it ends.
// ctest-label: slow
#include <nlohmann/json.hpp>
#include <regex>

#include "core/file.h"
#include "testing/testing.h"

namespace sec {
namespace {

using testing::run_cli;

const char* kModel = "models/stories260K/stories260K.bin";
const char* kTok = "models/stories260K/tok512.bin";
const char* kCalib = "data/tinystories/calib.txt";
const char* kEval = "data/tinystories/eval.txt";

std::vector<std::string> cat_args(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

void expect_refused(const testing::CommandResult& r, const std::string& seqlen) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--seqlen " + seqlen + " is longer than the context of"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(512 tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--allow-long-context"), std::string::npos) << r.err;
}

TEST(LongContext, EvalRefusesUnlessAllowed) {
  SEC_REQUIRE_SHARED(kModel);
  SEC_REQUIRE_SHARED(kEval);
  const std::string m = testing::shared_path(kModel), text = testing::shared_path(kEval);
  expect_refused(run_cli({"eval", m, "--ppl", text, "--seqlen", "100000"}), "100000");
  expect_refused(run_cli({"eval", m, "--ppl", text, "--seqlen", "513"}), "513");
  // The reference model's context counts too.
  expect_refused(run_cli({"eval", m, "--ppl", text, "--seqlen", "600", "--ref", m}), "600");
  auto r = run_cli({"eval", m, "--ppl", text, "--seqlen", "512", "--max-windows", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli({"eval", m, "--ppl", text, "--seqlen", "600", "--max-windows", "1", "--allow-long-context", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: --seqlen 600 is longer than the context"), std::string::npos) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["perplexity"]["seqlen"], 600);
  // The default (2048) is shortened to the context.
  r = run_cli({"eval", m, "--ppl", text, "--max-windows", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("--seqlen: using 512 tokens"), std::string::npos) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["perplexity"]["seqlen"], 512);
}

TEST(LongContext, PruneFinetuneDistillRefuseUnlessAllowed) {
  SEC_REQUIRE_SHARED(kModel);
  SEC_REQUIRE_SHARED(kCalib);
  testing::TempDir d;
  const std::string m = testing::shared_path(kModel), calib = testing::shared_path(kCalib);
  const std::vector<std::string> prune = {"prune", m,         "-o",  d.file("p.gguf"), "--method",
                                          "wanda", "--calib", calib, "--nsamples",     "2"};
  expect_refused(run_cli(cat_args(prune, {"--seqlen", "4096"})), "4096");
  EXPECT_FALSE(file_exists(d.file("p.gguf")));
  auto r = run_cli(cat_args(prune, {"--seqlen", "640", "--allow-long-context"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(read_text_file(d.file("p.gguf.report.json")))["calibration"]["seqlen"], 640);
  // Wanda's default (2048) is shortened to the context.
  r = run_cli(prune);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("--seqlen: using 512 tokens"), std::string::npos) << r.err;
  EXPECT_EQ(nlohmann::json::parse(read_text_file(d.file("p.gguf.report.json")))["calibration"]["seqlen"], 512);

  const std::vector<std::string> train = {"--data",        calib, "--max-steps",    "1", "--batch", "1",
                                          "--micro-batch", "1",   "--eval-samples", "1"};
  const std::vector<std::vector<std::string>> trainers = {
      {"finetune", m, "-o", d.file("f"), "--merge"},
      {"distill", "--teacher", m, "--student", m, "-o", d.file("f")},
  };
  for (const auto& t : trainers) {
    SCOPED_TRACE(t[0]);
    expect_refused(run_cli(cat_args(cat_args(t, train), {"--seqlen", "1000"})), "1000");
    EXPECT_FALSE(file_exists(d.file("f")));
    r = run_cli(cat_args(cat_args(t, train), {"--seqlen", "520", "--allow-long-context"}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("warning: --seqlen 520"), std::string::npos) << r.err;
    EXPECT_TRUE(is_directory(d.file("f")));
    std::filesystem::remove_all(d.file("f"));
  }
}

// One window of 4096 tokens through a 20-block random model takes well over the 5 s between
// progress lines on a pipe: a progress line with an ETA appears before the window ends (before,
// progress advanced once per window, so a single window showed none).
TEST(LongContext, LongWindowShowsProgress) {
  SEC_REQUIRE_SHARED(kTok);
  SEC_REQUIRE_SHARED(kEval);
  testing::TempDir d;
  write_file_atomic(d.file("config.json"),
                    R"({"model_type":"llama","hidden_size":256,"intermediate_size":688,"num_hidden_layers":20,
                        "num_attention_heads":8,"num_key_value_heads":8,"vocab_size":512,
                        "max_position_embeddings":4096})");
  auto r = run_cli({"init", "--config", d.file("config.json"), "-o", d.file("m.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli({"-t", "1", "eval", d.file("m.gguf"), "--tokenizer", testing::shared_path(kTok), "--ppl",
               testing::shared_path(kEval), "--seqlen", "4096", "--max-windows", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::smatch took;
  ASSERT_TRUE(std::regex_search(r.err, took, std::regex("perplexity  4096/4096 tok .* took (\\d+)m?(\\d*)s"))) << r.err;
  const int seconds = took[2].length() ? std::stoi(took[1]) * 60 + std::stoi(took[2]) : std::stoi(took[1]);
  if (seconds < 7) GTEST_SKIP() << "the window took only " << seconds << " s: too fast to see a progress line";
  // A line drawn while the window was still running: fewer than 4096 tokens done.
  bool partial = false;
  const std::regex line("perplexity  ([0-9]+)/4096 tok [^\n]* ETA");
  for (auto it = std::sregex_iterator(r.err.begin(), r.err.end(), line); it != std::sregex_iterator(); ++it)
    partial |= std::stoi((*it)[1]) < 4096;
  EXPECT_TRUE(partial) << r.err;
}

}  // namespace
}  // namespace sec
