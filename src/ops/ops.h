// Numerical kernels (f32). Signatures: outputs first, then inputs, then sizes; shapes in comments.
// Every op has a plain scalar reference (suffix _ref) that the unit tests compare the fast
// version against. Backward functions sit next to their forward (suffix _backward) and ACCUMULATE
// into gradient buffers with += (callers zero them), llm.c-style, with a `d` prefix for gradients.
#pragma once
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace sec {

// Below this many elements a parallel job on the thread pool costs more than it saves (token-by-token
// decoding of small models is all such calls).
constexpr int64_t kParallelMinWork = 1 << 15;

// ---- the linear entry point: every product with a model weight goes through these two ----------
// out (N, O) = inp (N, I) . W^T + bias (O), with [O, I] = weight.shape(). Dispatches on how the
// weight is stored, so a storage format or an ISA-specific kernel plugs in here and nowhere else:
//   F32         own packed GEMM (N > 4) or streaming GEMV (N <= 4), AVX-512 / AVX2 / scalar by cpuid
//   BF16        the activations are rounded to bf16 (as AVX512_BF16's vdpbf16ps takes them, on every
//               instruction set alike), the products are exact, the sums f32
//   F16         weights converted exactly (F16C), activations f32
//   F32_SPARSE  compressed bitmask + values (core/sparse.h); same result as the dense weight up to
//               the order of the sums
// Runs on the thread pool (core/threads.h); inside a parallel_for task it runs on that thread alone.
void linear_forward(float* out, const float* inp, const Tensor& weight, const float* bias, int64_t N);
// Scalar reference with double sums, for any storage (bf16: the activations rounded as above).
void linear_forward_ref(float* out, const float* inp, const Tensor& weight, const float* bias, int64_t N);
// Gradients of linear_forward (f32 weights only): dinp (N, I) +=, dweight (O, I) +=, dbias (O) +=.
void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const Tensor& weight, int64_t N);

// ---- GEMM on secateur's kernels and thread pool, row-major like cblas_sgemm(CblasRowMajor, ...) ----
// C (M, N) = alpha * op(A) (M, K) . op(B) (K, N) + beta * C, op(X) = X^T when trans_x, leading
// dimensions lda / ldb / ldc. beta == 0: C is not read (may hold NaN).
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// One line on the kernels in use: "kernels avx512: f32 gemm 12x32 (own, packed), ..." (with
// cpu_summary() and threads_summary(): what `secateur info --system` / `bench` print).
std::string kernels_summary();

// ---- raw f32 linear: out (N, O) = inp (N, I) . weight (O, I)^T + bias (O) ----------------------
void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int64_t N, int64_t I,
                    int64_t O);
void matmul_forward_ref(float* out, const float* inp, const float* weight, const float* bias, int64_t N, int64_t I,
                        int64_t O);
// dinp (N, I) += dout . weight; dweight (O, I) += dout^T . inp; dbias (O) += sum over rows of dout.
// Any of dinp / dweight / dbias may be null (not wanted, e.g. a frozen weight).
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int64_t N, int64_t I, int64_t O);
void matmul_backward_ref(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                         const float* weight, int64_t N, int64_t I, int64_t O);

// ---- embedding: out (N, C) = table (V, C) [tokens (N)]; tokens must be in [0, V) ----------------
void embedding_forward(float* out, const int32_t* tokens, const float* table, int64_t N, int64_t C);
// dtable (V, C) [tokens[n]] += dout (N, C) [n]  (scatter-add; repeated tokens accumulate)
void embedding_backward(float* dtable, const float* dout, const int32_t* tokens, int64_t N, int64_t C);
void embedding_backward_ref(float* dtable, const float* dout, const int32_t* tokens, int64_t N, int64_t C);

// ---- RMSNorm: out = inp / sqrt(sum(inp^2) / D + eps) * weight; rstd (N) saved if not null --------
// D = mean_dim, or C when mean_dim <= 0 (the usual mean; a sliced model keeps its original width).
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C, float eps,
                     int64_t mean_dim = 0);
void rmsnorm_forward_ref(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C,
                         float eps, int64_t mean_dim = 0);
// From the forward's saved rstd (N): dinp (N, C) += ..., dweight (C) += sum_n dout * inp * rstd. dweight may be null.
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C, int64_t mean_dim = 0);
void rmsnorm_backward_ref(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                          const float* rstd, int64_t N, int64_t C, int64_t mean_dim = 0);

// ---- RoPE, rotate-half layout, in place on x (B, T, H, hd) at positions pos0 + t ---------------
// Pair (i, i + hd/2) of each head is rotated by angle (pos0 + t) * inv_freq[i], i < hd/2.
void rope_forward(float* x, const float* inv_freq, int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0);
void rope_forward_ref(float* x, const float* inv_freq, int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0);
// RoPE is a rotation, so its backward is the inverse rotation, in place on the gradient dx (B, T, H, hd).
void rope_backward(float* dx, const float* inv_freq, int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0);
void rope_backward_ref(float* dx, const float* inv_freq, int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0);

