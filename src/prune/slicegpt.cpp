#include "prune/slicegpt.h"

#include <cblas.h>

#include <cmath>
#include <cstring>
#include <map>
#include <memory>

#include "calib/layerwise.h"
#include "core/error.h"
#include "core/log.h"
#include "core/random.h"
#include "core/threads.h"
#include "model/forward.h"
#include "ops/ops.h"

namespace sec {

Orientation parse_orientation(const std::string& s) {
  if (s == "pca") return Orientation::Pca;
  if (s == "random") return Orientation::Random;
  fail("unknown --orientation '", s, "' (expected pca or random)");
}

namespace {

// A basis of the residual stream at one point: the first k columns of the C x C orthogonal q.
struct Basis {
  std::vector<double> q;  // (C, C) row-major, columns = directions by descending variance
  int64_t C = 0, k = 0;
  double explained = 1;  // fraction of the (undamped) variance in the first k directions
};

// f32 <-> f64 copies of a weight for the float64 rotations, on the pool (the embedding and the head
// are 65M entries at TinyLlama's size: serial conversions were a second of the slicing time).
std::vector<double> to_f64(const Tensor& w) {
  std::vector<double> v(size_t(w.numel()));
  const float* p = w.f32();
  parallel_ranges(w.numel(), 1.0, 65536.0, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) v[size_t(i)] = p[i];
  });
  return v;
}
Tensor to_f32(const std::vector<double>& v, const Shape& shape) {
  Tensor w = Tensor::empty(shape);
  float* p = w.f32();
  parallel_ranges(w.numel(), 1.0, 65536.0, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) p[i] = float(v[size_t(i)]);
  });
  return w;
}

// W (O, C) <- W . Q_k (O, k): the input side of a linear reading the rotated stream.
void rotate_input(Tensor& w, const Basis& b) {
  SEC_ASSERT(w.ndim() == 2 && w.dim(1) == b.C);
  const int64_t O = w.dim(0);
  const std::vector<double> w64 = to_f64(w);
  std::vector<double> out(size_t(O * b.k));
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(O), int(b.k), int(b.C), 1.0, w64.data(), int(b.C),
              b.q.data(), int(b.C), 0.0, out.data(), int(b.k));
  w = to_f32(out, {O, b.k});
}

// W (C, I) <- Q_k^T . W (k, I): the output side of a linear writing the rotated stream.
void rotate_output(Tensor& w, const Basis& b) {
  SEC_ASSERT(w.ndim() == 2 && w.dim(0) == b.C);
  const int64_t I = w.dim(1);
  const std::vector<double> w64 = to_f64(w);
  std::vector<double> out(size_t(b.k * I));
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(b.k), int(I), int(b.C), 1.0, b.q.data(), int(b.C),
              w64.data(), int(I), 0.0, out.data(), int(I));
  w = to_f32(out, {b.k, I});
}

// Q_k as a shortcut's first factor: the [C, k] weight mapping the rotated stream back to the
// original basis (x_orig = x . Q_k^T). Its output side is rotated by the next point's basis.
Tensor basis_weight(const Basis& b) {
  Tensor w = Tensor::empty({b.C, b.k});
  for (int64_t i = 0; i < b.C; i++)
    for (int64_t j = 0; j < b.k; j++) w.f32()[i * b.k + j] = float(b.q[size_t(i * b.C + j)]);
  return w;
}

// W[:, j] *= alpha[j]: an RMSNorm's scale folded into the linear reading its output.
void fold_scale(Tensor& w, const Tensor& alpha) {
  if (!w.defined()) return;
  w = w.clone();
  const int64_t O = w.dim(0), C = w.dim(1);
  for (int64_t i = 0; i < O; i++)
    for (int64_t j = 0; j < C; j++) w.f32()[i * C + j] *= alpha.f32()[j];
}

void fill(Tensor& t, float v) { std::fill(t.f32(), t.f32() + t.numel(), v); }

