// SliceGPT (methods.md §7): rotate the residual stream by orthogonal matrices (computational
// invariance of RMSNorm models once the norm scales are folded into the next linears), then delete
// the least-used directions — a smaller dense model.
//
// Per block (default), as the official code does, computed sequentially with the layer-wise driver
// so each PCA sees the already-sliced upstream model. Every PCA is of sum x^T x over the calibration
// tokens (not mean-centred), in float64, damped by 0.01 * mean(diag), eigenvectors by descending
// eigenvalue; Q_k = its first k columns:
//   Q_0     from the embedding's outputs:   E <- E Q_0k; block 0's q/k/v <- W Q_0k
//   block l, after its input was rotated:   Q_mid from the attention's residual output (mid);
//                                           o_proj <- Q_midk^T W, gate/up <- W Q_midk
//           then                            Q_out from the block's output;
//                                           down <- Q_outk^T W, the next block's q/k/v (or the
//                                           head) <- W Q_outk
//   shortcut matrices on the residual connections: mid = x_in . (Q_ink^T Q_midk) + attn(...),
//   out = mid . (Q_midk^T Q_outk) + mlp(...) (stored as [out, in] weights).
// The RMSNorms keep dividing by the original width (Config::norm_mean_dim), so slicing does not
// rescale them. Widths: int((1 - sparsity) * D) rounded down to a multiple of `round`; the head's
// input (the last block's output) is not sliced unless slice_head; then that point keeps the
// original basis (no PCA, no rotation of down / the head: the official code's full rotation there is
// undone by the head, an exact invariance). A tied embedding is untied (the head gets its own
// rotation).
//
// uniform: one rotation for the whole stream (the PCA of every residual point's covariance, each
// normalised by its trace, summed): no shortcut matrices, every width D', and the RMSNorm width
// change folded into the norms (eps * D / D', weights sqrt(D / D')): a plain Llama / Qwen2 of hidden
// size D' that llama.cpp and transformers load.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "calib/sampling.h"
#include "model/model.h"

namespace sec {

enum class Orientation { Pca, Random };
Orientation parse_orientation(const std::string& s);  // pca | random

struct SliceGptOptions {
  double sparsity = 0.25;  // fraction of the hidden size removed, in [0, 1)
  bool uniform = false;
  bool slice_head = false;
  int round = 8;
  Orientation orientation = Orientation::Pca;  // random: a seeded rotation within each kept subspace
  double damping = 0.01;
  uint64_t seed = 0;
  int64_t batch = 1;  // calibration samples per forward pass
};

// Rotates and slices m in place; returns the report (widths, explained variance per point).
nlohmann::ordered_json slicegpt(Model& m, const SliceGptOptions& o, const CalibSamples& samples);

// The rotation alone, with given orthogonal matrices: folds the norms (untying a tied head), then
// rotates the whole stream by q (C x C, row-major, orthogonal) without slicing — the computational
// invariance the method rests on (tests, and --sparsity 0 with one basis).
void rotate_model(Model& m, const std::vector<double>& q);

}  // namespace sec
