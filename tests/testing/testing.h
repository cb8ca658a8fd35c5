// Helpers shared by the tests: paths to ../shared, skipping when it is absent, temporary
// directories, running the CLI and the PyTorch reference, comparing arrays.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <exception>
#include <initializer_list>
#include <string>
#include <vector>

#include "calib/sampling.h"
#include "core/error.h"
#include "model/config.h"

namespace sec::testing {

// Path under the shared folder (../shared by default, or $SECATEUR_SHARED).
std::string shared_path(const std::string& rel);
// Returns the path, or "" after calling GTEST_SKIP-compatible logic: use SEC_REQUIRE_SHARED.
bool shared_available(const std::string& rel);

// A fresh empty directory, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code;
  std::string out, err;
};
// Runs a shell command line (already quoted), capturing stdout and stderr.
CommandResult run_command(const std::string& command_line);
// Runs the secateur CLI with the given (unquoted) arguments; stdin from `stdin_file` if not empty.
CommandResult run_cli(const std::vector<std::string>& args, const std::string& stdin_file = "");
// `secateur prune` of the shared stories260K with the issues' acceptance calibration (128 x 256
// tokens of tinystories/calib.txt, batch 8) by `method`, written to `out`, plus `extra` options.
std::vector<std::string> stories_prune_args(const std::string& method, const std::string& out,
                                            const std::vector<std::string>& extra);
// Runs tools/reference/<script> with the python oracle; skips via return false if torch is missing.
bool python_oracle_available();
CommandResult run_python(const std::string& script, const std::vector<std::string>& args);
std::string shell_quote(const std::string& s);

// A real llama.cpp: tools/llamacpp/llamacpp.mjs, run by Node.js (>= 20) with node-llama-cpp's
// prebuilt CPU build (installed by scripts/setup.sh: npm ci in tools/llamacpp). Node is `node` on
// the PATH, or $SECATEUR_NODE. Available = the packages are installed and node is >= 20 (checked
// once per process, cheaply); use SEC_REQUIRE_LLAMACPP to skip when it is not.
bool llamacpp_available();
std::string llamacpp_unavailable_reason();  // why not, with how to install ("" when available)
// Runs llamacpp.mjs with the given (unquoted) arguments; its JSON result is on stdout.
CommandResult run_llamacpp(const std::vector<std::string>& args);

// Raw little-endian f32/i32 array files (the exchange format with the python reference).
void write_f32(const std::string& path, const std::vector<float>& v);
std::vector<float> read_f32(const std::string& path);
void write_i32(const std::string& path, const std::vector<int>& v);

float max_abs_diff(const float* a, const float* b, size_t n);
float max_abs(const float* a, size_t n);

// How far two float32 computations of the same model outputs may drift apart when only the order
// of their floating-point operations differs: another BLAS kernel or blocking (the CPU,
// OPENBLAS_CORETYPE), other matrix shapes (batching), KV-cache decoding vs the full forward pass,
// W x + B (A x) vs (W + B A) x. Relative: multiply by the magnitude of the compared outputs (e.g.
// max |logit|). Against a float64 reference (PyTorch oracle) only one side rounds: use half.
//   A length-K reduction in float32 has a relative error of about sqrt(K) * eps (rounding errors
//   of either sign add like a random walk: Higham, Accuracy and Stability of Numerical Algorithms,
//   2nd ed., sec. 2.8; Higham & Mary, SIAM J. Sci. Comput. 2019). The forward pass chains `stages`
//   reductions (per block: RMSNorm, q/k/v, q.k, softmax.v, o, RMSNorm, gate/up, down; then the
//   final norm and the head; K <= the largest of dim, FFN size, q width and sequence length), whose
//   independent errors add in quadrature. Two computations each carry such an error, and the
//   largest of many outputs lies a few standard deviations out: a factor 2 x 4.
// For tiny_config and 20 tokens this is 4.1e-5; a real bug (a wrong position, a stale cache
// entry, a mixed-up window) moves outputs by 1e-2 or more.
double f32_reordering_tolerance(const Config& c, int64_t seq_len);

// A tiny model configuration for random-weight tests: dim 48, vocab 97, 3 blocks with FFN 72.
Config tiny_config(int heads, int kv_heads, bool tied, bool bias);
// n token ids uniform in [0, vocab).
std::vector<int32_t> random_tokens(int64_t n, int vocab, uint64_t seed);
// n calibration windows of t random tokens (no source file).
CalibSamples random_calibration(int64_t n, int64_t t, int vocab, uint64_t seed);

// Runs fn, expecting a sec::Error (not another exception, which main would report as an internal
// error) whose message names `file` and contains every needle.
template <class Fn>
void expect_file_error(Fn&& fn, const std::string& file, std::initializer_list<const char*> needles) {
  try {
    fn();
    ADD_FAILURE() << "expected an error for " << file;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(file), std::string::npos) << "message does not name the file: " << msg;
    for (const char* n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "missing '" << n << "' in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "a non-Error exception escaped (main would report an internal error): " << e.what();
  }
}

// The issues' stories260K calibration: 128 windows of 256 tokens from tinystories/calib.txt, seed 0,
// tokenized by the model's tokenizer.
CalibSamples stories_calibration(const Tokenizer& tok);

}  // namespace sec::testing

#define SEC_REQUIRE_SHARED(rel)                                                                 \
  do {                                                                                          \
    if (!::sec::testing::shared_available(rel))                                                 \
      GTEST_SKIP() << "shared resource " << ::sec::testing::shared_path(rel)                    \
                   << " is absent (set SECATEUR_SHARED to the shared folder to run this test)"; \
  } while (0)

#define SEC_REQUIRE_PYTHON_ORACLE()                                                                            \
  do {                                                                                                         \
    if (!::sec::testing::python_oracle_available())                                                            \
      GTEST_SKIP() << "python3 with torch/numpy (" SECATEUR_PYTHON ") is not available; run scripts/setup.sh"; \
  } while (0)

#define SEC_REQUIRE_LLAMACPP()                                                                         \
  do {                                                                                                 \
    if (!::sec::testing::llamacpp_available())                                                         \
      GTEST_SKIP() << "llama.cpp is not available: " << ::sec::testing::llamacpp_unavailable_reason(); \
  } while (0)
