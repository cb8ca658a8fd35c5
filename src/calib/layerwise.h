// The layer-wise sequential calibration driver (methods.md) and the per-linear input statistics
// that pruning methods read.
//
// run_layerwise(): embed every calibration sample once, keep the hidden states entering the
// current block in one buffer (nsamples x seqlen x Cin floats), and for each block l:
//   1. statistics pass: run block l on a copy of the cached inputs with the method's Tap
//      (the block is unchanged, so every linear of the block sees the block's dense inputs);
//   2. the method changes block l (prunes, rotates, slices ...);
//   3. output pass: run the CHANGED block on the cached inputs; its outputs become block l+1's
//      inputs. Block l therefore sees inputs produced by the already-pruned blocks 0..l-1.
// Memory: two activation buffers of nsamples*seqlen*C floats plus one block's statistics and the
// forward scratch of one batch; never all blocks' activations. A method may change the block's
// widths (SliceGPT): the output pass then produces the changed block's output width.
//
// Methods plug in through LayerwiseMethod; LinearStatsTap is the reusable statistics collector:
// per input column sum of x^2 (Wanda's ||X_j||^2, llama.cpp's imatrix) and X^T X (SparseGPT's H/2,
// SliceGPT's covariance), keyed by the canonical (HF) name of the linear layers that read them.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "calib/sampling.h"
#include "model/forward.h"
#include "model/model.h"

namespace sec {

// The tap point whose data is the input of a block linear layer (q/k/v: AttnInput, o: AttnHeads,
// gate/up: MlpInput, down: MlpHidden); asserts for other kinds.
TapPoint input_tap_of(TensorKind kind);
// The block linear layers (TensorNameRule::is_linear) in table order.
std::vector<TensorKind> block_linear_kinds();

// Statistics of one input matrix X (rows = tokens, cols = input features), shared by every linear
// that reads the same input (q/k/v share one, gate/up share one).
struct InputStats {
  int64_t cols = 0;
  int64_t rows = 0;           // tokens seen
  std::vector<double> sumsq;  // (cols) sum over tokens of x_j^2, when requested
  Tensor xtx;                 // (cols, cols) f32 sum of x^T x, when requested; symmetric after finish()
  // sqrt(sumsq): Wanda's ||X_j||_2
  std::vector<float> col_norms() const;
};

struct StatsRequest {
  bool sumsq = true;
  bool xtx = false;
};

class LinearStatsTap : public Tap {
 public:
  // Collects statistics for the linears of block `layer` for which `include(canonical_name)` is true
  // (all of them when include is empty).
  LinearStatsTap(const Config& c, int layer, StatsRequest req, std::function<bool(const std::string&)> include = {});
  bool wants(TapPoint point, int layer) const override;
  void observe(TapPoint point, int layer, const TapData& d) override;
  void finish();  // completes X^T X (BLAS accumulates one triangle)
  bool has(const std::string& name) const { return by_name_.count(name) > 0; }
  const InputStats& stats(const std::string& canonical_name) const;  // asserts has()
  const InputStats& stats(TensorKind kind) const;

 private:
  int layer_;
  StatsRequest req_;
  std::map<TapPoint, std::shared_ptr<InputStats>> by_point_;
  std::map<std::string, std::shared_ptr<InputStats>> by_name_;
};

// What a method may do with its block inside end_block: run it (as it is now) again over every
// cached calibration input — for methods that change a block in steps and need its signals in
// between (SliceGPT's PCA of the attention output after rotating the attention input).
class BlockPasses {
 public:
  virtual ~BlockPasses() = default;
  // A statistics pass: the tap observes, the outputs are discarded.
  virtual void run(Tap* tap) = 0;
  // A pass that keeps the outputs (nsamples x seqlen x Cout floats, the driver's second buffer).
  // The method may transform them into the changed block's outputs in place (resizing the vector
  // to the new width) and call outputs_ready(): the driver then skips the output pass.
  virtual std::vector<float>& run_keep(Tap* tap) = 0;
  virtual void outputs_ready() = 0;
};

class LayerwiseMethod {
 public:
  virtual ~LayerwiseMethod() = default;
  // Tap for block `layer`'s statistics pass, owned by the method; nullptr skips the pass.
  virtual Tap* begin_block(const Model& m, int layer) = 0;
  // Change block `layer` of the model from what the tap collected (`passes` re-runs the block).
  virtual void end_block(Model& m, int layer, BlockPasses& passes) = 0;
  // Whether the changed block must be re-run to produce the next block's inputs (false only
  // when the method does not change the model, e.g. a statistics-only pass, which then uses the
  // statistics pass's own outputs).
  virtual bool changes_model() const { return true; }
};

struct LayerwiseOptions {
  int64_t batch = 1;  // samples per block_forward call (scratch memory grows with it)
  std::string label = "calibrate";
};

struct LayerwiseResult {
  std::vector<double> block_seconds;  // wall time of each block (both passes and the method)
};

// Runs the driver on tokenized calibration samples.
LayerwiseResult run_layerwise(Model& m, const CalibSamples& samples, LayerwiseMethod& method,
                              const LayerwiseOptions& opts = {});
// Same, starting from given hidden states (nsamples, seqlen, Cin) entering block `first_layer`
// (benchmarks use random ones). `hidden` is the driver's buffer: overwritten, its contents on
// return unspecified (nothing reads the last block's outputs, so that pass is skipped).
LayerwiseResult run_layerwise_hidden(Model& m, std::vector<float>& hidden, int64_t nsamples, int64_t seqlen,
                                     LayerwiseMethod& method, const LayerwiseOptions& opts = {}, int first_layer = 0);

}  // namespace sec
