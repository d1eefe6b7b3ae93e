// Eq. 1 of the SNT paper as a PyTorch operator with its autograd node in C++:
// torch.ops.snt_search.eq1 (out of place) and eq1_ (in place, for beta > 0).
//
// Built at first use by snt_search/layers/eq1_op.py against the installed torch's headers, and
// loaded with torch.ops.load_library. The loops are eq1.cpp's, compiled into this library; what
// this file adds is the dispatch around them that LBiasPReLU's Python autograd.Function did:
// checking the layout, allocating, saving tensors, and the backward node, in C++ (a ResNet-20
// step makes 19 such calls; see eq1_op.py for what it saved).
//
// Contract (the same as eq1_kernels.py's): x is [B, C, *spatial] (tokens = false) or
// [B, *tokens, C] (tokens = true), dense in memory; gamma, beta, zeta are [C]. CPU float32 and
// bfloat16 in the layouts eq1.cpp streams through take the loops; anything else takes the eager
// formulas. When the backward pass itself is recorded (create_graph=True, as Hessian-vector
// products do), it is computed with differentiable ATen ops, so double backward is exact.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "eq1.cpp"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct Layout {
  bool native = false;  // whether eq1.cpp's loops can take the tensor
  int64_t B = 0, M = 0, C = 0;
  bool channels_last = false;
};

// (B, M, C, channels_last) when t is [B][M][C] or [B][C][M] in memory (eq1_kernels._layout).
Layout layout_of(const at::Tensor& t, bool tokens) {
  Layout L;
  const auto dtype = t.scalar_type();
  if (!t.device().is_cpu() || (dtype != at::kFloat && dtype != at::kBFloat16) || t.dim() < 2 ||
      t.numel() == 0)
    return L;
  const int64_t cdim = tokens ? t.dim() - 1 : 1;
  L.B = t.size(0), L.C = t.size(cdim), L.M = t.numel() / (L.B * L.C);
  L.native = true;
  if (t.is_contiguous()) {
    L.channels_last = tokens || L.M == 1;
  } else if (!tokens && t.dim() == 4 && t.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    L.channels_last = true;
  } else if (!t.is_non_overlapping_and_dense() || (L.B > 1 && t.stride(0) != L.M * L.C)) {
    L.native = false;
  } else if (L.M == 1 || (L.C > 1 && t.stride(cdim) == 1)) {
    L.channels_last = true;
  } else if (!(L.C == 1 || t.stride(cdim) == L.M)) {
    L.native = false;
  }
  return L;
}

// A [C] parameter in x's dtype, viewed to broadcast over x's channel dim.
at::Tensor bcast(const at::Tensor& p, const at::Tensor& x, bool tokens) {
  const at::Tensor q = p.to(x.scalar_type());
  if (tokens) return q;
  std::vector<int64_t> shape(x.dim() - 1, 1);
  shape[0] = -1;
  return q.view(shape);
}

at::Tensor f32(const at::Tensor& p) { return p.to(at::kFloat).contiguous(); }

at::Tensor forward_eager(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta,
                         const at::Tensor& zeta, bool tokens) {
  const at::Tensor y = x - bcast(gamma, x, tokens);
  return at::where(y > 0, y, y * bcast(beta, x, tokens)) + bcast(zeta, x, tokens);
}

// [3, C]: the elementwise gradient maps of gamma, beta, zeta summed over all but channels.
at::Tensor channel_sums(const at::Tensor& g_gamma, const at::Tensor& g_beta,
                        const at::Tensor& g_zeta, bool tokens) {
  const int64_t n = g_zeta.dim();
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < n; ++d)
    if (tokens ? d != n - 1 : d != 1) dims.push_back(d);
  const auto acc = at::promote_types(g_zeta.scalar_type(), at::kFloat);
  return at::stack({g_gamma.sum(dims, false, acc), g_beta.sum(dims, false, acc),
                    g_zeta.sum(dims, false, acc)});
}

// Differentiable backward from x (shift = gamma) or from the output (shift = zeta, beta > 0).
std::pair<at::Tensor, at::Tensor> backward_eager(const at::Tensor& grad, const at::Tensor& src,
                                                 const at::Tensor& shift, const at::Tensor& beta,
                                                 bool tokens, bool from_output) {
  const at::Tensor b = bcast(beta, src, tokens);
  const at::Tensor y = src - bcast(shift, src, tokens);
  const at::Tensor pos = y > 0;
  const at::Tensor grad_x = at::where(pos, grad, grad * b);
  const at::Tensor gy = from_output ? grad * y / b : grad * y;
  const at::Tensor grad_beta = at::where(pos, at::zeros_like(y), gy);
  return {grad_x, channel_sums(-grad_x, grad_beta, grad, tokens)};
}

