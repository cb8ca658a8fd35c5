#include "testing/testing.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "calib/dataset.h"
#include "core/random.h"

namespace sec::testing {

std::string shared_path(const std::string& rel) {
  const char* env = std::getenv("SECATEUR_SHARED");
  std::string root = env && *env ? env : SECATEUR_SHARED_DIR;
  return rel.empty() ? root : root + "/" + rel;
}

bool shared_available(const std::string& rel) { return std::filesystem::exists(shared_path(rel)); }

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "secateur-test-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back(0);
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string shell_quote(const std::string& s) {
  std::string r = "'";
  for (char c : s) {
    if (c == '\'')
      r += "'\\''";
    else
      r += c;
  }
  return r + "'";
}

static std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

CommandResult run_command(const std::string& command_line) {
  TempDir d;
  std::string full = command_line + " >" + shell_quote(d.file("out")) + " 2>" + shell_quote(d.file("err"));
  int status = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(d.file("out"));
  r.err = slurp(d.file("err"));
  return r;
}

CalibSamples stories_calibration(const Tokenizer& tok) {
  SamplingOptions so;
  so.nsamples = 128;
  so.seqlen = 256;
  so.seed = 0;
  return sample_calibration(load_corpus(shared_path("data/tinystories/calib.txt")), tok, so);
}

std::vector<std::string> stories_prune_args(const std::string& method, const std::string& out,
                                            const std::vector<std::string>& extra) {
  std::vector<std::string> a = {"prune",      shared_path("models/stories260K/stories260K.bin"),
                                "-o",         out,
                                "--method",   method,
                                "--calib",    shared_path("data/tinystories/calib.txt"),
                                "--nsamples", "128",
                                "--seqlen",   "256",
                                "--batch",    "8"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

CommandResult run_cli(const std::vector<std::string>& args, const std::string& stdin_file) {
  std::string cmd = shell_quote(SECATEUR_CLI);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  cmd += " < " + (stdin_file.empty() ? std::string("/dev/null") : shell_quote(stdin_file));
  return run_command(cmd);
}

bool python_oracle_available() {
  static int ok = -1;
  if (ok < 0) {
    std::string cmd = std::string(SECATEUR_PYTHON) + " -c 'import torch, numpy' >/dev/null 2>&1";
    ok = std::system(cmd.c_str()) == 0;
  }
  return ok == 1;
}

CommandResult run_python(const std::string& script, const std::vector<std::string>& args) {
  std::string cmd =
      std::string(SECATEUR_PYTHON) + " " + shell_quote(std::string(SECATEUR_SOURCE_DIR) + "/tools/reference/" + script);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  return run_command(cmd);
}

static std::string node_binary() {
  const char* env = std::getenv("SECATEUR_NODE");
  return env && *env ? env : "node";
}

static std::string llamacpp_script() { return std::string(SECATEUR_SOURCE_DIR) + "/tools/llamacpp/llamacpp.mjs"; }

CommandResult run_llamacpp(const std::vector<std::string>& args) {
  std::string cmd = shell_quote(node_binary());
  cmd += ' ';
  cmd += shell_quote(llamacpp_script());
  for (const auto& a : args) {
    cmd += ' ';  // (not `" " + ...`: GCC 12 warns falsely about that, -Wrestrict)
    cmd += shell_quote(a);
  }
  cmd += " </dev/null";
  return run_command(cmd);
}

// Cheap (it runs in every test process): node_modules is installed and `node` is >= 20. A broken
// installation past that makes the tests fail, not skip.
static const std::string& llamacpp_check() {
  static const std::string reason = [] {
    const std::string how =
        "install Node.js >= 20 and run scripts/setup.sh (it runs `npm ci` in tools/llamacpp, which needs the npm "
        "registry), or set SECATEUR_NODE to a node binary";
    const std::string dir = std::string(SECATEUR_SOURCE_DIR) + "/tools/llamacpp";
    if (!std::filesystem::exists(dir + "/node_modules/node-llama-cpp/package.json") ||
        !std::filesystem::exists(dir + "/node_modules/@node-llama-cpp/linux-x64/package.json"))
      return dir + "/node_modules lacks node-llama-cpp or its prebuilt linux-x64 binaries; " + how;
    std::string cmd = shell_quote(node_binary());
    cmd += " -e 'process.exit(Number(process.versions.node.split(\".\")[0]) >= 20 ? 0 : 3)'";
    CommandResult r = run_command(cmd);
    if (r.exit_code == 3) return "Node.js " + node_binary() + " is older than 20 (node-llama-cpp needs >= 20); " + how;
    if (r.exit_code != 0) {
      std::string msg = node_binary();
      msg += " does not run (exit " + std::to_string(r.exit_code) + "): ";
      msg += r.err.substr(0, 200);
      msg += "; ";
      msg += how;
      return msg;
    }
    return std::string();
  }();
  return reason;
}

bool llamacpp_available() { return llamacpp_check().empty(); }
std::string llamacpp_unavailable_reason() { return llamacpp_check(); }

void write_f32(const std::string& path, const std::vector<float>& v) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * 4));
}

std::vector<float> read_f32(const std::string& path) {
  std::string s = slurp(path);
  std::vector<float> v(s.size() / 4);
  std::memcpy(v.data(), s.data(), v.size() * 4);
  return v;
}

void write_i32(const std::string& path, const std::vector<int>& v) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * 4));
}

Config tiny_config(int heads, int kv_heads, bool tied, bool bias) {
  Config c;
  c.dim = 48;
  c.vocab_size = 97;
  c.head_dim = 48 / heads;
  c.blocks = {{heads, kv_heads, 72}, {heads, kv_heads, 72}, {heads, kv_heads, 72}};
  c.tied_embeddings = tied;
  c.attn_bias = bias;
  return c;
}

std::vector<int32_t> random_tokens(int64_t n, int vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = int32_t(rng.below(uint64_t(vocab)));
  return t;
}

CalibSamples random_calibration(int64_t n, int64_t t, int vocab, uint64_t seed) {
  CalibSamples s;
  s.nsamples = n;
  s.seqlen = t;
  s.tokens = random_tokens(n * t, vocab, seed);
  return s;
}

float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; i++) {
    float d = std::fabs(a[i] - b[i]);
    if (!(d <= m)) m = d;  // NaN propagates as a failure
  }
  return m;
}

float max_abs(const float* a, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; i++)
    if (!(std::fabs(a[i]) <= m)) m = std::fabs(a[i]);
  return m;
}

double f32_reordering_tolerance(const Config& c, int64_t seq_len) {
  int64_t k = std::max<int64_t>(c.dim, seq_len);
  for (int l = 0; l < c.n_layers(); l++) k = std::max<int64_t>({k, c.blocks[l].ffn_dim, c.q_dim(l)});
  const double stages = 8.0 * c.n_layers() + 2;
  return 2 * 4 * std::sqrt(stages * double(k)) * std::numeric_limits<float>::epsilon();
}

}  // namespace sec::testing