// A seeded random orthogonal k x k matrix (Gram-Schmidt of a Gaussian one, signs fixed by R's
// diagonal so that the distribution is Haar).
std::vector<double> random_orthogonal(int64_t k, Rng& rng) {
  std::vector<double> a(size_t(k * k));
  for (auto& x : a) x = rng.normal();
  for (int64_t j = 0; j < k; j++) {       // columns j
    for (int pass = 0; pass < 2; pass++)  // twice: re-orthogonalisation keeps it accurate
      for (int64_t p = 0; p < j; p++) {
        double dot = 0;
        for (int64_t i = 0; i < k; i++) dot += a[size_t(i * k + p)] * a[size_t(i * k + j)];
        for (int64_t i = 0; i < k; i++) a[size_t(i * k + j)] -= dot * a[size_t(i * k + p)];
      }
    double n = 0;
    for (int64_t i = 0; i < k; i++) n += a[size_t(i * k + j)] * a[size_t(i * k + j)];
    n = std::sqrt(n);
    for (int64_t i = 0; i < k; i++) a[size_t(i * k + j)] /= n;
  }
  return a;
}

// The PCA basis of a covariance (sum x^T x, upper triangle): damped, eigendecomposed in float64.
Basis pca(std::vector<double> cov, int64_t C, int64_t k, const SliceGptOptions& o, Rng& rng) {
  double mean_diag = 0;
  for (int64_t i = 0; i < C; i++) mean_diag += cov[size_t(i * C + i)] / double(C);
  const double damp = o.damping * mean_diag;
  for (int64_t i = 0; i < C; i++) cov[size_t(i * C + i)] += damp;
  std::vector<double> values(static_cast<size_t>(C));
  symmetric_eigen(cov.data(), values.data(), C);
  Basis b;
  b.q = std::move(cov);
  b.C = C;
  b.k = k;
  double kept = 0, all = 0;
  for (int64_t i = 0; i < C; i++) {
    const double v = std::max(0.0, values[size_t(i)] - damp);
    all += v;
    if (i < k) kept += v;
  }
  b.explained = all > 0 ? kept / all : 1;
  if (o.orientation == Orientation::Random) {  // rotate within the kept subspace: Q_k <- Q_k R
    const std::vector<double> r = random_orthogonal(k, rng);
    std::vector<double> qk(size_t(C * k));
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(C), int(k), int(k), 1.0, b.q.data(), int(C), r.data(),
                int(k), 0.0, qk.data(), int(k));
    for (int64_t i = 0; i < C; i++)
      for (int64_t j = 0; j < k; j++) b.q[size_t(i * C + j)] = qk[size_t(i * k + j)];
  }
  return b;
}

// Untie the head, fold every RMSNorm's scale into the linears it feeds (norms become ones).
void fold_norms(Model& m) {
  Config& c = m.config;
  Weights& w = m.weights;
  if (c.tied_embeddings) {
    w.lm_head = w.embed.clone();
    c.tied_embeddings = false;
  }
  for (int l = 0; l < c.n_layers(); l++) {
    BlockWeights& b = w.blocks[size_t(l)];
    if (b.attn_norm.defined()) {
      for (Tensor* t : {&b.wq, &b.wk, &b.wv}) fold_scale(*t, b.attn_norm);
      b.attn_norm = b.attn_norm.clone();
      fill(b.attn_norm, 1.f);
    }
    if (b.ffn_norm.defined()) {
      for (Tensor* t : {&b.w_gate, &b.w_up}) fold_scale(*t, b.ffn_norm);
      b.ffn_norm = b.ffn_norm.clone();
      fill(b.ffn_norm, 1.f);
    }
  }
  fold_scale(w.lm_head, w.final_norm);
  w.final_norm = w.final_norm.clone();
  fill(w.final_norm, 1.f);
}

// Every point of a folded model's stream in one basis (no shortcuts): E <- E Q_k, the inputs of
// q/k/v/gate/up and the head W <- W Q_k, the outputs of o/down W <- Q_k^T W.
void rotate_stream(Model& m, const Basis& b) {
  rotate_input(m.weights.embed, b);  // the rows of E are what the stream carries
  for (auto& w : m.weights.blocks) {
    for (Tensor* t : {&w.wq, &w.wk, &w.wv, &w.w_gate, &w.w_up})
      if (t->defined()) rotate_input(*t, b);
    for (Tensor* t : {&w.wo, &w.w_down})
      if (t->defined()) rotate_output(*t, b);
  }
  rotate_input(m.weights.lm_head, b);
}

