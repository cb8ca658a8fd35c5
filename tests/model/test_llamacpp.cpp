// A real llama.cpp runs every kind of GGUF secateur writes and agrees with secateur: greedy tokens,
// and per-token log-probabilities / perplexity. llama.cpp is node-llama-cpp's prebuilt CPU build,
// driven by tools/llamacpp/llamacpp.mjs (see tools/llamacpp and docs/formats.md); the tests skip
// when it is not installed (scripts/setup.sh installs it).
//
// Tolerances (float32 reasoning): both sides compute in f32 with different summation orders
// (ggml's SIMD kernels vs OpenBLAS / our kernels); llamacpp.mjs keeps llama.cpp's K/V cache in f32
// and turns flash attention off for these commands (ggml's CPU flash attention works in f16: with
// it, log-probabilities differ by ~1e-2). A dot product of n terms then differs by about sqrt(n) * 2^-24 relative;
// through a few blocks the logits (|z| up to ~20) move by ~1e-5, and a log-probability z_t - logsumexp(z) by at most
// twice that. We allow 1e-3 per token and 1e-4 on the mean NLL (PPL within 0.01%), 50x and more above what is observed.
// f16 / bf16 files: llama.cpp also rounds the activations to the weights' type inside each matrix product (2^-11 / 2^-8
// relative), secateur does not, so only the greedy tokens are compared there.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "calib/dataset.h"
#include "eval/perplexity.h"
#include "io/gguf.h"
#include "model/forward.h"
#include "model/generate.h"
#include "model/init.h"
#include "model/model_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

using nlohmann::json;

const char* kBin = "models/stories260K/stories260K.bin";
const char* kGguf = "models/stories260K/stories260K.gguf";
const char* kEval = "data/tinystories/eval.txt";

constexpr double kTokenLogprobTol = 1e-3;
constexpr double kMeanNllTol = 1e-4;

// Runs llamacpp.mjs and parses its JSON (failing the test on a non-zero exit).
json llamacpp(const std::vector<std::string>& args) {
  testing::CommandResult r = testing::run_llamacpp(args);
  EXPECT_EQ(r.exit_code, 0) << "llamacpp.mjs " << (args.empty() ? "" : args[0]) << " failed:\n" << r.err;
  json j = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r.out;
  return j.is_discarded() ? json::object() : j;
}

std::string join_ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); i++) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

// secateur's greedy continuation (what `secateur generate --temp 0` prints), stopping at EOS.
std::vector<int32_t> secateur_greedy(const Model& m, const std::vector<int32_t>& prompt, int n) {
  GenerateOptions o;
  o.max_new_tokens = n;
  o.temperature = 0.f;
  return generate(m, prompt, o);
}

// llama.cpp's greedy continuation of the GGUF file.
std::vector<int32_t> llamacpp_greedy(const std::string& gguf, const std::vector<int32_t>& prompt, int n,
                                     json* out = nullptr) {
  json j = llamacpp({"generate", gguf, "--tokens", std::to_string(n), "--prompt-ids", join_ids(prompt)});
  if (out) *out = j;
  return j.value("ids", std::vector<int32_t>{});
}

// ln p(tokens[i+1] | tokens[0..i]) from secateur's forward pass, for every window.
std::vector<std::vector<double>> secateur_logprobs(const Model& m, const std::vector<std::vector<int32_t>>& windows) {
  std::vector<std::vector<double>> out;
  const int64_t V = m.config.vocab_size;
  for (const auto& w : windows) {
    const int64_t T = int64_t(w.size());
    std::vector<float> logits(size_t(T * V));
    model_forward(m, w.data(), 1, T, logits.data());
    std::vector<double> lp;
    for (int64_t t = 0; t + 1 < T; t++) {
      const float* z = logits.data() + t * V;
      double mx = *std::max_element(z, z + V), sum = 0;
      for (int64_t v = 0; v < V; v++) sum += std::exp(double(z[v]) - mx);
      lp.push_back(double(z[w[size_t(t + 1)]]) - mx - std::log(sum));
    }
    out.push_back(lp);
  }
  return out;
}

struct LogprobDiff {
  double max_token = 0;  // max |difference| over all scored tokens
  double mean_nll_a = 0, mean_nll_b = 0;
  int64_t n = 0;
};

