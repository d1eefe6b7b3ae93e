// Eq. 1 of the SNT paper, f(x) = prelu(x - gamma, beta) + zeta per channel, as one-pass CPU loops.
//
// Built at first use by snt_search/layers/eq1_kernels.py (g++ -O3 -march=native -fopenmp,
// 512-bit vectors preferred where the CPU has AVX-512) and
// called through ctypes; see that module for the contract and why this is hand-written.
//
// Tensors are 3-D views [B, M, C] ("channels last": NHWC maps seen as [B, HW, C], tokens
// [B, N, C]) or [B, C, M] ("channels first": NCHW maps seen as [B, C, HW]), contiguous, of
// float32 or bfloat16 (raw uint16_t). Parameters are float32 [C]. All arithmetic is float32.
//
// The backward pass reads the incoming gradient and the saved tensor once, writes grad_x, and
// accumulates, per channel, sum(grad where x > gamma), sum(grad) and
// sum(grad * (x - gamma) where x <= gamma) (per sample or per thread, in registers where the
// channel count is a multiple of 16); from these come the gradients of gamma, beta and zeta,
// summed over the batch into out[3][C] (gamma, beta, zeta).
//
// eq1_ln_*: Eq. 1 followed by LayerNorm over each row, fused (snt_search/layers/eq1_norm.py).

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__AVX512BF16__) && defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

constexpr int64_t kChunk = 256;  // values per float32 scratch chunk
constexpr int64_t kTile = 32768;  // values per row tile of the blocked backward pass
constexpr int64_t kStreamBytes = 8 << 20;  // larger tensors stream from DRAM: see backward_rows

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

// Results are computed in float32 into a chunk of at most kChunk values: straight into the
// destination for float32, into a buffer for bfloat16, which flush() then rounds in one go
// (with AVX512-BF16's vcvtneps2bf16 where the CPU has it: the rounding was a third of the time).
template <typename T>
inline float* chunk(T* dst, float* buf) {
  if constexpr (std::is_same_v<T, float>) {
    return dst;
  } else {
    return buf;
  }
}

template <typename T>
inline void flush(T* dst, const float* buf, int64_t n) {
  if constexpr (!std::is_same_v<T, float>) {
    int64_t i = 0;
#if defined(__AVX512BF16__) && defined(__AVX512F__)
    for (; i + 16 <= n; i += 16) {
      const __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(buf + i));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), reinterpret_cast<const __m256i&>(h));
    }
#endif
#pragma omp simd
    for (int64_t j = i; j < n; ++j) store(dst + j, buf[j]);
  }
}

// One chunk of n <= kChunk values of the forward pass, parameters per value (g, b, z: length n).
template <typename T>
inline void forward_chunk(const T* x, T* out, const float* g, const float* b, const float* z,
                          int64_t n) {
  float buf[kChunk];
  float* o = chunk(out, buf);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const float y = load(x[j]) - g[j];
    o[j] = (y > 0.f ? y : y * b[j]) + z[j];
  }
  flush(out, buf, n);
}

// One chunk of the backward pass: writes grad_x and adds to the three sums per value.
template <typename T>
inline void backward_chunk(const T* grad, const T* src, T* grad_x, const float* shift,
                           const float* beta, int64_t n, float* pos_g, float* all_g,
                           float* neg_gy) {
  float buf[kChunk];
  float* gx = chunk(grad_x, buf);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const float g = load(grad[j]);
    const float y = load(src[j]) - shift[j];
    const bool pos = y > 0.f;
    gx[j] = pos ? g : g * beta[j];
    pos_g[j] += pos ? g : 0.f;
    all_g[j] += g;
    neg_gy[j] += pos ? 0.f : g * y;
  }
  flush(grad_x, buf, n);
}

// The same for one channel's values (channels-first rows): scalar parameters, sums in registers.
template <typename T>
inline void forward_chunk(const T* x, T* out, float g, float b, float z, int64_t n) {
  float buf[kChunk];
  float* o = chunk(out, buf);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const float y = load(x[j]) - g;
    o[j] = (y > 0.f ? y : y * b) + z;
  }
  flush(out, buf, n);
}