// The input side of block l (q/k/v, the attention norm, the attention shortcut) reads the stream
// in basis b: W <- W Q_k, and the shortcut starts as Q_k (back to the original basis).
void rotate_block_input(Model& m, int l, const Basis& b) {
  BlockWeights& w = m.weights.blocks[size_t(l)];
  for (Tensor* t : {&w.wq, &w.wk, &w.wv})
    if (t->defined()) rotate_input(*t, b);
  if (w.attn_norm.defined()) w.attn_norm = Tensor::from_vector(std::vector<float>(size_t(b.k), 1.f), {b.k});
  w.attn_shortcut = basis_weight(b);
  m.config.blocks[size_t(l)].attn_shortcut = true;
  m.config.resid_dims[size_t(2 * l)] = int(b.k);
}

// Block l's attention writes, and its MLP reads, the stream in basis b.
void rotate_block_middle(Model& m, int l, const Basis& b) {
  BlockWeights& w = m.weights.blocks[size_t(l)];
  if (w.wo.defined()) rotate_output(w.wo, b);
  rotate_output(w.attn_shortcut, b);
  for (Tensor* t : {&w.w_gate, &w.w_up})
    if (t->defined()) rotate_input(*t, b);
  if (w.ffn_norm.defined()) w.ffn_norm = Tensor::from_vector(std::vector<float>(size_t(b.k), 1.f), {b.k});
  w.mlp_shortcut = basis_weight(b);
  m.config.blocks[size_t(l)].mlp_shortcut = true;
  m.config.resid_dims[size_t(2 * l + 1)] = int(b.k);
}

// Block l's MLP writes the stream in basis b; the next block (or the head) reads it.
void rotate_block_output(Model& m, int l, const Basis& b) {
  BlockWeights& w = m.weights.blocks[size_t(l)];
  if (w.w_down.defined()) rotate_output(w.w_down, b);
  rotate_output(w.mlp_shortcut, b);
  m.config.resid_dims[size_t(2 * l + 2)] = int(b.k);
  if (l + 1 < m.config.n_layers()) {
    rotate_block_input(m, l + 1, b);
  } else {
    rotate_input(m.weights.lm_head, b);
    m.weights.final_norm = Tensor::from_vector(std::vector<float>(size_t(b.k), 1.f), {b.k});
  }
}

// x (rows, C) <- x . Q_k (rows, k), in place; in float64 like the rotations (rounding the product
// in float32 would cost the next PCAs accuracy).
void project_rows(std::vector<float>& x, int64_t C, const Basis& b) {
  const int64_t rows = int64_t(x.size()) / C, chunk = 1024;
  std::vector<float> out(size_t(rows * b.k));
  std::vector<double> in(size_t(std::min(chunk, rows) * C)), res(size_t(std::min(chunk, rows) * b.k));
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t n = std::min(chunk, rows - r0);
    for (int64_t i = 0; i < n * C; i++) in[size_t(i)] = x[size_t(r0 * C + i)];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(n), int(b.k), int(C), 1.0, in.data(), int(C), b.q.data(),
                int(C), 0.0, res.data(), int(b.k));
    for (int64_t i = 0; i < n * b.k; i++) out[size_t(r0 * b.k + i)] = float(res[size_t(i)]);
  }
  x.swap(out);
}

// sum x^T x of one tap point of one block, in float64.
class CovarianceTap : public Tap {
 public:
  CovarianceTap(TapPoint p, int layer, int64_t cols, bool mlp) : p_(p), layer_(layer), cols_(cols), mlp_(mlp) {
    cov.assign(size_t(cols * cols), 0.0);
  }
  bool wants(TapPoint p, int layer) const override { return p == p_ && layer == layer_; }
  void observe(TapPoint, int, const TapData& d) override {
    SEC_ASSERT(d.cols == cols_);
    xtx_accumulate_f64(cov.data(), d.data, d.rows(), d.cols);
  }
  bool needs_mlp() const override { return mlp_; }
  std::vector<double> cov;  // upper triangle

 private:
  TapPoint p_;
  int layer_;
  int64_t cols_;
  bool mlp_;
};