LogprobDiff compare_logprobs(const std::vector<std::vector<double>>& a, const json& b) {
  LogprobDiff d;
  const json& lb = b.at("logprobs");
  EXPECT_EQ(lb.size(), a.size());
  for (size_t w = 0; w < a.size() && w < lb.size(); w++) {
    EXPECT_EQ(lb[w].size(), a[w].size());
    for (size_t i = 0; i < a[w].size() && i < lb[w].size(); i++) {
      EXPECT_FALSE(lb[w][i].is_null()) << "llama.cpp gave probability 0 at window " << w << " position " << i;
      double x = lb[w][i].is_null() ? -1e30 : lb[w][i].get<double>();
      d.max_token = std::max(d.max_token, std::fabs(x - a[w][i]));
      d.mean_nll_a -= a[w][i];
      d.mean_nll_b -= x;
      d.n++;
    }
  }
  if (d.n) d.mean_nll_a /= double(d.n), d.mean_nll_b /= double(d.n);
  return d;
}

// Writes the windows for `llamacpp.mjs logprobs --ids FILE`; returns FILE.
std::string write_windows(const std::vector<std::vector<int32_t>>& windows, const testing::TempDir& dir,
                          const std::string& name) {
  const std::string ids = dir.file(name + ".ids.json");
  std::ofstream(ids) << json(windows).dump();
  return ids;
}

json llamacpp_logprobs(const std::string& gguf, const std::vector<std::vector<int32_t>>& windows,
                       const testing::TempDir& dir) {
  return llamacpp({"logprobs", gguf, "--ids", write_windows(windows, dir, "logprobs")});
}

// Several llamacpp.mjs commands in one process (llama.cpp starts once: ~1 s saved per command).
std::vector<json> llamacpp_batch(const std::vector<std::vector<std::string>>& jobs, const testing::TempDir& dir) {
  const std::string file = dir.file("jobs.json");
  std::ofstream(file) << json(jobs).dump();
  json j = llamacpp({"batch", file});
  std::vector<json> out = j.value("results", std::vector<json>{});
  EXPECT_EQ(out.size(), jobs.size());
  out.resize(jobs.size(), json::object());
  for (const json& r : out) EXPECT_FALSE(r.contains("error")) << r.dump();
  return out;
}

Model save_and_reload(const Model& m, const std::string& path, DType dtype = DType::F32) {
  SaveOptions so;
  so.format = ModelFormat::GGUF;
  so.dtype = dtype;
  save_model(m, path, so);
  return load_model(path);
}

// Saves `m` as GGUF, then checks that llama.cpp loads the file and (1) gives the greedy tokens
// secateur gives on the reloaded file, from BOS and from a random prompt, and (2) for f32 files,
// the same log-probabilities on random windows. Returns the GGUF architecture llama.cpp reported.
std::string expect_llamacpp_agrees(const Model& m, const testing::TempDir& dir, const std::string& name,
                                   int n_tokens = 40, DType dtype = DType::F32) {
  SCOPED_TRACE(name);
  const std::string path = dir.file(name + ".gguf");
  Model back = save_and_reload(m, path, dtype);
  const int V = back.config.vocab_size;
  std::vector<std::vector<int32_t>> prompts = {{back.config.bos_token_id}};
  std::vector<int32_t> random_prompt = {back.config.bos_token_id};
  for (int32_t t : testing::random_tokens(7, V, 17)) random_prompt.push_back(t);
  prompts.push_back(random_prompt);
  std::vector<std::vector<int32_t>> windows;
  for (uint64_t s = 0; s < 2; s++) {
    std::vector<int32_t> w = {back.config.bos_token_id};
    for (int32_t t : testing::random_tokens(31, V, 100 + s)) w.push_back(t);
    windows.push_back(w);
  }
  std::vector<std::vector<std::string>> jobs;
  for (const auto& p : prompts)
    jobs.push_back({"generate", path, "--tokens", std::to_string(n_tokens), "--prompt-ids", join_ids(p)});
  if (dtype == DType::F32) jobs.push_back({"logprobs", path, "--ids", write_windows(windows, dir, name)});
  std::vector<json> res = llamacpp_batch(jobs, dir);
  for (size_t i = 0; i < prompts.size(); i++) {
    std::vector<int32_t> ours = secateur_greedy(back, prompts[i], n_tokens);
    std::vector<int32_t> theirs = res[i].value("ids", std::vector<int32_t>{});
    EXPECT_EQ(theirs, ours) << "prompt " << join_ids(prompts[i]);
    const size_t distinct = std::set<int32_t>(ours.begin(), ours.end()).size();
    std::printf("[ %s ] greedy from %s: %zu tokens, %zu distinct\n", name.c_str(), join_ids(prompts[i]).c_str(),
                ours.size(), distinct);
    EXPECT_GE(distinct, 3u) << "degenerate greedy output";
  }
  if (dtype == DType::F32) {
    LogprobDiff d = compare_logprobs(secateur_logprobs(back, windows), res.back());
    EXPECT_LE(d.max_token, kTokenLogprobTol);
    EXPECT_NEAR(d.mean_nll_a, d.mean_nll_b, kMeanNllTol);
    std::printf("[ %s ] llama.cpp vs secateur: max |d logprob| %.3g over %lld tokens\n", name.c_str(), d.max_token,
                (long long)d.n);
  }
  return res[0].value("model", json::object()).value("architecture", "");
}

