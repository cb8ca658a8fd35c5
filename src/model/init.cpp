#include "model/init.h"

#include "core/random.h"

namespace sec {

Model init_random_model(const Config& config, uint64_t seed, float std, float norm_std) {
  config.validate();
  Model m;
  m.config = config;
  m.weights = allocate_weights(config);
  Rng rng(seed);
  for_each_tensor(m.config, m.weights, [&](TensorRef& r) {
    float* p = r.tensor.f32();
    bool is_norm = r.kind == TensorKind::AttnNorm || r.kind == TensorKind::FfnNorm || r.kind == TensorKind::FinalNorm;
    for (int64_t i = 0; i < r.tensor.numel(); i++)
      p[i] = is_norm ? 1.f + (norm_std > 0 ? rng.normal(0.f, norm_std) : 0.f) : rng.normal(0.f, std);
  });
  m.source.format = "init";
  m.source.path = "random(seed=" + std::to_string(seed) + ")";
  return m;
}

}  // namespace sec