template <typename T>
inline void backward_chunk(const T* grad, const T* src, T* grad_x, float shift, float beta,
                           int64_t n, float& pos_g, float& all_g, float& neg_gy) {
  float buf[kChunk];
  float* gx = chunk(grad_x, buf);
  float p = 0.f, a = 0.f, ng = 0.f;
#pragma omp simd reduction(+ : p, a, ng)
  for (int64_t j = 0; j < n; ++j) {
    const float g = load(grad[j]);
    const float y = load(src[j]) - shift;
    const bool pos = y > 0.f;
    gx[j] = pos ? g : g * beta;
    p += pos ? g : 0.f;
    a += g;
    ng += pos ? 0.f : g * y;
  }
  flush(grad_x, buf, n);
  pos_g += p, all_g += a, neg_gy += ng;
}

// Channels-last backward with the three sums in registers: W = 16 V channels (V vectors of 16
// floats, GCC vector extensions: one AVX-512 register each) down M rows, adding to p[3][C].
// Accumulating chunk-sized sum arrays in memory instead (the generic path below) costs three
// loads and stores per value more, and took the backward pass to 2x ReLU's.
typedef float vf __attribute__((vector_size(64)));
typedef uint16_t vh __attribute__((vector_size(32)));
typedef uint32_t vu __attribute__((vector_size(64)));