int64_t sliced_width(const Config& c, const SliceGptOptions& o) {
  return int64_t(double(c.dim) * (1.0 - o.sparsity) + 1e-9) / o.round * o.round;
}

nlohmann::ordered_json point_json(const char* what, int layer, const Basis& b) {
  return {{"point", what}, {"block", layer}, {"width", b.k}, {"explained_variance", b.explained}};
}

// The sequential per-block procedure (see slicegpt.h), block by block through the layer-wise driver.
class SliceBlocks : public LayerwiseMethod {
 public:
  SliceBlocks(const SliceGptOptions& o, int64_t k, Rng& rng, nlohmann::ordered_json& points)
      : o_(o), k_(k), rng_(rng), points_(points) {}
  Tap* begin_block(const Model& m, int l) override {
    // The signal between the attention and the MLP, of the block whose input is rotated already.
    tap_ = std::make_unique<CovarianceTap>(TapPoint::AttnResidual, l, m.config.block_mid(l), false);
    return tap_.get();
  }
  void end_block(Model& m, int l, BlockPasses& passes) override {
    const int64_t C = m.config.dim;
    const Basis mid = pca(std::move(tap_->cov), C, k_, o_, rng_);
    rotate_block_middle(m, l, mid);
    points_.push_back(point_json("mid", l, mid));
    if (l + 1 == m.config.n_layers() && !o_.slice_head) {
      // The last output keeps the original basis when the head is not sliced: the official code's
      // full rotation there is re-expressed by the head (W Q . Q^T x = W x, and the final RMSNorm
      // commutes with an orthogonal Q), so it changes nothing but costs a PCA, a block pass and the
      // head's rotation. down_proj, the MLP shortcut (Q_mid, back to the original basis) and the
      // head stay as they are; the driver skips the last block's output pass.
      points_.push_back(point_json("out", l, Basis{{}, C, C, 1.0}));
      tap_.reset();
      return;
    }
    CovarianceTap out(TapPoint::BlockOutput, l, C, true);
    std::vector<float>& outputs = passes.run_keep(&out);  // in the original basis, C wide
    const Basis b = pca(std::move(out.cov), C, k_, o_, rng_);
    rotate_block_output(m, l, b);
    points_.push_back(point_json("out", l, b));
    // The next block's inputs are these outputs in the new basis, x . Q_k (as the official code):
    // one product instead of another pass of the block.
    project_rows(outputs, C, b);
    passes.outputs_ready();
    tap_.reset();
  }

 private:
  const SliceGptOptions& o_;
  int64_t k_;
  Rng& rng_;
  nlohmann::ordered_json& points_;
  std::unique_ptr<CovarianceTap> tap_;
};

// Every residual point's covariance on the folded dense model, each normalised by its trace.
class StreamCovarianceTap : public Tap {
 public:
  explicit StreamCovarianceTap(int64_t C) : C_(C) {}
  bool wants(TapPoint p, int layer) const override {
    return (p == TapPoint::BlockInput && layer == 0) || p == TapPoint::AttnResidual || p == TapPoint::BlockOutput;
  }
  void observe(TapPoint p, int layer, const TapData& d) override {
    const int key = p == TapPoint::BlockInput ? 0 : p == TapPoint::AttnResidual ? 2 * layer + 1 : 2 * layer + 2;
    auto& acc = per_point_[key];
    if (acc.empty()) acc.assign(size_t(C_ * C_), 0.0);
    xtx_accumulate_f64(acc.data(), d.data, d.rows(), d.cols);
  }
  std::vector<double> combined() const {
    std::vector<double> sum(size_t(C_ * C_), 0.0);
    for (const auto& [key, acc] : per_point_) {
      double trace = 0;
      for (int64_t i = 0; i < C_; i++) trace += acc[size_t(i * C_ + i)];
      if (trace <= 0) continue;
      for (size_t i = 0; i < sum.size(); i++) sum[i] += acc[i] / trace;
    }
    return sum;
  }

 private:
  int64_t C_;
  std::map<int, std::vector<double>> per_point_;  // residual point -> sum x^T x
};

}  // namespace