// Random weights with a real spread (std 0.3), so that logits are peaked and greedy decoding is
// neither flat (ties) nor degenerate.
Model random_model(Config c, uint64_t seed) {
  c.max_seq_len = 256;
  return init_random_model(c, seed, 0.3f, 0.1f);
}

// --- hand-made structured surgery on real weights (the library's surgery is not used here) ---

Tensor keep_rows(const Tensor& t, const std::vector<int64_t>& rows) {
  const int64_t cols = t.ndim() == 1 ? 1 : t.shape()[1];
  std::vector<float> src = t.to_vector(), dst;
  for (int64_t r : rows) dst.insert(dst.end(), src.begin() + r * cols, src.begin() + (r + 1) * cols);
  return Tensor::from_vector(dst, t.ndim() == 1 ? Shape{int64_t(rows.size())} : Shape{int64_t(rows.size()), cols});
}

Tensor keep_cols(const Tensor& t, const std::vector<int64_t>& cols) {
  const int64_t R = t.shape()[0], C = t.shape()[1];
  std::vector<float> src = t.to_vector(), dst;
  for (int64_t r = 0; r < R; r++)
    for (int64_t c : cols) dst.push_back(src[size_t(r * C + c)]);
  return Tensor::from_vector(dst, Shape{R, int64_t(cols.size())});
}

std::vector<int64_t> head_rows(const std::vector<int>& heads, int hd) {
  std::vector<int64_t> rows;
  for (int h : heads)
    for (int i = 0; i < hd; i++) rows.push_back(int64_t(h) * hd + i);
  return rows;
}

// Removes KV groups from block l: their k/v rows, their query heads' q rows and o_proj columns.
void remove_kv_groups(Model& m, int l, const std::set<int>& groups) {
  BlockDims& b = m.config.blocks[size_t(l)];
  const int hd = m.config.head_dim, per_group = b.n_heads / b.n_kv_heads;
  std::vector<int> kv, q;
  for (int g = 0; g < b.n_kv_heads; g++) {
    if (groups.count(g)) continue;
    kv.push_back(g);
    for (int h = g * per_group; h < (g + 1) * per_group; h++) q.push_back(h);
  }
  BlockWeights& w = m.weights.blocks[size_t(l)];
  w.wq = keep_rows(w.wq, head_rows(q, hd));
  w.wk = keep_rows(w.wk, head_rows(kv, hd));
  w.wv = keep_rows(w.wv, head_rows(kv, hd));
  w.wo = keep_cols(w.wo, head_rows(q, hd));
  if (m.config.attn_bias) {
    w.bq = keep_rows(w.bq, head_rows(q, hd));
    w.bk = keep_rows(w.bk, head_rows(kv, hd));
    w.bv = keep_rows(w.bv, head_rows(kv, hd));
  }
  b.n_heads = int(q.size());
  b.n_kv_heads = int(kv.size());
}

// Removes every `drop_every`-th FFN channel of block l (its gate/up rows and down column).
void remove_ffn_channels(Model& m, int l, int drop_every) {
  BlockDims& b = m.config.blocks[size_t(l)];
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < b.ffn_dim; i++)
    if (i % drop_every != 0) keep.push_back(i);
  BlockWeights& w = m.weights.blocks[size_t(l)];
  w.w_gate = keep_rows(w.w_gate, keep);
  w.w_up = keep_rows(w.w_up, keep);
  w.w_down = keep_cols(w.w_down, keep);
  b.ffn_dim = int(keep.size());
}