inline vf vload(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline vf vload(const uint16_t* p) {  // bfloat16 -> float32: the 16 bits on top
  vh h;
  std::memcpy(&h, p, sizeof h);
  const vu u = __builtin_convertvector(h, vu) << 16;
  vf v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

inline void vstore(float* p, vf v) { std::memcpy(p, &v, sizeof v); }

inline void vstore(uint16_t* p, vf v) {
  float buf[16];
  std::memcpy(buf, &v, sizeof buf);
  flush(p, buf, 16);
}

template <typename T, int V>
void backward_block(const T* grad, const T* src, T* grad_x, const float* shift,
                    const float* beta, int64_t M, int64_t C, float* p) {
  const vf zero = {};
  vf sh[V], be[V], pos_g[V], all_g[V], neg_gy[V];
  for (int v = 0; v < V; ++v) {
    sh[v] = vload(shift + 16 * v), be[v] = vload(beta + 16 * v);
    pos_g[v] = vload(p + 16 * v), all_g[v] = vload(p + C + 16 * v);
    neg_gy[v] = vload(p + 2 * C + 16 * v);
  }
  for (int64_t m = 0; m < M; ++m) {
    const int64_t off = m * C;
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      const vf g = vload(grad + off + 16 * v);
      const vf y = vload(src + off + 16 * v) - sh[v];
      const auto pos = y > zero;
      vstore(grad_x + off + 16 * v, pos ? g : g * be[v]);
      pos_g[v] += pos ? g : zero;
      all_g[v] += g;
      neg_gy[v] += pos ? zero : g * y;
    }
  }
  for (int v = 0; v < V; ++v) {
    vstore(p + 16 * v, pos_g[v]);
    vstore(p + C + 16 * v, all_g[v]);
    vstore(p + 2 * C + 16 * v, neg_gy[v]);
  }
}

// The same row after row, the sums in p (L1-resident) instead of registers, memory read in
// order: for rows of over 64 channels in tensors too large for the caches (kStreamBytes), where
// the hardware prefetchers keep up with one stream better than with a tile's blocks (faster in
// development runs on Mixer-S's [128, 64, 512] float32 channel MLP; on cache-sized maps of
// 128-1024 channels blocks were faster, see docs/transforms.md).
template <typename T>
void backward_rows(const T* grad, const T* src, T* grad_x, const float* shift, const float* beta,
                   int64_t M, int64_t C, float* p) {
  const vf zero = {};
  for (int64_t m = 0; m < M; ++m) {
    const int64_t off = m * C;
    for (int64_t c = 0; c < C; c += 16) {
      const vf g = vload(grad + off + c);
      const vf y = vload(src + off + c) - vload(shift + c);
      const auto pos = y > zero;
      vstore(grad_x + off + c, pos ? g : g * vload(beta + c));
      vstore(p + c, vload(p + c) + (pos ? g : zero));
      vstore(p + C + c, vload(p + C + c) + g);
      vstore(p + 2 * C + c, vload(p + 2 * C + c) + (pos ? zero : g * y));
    }
  }
}

// Channels-last rows shorter than a chunk are processed k = kChunk / C rows at a time, with the
// parameters tiled k times, so the loops run over kChunk values instead of C.
std::vector<float> tile(const float* p, int64_t C, int64_t L) {
  std::vector<float> t(L);
  for (int64_t j = 0; j < L; ++j) t[j] = p[j % C];
  return t;
}

// out may alias x (the in-place variant).
template <typename T>
void forward(const T* x, T* out, const float* gamma, const float* beta, const float* zeta,
             int64_t B, int64_t M, int64_t C, bool channels_last, int threads) {
  if (channels_last && C < kChunk) {
    const int64_t L = (kChunk / C) * C, total = B * M * C;
    const std::vector<float> g = tile(gamma, C, L), b = tile(beta, C, L), z = tile(zeta, C, L);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t off = 0; off < total; off += L) {
      const int64_t n = total - off < L ? total - off : L;
      forward_chunk(x + off, out + off, g.data(), b.data(), z.data(), n);
    }
  } else if (channels_last) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < B * M; ++r) {
      for (int64_t c0 = 0; c0 < C; c0 += kChunk) {
        const int64_t n = C - c0 < kChunk ? C - c0 : kChunk, off = r * C + c0;
        forward_chunk(x + off, out + off, gamma + c0, beta + c0, zeta + c0, n);
      }
    }
  } else {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < B * C; ++r) {
      const int64_t c = r % C;
      for (int64_t m0 = 0; m0 < M; m0 += kChunk) {
        const int64_t n = M - m0 < kChunk ? M - m0 : kChunk, off = r * M + m0;
        forward_chunk(x + off, out + off, gamma[c], beta[c], zeta[c], n);
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
  // partial sums [parts][3][C] of grad where y > 0, grad, and grad * y where y <= 0: one per
  // sample, or on the blocked path one per thread (its share of the samples)
  int64_t parts = B;
  std::vector<float> part;
  if (channels_last && C % 16 == 0) {
    // a thread's share of the rows (its samples, which lie one after the other) in tiles of
    // about kTile values, each swept block by block, so the rows of a tile stay in cache while
    // its blocks go by (a block walked down all rows far apart was 2-5x slower on 1-2 KiB
    // rows); tiles span samples, so few-row maps (4x4, 2x2) still give each block many rows
    const int V = C % 64 == 0 ? 4 : C % 32 == 0 ? 2 : 1;
    const int64_t W = 16 * V, rows = C >= kTile ? 1 : kTile / C;
    parts = threads < B ? (threads > 0 ? threads : 1) : B;
    part.assign(3 * parts * C, 0.f);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < parts; ++i) {
      float* p = part.data() + 3 * i * C;
      const int64_t r1 = B * (i + 1) / parts * M;
      if (C > 64 && B * M * C * int64_t(sizeof(T)) > kStreamBytes) {
        const int64_t r0 = B * i / parts * M;
        backward_rows(grad + r0 * C, src + r0 * C, grad_x + r0 * C, shift, beta, r1 - r0, C, p);
        continue;
      }
      for (int64_t r0 = B * i / parts * M; r0 < r1; r0 += rows) {
        const int64_t n = r1 - r0 < rows ? r1 - r0 : rows;
        for (int64_t c0 = 0; c0 < C; c0 += W) {
          const int64_t off = r0 * C + c0;
          const T *g = grad + off, *s = src + off;
          T* gx = grad_x + off;
          if (V == 4)
            backward_block<T, 4>(g, s, gx, shift + c0, beta + c0, n, C, p + c0);
          else if (V == 2)
            backward_block<T, 2>(g, s, gx, shift + c0, beta + c0, n, C, p + c0);
          else
            backward_block<T, 1>(g, s, gx, shift + c0, beta + c0, n, C, p + c0);
        }
      }
    }
  } else if (channels_last && C < kChunk) {
    part.assign(3 * B * C, 0.f);
    const int64_t k = kChunk / C, L = k * C;
    const std::vector<float> sh = tile(shift, C, L), be = tile(beta, C, L);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      float acc[3][kChunk] = {};
      for (int64_t m0 = 0; m0 < M; m0 += k) {
        const int64_t n = (M - m0 < k ? M - m0 : k) * C, off = (b * M + m0) * C;
        backward_chunk(grad + off, src + off, grad_x + off, sh.data(), be.data(), n, acc[0],
                       acc[1], acc[2]);
      }
      float* p = part.data() + 3 * b * C;
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t r = 0; r < k; ++r)
          for (int64_t c = 0; c < C; ++c) p[i * C + c] += acc[i][r * C + c];
    }
  } else if (channels_last) {  // tasks of kChunk channels of one sample
    part.assign(3 * B * C, 0.f);
    const int64_t blocks = (C + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t t = 0; t < B * blocks; ++t) {
      const int64_t b = t / blocks, c0 = (t % blocks) * kChunk;
      const int64_t n = C - c0 < kChunk ? C - c0 : kChunk;
      float acc[3][kChunk] = {};
      for (int64_t m = 0; m < M; ++m) {
        const int64_t off = (b * M + m) * C + c0;
        backward_chunk(grad + off, src + off, grad_x + off, shift + c0, beta + c0, n, acc[0],
                       acc[1], acc[2]);
      }
      float* p = part.data() + 3 * b * C + c0;
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < n; ++j) p[i * C + j] = acc[i][j];
    }
  } else {
    part.assign(3 * B * C, 0.f);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < B * C; ++r) {
      const int64_t b = r / C, c = r % C;
      float* p = part.data() + 3 * b * C;
      for (int64_t m0 = 0; m0 < M; m0 += kChunk) {
        const int64_t n = M - m0 < kChunk ? M - m0 : kChunk, off = r * M + m0;
        backward_chunk(grad + off, src + off, grad_x + off, shift[c], beta[c], n, p[c],
                       p[C + c], p[2 * C + c]);
      }
    }
  }
  for (int64_t c = 0; c < 3 * C; ++c) out[c] = 0.f;
  for (int64_t i = 0; i < parts; ++i) {
    const float* p = part.data() + 3 * i * C;
    for (int64_t c = 0; c < C; ++c) {
      const float bc = beta[c];
      out[c] -= p[c] + bc * (p[C + c] - p[c]);                       // d/dgamma = -grad_x
      out[C + c] += from_output ? p[2 * C + c] / bc : p[2 * C + c];  // d/dbeta
      out[2 * C + c] += p[C + c];                                    // d/dzeta = grad
    }
  }
}