void forward_native(const at::Tensor& x, at::Tensor& out, const at::Tensor& gamma,
                    const at::Tensor& beta, const at::Tensor& zeta, const Layout& L) {
  const at::Tensor g = f32(gamma), b = f32(beta), z = f32(zeta);
  const int threads = at::get_num_threads();
  if (x.scalar_type() == at::kFloat)
    forward(x.data_ptr<float>(), out.data_ptr<float>(), g.data_ptr<float>(), b.data_ptr<float>(),
            z.data_ptr<float>(), L.B, L.M, L.C, L.channels_last, threads);
  else
    forward(reinterpret_cast<const uint16_t*>(x.data_ptr()),
            reinterpret_cast<uint16_t*>(out.data_ptr()), g.data_ptr<float>(),
            b.data_ptr<float>(), z.data_ptr<float>(), L.B, L.M, L.C, L.channels_last, threads);
}

std::pair<at::Tensor, at::Tensor> backward_native(at::Tensor grad, const at::Tensor& src,
                                                  const at::Tensor& shift,
                                                  const at::Tensor& beta, const Layout& L,
                                                  bool from_output) {
  if (grad.strides() != src.strides() || grad.scalar_type() != src.scalar_type())
    grad = at::empty_like(src).copy_(grad);  // dense src: empty_like keeps its strides
  at::Tensor grad_x = at::empty_like(src);
  at::Tensor sums = at::empty({3, L.C}, src.options().dtype(at::kFloat));
  const at::Tensor sh = f32(shift), b = f32(beta);
  const int threads = at::get_num_threads();
  if (src.scalar_type() == at::kFloat)
    backward(grad.data_ptr<float>(), src.data_ptr<float>(), grad_x.data_ptr<float>(),
             sums.data_ptr<float>(), sh.data_ptr<float>(), b.data_ptr<float>(), L.B, L.M, L.C,
             L.channels_last, from_output, threads);
  else
    backward(reinterpret_cast<const uint16_t*>(grad.data_ptr()),
             reinterpret_cast<const uint16_t*>(src.data_ptr()),
             reinterpret_cast<uint16_t*>(grad_x.data_ptr()), sums.data_ptr<float>(),
             sh.data_ptr<float>(), b.data_ptr<float>(), L.B, L.M, L.C, L.channels_last,
             from_output, threads);
  return {grad_x, sums};
}

// Saved: (x, gamma, beta) out of place; (out, zeta, beta) in place, where x is overwritten and
// y = out - zeta recovers x - gamma (scaled by beta on the negative side).
struct Eq1Function : public torch::autograd::Function<Eq1Function> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor x, const at::Tensor& gamma,
                            const at::Tensor& beta, const at::Tensor& zeta, bool tokens,
                            bool inplace) {
    const Layout L = layout_of(x, tokens);
    at::Tensor out;
    if (inplace) {
      if (L.native)
        forward_native(x, x, gamma, beta, zeta, L);
      else
        x.copy_(forward_eager(x, gamma, beta, zeta, tokens));
      ctx->mark_dirty({x});
      out = x;
      ctx->save_for_backward({out, zeta, beta});
    } else {
      if (L.native) {
        out = at::empty_like(x);
        forward_native(x, out, gamma, beta, zeta, L);
      } else {
        out = forward_eager(x, gamma, beta, zeta, tokens);
      }
      ctx->save_for_backward({x, gamma, beta});
    }
    ctx->saved_data["tokens"] = tokens;
    ctx->saved_data["inplace"] = inplace;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &src = saved[0], &shift = saved[1], &beta = saved[2];
    const bool tokens = ctx->saved_data["tokens"].toBool();
    const bool from_output = ctx->saved_data["inplace"].toBool();
    const Layout L = layout_of(src, tokens);
    const auto [grad_x, sums] =
        at::GradMode::is_enabled() || !L.native
            ? backward_eager(grads[0], src, shift, beta, tokens, from_output)
            : backward_native(grads[0], src, shift, beta, L, from_output);
    const auto param = [&](int64_t i) { return sums[i].to(beta.scalar_type()); };
    return {grad_x, param(0), param(1), param(2), at::Tensor(), at::Tensor()};
  }
};

at::Tensor eq1(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta,
               const at::Tensor& zeta, bool tokens) {
  return Eq1Function::apply(x, gamma, beta, zeta, tokens, false);
}

at::Tensor& eq1_(at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta,
                 const at::Tensor& zeta, bool tokens) {
  Eq1Function::apply(x, gamma, beta, zeta, tokens, true);
  return x;
}

}  // namespace

TORCH_LIBRARY(snt_search, m) {
  m.def("eq1(Tensor x, Tensor gamma, Tensor beta, Tensor zeta, bool tokens) -> Tensor");
  m.def("eq1_(Tensor(a!) x, Tensor gamma, Tensor beta, Tensor zeta, bool tokens) -> Tensor(a!)");
}

TORCH_LIBRARY_IMPL(snt_search, CompositeImplicitAutograd, m) {
  m.impl("eq1", eq1);
  m.impl("eq1_", eq1_);
}
