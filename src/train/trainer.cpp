#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "core/random.h"
#include "io/safetensors.h"

namespace sec {

std::vector<int> default_hidden_layers(int student_layers, int teacher_layers) {
  std::vector<int> map(static_cast<size_t>(student_layers));
  for (int i = 0; i < student_layers; i++)
    map[i] = int(std::lround(double(i + 1) * teacher_layers / student_layers)) - 1;
  return map;
}

std::vector<int> parse_hidden_layers(const std::string& pairs, int student_layers, int teacher_layers) {
  std::vector<int> map(static_cast<size_t>(student_layers), -1);
  size_t pos = 0;
  while (pos <= pairs.size()) {
    const size_t end = std::min(pairs.find(',', pos), pairs.size());
    const std::string item = pairs.substr(pos, end - pos);
    int s = -1, t = -1;
    char extra = 0;
    SEC_CHECK(std::sscanf(item.c_str(), "%d:%d%c", &s, &t, &extra) == 2, "--hidden-layers: '", item,
              "' is not a student:teacher block pair");
    SEC_CHECK(s >= 0 && s < student_layers && t >= 0 && t < teacher_layers, "--hidden-layers: ", item,
              " is outside the student's blocks 0-", student_layers - 1, " or the teacher's 0-", teacher_layers - 1);
    map[size_t(s)] = t;
    pos = end + 1;
  }
  return map;
}

namespace {

// The per-epoch permutations of the sample indices.
class SampleOrder {
 public:
  SampleOrder(size_t n, uint64_t seed) : n_(n), seed_(seed) {}
  size_t at(int64_t j) {
    const int64_t epoch = j / int64_t(n_);
    auto it = perms_.find(epoch);
    if (it == perms_.end()) {
      std::vector<size_t> p(n_);
      for (size_t i = 0; i < n_; i++) p[i] = i;
      Rng rng(seed_ * 1000003ull + uint64_t(epoch) + 1);
      for (size_t i = n_ - 1; i > 0; i--) std::swap(p[i], p[rng.below(i + 1)]);
      if (perms_.size() > 2) perms_.clear();
      it = perms_.emplace(epoch, std::move(p)).first;
    }
    return it->second[size_t(j % int64_t(n_))];
  }

