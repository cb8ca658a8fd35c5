#include "io/llama2c.h"

#include <cstring>
#include <map>

#include "core/error.h"
#include "core/file.h"

namespace sec {

Llama2cCheckpoint read_llama2c(const std::string& path) {
  MappedFile f(path, MappedFile::Mode::CopyOnWrite);
  int32_t h[7];
  SEC_CHECK(f.size() >= sizeof(h), path, ": not a llama2.c checkpoint: ", f.size(),
            " bytes is shorter than the 28-byte header");
  std::memcpy(h, f.data(), sizeof(h));
  const int64_t dim = h[0], hidden = h[1], L = h[2], H = h[3], Hkv = h[4], seq = h[6];
  const bool tied = h[5] > 0;
  const int64_t V = tied ? h[5] : -int64_t(h[5]);
  SEC_CHECK(dim > 0 && hidden > 0 && L > 0 && H > 0 && Hkv > 0 && V > 0 && seq > 0, path,
            ": not a llama2.c checkpoint: header (dim=", dim, ", hidden_dim=", hidden, ", n_layers=", L,
            ", n_heads=", H, ", n_kv_heads=", Hkv, ", vocab_size=", h[5], ", seq_len=", seq,
            ") has a non-positive value");
  SEC_CHECK(dim % H == 0 && (dim / H) % 2 == 0 && H % Hkv == 0, path, ": llama2.c header is inconsistent: dim ", dim,
            ", n_heads ", H, ", n_kv_heads ", Hkv);
  const int64_t hd = dim / H, kv = Hkv * hd;
  // All counts are < 2^31, so these products fit easily in int64.
  const int64_t floats = V * dim + L * dim + L * dim * dim + 2 * L * kv * dim + L * dim * dim + L * dim +
                         3 * L * hidden * dim + dim + seq * hd + (tied ? 0 : V * dim);
  const uint64_t expected = 28 + uint64_t(floats) * 4;
  SEC_CHECK(f.size() == expected, path, ": llama2.c checkpoint has ", f.size(), " bytes but its header (dim=", dim,
            ", hidden_dim=", hidden, ", n_layers=", L, ", n_heads=", H, ", n_kv_heads=", Hkv, ", vocab_size=", h[5],
            ", seq_len=", seq, ") implies exactly ", expected, " bytes",
            f.size() < expected ? " (the file is truncated)" : "");

  Llama2cCheckpoint ck{Config{}, Weights{}, f};
  Config& c = ck.config;
  c.architecture = "llama";
  c.dim = int(dim);
  c.vocab_size = int(V);
  c.head_dim = int(hd);
  c.max_seq_len = int(seq);
  c.blocks.assign(size_t(L), BlockDims{int(H), int(Hkv), int(hidden)});
  c.tied_embeddings = tied;
  c.validate();
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