// Rewrites an f32 GGUF file: keys renamed by `rename` (empty result: dropped) or replaced by
// `set`, tensors for which `drop` is true left out. For probing what llama.cpp does with layouts
// secateur does not write.
void rewrite_gguf(const std::string& in, const std::string& out,
                  const std::function<std::string(const std::string&)>& rename,
                  const std::map<std::string, GgufValue>& set, const std::function<bool(const std::string&)>& drop) {
  GgufFile g(in);
  GgufWriter w;
  for (const auto& [k, v] : g.metadata()) {
    std::string name = rename(k);
    if (name.empty()) continue;
    auto it = set.find(name);
    w.set(name, it != set.end() ? it->second : v);
  }
  for (const auto& t : g.tensors())
    if (!drop(t.name)) w.add_tensor(t.name, g.read_f32(t));
  w.write(out);
}

std::string keep_name(const std::string& k) { return k; }
bool keep_tensor(const std::string&) { return false; }

// ---------------------------------------------------------------------------------------------

TEST(LlamaCpp, ReportsItsVersion) {
  SEC_REQUIRE_LLAMACPP();
  json v = llamacpp({"version"});
  EXPECT_EQ(v.value("node_llama_cpp", ""), "3.21.1");
  EXPECT_EQ(v["llama_cpp"].value("repo", ""), "ggml-org/llama.cpp");
  EXPECT_EQ(v["llama_cpp"].value("release", ""), "v0.4.0");
  EXPECT_EQ(v.value("build_type", ""), "prebuilt");
  std::printf("llama.cpp %s (%s), CPU backend %s\n", v["llama_cpp"].value("release", "").c_str(),
              v.value("build_type", "").c_str(), v.value("cpu_backend", json("?")).dump().c_str());
}