// Eq. 1 followed by LayerNorm over the C channels of each row (a pre-activated pre-norm block:
// norm(act(x))), float32 rows [R][C]. Forward: a = eq1(x), y = (a - mean) * rstd * w + b, and
// mean/rstd per row are saved. Backward recomputes a from x and returns dx, the LayerNorm's
// weight and bias gradients and Eq. 1's three sums: one pass over x and dy instead of the
// four passes of the two layers apart (each writing and reading back the intermediate).
void eq1_ln_forward(const float* x, float* y, float* mean, float* rstd, const float* gamma,
                    const float* beta, const float* zeta, const float* w, const float* b,
                    int64_t R, int64_t C, float eps, int threads) {
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> a(C);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < R; ++r) {
      const float* xr = x + r * C;
      float sum = 0.f;
#pragma omp simd reduction(+ : sum)
      for (int64_t c = 0; c < C; ++c) {
        const float v = xr[c] - gamma[c];
        a[c] = (v > 0.f ? v : v * beta[c]) + zeta[c];
        sum += a[c];
      }
      const float mu = sum / C;
      float var = 0.f;
#pragma omp simd reduction(+ : var)
      for (int64_t c = 0; c < C; ++c) var += (a[c] - mu) * (a[c] - mu);
      const float rs = 1.f / std::sqrt(var / C + eps);
      float* yr = y + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) yr[c] = (a[c] - mu) * rs * w[c] + b[c];
      mean[r] = mu, rstd[r] = rs;
    }
  }
}