 private:
  size_t n_;
  uint64_t seed_;
  std::map<int64_t, std::vector<size_t>> perms_;
};

Batch make_batch(const std::vector<TrainSample>& data, const std::vector<size_t>& idx) {
  Batch b;
  b.B = int64_t(idx.size());
  b.T = int64_t(data[idx[0]].tokens.size());
  for (size_t i : idx) {
    SEC_ASSERT(int64_t(data[i].tokens.size()) == b.T);
    b.tokens.insert(b.tokens.end(), data[i].tokens.begin(), data[i].tokens.end());
    b.targets.insert(b.targets.end(), data[i].targets.begin(), data[i].targets.end());
  }
  return b;
}

// The teacher's side of one micro-batch (KD): logits and the block outputs the student matches.
struct TeacherOut {
  std::vector<float> logits;
  std::vector<Tensor> hidden;
};

// Learned projections of the hidden-state loss, per student block (undefined where widths agree).
struct Projections {
  std::vector<Tensor> value, grad;
};

Projections make_projections(const Model& student, const TrainerOptions& o) {
  Projections p;
  if (!o.teacher || o.hidden == HiddenLoss::None || o.hidden_weight == 0.f) return p;
  const int L = student.config.n_layers();
  p.value.resize(size_t(L));
  p.grad.resize(size_t(L));
  Rng rng(o.seed * 0x9E3779B97F4A7C15ull + 17);
  for (int l = 0; l < L && l < int(o.hidden_layers.size()); l++) {
    const int t = o.hidden_layers[size_t(l)];
    if (t < 0) continue;
    const int64_t Cs = student.config.block_out(l), Ct = o.teacher->config.block_out(t);
    if (Cs == Ct) continue;
    Tensor w = Tensor::empty({Ct, Cs});
    const double bound = 1.0 / std::sqrt(double(Cs));
    for (int64_t i = 0; i < w.numel(); i++) w.f32()[i] = float((2 * rng.uniform() - 1) * bound);
    p.value[size_t(l)] = w;
    p.grad[size_t(l)] = Tensor::zeros({Ct, Cs});
  }
  return p;
}

LossSpec loss_spec(const TrainerOptions& o, const Batch& b, TeacherOut& t, int student_layers,
                   Projections* proj = nullptr) {
  LossSpec spec;
  if (!o.teacher) return spec;
  t.logits.resize(size_t(b.B * b.T * o.teacher->config.vocab_size));
  t.hidden = hidden_states(*o.teacher, b.tokens.data(), b.B, b.T, t.logits.data());
  spec.teacher_logits = t.logits.data();
  spec.kd_temp = o.kd_temp;
  if (proj && o.hidden != HiddenLoss::None && o.hidden_weight != 0.f) {
    spec.hidden = o.hidden;
    spec.hidden_weight = o.hidden_weight;
    spec.hidden_balance = o.hidden_balance;
    spec.teacher_hidden.assign(size_t(student_layers), nullptr);
    spec.hidden_proj.assign(size_t(student_layers), nullptr);
    spec.hidden_proj_grad.assign(size_t(student_layers), nullptr);
    for (int l = 0; l < student_layers && l < int(o.hidden_layers.size()); l++) {
      if (o.hidden_layers[l] < 0) continue;
      spec.teacher_hidden[l] = t.hidden[size_t(o.hidden_layers[l])].f32();
      if (size_t(l) < proj->value.size() && proj->value[size_t(l)].defined()) {
        spec.hidden_proj[l] = &proj->value[size_t(l)];
        spec.hidden_proj_grad[l] = &proj->grad[size_t(l)];
      }
    }
  }
  return spec;
}

void check_teacher(const Model& student, const TrainerOptions& o) {
  if (!o.teacher) return;
  SEC_CHECK(o.teacher->config.vocab_size == student.config.vocab_size, "teacher vocabulary (",
            o.teacher->config.vocab_size, ") differs from the student's (", student.config.vocab_size, ")");
  if (o.hidden != HiddenLoss::None) {
    SEC_CHECK(int(o.hidden_layers.size()) <= student.config.n_layers(), "hidden-state pairs name student block ",
              o.hidden_layers.size() - 1, ", the student has ", student.config.n_layers());
    for (int t : o.hidden_layers) SEC_CHECK(t < o.teacher->config.n_layers(), "teacher has no block ", t);
  }
}

void save_checkpoint(const std::string& path, const std::vector<Param>& params, AdamW& opt, int64_t step,
                     const TrainerOptions& o, const TrainResult& r) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (size_t i = 0; i < params.size(); i++) {
    tensors.emplace_back("param/" + params[i].name, params[i].value);
    tensors.emplace_back("adam_m/" + params[i].name, opt.m()[i]);
    tensors.emplace_back("adam_v/" + params[i].name, opt.v()[i]);
  }
  nlohmann::json evals = nlohmann::json::array();
  for (auto& e : r.evals) evals.push_back({e.first, e.second});
  std::map<std::string, std::string> meta = {
      {"secateur_checkpoint", "1"},
      {"step", std::to_string(step)},
      {"adam_t", std::to_string(opt.t())},
      {"seed", std::to_string(o.seed)},
      {"data_position", std::to_string(step * int64_t(o.batch))},  // samples consumed
      {"losses", nlohmann::json(r.losses).dump()},
      {"evals", evals.dump()}};
  write_safetensors(path, tensors, meta);  // atomic: temp file + rename
}

int64_t load_checkpoint(const std::string& path, std::vector<Param>& params, AdamW& opt, const TrainerOptions& o,
                        TrainResult& r) {
  SafetensorsFile f(path);
  const auto& meta = f.metadata();
  SEC_CHECK(meta.count("secateur_checkpoint") && meta.count("step"), path, ": not a secateur training checkpoint");
  SEC_CHECK(meta.at("seed") == std::to_string(o.seed), path, ": checkpoint was written with seed ", meta.at("seed"),
            ", this run uses ", o.seed, " (the data order would differ)");
  auto copy = [&](const std::string& name, Tensor& dst) {
    const SafetensorsTensor* t = f.find(name);
    SEC_CHECK(t, path, ": checkpoint lacks ", name, " (different model, adapter targets or rank?)");
    SEC_CHECK(t->shape == dst.shape(), path, ": ", name, " has shape ", shape_str(t->shape), ", expected ",
              shape_str(dst.shape()));
    Tensor v = f.read_f32(*t);
    std::memcpy(dst.raw(), v.raw(), dst.nbytes());
  };
  for (size_t i = 0; i < params.size(); i++) {
    copy("param/" + params[i].name, params[i].value);
    copy("adam_m/" + params[i].name, opt.m()[i]);
    copy("adam_v/" + params[i].name, opt.v()[i]);
  }
  opt.set_t(std::stoll(meta.at("adam_t")));
  r.losses = nlohmann::json::parse(meta.at("losses")).get<std::vector<double>>();
  for (auto& e : nlohmann::json::parse(meta.at("evals"))) r.evals.emplace_back(e[0].get<int64_t>(), e[1].get<double>());
  return std::stoll(meta.at("step"));
}

}  // namespace