TEST(LlamaCpp, Stories260kGgufGreedyMatchesSecateur) {
  SEC_REQUIRE_SHARED(kGguf);
  SEC_REQUIRE_LLAMACPP();
  const std::string path = testing::shared_path(kGguf);
  Model m = load_model(path);
  std::vector<int32_t> ours = secateur_greedy(m, {1}, 80);
  json j;
  std::vector<int32_t> theirs = llamacpp_greedy(path, {1}, 80, &j);
  ASSERT_GE(ours.size(), 60u);
  EXPECT_EQ(theirs, ours);
  EXPECT_EQ(j.value("text", ""), m.tokenizer->decode(std::vector<int>(ours.begin(), ours.end())));
  EXPECT_EQ(j.value("text", "").rfind("Once upon a time, there was a little girl named Lily.", 0), 0u)
      << j.value("text", "");
  // The CLI prints the same text (`secateur generate --temp 0`).
  testing::CommandResult r = testing::run_cli({"-q", "generate", path, "-n", "80", "--temp", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(j.value("text", "")), std::string::npos) << r.out;
}

// llamacpp.mjs bench times the same prompt as `secateur bench` (seeded random ids from secateur's
// generator, reimplemented in JavaScript) and reports wall-clock and llama.cpp's own timings.
TEST(LlamaCpp, BenchUsesSecateursPromptAndReportsTimings) {
  SEC_REQUIRE_SHARED(kGguf);
  SEC_REQUIRE_LLAMACPP();
  json b =
      llamacpp({"bench", testing::shared_path(kGguf), "--prompt-tokens", "64", "--gen-tokens", "8", "--seed", "3"});
  std::vector<int32_t> head = testing::random_tokens(8, 512, 3);  // what secateur bench --seed 3 feeds
  EXPECT_EQ(b.value("prompt_head", std::vector<int32_t>{}), head);
  EXPECT_GT(b.value("prefill_seconds", 0.0), 0.0);
  EXPECT_GT(b.value("decode_seconds", 0.0), 0.0);
  EXPECT_EQ(b["llama_perf"]["prompt_eval"].value("tokens", 0), 64);
  EXPECT_EQ(b["llama_perf"]["eval"].value("runs", 0), 8);
  EXPECT_EQ(b.value("threads", 0), 1);
}

// The llama2.c checkpoint converted to GGUF in every stored dtype (tied head, GQA 8/4, RoPE rows
// permuted to llama.cpp's interleaved layout).
TEST(LlamaCpp, ConvertedFromLlama2cEveryDtype) {
  SEC_REQUIRE_SHARED(kBin);
  SEC_REQUIRE_LLAMACPP();
  testing::TempDir d;
  Model m = load_model(testing::shared_path(kBin));
  ASSERT_TRUE(m.config.tied_embeddings);
  EXPECT_EQ(expect_llamacpp_agrees(m, d, "stories-f32", 60), "llama");
  EXPECT_EQ(expect_llamacpp_agrees(m, d, "stories-f16", 60, DType::F16), "llama");
  EXPECT_EQ(expect_llamacpp_agrees(m, d, "stories-bf16", 60, DType::BF16), "llama");
}

TEST(LlamaCpp, RandomLlamaTiedUntiedAndGqa) {
  SEC_REQUIRE_LLAMACPP();
  testing::TempDir d;
  EXPECT_EQ(expect_llamacpp_agrees(random_model(testing::tiny_config(4, 4, false, false), 1), d, "untied"), "llama");
  EXPECT_EQ(expect_llamacpp_agrees(random_model(testing::tiny_config(4, 4, true, false), 2), d, "tied"), "llama");
  EXPECT_EQ(expect_llamacpp_agrees(random_model(testing::tiny_config(6, 2, false, false), 3), d, "gqa"), "llama");
}

TEST(LlamaCpp, RandomQwen2WithBiases) {
  SEC_REQUIRE_LLAMACPP();
  testing::TempDir d;
  Config c = testing::tiny_config(4, 2, true, true);
  c.architecture = "qwen2";
  EXPECT_EQ(expect_llamacpp_agrees(random_model(c, 4), d, "qwen2"), "qwen2");
}

// Real weights with per-block sizes: stories260K with KV groups removed from some blocks (their
// query heads go with them) and FFN channels removed from others. Written as GGUF "deci".
TEST(LlamaCpp, PerBlockSizesFromStoriesAsDeci) {
  SEC_REQUIRE_SHARED(kBin);
  SEC_REQUIRE_LLAMACPP();
  testing::TempDir d;
  Model m = load_model(testing::shared_path(kBin));
  remove_kv_groups(m, 1, {3});   // 8/4 heads -> 6/3
  remove_kv_groups(m, 3, {1});   // -> 6/3
  remove_ffn_channels(m, 2, 4);  // 172 -> 129
  remove_ffn_channels(m, 4, 5);  // 172 -> 137
  m.config.validate();
  check_weights(m.config, m.weights);
  ASSERT_FALSE(m.config.uniform_blocks());
  EXPECT_EQ(expect_llamacpp_agrees(m, d, "stories-per-block", 60), "deci");
  GgufFile f(d.file("stories-per-block.gguf"));
  EXPECT_EQ(f.find("deci.attention.head_count")->ints, (std::vector<int64_t>{8, 6, 8, 6, 8}));
  EXPECT_EQ(f.find("deci.attention.head_count_kv")->ints, (std::vector<int64_t>{4, 3, 4, 3, 4}));
  EXPECT_EQ(f.find("deci.feed_forward_length")->ints, (std::vector<int64_t>{172, 172, 129, 172, 137}));
}

TEST(LlamaCpp, RandomPerBlockWithBiasesAsDeci) {
  SEC_REQUIRE_LLAMACPP();
  testing::TempDir d;
  Config c = testing::tiny_config(4, 2, false, true);
  c.architecture = "qwen2";
  c.blocks = {{4, 2, 72}, {2, 1, 30}, {6, 3, 50}, {4, 4, 16}};
  EXPECT_EQ(expect_llamacpp_agrees(random_model(c, 8), d, "qwen2-per-block"), "deci");
  Config l = testing::tiny_config(4, 2, false, false);
  l.blocks = c.blocks;
  EXPECT_EQ(expect_llamacpp_agrees(random_model(l, 6), d, "llama-per-block"), "deci");
}

// A model without a vocabulary (what `secateur init` writes: tokenizer.ggml.model = "no_vocab")
// runs in llama.cpp through token ids; llamacpp.mjs takes BOS from the file.
TEST(LlamaCpp, NoVocabModelRunsOnTokenIds) {
  SEC_REQUIRE_LLAMACPP();
  testing::TempDir d;
  Model m = random_model(testing::tiny_config(4, 2, false, false), 7);
  ASSERT_FALSE(m.tokenizer);
  const std::string path = d.file("novocab.gguf");
  Model back = save_and_reload(m, path);
  json j = llamacpp({"generate", path, "--tokens", "24"});
  EXPECT_EQ(j["model"].value("tokenizer", ""), "no_vocab");
  EXPECT_FALSE(j.contains("text"));
  EXPECT_EQ(j.value("prompt_ids", std::vector<int32_t>{}), (std::vector<int32_t>{m.config.bos_token_id}));
  EXPECT_EQ(j.value("ids", std::vector<int32_t>{}), secateur_greedy(back, {m.config.bos_token_id}, 24));
}

// Perplexity of stories260K on tinystories eval.txt: the same windows (papers protocol, seqlen 128,
// first 4 windows) through llama.cpp and `secateur eval`.
TEST(LlamaCpp, Stories260kPerplexityMatchesSecateurEval) {
  SEC_REQUIRE_SHARED(kGguf);
  SEC_REQUIRE_SHARED(kEval);
  SEC_REQUIRE_LLAMACPP();
  testing::TempDir d;
  const std::string path = testing::shared_path(kGguf), text = testing::shared_path(kEval);
  Model m = load_model(path);
  Corpus corpus = load_corpus(text);
  std::vector<int32_t> stream = tokenize_text(*m.tokenizer, corpus.documents[0], true);
  PplWindows pw = make_ppl_windows(PplProtocol::Papers, int64_t(stream.size()), 128, 4, model_bos_id(m));
  ASSERT_EQ(pw.windows, 4);
  std::vector<std::vector<int32_t>> windows;
  for (int64_t w = 0; w < pw.windows; w++) {
    std::vector<int32_t> ids(size_t(pw.seqlen));
    pw.window_tokens(stream, w, ids.data());
    windows.push_back(ids);
  }
  json lj = llamacpp_logprobs(path, windows, d);
  LogprobDiff diff = compare_logprobs(secateur_logprobs(m, windows), lj);
  EXPECT_EQ(diff.n, pw.scored_tokens());
  EXPECT_LE(diff.max_token, kTokenLogprobTol);
  EXPECT_NEAR(diff.mean_nll_a, diff.mean_nll_b, kMeanNllTol);
  EXPECT_EQ(lj.value("probabilities_per_position", 0), m.config.vocab_size);  // the full distribution
  // `secateur eval` over the same windows.
  testing::CommandResult r =
      testing::run_cli({"-q", "eval", path, "--ppl", text, "--seqlen", "128", "--max-windows", "4", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json e = json::parse(r.out);
  const json& ppl = e.contains("perplexity") ? e["perplexity"] : e;
  ASSERT_TRUE(ppl.contains("ppl")) << r.out;
  EXPECT_EQ(ppl["scored_tokens"].get<int64_t>(), diff.n);
  const double ours = ppl["ppl"].get<double>(), theirs = lj["ppl"].get<double>();
  EXPECT_NEAR(std::log(theirs), std::log(ours), kMeanNllTol);
  std::printf("PPL (4 x 128 tokens): secateur eval %.6f, llama.cpp %.6f; max |d logprob| %.3g\n", ours, theirs,
              diff.max_token);
}

// What llama.cpp's "llama" loader does with per-layer arrays: it reads them (no error about the
// keys) but sizes every block's tensors from layer 0, so the first block that differs is rejected.
// (secateur wrote such files before it wrote "deci"; it still reads them.)
TEST(LlamaCpp, LlamaArchWithPerLayerArraysIsRejected) {
  SEC_REQUIRE_LLAMACPP();
  testing::TempDir d;
  Config c = testing::tiny_config(4, 2, false, false);
  c.blocks = {{4, 2, 72}, {2, 1, 30}, {4, 2, 72}};
  Model m = random_model(c, 9);
  save_and_reload(m, d.file("deci.gguf"));
  rewrite_gguf(
      d.file("deci.gguf"), d.file("llama-arrays.gguf"),
      [](const std::string& k) { return k.rfind("deci.", 0) == 0 ? "llama." + k.substr(5) : k; },
      {{"general.architecture", GgufValue::string("llama")}}, keep_tensor);
  testing::CommandResult r = testing::run_llamacpp({"generate", d.file("llama-arrays.gguf"), "--tokens", "4"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("tensor 'blk.1.attn_q.weight' has wrong shape"), std::string::npos) << r.err;
  // secateur reads the old layout exactly.
  Model old = load_model(d.file("llama-arrays.gguf"));
  EXPECT_EQ(old.config.blocks, c.blocks);
  EXPECT_EQ(secateur_greedy(old, {1}, 20), secateur_greedy(m, {1}, 20));
}

// Why save_gguf writes placeholders (see model_io.cpp). Each case builds a model whose sub-block
// contributes exactly nothing (zero output weights), stores it as deci, and then removes that
// sub-block from the file the way the plain deci layout would (no tensors, count 0). If llama.cpp
// handled such blocks, its output would stay secateur's; these tests pin that it does not, in the
// llama.cpp node-llama-cpp 3.21.1 ships. If one starts to fail, llama.cpp changed: the placeholder
// for that case may no longer be needed.
TEST(LlamaCppDeciQuirks, FfnFreeBlockWithAttentionLosesItsAttention) {
  SEC_REQUIRE_LLAMACPP();
  testing::TempDir d;
  Config c = testing::tiny_config(4, 2, false, false);
  c.blocks = {{4, 2, 72}, {4, 2, 8}, {2, 1, 72}};
  Model m = random_model(c, 10);
  std::fill(m.weights.blocks[1].w_down.f32(), m.weights.blocks[1].w_down.f32() + m.weights.blocks[1].w_down.numel(),
            0.f);
  save_and_reload(m, d.file("zero-ffn.gguf"));
  rewrite_gguf(d.file("zero-ffn.gguf"), d.file("ffn-free.gguf"), keep_name,
               {{"deci.feed_forward_length", GgufValue::array_i32({72, 0, 72})}},
               [](const std::string& t) { return t.rfind("blk.1.ffn_", 0) == 0; });
  const std::vector<int32_t> ours = secateur_greedy(m, {1}, 20);
  EXPECT_EQ(llamacpp_greedy(d.file("zero-ffn.gguf"), {1}, 20), ours);  // the FFN written out: right
  EXPECT_NE(llamacpp_greedy(d.file("ffn-free.gguf"), {1}, 20), ours);  // FFN-free: attention dropped
  // With the attention also zero, the FFN-free block is the identity and llama.cpp is right again.
  BlockWeights& b = m.weights.blocks[1];
  std::fill(b.wo.f32(), b.wo.f32() + b.wo.numel(), 0.f);
  save_and_reload(m, d.file("zero-block.gguf"));
  rewrite_gguf(d.file("zero-block.gguf"), d.file("ffn-free-zero-attn.gguf"), keep_name,
               {{"deci.feed_forward_length", GgufValue::array_i32({72, 0, 72})}},
               [](const std::string& t) { return t.rfind("blk.1.ffn_", 0) == 0; });
  EXPECT_EQ(llamacpp_greedy(d.file("ffn-free-zero-attn.gguf"), {1}, 20), secateur_greedy(m, {1}, 20));
}

TEST(LlamaCppDeciQuirks, AttentionFreeBlockZeroLosesTheHeadSize) {
  SEC_REQUIRE_LLAMACPP();
  testing::TempDir d;
  Config c = testing::tiny_config(4, 2, false, false);
  c.blocks = {{4, 2, 72}, {4, 2, 30}, {2, 1, 72}};
  Model m = random_model(c, 11);
  std::fill(m.weights.blocks[0].wo.f32(), m.weights.blocks[0].wo.f32() + m.weights.blocks[0].wo.numel(), 0.f);
  save_and_reload(m, d.file("zero-attn.gguf"));
  rewrite_gguf(d.file("zero-attn.gguf"), d.file("attn-free-0.gguf"), keep_name,
               {{"deci.attention.head_count", GgufValue::array_i32({0, 4, 2})},
                {"deci.attention.head_count_kv", GgufValue::array_i32({0, 2, 1})}},
               [](const std::string& t) { return t.rfind("blk.0.attn_", 0) == 0; });
  const std::vector<int32_t> ours = secateur_greedy(m, {1}, 20);
  EXPECT_EQ(llamacpp_greedy(d.file("zero-attn.gguf"), {1}, 20), ours);
  // Block 0 without heads: llama.cpp takes the head size from block 0 (0 here, key_length unread)
  // and cannot build the other blocks' attention.
  testing::CommandResult r = testing::run_llamacpp({"generate", d.file("attn-free-0.gguf"), "--tokens", "20"});
  json j = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(r.exit_code != 0 || j.value("ids", std::vector<int32_t>{}) != ours) << r.out << r.err;
  const size_t at = r.err.find("GGML_ASSERT");
  std::printf("deci with block 0 attention-free: llama.cpp exit %d %s\n", r.exit_code,
              at == std::string::npos ? r.out.substr(0, 200).c_str() : r.err.substr(at, 120).c_str());
}

// Blocks without attention and without FFN, as structured pruning leaves them, through llama.cpp
// (deci with the placeholders) and back. DISABLED until the lead's for_each_tensor change (tensors
// with a zero-size dimension are no longer part of the model) is merged; enable it then. It passes
// on this branch against the current for_each_tensor too (run with --gtest_also_run_disabled_tests).
TEST(LlamaCpp, BlocksWithoutAttentionOrFfn) {
  SEC_REQUIRE_LLAMACPP();
  testing::TempDir d;
  Config c = testing::tiny_config(4, 2, false, false);
  // block 0 and 2 without attention, 1 and 4 (the last) without FFN, 3 is the identity.
  c.blocks = {{0, 0, 72}, {4, 2, 0}, {0, 0, 50}, {0, 0, 0}, {2, 1, 0}, {4, 2, 72}, {2, 2, 0}};
  Model m = random_model(c, 15);
  EXPECT_EQ(expect_llamacpp_agrees(m, d, "zero-blocks"), "deci");
  GgufFile f(d.file("zero-blocks.gguf"));
  EXPECT_EQ(f.find("deci.attention.head_count")->ints, (std::vector<int64_t>{1, 4, 0, 0, 2, 4, 2}));
  EXPECT_EQ(f.find("deci.feed_forward_length")->ints, (std::vector<int64_t>{72, 1, 50, 1, 1, 72, 1}));
  EXPECT_EQ(f.find("secateur.placeholder_attention_blocks")->ints, (std::vector<int64_t>{0}));
  EXPECT_EQ(f.find("secateur.placeholder_ffn_blocks")->ints, (std::vector<int64_t>{1, 3, 4, 6}));
  EXPECT_EQ(f.find_tensor("blk.2.attn_norm.weight"), nullptr);  // no attention tensors at all
  EXPECT_EQ(f.find_tensor("blk.2.attn_q.weight"), nullptr);
  Model back = load_model(d.file("zero-blocks.gguf"));
  EXPECT_EQ(back.config.blocks, c.blocks);
}

// A GGUF with sparse-stored block linears (F32_SPARSE, type id kGgmlTypeF32Sparse) is refused by
// llama.cpp when it reads the tensor infos ("invalid ggml type"), an error and not a crash; the same
// model converted back to dense (`convert --dense`) runs there and agrees with secateur.
TEST(LlamaCpp, SparseGgufIsRefusedAndItsDenseFormRuns) {
  SEC_REQUIRE_LLAMACPP();
  testing::TempDir d;
  Model m = random_model(testing::tiny_config(4, 2, false, false), 21);
  for (auto& b : m.weights.blocks)
    for (Tensor* t : {&b.wq, &b.wk, &b.wv, &b.wo, &b.w_gate, &b.w_up, &b.w_down}) {
      float* p = t->f32();
      for (int64_t i = 0; i < t->numel(); i += 2) p[i] = 0.f;
    }
  SaveOptions so;
  so.format = ModelFormat::GGUF;
  so.sparse = true;
  save_model(m, d.file("sparse.gguf"), so);
  ASSERT_GT(load_model(d.file("sparse.gguf")).source.sparse_tensors, 0);
  testing::CommandResult r = testing::run_llamacpp({"generate", d.file("sparse.gguf"), "--tokens", "4"});
  EXPECT_EQ(r.exit_code, 1) << r.err;  // an error, not a signal
  // node-llama-cpp's own GGUF parser sizes every tensor before handing the file to llama.cpp, and
  // refuses the unknown type id there; llama.cpp's gguf.cpp refuses it with "invalid ggml type".
  const std::string said = r.out + r.err;
  EXPECT_TRUE(said.find("Invalid type or block size") != std::string::npos ||
              said.find("invalid ggml type") != std::string::npos)
      << said;
  LoadOptions keep;
  keep.keep_sparse = true;
  EXPECT_EQ(expect_llamacpp_agrees(load_model(d.file("sparse.gguf"), keep), d, "dense-again"), "llama");
}

}  // namespace
}  // namespace sec
