#include "model/config.h"

#include <cmath>

#include "core/error.h"

namespace sec {

bool Config::uniform_blocks() const {
  for (const auto& b : blocks)
    if (!(b == blocks.front())) return false;
  return true;
}

bool Config::has_shortcuts() const {
  for (const auto& b : blocks)
    if (b.attn_shortcut || b.mlp_shortcut) return true;
  return false;
}

void Config::validate() const {
  SEC_CHECK(dim > 0 && vocab_size > 0 && head_dim > 0, "config: dim, vocab_size and head_dim must be positive (got ",
            dim, ", ", vocab_size, ", ", head_dim, ")");
  SEC_CHECK(head_dim % 2 == 0, "config: head_dim must be even for RoPE (got ", head_dim, ")");
  SEC_CHECK(!blocks.empty(), "config: the model has no blocks");
  SEC_CHECK(norm_eps > 0 && rope_theta > 0, "config: norm_eps and rope_theta must be positive");
  for (int l = 0; l < n_layers(); l++) {
    const auto& b = blocks[l];
    SEC_CHECK(b.n_heads >= 0 && b.n_kv_heads >= 0 && b.ffn_dim >= 0, "config: block ", l, " has negative dimensions");
    SEC_CHECK((b.n_heads == 0) == (b.n_kv_heads == 0), "config: block ", l, " has ", b.n_heads, " query heads but ",
              b.n_kv_heads, " KV heads");
    SEC_CHECK(b.n_kv_heads == 0 || b.n_heads % b.n_kv_heads == 0, "config: block ", l, ": n_heads (", b.n_heads,
              ") is not a multiple of n_kv_heads (", b.n_kv_heads, ")");
  }
  SEC_CHECK(resid_dims.empty() || int(resid_dims.size()) == n_resid_points(), "config: resid_dims lists ",
            resid_dims.size(), " widths, the residual stream of ", n_layers(), " blocks has ", n_resid_points(),
            " points");
  for (size_t p = 0; p < resid_dims.size(); p++)
    SEC_CHECK(resid_dims[p] > 0, "config: residual width at point ", p, " is ", resid_dims[p]);
  for (int l = 0; l < n_layers(); l++) {
    SEC_CHECK(blocks[l].attn_shortcut || block_in(l) == block_mid(l), "config: block ", l,
              " changes the residual width (", block_in(l), " -> ", block_mid(l),
              ") in its attention without a shortcut matrix");
    SEC_CHECK(blocks[l].mlp_shortcut || block_mid(l) == block_out(l), "config: block ", l,
              " changes the residual width (", block_mid(l), " -> ", block_out(l),
              ") in its MLP without a shortcut matrix");
  }
  SEC_CHECK(norm_mean_dim >= 0, "config: norm_mean_dim must not be negative");
  SEC_CHECK(rope_scaling.type.empty() || rope_scaling.type == "linear" || rope_scaling.type == "llama3",
            "config: unsupported rope_scaling type '", rope_scaling.type, "' (supported: linear, llama3)");
}

std::vector<float> rope_inv_freq(const Config& c) {
  int half = c.head_dim / 2;
  std::vector<float> f(half);
  for (int i = 0; i < half; i++) {
    double inv = 1.0 / std::pow(double(c.rope_theta), double(2 * i) / c.head_dim);
    const RopeScaling& s = c.rope_scaling;
    if (s.type == "linear") {
      inv /= s.factor;
    } else if (s.type == "llama3") {
      // As in Meta's reference: long wavelengths are divided by factor, short ones kept, and the
      // band between is interpolated smoothly.
      double low_wavelen = s.original_max_position / s.low_freq_factor;
      double high_wavelen = s.original_max_position / s.high_freq_factor;
      double wavelen = 2 * M_PI / inv;
      if (wavelen > low_wavelen) {
        inv /= s.factor;
      } else if (wavelen >= high_wavelen) {
        double smooth =
            (s.original_max_position / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        inv = (1 - smooth) * inv / s.factor + smooth * inv;
      }
    }
    f[i] = float(inv);
  }
  return f;
}

}  // namespace sec