double eval_loss(const Model& m, LoraAdapters* lora, const std::vector<TrainSample>& data, const TrainerOptions& o) {
  if (data.empty()) return std::nan("");
  if (lora) lora->set_training(false);
  const size_t n = std::min(data.size(), size_t(std::max<int64_t>(1, o.eval_samples)));
  double sum = 0;
  int64_t count = 0;
  for (size_t s = 0; s < n; s += size_t(o.micro_batch)) {
    std::vector<size_t> idx;
    for (size_t i = s; i < std::min(n, s + size_t(o.micro_batch)); i++) idx.push_back(i);
    Batch b = make_batch(data, idx);
    TeacherOut t;
    LossSpec spec = loss_spec(o, b, t, m.config.n_layers());
    spec.denominator = 1;  // sums
    LossValue v = forward_loss(m, b, spec, lora);
    sum += v.main;
    count += v.count;
  }
  return count > 0 ? sum / double(count) : std::nan("");
}

TrainResult train(Model& m, LoraAdapters* lora, const std::vector<TrainSample>& data,
                  const std::vector<TrainSample>& eval_data, const TrainerOptions& o) {
  SEC_CHECK(!data.empty(), "no training samples");
  SEC_CHECK(o.batch > 0 && o.micro_batch > 0 && o.batch % o.micro_batch == 0, "--batch (", o.batch,
            ") must be a positive multiple of --micro-batch (", o.micro_batch, ")");
  check_teacher(m, o);
  const int64_t T = int64_t(data[0].tokens.size());

  // Trainable parameters and their gradient buffers.
  Weights grads;
  std::vector<Param> params;
  if (lora) {
    params = lora->params();
  } else {
    grads = allocate_weights(m.config);
    std::vector<Tensor*> gs;
    for_each_tensor(m.config, grads, [&](TensorRef& r) { gs.push_back(&r.tensor); });
    size_t k = 0;
    for_each_tensor(m.config, m.weights, [&](TensorRef& r) {
      Param p{r.name, r.tensor, *gs[k++], {}, r.tensor.ndim() > 1};
      if (tensor_rule(r.kind).is_linear) p.keep = zero_mask(r.tensor);  // pruned zeros stay zero
      params.push_back(std::move(p));
    });
  }
  Projections proj = make_projections(m, o);
  for (size_t l = 0; l < proj.value.size(); l++)
    if (proj.value[l].defined())
      params.push_back({"hidden_proj." + std::to_string(l), proj.value[l], proj.grad[l], {}, true});
  AdamW opt(params, o.adam);

  TrainResult r;
  const int64_t n = int64_t(data.size());
  r.total_steps = std::max<int64_t>(1, int64_t(o.epochs) * n / o.batch);
  if (o.max_steps > 0) r.total_steps = std::min(r.total_steps, o.max_steps);
  const int64_t warmup = o.warmup_steps >= 0 ? o.warmup_steps : std::min<int64_t>(100, r.total_steps / 10);
  if (o.resume && !o.checkpoint.empty() && file_exists(o.checkpoint)) {
    r.start_step = load_checkpoint(o.checkpoint, params, opt, o, r);
    log_info(o.label, ": resumed from ", o.checkpoint, " at step ", r.start_step, "/", r.total_steps);
  }
  int64_t end = r.total_steps;
  if (o.stop_after >= 0) end = std::min(end, r.start_step + o.stop_after);

  TrainOptions topts;
  topts.recompute = o.recompute;
  SampleOrder order(size_t(n), o.seed);
  const int64_t tokens_per_step = int64_t(o.batch) * T;
  if (r.start_step == 0 && (o.eval_every > 0) && !eval_data.empty())
    r.evals.emplace_back(0, eval_loss(m, lora, eval_data, o));
  Progress prog(o.label, (end - r.start_step) * tokens_per_step, "tok");
  const int64_t log_every = std::max<int64_t>(1, r.total_steps / 20);
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t step = r.start_step; step < end; step++) {
    const float lr = lr_at(step, r.total_steps, warmup, o.lr, o.min_lr);
    zero_grads(params);
    std::vector<size_t> idx(size_t(o.batch));
    for (int64_t i = 0; i < o.batch; i++) idx[size_t(i)] = order.at(step * o.batch + i);
    int64_t count = 0;
    for (size_t i : idx)
      for (int32_t t : data[i].targets) count += t >= 0;
    double loss = 0;
    for (int mb = 0; mb < o.batch / o.micro_batch; mb++) {
      std::vector<size_t> sub(idx.begin() + mb * o.micro_batch, idx.begin() + (mb + 1) * o.micro_batch);
      Batch b = make_batch(data, sub);
      TeacherOut t;
      LossSpec spec = loss_spec(o, b, t, m.config.n_layers(), &proj);
      spec.denominator = double(std::max<int64_t>(count, 1));
      if (lora) lora->set_training(true, o.seed * 0x100000001B3ull + uint64_t(step) * 4096 + uint64_t(mb));
      loss += forward_backward(m, b, spec, lora ? nullptr : &grads, lora, topts).total;
    }
    const double norm = clip_grad_norm(params, o.grad_clip);
    opt.step(params, lr);
    r.losses.push_back(loss);
    r.steps_done++;
    prog.add(tokens_per_step);
    if ((step + 1) % log_every == 0 || step + 1 == r.total_steps)
      log_info(o.label, ": step ", step + 1, "/", r.total_steps, "  loss ", loss, "  lr ", lr, "  grad-norm ", norm);
    if (o.eval_every > 0 && !eval_data.empty() && ((step + 1) % o.eval_every == 0 || step + 1 == r.total_steps)) {
      r.evals.emplace_back(step + 1, eval_loss(m, lora, eval_data, o));
      log_info(o.label, ": step ", step + 1, "  eval loss ", r.evals.back().second);
    }
    if (!o.checkpoint.empty() && ((o.checkpoint_every > 0 && (step + 1) % o.checkpoint_every == 0) || step + 1 == end))
      save_checkpoint(o.checkpoint, params, opt, step + 1, o, r);
  }
  prog.finish();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.tokens = r.steps_done * tokens_per_step;
  r.tokens_per_s = secs > 0 ? double(r.tokens) / secs : 0;
  if (lora) lora->set_training(false);
  return r;
}

}  // namespace sec
