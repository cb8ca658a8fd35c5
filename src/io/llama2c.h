// llama2.c legacy checkpoint (.bin, "version 0" export of run.c).
//
// Layout (little-endian):
//   7 x int32 header: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
//     (a negative vocab_size means the classifier is NOT tied and is stored at the very end)
//   float32 arrays, in order: token_embedding [V, C]; rms_att [L, C]; wq [L, C, C];
//   wk [L, kv, C]; wv [L, kv, C]; wo [L, C, C]; rms_ffn [L, C]; w1 (gate) [L, F, C];
//   w2 (down) [L, C, F]; w3 (up) [L, F, C]; rms_final [C]; freq_cis_real, freq_cis_imag
//   [seq_len, head_size/2] (unused); then wcls [V, C] only when vocab_size was negative.
// q/k rows are in Meta's interleaved RoPE layout (callers convert them). The reader checks that
// the file size equals the size the header implies, exactly.
// The weights are views into a copy-on-write mapping of the file (MappedFile::Mode::CopyOnWrite):
// no copy is made, and modifying them never changes the file.
#pragma once
#include <string>

#include "core/file.h"
#include "model/config.h"
#include "model/weights.h"

namespace sec {

struct Llama2cCheckpoint {
  Config config;    // architecture "llama", head_dim = dim / n_heads, rope_theta 10000, eps 1e-5
  Weights weights;  // f32 views into `file`; q/k rows still interleaved (Meta layout) as stored
  MappedFile file;  // the mapping (views keep it alive on their own); release() what a caller replaced
};

Llama2cCheckpoint read_llama2c(const std::string& path);

}  // namespace sec
