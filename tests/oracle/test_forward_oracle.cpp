// Logits of random tiny configurations against the PyTorch reference (tools/reference/llama_ref.py),
// and the KV-cache decoding path against the full forward pass.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/random.h"
#include "model/forward.h"
#include "model/init.h"
#include "testing/reference_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

using testing::random_tokens;
using testing::tiny_config;

// Returns the max |C++ - PyTorch| over the logits of B sequences of length T, relative to the
// largest |logit| (PyTorch computes in float64: only our float32 side rounds).
float oracle_max_error(const Model& m, int64_t B, int64_t T, uint64_t seed) {
  testing::TempDir dir;
  testing::write_reference_model(m, dir.path());
  auto tokens = random_tokens(B * T, m.config.vocab_size, seed);
  testing::write_i32(dir.file("tokens.i32"), tokens);
  auto r = testing::run_python("llama_ref.py", {"logits", dir.path(), dir.file("tokens.i32"), std::to_string(B),
                                                std::to_string(T), dir.file("ref.f32")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto ref = testing::read_f32(dir.file("ref.f32"));
  Tensor logits = model_forward(m, tokens, B, T);
  EXPECT_EQ(int64_t(ref.size()), logits.numel());
  if (int64_t(ref.size()) != logits.numel()) return 1e9f;
  return testing::max_abs_diff(logits.f32(), ref.data(), ref.size()) / testing::max_abs(ref.data(), ref.size());
}

struct OracleCase {
  const char* name;
  Config config;
};

TEST(ForwardOracle, RandomTinyConfigsMatchPyTorch) {
  SEC_REQUIRE_PYTHON_ORACLE();
  Config per_block = tiny_config(4, 2, false, false);
  per_block.blocks = {{4, 2, 72}, {2, 1, 30}, {0, 0, 50}, {6, 3, 0}};  // structured pruning leaves such shapes
  Config llama3 = tiny_config(4, 1, true, false);
  llama3.rope_theta = 500000.f;
  llama3.rope_scaling = {"llama3", 8.f, 1.f, 4.f, 32};
  std::vector<OracleCase> cases = {
      {"MHA tied", tiny_config(4, 4, true, false)},
      {"GQA untied", tiny_config(4, 2, false, false)},
      {"MQA untied", tiny_config(6, 1, false, false)},
      {"GQA with q/k/v biases", tiny_config(4, 2, false, true)},
      {"per-block dims", per_block},
      {"llama3 rope scaling", llama3},
  };
  uint64_t seed = 1;
  for (const auto& c : cases) {
    Model m = init_random_model(c.config, seed, 0.3f, 0.2f);
    float err = oracle_max_error(m, 3, 64, seed + 100);
    EXPECT_LE(err, testing::f32_reordering_tolerance(c.config, 64) / 2) << c.name;
    seed++;
  }
}

TEST(ForwardOracle, KvCacheDecodingEqualsFullForward) {
  Model m = init_random_model(tiny_config(4, 2, false, true), 7, 0.3f, 0.2f);
  const int64_t B = 2, T = 20, V = m.config.vocab_size;
  auto tokens = random_tokens(B * T, int(V), 8);
  Tensor full = model_forward(m, tokens, B, T);
  // Prefill 12 tokens, then decode one at a time.
  KVCache cache = KVCache::create(m.config, B, T);
  const int64_t P = 12;
  std::vector<int32_t> prefill(B * P);
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < P; t++) prefill[b * P + t] = tokens[b * T + t];
  std::vector<float> logits(B * P * V);
  model_forward(m, prefill.data(), B, P, logits.data(), &cache);
  // The two paths multiply matrices of other shapes (BLAS blocks and sums them differently), so they
  // agree to float32 reordering error, relative to the logits' magnitude: not to a fixed 1e-5.
  const double tol =
      testing::f32_reordering_tolerance(m.config, T) * testing::max_abs(full.f32(), size_t(full.numel()));
  for (int64_t b = 0; b < B; b++)
    EXPECT_LE(testing::max_abs_diff(logits.data() + b * P * V, full.f32() + b * T * V, P * V), tol);
  for (int64_t t = P; t < T; t++) {
    std::vector<int32_t> step = {tokens[t], tokens[T + t]};
    std::vector<float> out(B * V);
    model_forward(m, step.data(), B, 1, out.data(), &cache);
    for (int64_t b = 0; b < B; b++)
      EXPECT_LE(testing::max_abs_diff(out.data() + b * V, full.f32() + (b * T + t) * V, V), tol) << "t=" << t;
  }
  EXPECT_EQ(cache.pos, T);
}

}  // namespace
}  // namespace sec