void rotate_model(Model& m, const std::vector<double>& q) {
  Config& c = m.config;
  SEC_CHECK(c.plain_residual(), "rotate_model: the model is already rotated");
  const int64_t C = c.dim;
  SEC_ASSERT(int64_t(q.size()) == C * C);
  fold_norms(m);
  rotate_stream(m, Basis{q, C, C, 1});
}

nlohmann::ordered_json slicegpt(Model& m, const SliceGptOptions& o, const CalibSamples& samples) {
  Config& c = m.config;
  SEC_CHECK(o.sparsity >= 0 && o.sparsity < 1, "--sparsity must be in [0, 1), got ", o.sparsity);
  SEC_CHECK(o.round >= 1, "--round must be at least 1");
  SEC_CHECK(c.plain_residual(), "slicegpt: the model is already rotated or sliced");
  const int64_t C = c.dim, k = sliced_width(c, o);
  SEC_CHECK(k > 0, "slicegpt: --sparsity ", o.sparsity, " leaves int(", 1 - o.sparsity, " x ", C,
            ") rounded down to a multiple of --round ", o.round, " = 0 dimensions");
  SEC_CHECK(samples.nsamples > 0, "slicegpt needs calibration data (--calib)");
  Rng rng(o.seed);
  nlohmann::ordered_json r, points = nlohmann::ordered_json::array();
  r["hidden_size"] = C;
  r["sliced_width"] = k;
  fold_norms(m);

  if (o.uniform) {
    // One basis for every point: the dense model's stream, every point's covariance normalised.
    StreamCovarianceTap tap(C);
    Progress progress("slicegpt covariance", samples.nsamples, "samples");
    for (int64_t s0 = 0; s0 < samples.nsamples; s0 += o.batch) {
      const int64_t B = std::min(o.batch, samples.nsamples - s0);
      final_hidden(m, samples.sample(s0), B, samples.seqlen, &tap);
      progress.add(B);
    }
    progress.finish();
    const Basis b = pca(tap.combined(), C, k, o, rng);
    rotate_stream(m, b);
    // RMSNorm over the k kept directions with the original divisor C: x / sqrt(sum/C + eps) =
    // sqrt(C/k) * x / sqrt(sum/k + eps*C/k), so the weights become sqrt(C/k) and eps scales by C/k.
    const float scale = float(std::sqrt(double(C) / double(k)));
    auto norm = [&](Tensor& t) {
      if (t.defined()) t = Tensor::from_vector(std::vector<float>(size_t(k), scale), {k});
    };
    for (auto& w : m.weights.blocks) norm(w.attn_norm), norm(w.ffn_norm);
    norm(m.weights.final_norm);
    c.norm_eps = float(double(c.norm_eps) * double(C) / double(k));
    c.dim = int(k);
    points.push_back({{"point", "all"}, {"width", k}, {"explained_variance", b.explained}});
  } else {
    c.norm_mean_dim = int(C);  // the norms keep dividing by the original width
    c.resid_dims.assign(size_t(c.n_resid_points()), int(C));
    // Q_0 from the embedding's outputs.
    std::vector<double> cov(size_t(C * C), 0.0);
    {
      std::vector<float> x(size_t(samples.seqlen * C));
      for (int64_t s = 0; s < samples.nsamples; s++) {
        embed_tokens(m, samples.sample(s), samples.seqlen, x.data());
        xtx_accumulate_f64(cov.data(), x.data(), samples.seqlen, C);
      }
    }
    const Basis b0 = pca(std::move(cov), C, k, o, rng);
    rotate_input(m.weights.embed, b0);
    rotate_block_input(m, 0, b0);
    points.push_back(point_json("embedding", -1, b0));
    SliceBlocks method(o, k, rng, points);
    LayerwiseOptions lo;
    lo.batch = o.batch;
    lo.label = "slicegpt";
    run_layerwise(m, samples, method, lo);
  }
  c.validate();
  r["points"] = points;
  r["uniform"] = o.uniform;
  r["slice_head"] = o.slice_head;
  nlohmann::ordered_json blocks = nlohmann::ordered_json::array();
  for (int l = 0; l < c.n_layers(); l++)
    blocks.push_back({{"block", l}, {"in", c.block_in(l)}, {"mid", c.block_mid(l)}, {"out", c.block_out(l)}});
  r["blocks"] = blocks;
  return r;
}

}  // namespace sec
