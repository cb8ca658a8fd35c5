// TinyLlama-1.1B's shapes (configs/tinyllama-1.1b.json) with `layers` blocks, for the benchmarks.
#pragma once
#include "model/config.h"

inline sec::Config tinyllama_shaped_config(int layers) {
  sec::Config c;
  c.dim = 2048;
  c.vocab_size = 32000;
  c.head_dim = 64;
  c.max_seq_len = 2048;
  c.blocks.assign(layers, sec::BlockDims{32, 4, 5632});
  return c;
}
