// Eq. 1 of the SNT paper, f(x) = prelu(x - gamma, beta) + zeta per channel, as one-pass CPU loops.
//
// Built at first use by snt_search/layers/eq1_kernels.py (g++ -O3 -march=native -fopenmp) and
// called through ctypes; see that module for the contract and why this is hand-written.
//
// Tensors are 3-D views [B, M, C] ("channels last": NHWC maps seen as [B, HW, C], tokens
// [B, N, C]) or [B, C, M] ("channels first": NCHW maps seen as [B, C, HW]), contiguous, of
// float32 or bfloat16 (raw uint16_t). Parameters are float32 [C]. All arithmetic is float32.
//
// The backward pass reads the incoming gradient and the saved tensor once, writes grad_x, and
// accumulates, per sample and channel, sum(grad where x > gamma), sum(grad) and
// sum(grad * (x - gamma) where x <= gamma); from these come the gradients of gamma, beta and
// zeta, summed over the batch into out[3][C] (gamma, beta, zeta).

#include <cstdint>
#include <cstring>
#include <vector>

namespace {

constexpr int64_t kBlock = 64;

inline float load(float v) { return v; }

inline float load(uint16_t v) {
  uint32_t u = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline void store(float* p, float v) { *p = v; }

inline void store(uint16_t* p, float v) {  // round to nearest even, NaN stays a quiet NaN
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  *p = static_cast<uint16_t>(v != v ? 0x7FC0u : rounded);
}

// out may alias x (the in-place variant).
template <typename T>
void forward(const T* x, T* out, const float* gamma, const float* beta, const float* zeta,
             int64_t B, int64_t M, int64_t C, bool channels_last, int threads) {
  if (channels_last) {
    const int64_t rows = B * M;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * C;
      T* o = out + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const float y = load(xr[c]) - gamma[c];
        store(o + c, (y > 0.f ? y : y * beta[c]) + zeta[c]);
      }
    }
  } else {
    const int64_t rows = B * C;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t c = r % C;
      const float g = gamma[c], b = beta[c], z = zeta[c];
      const T* xr = x + r * M;
      T* o = out + r * M;
#pragma omp simd
      for (int64_t m = 0; m < M; ++m) {
        const float y = load(xr[m]) - g;
        store(o + m, (y > 0.f ? y : y * b) + z);
      }
    }
  }
}

// src is x (shift = gamma) or, for the in-place variant, the output (shift = zeta, beta > 0):
// then y = out - zeta equals x - gamma where positive and beta * (x - gamma) elsewhere, so the
// negative-side sum is divided by beta at the end.
template <typename T>
void backward(const T* grad, const T* src, T* grad_x, float* out, const float* shift,
              const float* beta, int64_t B, int64_t M, int64_t C, bool channels_last,
              bool from_output, int threads) {
  std::vector<float> part(3 * B * C);  // [B][3][C]: sum(grad, pos), sum(grad), sum(grad*y, neg)
  if (channels_last) {
    // Blocks of kBlock channels, so that their three sums stay in registers over the m loop.
    const int64_t blocks = (C + kBlock - 1) / kBlock;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < B * blocks; ++r) {
      const int64_t b = r / blocks, c0 = (r % blocks) * kBlock;
      const int64_t n = C - c0 < kBlock ? C - c0 : kBlock;
      float pos_g[kBlock] = {}, all_g[kBlock] = {}, neg_gy[kBlock] = {};
      for (int64_t m = 0; m < M; ++m) {
        const int64_t off = (b * M + m) * C + c0;
        const T* gr = grad + off;
        const T* s = src + off;
        T* gx = grad_x + off;
#pragma omp simd
        for (int64_t c = 0; c < n; ++c) {
          const float g = load(gr[c]);
          const float y = load(s[c]) - shift[c0 + c];
          const bool pos = y > 0.f;
          store(gx + c, pos ? g : g * beta[c0 + c]);
          pos_g[c] += pos ? g : 0.f;
          all_g[c] += g;
          neg_gy[c] += pos ? 0.f : g * y;
        }
      }
      float* p = part.data() + 3 * b * C + c0;
      for (int64_t c = 0; c < n; ++c) {
        p[c] = pos_g[c];
        p[C + c] = all_g[c];
        p[2 * C + c] = neg_gy[c];
      }
    }
  } else {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < B * C; ++r) {
      const int64_t b = r / C, c = r % C;
      const float sh = shift[c], bc = beta[c];
      const T* gr = grad + r * M;
      const T* s = src + r * M;
      T* gx = grad_x + r * M;
      float pos_g = 0.f, all_g = 0.f, neg_gy = 0.f;
#pragma omp simd reduction(+ : pos_g, all_g, neg_gy)
      for (int64_t m = 0; m < M; ++m) {
        const float g = load(gr[m]);
        const float y = load(s[m]) - sh;
        const bool pos = y > 0.f;
        store(gx + m, pos ? g : g * bc);
        pos_g += pos ? g : 0.f;
        all_g += g;
        neg_gy += pos ? 0.f : g * y;
      }
      float* p = part.data() + 3 * b * C;
      p[c] = pos_g;
      p[C + c] = all_g;
      p[2 * C + c] = neg_gy;
    }
  }
  for (int64_t c = 0; c < 3 * C; ++c) out[c] = 0.f;
  for (int64_t b = 0; b < B; ++b) {
    const float* p = part.data() + 3 * b * C;
    for (int64_t c = 0; c < C; ++c) {
      const float bc = beta[c];
      out[c] -= p[c] + bc * (p[C + c] - p[c]);              // d/dgamma = -grad_x
      out[C + c] += from_output ? p[2 * C + c] / bc : p[2 * C + c];  // d/dbeta
      out[2 * C + c] += p[C + c];                           // d/dzeta = grad
    }
  }
}

}  // namespace

extern "C" {

void eq1_forward_f32(const float* x, float* out, const float* gamma, const float* beta,
                     const float* zeta, int64_t B, int64_t M, int64_t C, int channels_last,
                     int threads) {
  forward(x, out, gamma, beta, zeta, B, M, C, channels_last != 0, threads);
}

void eq1_forward_bf16(const uint16_t* x, uint16_t* out, const float* gamma, const float* beta,
                      const float* zeta, int64_t B, int64_t M, int64_t C, int channels_last,
                      int threads) {
  forward(x, out, gamma, beta, zeta, B, M, C, channels_last != 0, threads);
}

void eq1_backward_f32(const float* grad, const float* src, float* grad_x, float* out,
                      const float* shift, const float* beta, int64_t B, int64_t M, int64_t C,
                      int channels_last, int from_output, int threads) {
  backward(grad, src, grad_x, out, shift, beta, B, M, C, channels_last != 0, from_output != 0,
           threads);
}

void eq1_backward_bf16(const uint16_t* grad, const uint16_t* src, uint16_t* grad_x, float* out,
                       const float* shift, const float* beta, int64_t B, int64_t M, int64_t C,
                       int channels_last, int from_output, int threads) {
  backward(grad, src, grad_x, out, shift, beta, B, M, C, channels_last != 0, from_output != 0,
           threads);
}

}  // extern "C"