// ---- causal attention with grouped-query heads ---------------------------------------------------
// The KV head query head h reads: consecutive query heads share one KV head (HF's repeat_interleave).
// The attention kernels and the dependency groups of structured pruning both use this mapping.
inline int64_t kv_head_of(int64_t h, int64_t Hq, int64_t Hkv) { return h / (Hq / Hkv); }

// q (B, T, Hq, hd) for absolute positions pos0..pos0+T-1; k, v (B, S_cap, Hkv, hd) hold keys/values
// for positions 0..pos0+T-1 (S_cap >= pos0+T is the buffer's capacity). Query head h uses KV head
// kv_head_of(h, Hq, Hkv). out (B, T, Hq, hd). att (B, Hq, T, pos0+T): the softmax probabilities, written
// when not null (training keeps them for the backward pass). Scale 1/sqrt(hd).
void attention_forward(float* out, float* att, const float* q, const float* k, const float* v, int64_t B, int64_t T,
                       int64_t S_cap, int64_t pos0, int64_t Hq, int64_t Hkv, int64_t hd);
void attention_forward_ref(float* out, float* att, const float* q, const float* k, const float* v, int64_t B, int64_t T,
                           int64_t S_cap, int64_t pos0, int64_t Hq, int64_t Hkv, int64_t hd);
// Backward of the training case (pos0 = 0, S_cap = T) from the saved probabilities att (B, Hq, T, T):
// dq (B, T, Hq, hd), dk, dv (B, T, Hkv, hd) += ...; with GQA, dk/dv of a KV head accumulate over the
// query heads of its group. dout (B, T, Hq, hd).
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* att, const float* q,
                        const float* k, const float* v, int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t hd);
void attention_backward_ref(float* dq, float* dk, float* dv, const float* dout, const float* att, const float* q,
                            const float* k, const float* v, int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t hd);

// ---- SwiGLU: out (N) = silu(gate) * up -----------------------------------------------------------
void swiglu_forward(float* out, const float* gate, const float* up, int64_t N);
void swiglu_forward_ref(float* out, const float* gate, const float* up, int64_t N);
// dgate (N) += dout * up * silu'(gate); dup (N) += dout * silu(gate)
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t N);
void swiglu_backward_ref(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t N);

// ---- float64 linear algebra (rotations, PCA) ------------------------------------------------------
// xtx (cols, cols) upper triangle += x^T x for x (rows, cols) f32, accumulated in double (the lower
// triangle is not touched).
void xtx_accumulate_f64(double* xtx, const float* x, int64_t rows, int64_t cols);
void xtx_accumulate_f64_ref(double* xtx, const float* x, int64_t rows, int64_t cols);
// Eigendecomposition of the symmetric matrix a (n, n), read from its upper triangle: on return
// column j of a (row-major) is the unit eigenvector of values[j], in descending order of values.
void symmetric_eigen(double* a, double* values, int64_t n);

// ---- elementwise -----------------------------------------------------------------------------------
void add_inplace(float* x, const float* y, int64_t N);  // x += y

// ---- log-softmax over rows: out (N, V) = logits - logsumexp(logits) --------------------------------
void log_softmax_forward(float* out, const float* logits, int64_t N, int64_t V);
void log_softmax_forward_ref(float* out, const float* logits, int64_t N, int64_t V);

// ---- cross-entropy: losses (N) = -log softmax(logits)[target]; targets < 0 are ignored (loss 0) ---
void cross_entropy_forward(float* losses, const float* logits, const int32_t* targets, int64_t N, int64_t V);
void cross_entropy_forward_ref(float* losses, const float* logits, const int32_t* targets, int64_t N, int64_t V);
// dlogits (N, V) += dlosses[n] * (softmax(logits[n]) - onehot(targets[n])); rows with targets < 0 get
// nothing. dlosses (N) is d(total loss)/d(losses[n]): 1/count for a mean over `count` targets.
void cross_entropy_backward(float* dlogits, const float* dlosses, const float* logits, const int32_t* targets,
                            int64_t N, int64_t V);
void cross_entropy_backward_ref(float* dlogits, const float* dlosses, const float* logits, const int32_t* targets,
                                int64_t N, int64_t V);

// ---- KL(p || q) per row, p = softmax(p_logits / temp), q = softmax(q_logits / temp) ---------------
void kl_div_forward(float* kl, const float* p_logits, const float* q_logits, int64_t N, int64_t V, float temp);
void kl_div_forward_ref(float* kl, const float* p_logits, const float* q_logits, int64_t N, int64_t V, float temp);
// Gradient w.r.t. q's logits only (p is the fixed teacher): dq_logits (N, V) += dkl[n] * (q - p) / temp.
void kl_div_backward(float* dq_logits, const float* dkl, const float* p_logits, const float* q_logits, int64_t N,
                     int64_t V, float temp);
void kl_div_backward_ref(float* dq_logits, const float* dkl, const float* p_logits, const float* q_logits, int64_t N,
                         int64_t V, float temp);

}  // namespace sec
