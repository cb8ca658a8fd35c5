// Randomly initialised models with a real architecture's shapes (for benchmarks and scale tests:
// no large trained weights exist on the development machines).
#pragma once
#include <cstdint>

#include "model/model.h"

namespace sec {

// Linear weights and embeddings ~ N(0, std); norm weights 1 (or 1 + N(0, norm_std) when
// norm_std > 0, which tests use so that norms are not trivially identity); biases ~ N(0, std).
// Deterministic for a given seed. No tokenizer.
Model init_random_model(const Config& config, uint64_t seed, float std = 0.02f, float norm_std = 0.f);

}  // namespace sec
