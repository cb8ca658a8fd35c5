#include "io/llama2c.h"

#include <cstring>
#include <map>

#include "core/error.h"
#include "core/file.h"

namespace sec {

constexpr int64_t kMaxLayers = 100000;  // as every model reader (model/hf_config.h)

Llama2cCheckpoint read_llama2c(const std::string& path) {
  MappedFile f(path, MappedFile::Mode::CopyOnWrite);
  int32_t h[7];
  SEC_CHECK(f.size() >= sizeof(h), path, ": not a llama2.c checkpoint: ", f.size(),
            " bytes is shorter than the 28-byte header");
  std::memcpy(h, f.data(), sizeof(h));
  const int64_t dim = h[0], hidden = h[1], L = h[2], H = h[3], Hkv = h[4], seq = h[6];
  const bool tied = h[5] > 0;
  const int64_t V = tied ? h[5] : -int64_t(h[5]);
  SEC_CHECK(dim > 0 && hidden > 0 && L > 0 && H > 0 && Hkv > 0 && V > 0 && V <= INT32_MAX && seq > 0, path,
            ": not a llama2.c checkpoint: header (dim=", dim, ", hidden_dim=", hidden, ", n_layers=", L,
            ", n_heads=", H, ", n_kv_heads=", Hkv, ", vocab_size=", h[5], ", seq_len=", seq,
            ") has a non-positive value");
  SEC_CHECK(dim % H == 0 && (dim / H) % 2 == 0 && H % Hkv == 0, path, ": llama2.c header is inconsistent: dim ", dim,
            ", n_heads ", H, ", n_kv_heads ", Hkv);
  SEC_CHECK(L <= kMaxLayers, path, ": llama2.c header has ", L, " layers, more than the limit of ", kMaxLayers);
  const int64_t hd = dim / H, kv = Hkv * hd;
  // The size the header implies. Each value is < 2^31 but products such as n_layers x dim x dim
  // are not bounded by int64, so every step is checked (an overflow just means "far too big").
  uint64_t floats = 0;
  bool overflow = false;
  auto add = [&](std::initializer_list<int64_t> factors) {
    uint64_t p = 1;
    for (int64_t x : factors) overflow |= __builtin_mul_overflow(p, uint64_t(x), &p);
    overflow |= __builtin_add_overflow(floats, p, &floats);
  };
  add({V, dim});             // token_embedding
  add({L, dim});             // rms_att
  add({L, dim, dim});        // wq
  add({2, L, kv, dim});      // wk, wv
  add({L, dim, dim});        // wo
  add({L, dim});             // rms_ffn
  add({3, L, hidden, dim});  // w1, w2, w3
  add({dim});                // rms_final
  add({seq, hd});            // freq_cis_real + freq_cis_imag (seq x hd/2 each)
  if (!tied) add({V, dim});  // wcls
  uint64_t expected = 0;
  overflow |= __builtin_mul_overflow(floats, uint64_t(4), &expected) || __builtin_add_overflow(expected, 28, &expected);
  SEC_CHECK(!overflow && f.size() == expected, path, ": llama2.c checkpoint has ", f.size(),
            " bytes but its header (dim=", dim, ", hidden_dim=", hidden, ", n_layers=", L, ", n_heads=", H,
            ", n_kv_heads=", Hkv, ", vocab_size=", h[5], ", seq_len=", seq, ") implies exactly ",
            overflow ? std::string("more than 2^64") : cat(expected), " bytes",
            overflow || f.size() < expected ? " (the file is truncated)" : "");

  Llama2cCheckpoint ck{Config{}, Weights{}, f};
  Config& c = ck.config;
  c.architecture = "llama";
  c.dim = int(dim);
  c.vocab_size = int(V);
  c.head_dim = int(hd);
  c.max_seq_len = int(seq);
  c.blocks.assign(size_t(L), BlockDims{int(H), int(Hkv), int(hidden)});
  c.tied_embeddings = tied;
  try {
    c.validate();
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  Weights& w = ck.weights;
  w.blocks.resize(size_t(L));
  std::map<const Tensor*, Shape> shape_of;  // from the one tensor table
  for_each_tensor(c, w, [&](TensorRef& r) { shape_of[&r.tensor] = r.shape; });

  uint64_t pos = 28;  // every array starts at a multiple of 4 bytes, as f32 views need
  auto take = [&](Tensor& t) {
    const Shape& shape = shape_of.at(&t);
    const uint64_t nbytes = uint64_t(shape_numel(shape)) * 4;
    SEC_ASSERT(pos + nbytes <= f.size() && pos % alignof(float) == 0);
    t = Tensor::view(f.writable_data() + pos, shape, DType::F32, f.keepalive());
    pos += nbytes;
  };
  // Per-layer arrays are stored layer-major for one kind of tensor before the next kind.
  auto take_layers = [&](Tensor BlockWeights::*m) {
    for (auto& b : w.blocks) take(b.*m);
  };
  take(w.embed);
  take_layers(&BlockWeights::attn_norm);
  take_layers(&BlockWeights::wq);
  take_layers(&BlockWeights::wk);
  take_layers(&BlockWeights::wv);
  take_layers(&BlockWeights::wo);
  take_layers(&BlockWeights::ffn_norm);
  take_layers(&BlockWeights::w_gate);
  take_layers(&BlockWeights::w_down);
  take_layers(&BlockWeights::w_up);
  take(w.final_norm);
  pos += uint64_t(seq * hd) * 4;  // freq_cis_real + freq_cis_imag
  if (!tied) take(w.lm_head);
  SEC_ASSERT(pos == f.size());
  return ck;
}

}  // namespace sec
