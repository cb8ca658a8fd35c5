// Log-softmax, cross-entropy and KL divergence over vocabulary rows.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/threads.h"
#include "ops/ops.h"

namespace sec {

namespace {
// log(sum(exp(x / temp))) computed stably, in double.
double logsumexp(const float* x, int64_t V, float temp = 1.f) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < V; i++) mx = std::max(mx, x[i]);
  double m = double(mx) / temp, sum = 0;
  for (int64_t i = 0; i < V; i++) sum += std::exp(double(x[i]) / temp - m);
  return m + std::log(sum);
}
}  // namespace

void log_softmax_forward(float* out, const float* logits, int64_t N, int64_t V) {
  parallel_ranges(N, double(V), double(kParallelMinWork), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
      const float* x = logits + n * V;
      float lse = float(logsumexp(x, V));
      for (int64_t i = 0; i < V; i++) out[n * V + i] = x[i] - lse;
    }
  });
}

void log_softmax_forward_ref(float* out, const float* logits, int64_t N, int64_t V) {
  for (int64_t n = 0; n < N; n++) {
    double mx = -1e300, sum = 0;
    for (int64_t i = 0; i < V; i++) mx = std::max(mx, double(logits[n * V + i]));
    for (int64_t i = 0; i < V; i++) sum += std::exp(logits[n * V + i] - mx);
    for (int64_t i = 0; i < V; i++) out[n * V + i] = float(logits[n * V + i] - mx - std::log(sum));
  }
}

void cross_entropy_forward(float* losses, const float* logits, const int32_t* targets, int64_t N, int64_t V) {
  parallel_ranges(N, double(V), double(kParallelMinWork), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
      if (targets[n] < 0) {
        losses[n] = 0.f;
        continue;
      }
      const float* x = logits + n * V;
      losses[n] = float(logsumexp(x, V) - double(x[targets[n]]));
    }
  });
}

void cross_entropy_forward_ref(float* losses, const float* logits, const int32_t* targets, int64_t N, int64_t V) {
  for (int64_t n = 0; n < N; n++) {
    if (targets[n] < 0) {
      losses[n] = 0.f;
      continue;
    }
    double mx = -1e300, sum = 0;
    for (int64_t i = 0; i < V; i++) mx = std::max(mx, double(logits[n * V + i]));
    for (int64_t i = 0; i < V; i++) sum += std::exp(logits[n * V + i] - mx);
    losses[n] = float(mx + std::log(sum) - logits[n * V + targets[n]]);
  }
}

// KL(p || q) = sum_i p_i (log p_i - log q_i)
void kl_div_forward(float* kl, const float* p_logits, const float* q_logits, int64_t N, int64_t V, float temp) {
  parallel_ranges(N, double(V), double(kParallelMinWork), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
      const float* a = p_logits + n * V;
      const float* b = q_logits + n * V;
      double lp = logsumexp(a, V, temp), lq = logsumexp(b, V, temp), acc = 0;
      for (int64_t i = 0; i < V; i++) {
        double log_p = double(a[i]) / temp - lp, log_q = double(b[i]) / temp - lq;
        acc += std::exp(log_p) * (log_p - log_q);
      }
      kl[n] = float(std::max(acc, 0.0));  // rounding can make an exact 0 slightly negative
    }
  });
}

void kl_div_forward_ref(float* kl, const float* p_logits, const float* q_logits, int64_t N, int64_t V, float temp) {
  for (int64_t n = 0; n < N; n++) {
    double mp = -1e300, mq = -1e300, sp = 0, sq = 0;
    for (int64_t i = 0; i < V; i++) {
      mp = std::max(mp, double(p_logits[n * V + i]) / temp);
      mq = std::max(mq, double(q_logits[n * V + i]) / temp);
    }
    for (int64_t i = 0; i < V; i++) {
      sp += std::exp(double(p_logits[n * V + i]) / temp - mp);
      sq += std::exp(double(q_logits[n * V + i]) / temp - mq);
    }
    double acc = 0;
    for (int64_t i = 0; i < V; i++) {
      double lp = double(p_logits[n * V + i]) / temp - mp - std::log(sp);
      double lq = double(q_logits[n * V + i]) / temp - mq - std::log(sq);
      acc += std::exp(lp) * (lp - lq);
    }
    kl[n] = float(acc);
  }
}

void cross_entropy_backward(float* dlogits, const float* dlosses, const float* logits, const int32_t* targets,
                            int64_t N, int64_t V) {
  parallel_ranges(N, double(V), double(kParallelMinWork), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
      if (targets[n] < 0) continue;
      const float* x = logits + n * V;
      float* dx = dlogits + n * V;
      const float lse = float(logsumexp(x, V)), dl = dlosses[n];
      for (int64_t i = 0; i < V; i++) dx[i] += dl * std::exp(x[i] - lse);
      dx[targets[n]] -= dl;
    }
  });
}

void cross_entropy_backward_ref(float* dlogits, const float* dlosses, const float* logits, const int32_t* targets,
                                int64_t N, int64_t V) {
  for (int64_t n = 0; n < N; n++) {
    if (targets[n] < 0) continue;
    double mx = -1e300, sum = 0;
    for (int64_t i = 0; i < V; i++) mx = std::max(mx, double(logits[n * V + i]));
    for (int64_t i = 0; i < V; i++) sum += std::exp(logits[n * V + i] - mx);
    for (int64_t i = 0; i < V; i++) {
      double p = std::exp(logits[n * V + i] - mx) / sum;
      dlogits[n * V + i] += float(double(dlosses[n]) * (p - (i == targets[n] ? 1.0 : 0.0)));
    }
  }
}

// d KL(p || q) / d q_logits_i = (q_i - p_i) / temp (p fixed).
void kl_div_backward(float* dq_logits, const float* dkl, const float* p_logits, const float* q_logits, int64_t N,
                     int64_t V, float temp) {
  parallel_ranges(N, double(V), double(kParallelMinWork), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
      const float* a = p_logits + n * V;
      const float* b = q_logits + n * V;
      float* d = dq_logits + n * V;
      const double lp = logsumexp(a, V, temp), lq = logsumexp(b, V, temp);
      const float k = dkl[n] / temp;
      for (int64_t i = 0; i < V; i++) {
        float p = float(std::exp(double(a[i]) / temp - lp)), q = float(std::exp(double(b[i]) / temp - lq));
        d[i] += k * (q - p);
      }
    }
  });
}

void kl_div_backward_ref(float* dq_logits, const float* dkl, const float* p_logits, const float* q_logits, int64_t N,
                         int64_t V, float temp) {
  for (int64_t n = 0; n < N; n++) {
    double mp = -1e300, mq = -1e300, sp = 0, sq = 0;
    for (int64_t i = 0; i < V; i++) {
      mp = std::max(mp, double(p_logits[n * V + i]) / temp);
      mq = std::max(mq, double(q_logits[n * V + i]) / temp);
    }
    for (int64_t i = 0; i < V; i++) {
      sp += std::exp(double(p_logits[n * V + i]) / temp - mp);
      sq += std::exp(double(q_logits[n * V + i]) / temp - mq);
    }
    for (int64_t i = 0; i < V; i++) {
      double p = std::exp(double(p_logits[n * V + i]) / temp - mp) / sp;
      double q = std::exp(double(q_logits[n * V + i]) / temp - mq) / sq;
      dq_logits[n * V + i] += float(double(dkl[n]) * (q - p) / temp);
    }
  }
}

}  // namespace sec
