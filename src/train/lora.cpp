#include "train/lora.h"

#include <cblas.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "core/random.h"
#include "io/safetensors.h"
#include "ops/ops.h"

namespace sec {

std::vector<std::string> parse_lora_targets(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string t = list.substr(start, end - start);
    if (t.size() > 5 && t.substr(t.size() - 5) == "_proj") t = t.substr(0, t.size() - 5);
    if (!t.empty()) {
      bool known = false;
      for (const auto& r : tensor_name_rules()) known |= r.is_linear && t == r.short_name;
      SEC_CHECK(known, "unknown LoRA target '", t, "' (expected some of q,k,v,o,gate,up,down)");
      out.push_back(t);
    }
    start = end + 1;
  }
  SEC_CHECK(!out.empty(), "no LoRA targets given");
  return out;
}

LoraAdapters::LoraAdapters(const Model& m, const LoraOptions& opts, uint64_t seed) : opts_(opts) {
  SEC_CHECK(opts.rank > 0, "LoRA rank must be positive, got ", opts.rank);
  SEC_CHECK(opts.dropout >= 0.f && opts.dropout < 1.f, "LoRA dropout must be in [0, 1), got ", opts.dropout);
  Rng rng(seed);
  for_each_tensor(m.config, m.weights, [&](const TensorRef& r) {
    const TensorNameRule& rule = tensor_rule(r.kind);
    if (!rule.is_linear || r.tensor.numel() == 0) return;
    bool wanted = false;
    for (const auto& t : opts.targets) wanted |= t == rule.short_name;
    if (!wanted) return;
    LoraLayer L;
    L.kind = r.kind;
    L.layer = r.layer;
    L.out = r.shape[0];
    L.in = r.shape[1];
    L.A = Tensor::empty({opts.rank, L.in});
    L.B = Tensor::zeros({L.out, opts.rank});
    L.dA = Tensor::zeros({opts.rank, L.in});
    L.dB = Tensor::zeros({L.out, opts.rank});
    const double bound = 1.0 / std::sqrt(double(L.in));  // kaiming_uniform(a = sqrt(5))
    for (int64_t i = 0; i < L.A.numel(); i++) L.A.f32()[i] = float((2.0 * rng.uniform() - 1.0) * bound);
    if (opts.keep_sparsity) L.keep = zero_mask(r.tensor);
    index_[{L.layer, int(L.kind)}] = layers_.size();
    layers_.push_back(std::move(L));
  });
  SEC_CHECK(!layers_.empty(), "the LoRA targets match no layer of this model");
}

void LoraAdapters::set_training(bool on, uint64_t seed) {
  training_ = on;
  seed_ = seed;
}

LoraLayer* LoraAdapters::find(TensorKind kind, int layer) {
  auto it = index_.find({layer, int(kind)});
  return it == index_.end() ? nullptr : &layers_[it->second];
}

bool LoraAdapters::applies(TensorKind kind, int layer) const { return index_.count({layer, int(kind)}) > 0; }

// h = dropout(x); plain: out += scale (h A^T) B^T; masked: out += h (M * scale B A)^T.
void LoraAdapters::forward(TensorKind kind, int layer, float* out, const float* inp, int64_t N, int64_t I, int64_t O) {
  LoraLayer& L = *find(kind, layer);
  const int64_t r = opts_.rank;
  const float s = scale();
  const float* h = inp;
  if (training_ && opts_.dropout > 0.f) {
    L.h.resize(size_t(N * I));
    L.drop.resize(size_t(N * I));
    Rng rng(seed_ * 0x9E3779B97F4A7C15ull + uint64_t(layer) * 64 + uint64_t(kind));
    const float keep_scale = 1.f / (1.f - opts_.dropout);
    for (int64_t i = 0; i < N * I; i++) {
      L.drop[i] = rng.uniform() >= opts_.dropout;
      L.h[i] = L.drop[i] ? inp[i] * keep_scale : 0.f;
    }
    h = L.h.data();
  } else {
    L.h.clear();
    L.drop.clear();
  }
  if (L.keep.empty()) {
    L.u.resize(size_t(N * r));
    matmul_forward(L.u.data(), h, L.A.f32(), nullptr, N, I, r);  // u (N, r) = h A^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(N), int(O), int(r), s, L.u.data(), int(r), L.B.f32(),
                int(r), 1.f, out, int(O));
  } else {
    L.dw.resize(size_t(O * I));  // (O, I) = M * scale B A
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(O), int(I), int(r), s, L.B.f32(), int(r), L.A.f32(),
                int(I), 0.f, L.dw.data(), int(I));
    for (int64_t i = 0; i < O * I; i++)
      if (!L.keep[i]) L.dw[i] = 0.f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(N), int(O), int(I), 1.f, h, int(I), L.dw.data(), int(I),
                1.f, out, int(O));
  }
}