// out: dw[C], db[C], then Eq. 1's gamma, beta, zeta gradients [3][C].
void eq1_ln_backward(const float* dy, const float* x, const float* mean, const float* rstd,
                     float* dx, float* out, const float* gamma, const float* beta,
                     const float* zeta, const float* w, int64_t R, int64_t C, int threads) {
  const int parts = threads > 0 ? threads : 1;
  std::vector<float> part(5 * parts * C, 0.f);  // [parts][dw, db, pos_g, all_g, neg_gy][C]
#pragma omp parallel num_threads(parts)
  {
    std::vector<float> ah(C), g(C);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < parts; ++i) {
      float* p = part.data() + 5 * i * C;
      for (int64_t r = R * i / parts; r < R * (i + 1) / parts; ++r) {
        const float *xr = x + r * C, *dyr = dy + r * C;
        const float mu = mean[r], rs = rstd[r];
        float s1 = 0.f, s2 = 0.f;
#pragma omp simd reduction(+ : s1, s2)
        for (int64_t c = 0; c < C; ++c) {
          const float v = xr[c] - gamma[c];
          ah[c] = ((v > 0.f ? v : v * beta[c]) + zeta[c] - mu) * rs;
          g[c] = dyr[c] * w[c];
          s1 += g[c];
          s2 += g[c] * ah[c];
          p[c] += dyr[c] * ah[c];
          p[C + c] += dyr[c];
        }
        s1 /= C, s2 /= C;
        float* dxr = dx + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const float da = rs * (g[c] - s1 - ah[c] * s2);
          const float v = xr[c] - gamma[c];
          const bool pos = v > 0.f;
          dxr[c] = pos ? da : da * beta[c];
          p[2 * C + c] += pos ? da : 0.f;
          p[3 * C + c] += da;
          p[4 * C + c] += pos ? 0.f : da * v;
        }
      }
    }
  }
  for (int64_t c = 0; c < 5 * C; ++c) out[c] = 0.f;
  for (int i = 0; i < parts; ++i) {
    const float* p = part.data() + 5 * i * C;
    for (int64_t c = 0; c < C; ++c) {
      out[c] += p[c];
      out[C + c] += p[C + c];
      out[2 * C + c] -= p[2 * C + c] + beta[c] * (p[3 * C + c] - p[2 * C + c]);  // d/dgamma
      out[3 * C + c] += p[4 * C + c];                                             // d/dbeta
      out[4 * C + c] += p[3 * C + c];                                             // d/dzeta
    }
  }
}

}  // namespace

extern "C" {

void eq1_ln_forward_f32(const float* x, float* y, float* mean, float* rstd, const float* gamma,
                        const float* beta, const float* zeta, const float* w, const float* b,
                        int64_t R, int64_t C, float eps, int threads) {
  eq1_ln_forward(x, y, mean, rstd, gamma, beta, zeta, w, b, R, C, eps, threads);
}

void eq1_ln_backward_f32(const float* dy, const float* x, const float* mean, const float* rstd,
                         float* dx, float* out, const float* gamma, const float* beta,
                         const float* zeta, const float* w, int64_t R, int64_t C, int threads) {
  eq1_ln_backward(dy, x, mean, rstd, dx, out, gamma, beta, zeta, w, R, C, threads);
}


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
