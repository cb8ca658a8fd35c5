// Per-layer algorithms of the unstructured / N:M methods (methods.md §1-4). Each acts on one
// weight matrix W [rows = out, cols = in] (row-major f32) and its calibration statistics; the
// model-level driver (prune.h) feeds them through the layer-wise calibration driver.
#pragma once
#include <cstdint>
#include <vector>

#include "prune/mask.h"

namespace sec {

// ---- magnitude: score |W_ij|; one threshold per matrix (default) or per output row ----------------
Mask magnitude_mask(const float* w, int64_t rows, int64_t cols, const SparsityTarget& t, bool per_row);

// ---- Wanda: score S_ij = |W_ij| * ||X_j||_2, compared within each output row (or N:M groups) -------
void wanda_scores(float* score, const float* w, const float* col_norms, int64_t rows, int64_t cols);
Mask wanda_mask(const float* w, const float* col_norms, int64_t rows, int64_t cols, const SparsityTarget& t);

// ---- SparseGPT -----------------------------------------------------------------------------------
struct SparseGptOptions {
  double percdamp = 0.01;  // lambda = percdamp * mean(diag H)
  int blocksize = 128;     // columns per lazy-update block (a multiple of M for N:M)
};
// Prunes w in place (zeros + reconstruction of the remaining weights) from xtx = X^T X (cols x cols,
// full symmetric, f32; any positive multiple of it gives the same result, so the factor 2 of
// H = 2 X^T X is left out). Computation is f32 like the reference implementation; see sparsegpt.cpp.
// Unstructured: exactly floor(ratio * rows * count) weights of each column block are pruned.
void sparsegpt_prune(float* w, int64_t rows, int64_t cols, const float* xtx, const SparsityTarget& t,
                     const SparseGptOptions& opts = {});

// ---- OWL ------------------------------------------------------------------------------------------
struct ScoredLinear {
  const float* w;
  int64_t rows, cols;
  const float* col_norms;  // ||X_j||_2 of the layer's input
};
// D = fraction of the block's Wanda scores (all its linears together) above M * mean(scores).
double owl_outlier_ratio(const std::vector<ScoredLinear>& layers, double M);
// Per-block sparsities: D min-max normalised to [0, 2*lambda], then s_l = s - (Dn_l - mean_w(Dn)),
// mean_w weighted by each block's prunable parameter count, so the parameter-weighted mean sparsity
// is s (exactly, unless clamping to [0, 1] was needed). Equal D gives s everywhere.
std::vector<double> owl_block_sparsity(const std::vector<double>& outlier_ratio, const std::vector<int64_t>& params,
                                       double s, double lambda);

}  // namespace sec