void LoraAdapters::backward(TensorKind kind, int layer, float* dinp, const float* dout, const float* inp, int64_t N,
                            int64_t I, int64_t O) {
  LoraLayer& L = *find(kind, layer);
  const int64_t r = opts_.rank;
  const float s = scale();
  const bool dropped = !L.h.empty();
  const float* h = dropped ? L.h.data() : inp;
  std::vector<float> dh(dropped ? size_t(N * I) : 0, 0.f);
  float* dh_target = dropped ? dh.data() : dinp;
  if (L.keep.empty()) {
    // dB (O, r) += s dout^T u; du (N, r) = s dout B; dA += du^T h; dh += du A
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(O), int(r), int(N), s, dout, int(O), L.u.data(), int(r),
                1.f, L.dB.f32(), int(r));
    std::vector<float> du(size_t(N * r));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(N), int(r), int(O), s, dout, int(O), L.B.f32(), int(r),
                0.f, du.data(), int(r));
    matmul_backward(dh_target, L.dA.f32(), nullptr, du.data(), h, L.A.f32(), N, I, r);
  } else {
    // G (O, I) = M * (dout^T h); dB += s G A^T; dA += s B^T G; dh += dout (M * s B A)
    std::vector<float> G(size_t(O * I));
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(O), int(I), int(N), 1.f, dout, int(O), h, int(I), 0.f,
                G.data(), int(I));
    for (int64_t i = 0; i < O * I; i++)
      if (!L.keep[i]) G[i] = 0.f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(O), int(r), int(I), s, G.data(), int(I), L.A.f32(), int(I),
                1.f, L.dB.f32(), int(r));
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(r), int(I), int(O), s, L.B.f32(), int(r), G.data(), int(I),
                1.f, L.dA.f32(), int(I));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(N), int(I), int(O), 1.f, dout, int(O), L.dw.data(),
                int(I), 1.f, dh_target, int(I));
  }
  if (dropped) {
    const float keep_scale = 1.f / (1.f - opts_.dropout);
    for (int64_t i = 0; i < N * I; i++)
      if (L.drop[i]) dinp[i] += dh[i] * keep_scale;
  }
}

std::vector<Param> LoraAdapters::params() {
  std::vector<Param> ps;
  for (auto& L : layers_) {
    ps.push_back({peft_name(L.kind, L.layer, true), L.A, L.dA, {}, true});
    ps.push_back({peft_name(L.kind, L.layer, false), L.B, L.dB, {}, true});
  }
  return ps;
}

void LoraAdapters::merge_into(Model& m, bool fill) const {
  const float s = scale();
  for (const auto& L : layers_) {
    Tensor* w = nullptr;
    for_each_tensor(m.config, m.weights, [&](TensorRef& r) {
      if (r.kind == L.kind && r.layer == L.layer) w = &r.tensor;
    });
    SEC_ASSERT(w && w->shape() == Shape({L.out, L.in}));
    std::vector<float> delta(size_t(L.out * L.in));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(L.out), int(L.in), opts_.rank, s, L.B.f32(), opts_.rank,
                L.A.f32(), int(L.in), 0.f, delta.data(), int(L.in));
    float* p = w->f32();
    for (int64_t i = 0; i < L.out * L.in; i++)
      if (fill || p[i] != 0.f) p[i] += delta[i];
  }
}

std::string LoraAdapters::peft_name(TensorKind kind, int layer, bool a) {
  std::string n = tensor_name_hf(kind, layer);
  n = n.substr(0, n.size() - std::string(".weight").size());
  return "base_model.model." + n + (a ? ".lora_A.weight" : ".lora_B.weight");
}

void LoraAdapters::save_peft(const std::string& dir, const std::string& base_model) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  SEC_CHECK(is_directory(dir), dir, ": cannot create the output directory: ", ec.message());
  std::vector<std::pair<std::string, Tensor>> tensors;
  bool masked = false;
  for (const auto& L : layers_) {
    tensors.emplace_back(peft_name(L.kind, L.layer, true), L.A);
    tensors.emplace_back(peft_name(L.kind, L.layer, false), L.B);
    masked |= !L.keep.empty();
  }
  write_safetensors(dir + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
  nlohmann::json modules = nlohmann::json::array();
  for (const auto& t : opts_.targets) modules.push_back(t + "_proj");
  nlohmann::json cfg = {{"peft_type", "LORA"},
                        {"task_type", "CAUSAL_LM"},
                        {"base_model_name_or_path", base_model},
                        {"r", opts_.rank},
                        {"lora_alpha", opts_.alpha},
                        {"lora_dropout", opts_.dropout},
                        {"target_modules", modules},
                        {"bias", "none"},
                        {"fan_in_fan_out", false},
                        {"inference_mode", true},
                        // secateur extension: the update was trained as M * (B A) on pruned layers;
                        // a runtime that ignores the mask refills pruned weights (merge instead).
                        {"secateur_sparsity_masked", masked}};
  write_file_atomic(dir + "/adapter_config.json", cfg.dump(2) + "\n");
}

void LoraAdapters::load_peft(const std::string& dir) {
  SafetensorsFile f(dir + "/adapter_model.safetensors");
  for (auto& L : layers_)
    for (bool a : {true, false}) {
      std::string name = peft_name(L.kind, L.layer, a);
      const SafetensorsTensor* t = f.find(name);
      SEC_CHECK(t, f.path(), ": adapter tensor ", name, " is missing");
      Tensor& dst = a ? L.A : L.B;
      SEC_CHECK(t->shape == dst.shape(), f.path(), ": adapter tensor ", name, " has shape ", shape_str(t->shape),
                ", expected ", shape_str(dst.shape()), " (rank or model mismatch)");
      Tensor v = f.read_f32(*t);
      std::memcpy(dst.raw(), v.raw(), dst.nbytes());
    }
}

}  // namespace sec
