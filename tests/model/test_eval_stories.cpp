// Evaluation on real data: WikiText-2 with the Llama-2 tokenizer gives the papers' 166 windows of
// 2048; `secateur eval` / `secateur bench` on stories260K print a table and a valid JSON report that
// records the protocol.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "calib/dataset.h"
#include "eval/perplexity.h"
#include "io/tokenizer_files.h"
#include "testing/testing.h"

namespace sec {
namespace {

using nlohmann::json;
const char* kStories = "models/stories260K/stories260K.bin";
const char* kTinyEval = "data/tinystories/eval.txt";

TEST(EvalStories, WikiText2WithLlama2TokenizerGives166Windows) {
  SEC_REQUIRE_SHARED("tokenizers/llama2/tokenizer.model");
  SEC_REQUIRE_SHARED("data/wikitext2/wiki.test.raw.txt");
  // tokenizer.model is the Llama-2 vocabulary (the shared tokenizer.json is a different one).
  Tokenizer tok(read_sentencepiece_model(testing::shared_path("tokenizers/llama2/tokenizer.model")));
  Corpus c = load_corpus(testing::shared_path("data/wikitext2/wiki.test.raw.txt"));
  ASSERT_EQ(c.documents.size(), 1u);
  std::vector<int32_t> stream = tokenize_text(tok, c.documents[0], true);
  EXPECT_EQ(stream.size(), 341469u);  // 341,468 + one BOS
  EXPECT_EQ(stream[0], 1);
  PplWindows w = make_ppl_windows(PplProtocol::Papers, int64_t(stream.size()), 2048, -1, 1);
  EXPECT_EQ(w.windows, 166);
  EXPECT_EQ(w.scored_tokens(), 166 * 2047);
  PplWindows l = make_ppl_windows(PplProtocol::LlamaCpp, int64_t(stream.size()), 2048, -1, 1);
  EXPECT_EQ(l.windows, 166);
  EXPECT_EQ(l.scored_tokens(), 166 * 1023);
  EXPECT_EQ(make_ppl_windows(PplProtocol::Papers, int64_t(stream.size()), 4096, -1, 1).windows, 83);
  EXPECT_EQ(make_ppl_windows(PplProtocol::Papers, int64_t(stream.size()), 128, -1, 1).windows, 2667);
}

TEST(EvalStories, CliPerplexityTableAndJson) {
  SEC_REQUIRE_SHARED(kStories);
  SEC_REQUIRE_SHARED(kTinyEval);
  const std::string model = testing::shared_path(kStories), text = testing::shared_path(kTinyEval);
  auto r = testing::run_cli({"-t", "1", "eval", model, "--ppl", text, "--seqlen", "128", "--max-windows", "6"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("PPL"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("protocol papers, seqlen 128, 6 of"), std::string::npos) << r.out;

  r = testing::run_cli({"-t", "1", "eval", model, "--ppl", text, "--seqlen", "128", "--max-windows", "6", "--protocol",
                        "llama.cpp", "--batch", "4", "--ref", model, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);  // stdout is only the report
  EXPECT_EQ(j["command"], "eval");
  EXPECT_TRUE(j.contains("secateur_version") && j.contains("timestamp"));
  EXPECT_EQ(j["model"]["sha256"], "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696");
  const json& p = j["perplexity"];
  EXPECT_EQ(p["protocol"], "llama.cpp");
  EXPECT_EQ(p["seqlen"], 128);
  EXPECT_EQ(p["windows"], 6);
  EXPECT_EQ(p["scored_per_window"], 63);
  EXPECT_EQ(p["first_scored_position"], 65);
  EXPECT_EQ(p["scored_tokens"], 6 * 63);
  EXPECT_EQ(p["bos_id"], 1);
  EXPECT_NE(p["bos_handling"].get<std::string>().find("every window"), std::string::npos);
  EXPECT_EQ(p["dataset"]["sha256"], "0470d68cee5ec04548535651455248185cd74c3a398e9fd62cfa3c768c02d91c");
  EXPECT_GT(p["ppl"].get<double>(), 1.0);
  EXPECT_LT(p["ppl"].get<double>(), 20.0);
  EXPECT_EQ(p["reference"]["kl_mean"], 0.0);  // the model against itself
  EXPECT_EQ(p["reference"]["top1_agreement"], 1.0);

  // Errors: no evaluation asked for, a window longer than the text.
  r = testing::run_cli({"eval", model});
  EXPECT_NE(r.exit_code, 0);
  r = testing::run_cli({"eval", model, "--ppl", text, "--seqlen", "1000000", "--allow-long-context"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("fewer than one window"), std::string::npos) << r.err;
}

TEST(EvalStories, CliJsonlCorpusRecordsJoiningAndDocuments) {
  SEC_REQUIRE_SHARED(kStories);
  SEC_REQUIRE_SHARED("data/c4/c4_validation_2k.jsonl");
  auto r = testing::run_cli({"-t", "1", "eval", testing::shared_path(kStories), "--ppl",
                             testing::shared_path("data/c4/c4_validation_2k.jsonl"), "--max-documents", "20",
                             "--seqlen", "128", "--max-windows", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json d = json::parse(r.out)["perplexity"]["dataset"];
  EXPECT_EQ(d["format"], "jsonl");
  EXPECT_EQ(d["documents"], 20);
  EXPECT_EQ(d["documents_joined_with"], " ");
  EXPECT_EQ(d["sha256"], "495eeec67b113def07cf59a9fecb12003b7cc9a5bcfd877b4ec7640e57bf15b4");
}

TEST(EvalStories, CliZeroShotAndBench) {
  SEC_REQUIRE_SHARED(kStories);
  SEC_REQUIRE_SHARED("data/tasks/piqa.jsonl");
  const std::string model = testing::shared_path(kStories);
  auto r = testing::run_cli(
      {"-t", "1", "eval", model, "--tasks", "all", "--limit", "3", "--data-dir", testing::shared_path("data/tasks")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* t : {"piqa", "arc_easy", "arc_challenge", "hellaswag", "winogrande", "openbookqa", "siqa", "mean"})
    EXPECT_NE(r.out.find(t), std::string::npos) << t << "\n" << r.out;

  r = testing::run_cli({"-t", "1", "eval", model, "--tasks", "winogrande,piqa", "--limit", "4", "--data-dir",
                        testing::shared_path("data/tasks"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json z = json::parse(r.out)["zeroshot"];
  EXPECT_EQ(z["tasks"]["winogrande"]["items"], 4);
  EXPECT_EQ(z["tasks"]["winogrande"]["choices"], 8);
  EXPECT_EQ(z["tasks"]["piqa"]["choices"], 8);
  EXPECT_EQ(z["tasks"]["piqa"]["file"]["sha256"], "a1d1d07dda5269832c6649c8742d55d49f7c0cb34f8b6691620c98389eaf4056");
  EXPECT_EQ(z["tasks"]["winogrande"]["acc"], z["tasks"]["winogrande"]["acc_norm"]);  // same continuation

  r = testing::run_cli({"eval", model, "--tasks", "boolq"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("unknown task"), std::string::npos) << r.err;

  r = testing::run_cli({"-t", "1", "bench", model, "--prompt-tokens", "32", "--gen-tokens", "8", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json b = json::parse(r.out);
  EXPECT_EQ(b["params"], 260032);
  EXPECT_GT(b["prefill_tokens_per_second"].get<double>(), 0);
  EXPECT_GT(b["decode_tokens_per_second"].get<double>(), 0);
  EXPECT_GT(b["peak_rss_bytes"].get<int64_t>(), 0);
  // 2 * (5 * 64 * (2*64 + 2*32 + 3*172) + 512*64) + 4 * 32 * (5 * 8 * 8)
  EXPECT_DOUBLE_EQ(b["flops_per_token"].get<double>(), 2.0 * (5 * 64 * (128 + 64 + 516) + 512 * 64) + 4.0 * 32 * 320);
  r = testing::run_cli({"-t", "1", "bench", model, "--prompt-tokens", "16", "--gen-tokens", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("decode"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace sec
