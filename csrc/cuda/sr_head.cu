// The SR head on CUDA: grouped KxK conv (groups = K joints, padding KS / 2, bias) fused with
// pixel_shuffle(R), forward and backward. Semantics: srpose_fast/ops/sr_head.py (sr_head_reference).
//
// x (N, K*E, H, W), weight (K*RR, E, KS, KS), bias (K*RR,), out (N, K, R*H, R*W), RR = R*R.
// Conv channel j*RR + o (o = dy*R + dx) at (y, x) is out[n, j, y*R + dy, x*R + dx]: the kernels read
// and write that shuffled layout directly, the (N, K*RR, H, W) conv output never exists.
//
// - forward:     a block per (n, joint, 16x16 output tile); the input tile it reads is staged in
//                shared memory a few channels at a time; one thread per output, fp32 accumulation
//                (fp64 for fp64 inputs).
// - grad_input:  a block per (n, joint, channel, 16x16 input tile); grad_out's values around the tile
//                (un-shuffled on load) are staged in shared memory a few sub-pixels at a time; one
//                thread per input pixel.
// - grad_weight: a block per (joint, sub-pixel, channel chunk, split of the N*H*W pixels); per 16x16
//                pixel tile grad_out and the x tiles go to shared memory, each thread owns (channel,
//                tap) sums. Splits write fp32 partials that are summed afterwards (deterministic, no
//                atomics); grad_bias comes from the same grad_out tiles.
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <optional>
#include <tuple>

#include "ops.h"
#include "sr_head_tile.cuh"

namespace srpose_cuda {
namespace {

constexpr int kMaxKernelSize = 31;  // keeps every shared-memory tile within kSmemBudget
constexpr int kMaxItemsPerThread = 4;  // grad_weight: (channel, tap) sums one thread owns; KS*KS <= 4 * 256

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) sr_head_forward_kernel(
    const scalar_t* __restrict__ x, int64_t sxn, int64_t sxc, int64_t sxh, int64_t sxw,
    const scalar_t* __restrict__ weight, const scalar_t* __restrict__ bias, scalar_t* __restrict__ out,
    int K, int E, int H, int W, int R, int KS, int tiles_y, int tiles_x, int span, int c_chunk) {
  using acc_t = at::acc_type<scalar_t, true>;
  extern __shared__ __align__(sizeof(double)) unsigned char smem_raw[];
  acc_t* tile = reinterpret_cast<acc_t*>(smem_raw);

  int64_t block = blockIdx.x;
  const int tile_x = static_cast<int>(block % tiles_x);
  block /= tiles_x;
  const int tile_y = static_cast<int>(block % tiles_y);
  block /= tiles_y;
  const int j = static_cast<int>(block % K);
  const int64_t n = block / K;

  const int RR = R * R;
  const int pad = KS / 2;
  const int OH = H * R;
  const int OW = W * R;
  const int Y0 = tile_y * kTile;
  const int X0 = tile_x * kTile;
  const int Y = Y0 + static_cast<int>(threadIdx.x) / kTile;
  const int X = X0 + static_cast<int>(threadIdx.x) % kTile;
  const bool active = Y < OH && X < OW;
  const int o = (Y % R) * R + X % R;

  const scalar_t* x_joint = x + n * sxn + static_cast<int64_t>(j) * E * sxc;
  const scalar_t* w_out = weight + (static_cast<int64_t>(j) * RR + o) * E * KS * KS;
  // tile row 0 is input row Y0 / R - pad; this output's tap (0, 0) is at tile row Y / R - Y0 / R
  const int row0 = Y0 / R - pad;
  const int col0 = X0 / R - pad;
  const int r = Y / R - Y0 / R;
  const int q = X / R - X0 / R;

  acc_t acc = 0;
  for (int c0 = 0; c0 < E; c0 += c_chunk) {
    const int cn = min(c_chunk, E - c0);
    __syncthreads();  // everyone is done reading the previous chunk
    load_input_tile(tile, x_joint, sxc, sxh, sxw, c0, cn, H, W, row0, col0, span);
    __syncthreads();
    if (active) accumulate_from_tile(acc, tile, w_out, c0, cn, KS, span, r, q);
  }
  if (active) {
    if (bias != nullptr) acc += static_cast<acc_t>(bias[static_cast<int64_t>(j) * RR + o]);
    out[((n * K + j) * OH + Y) * OW + X] = static_cast<scalar_t>(acc);
  }
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) sr_head_grad_input_kernel(
    const scalar_t* __restrict__ grad_out, int64_t sgn, int64_t sgc, int64_t sgh, int64_t sgw,
    const scalar_t* __restrict__ weight, scalar_t* __restrict__ grad_x,
    int K, int E, int H, int W, int R, int KS, int tiles_y, int tiles_x, int span, int o_chunk) {
  // grad_x[n, j*E + c, y, x] = sum_{o, ky, kx} g[o, y - ky + pad, x - kx + pad] * weight[j*RR + o, c, ky, kx]
  // with g[o, cy, cx] = grad_out[n, j, cy*R + o / R, cx*R + o % R], zero outside the H x W map.
  using acc_t = at::acc_type<scalar_t, true>;
  extern __shared__ __align__(sizeof(double)) unsigned char smem_raw[];
  acc_t* tile = reinterpret_cast<acc_t*>(smem_raw);

  int64_t block = blockIdx.x;
  const int tile_x = static_cast<int>(block % tiles_x);
  block /= tiles_x;
  const int tile_y = static_cast<int>(block % tiles_y);
  block /= tiles_y;
  const int c = static_cast<int>(block % E);
  block /= E;
  const int j = static_cast<int>(block % K);
  const int64_t n = block / K;

  const int RR = R * R;
  const int pad = KS / 2;
  const int y0 = tile_y * kTile;
  const int x0 = tile_x * kTile;
  const int ly = static_cast<int>(threadIdx.x) / kTile;
  const int lx = static_cast<int>(threadIdx.x) % kTile;
  const bool active = y0 + ly < H && x0 + lx < W;

  const scalar_t* g_joint = grad_out + n * sgn + j * sgc;
  const scalar_t* w_joint = weight + static_cast<int64_t>(j) * RR * E * KS * KS;
  const int plane = span * span;  // tile[oc][r][q] holds g at (y0 - pad + r, x0 - pad + q)

  acc_t acc = 0;
  for (int o0 = 0; o0 < RR; o0 += o_chunk) {
    const int on = min(o_chunk, RR - o0);
    __syncthreads();
    for (int i = threadIdx.x; i < on * plane; i += kThreads) {
      const int o = o0 + i / plane;
      const int cy = y0 - pad + (i / span) % span;
      const int cx = x0 - pad + i % span;
      acc_t v = 0;
      if (cy >= 0 && cy < H && cx >= 0 && cx < W) {
        v = static_cast<acc_t>(g_joint[(static_cast<int64_t>(cy) * R + o / R) * sgh + (static_cast<int64_t>(cx) * R + o % R) * sgw]);
      }
      tile[i] = v;
    }
    __syncthreads();
    if (active) {
      for (int oc = 0; oc < on; ++oc) {
        const scalar_t* w_oc = w_joint + (static_cast<int64_t>(o0 + oc) * E + c) * KS * KS;
        const acc_t* t = tile + oc * plane;
        for (int ky = 0; ky < KS; ++ky) {
          const int r = ly - ky + KS - 1;  // conv row y - ky + pad, relative to y0 - pad
          for (int kx = 0; kx < KS; ++kx) {
            acc += t[r * span + lx - kx + KS - 1] * static_cast<acc_t>(w_oc[ky * KS + kx]);
          }
        }
      }
    }
  }
  if (active) {
    grad_x[((n * K + j) * E + c) * H * W + static_cast<int64_t>(y0 + ly) * W + x0 + lx] = static_cast<scalar_t>(acc);
  }
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) sr_head_grad_weight_kernel(
    const scalar_t* __restrict__ grad_out, int64_t sgn, int64_t sgc, int64_t sgh, int64_t sgw,
    const scalar_t* __restrict__ x, int64_t sxn, int64_t sxc, int64_t sxh, int64_t sxw,
    at::acc_type<scalar_t, true>* __restrict__ partial_w, at::acc_type<scalar_t, true>* __restrict__ partial_b,
    int N, int K, int E, int H, int W, int R, int KS, int tiles_y, int tiles_x, int n_splits, int c_chunk,
    int n_cchunks, int span) {
  // partial_w[s, j*RR + o, c, ky, kx] = sum over split s's pixels (n, cy, cx) of
  //     g[n, o, cy, cx] * x[n, j*E + c, cy + ky - pad, cx + kx - pad];   partial_b[s, j*RR + o] = sum of g.
  using acc_t = at::acc_type<scalar_t, true>;
  extern __shared__ __align__(sizeof(double)) unsigned char smem_raw[];
  acc_t* g_tile = reinterpret_cast<acc_t*>(smem_raw);  // [kTile][kTile]
  acc_t* x_tile = g_tile + kTile * kTile;               // [c_chunk][span][span]

  int64_t block = blockIdx.x;
  const int split = static_cast<int>(block % n_splits);
  block /= n_splits;
  const int cchunk = static_cast<int>(block % n_cchunks);
  const int jo = static_cast<int>(block / n_cchunks);  // j*RR + o
  const int RR = R * R;
  const int j = jo / RR;
  const int o = jo % RR;
  const int pad = KS / 2;
  const int KK = KS * KS;
  const int c0 = cchunk * c_chunk;
  const int cn = max(0, min(c_chunk, E - c0));
  const int tid = threadIdx.x;
  const int plane = span * span;

  acc_t acc[kMaxItemsPerThread];
#pragma unroll
  for (int i = 0; i < kMaxItemsPerThread; ++i) acc[i] = 0;
  acc_t bias_acc = 0;

  const int64_t tiles_per_image = static_cast<int64_t>(tiles_y) * tiles_x;
  const int64_t n_tiles = N * tiles_per_image;
  for (int64_t t = split; t < n_tiles; t += n_splits) {
    const int64_t n = t / tiles_per_image;
    const int cy0 = static_cast<int>((t % tiles_per_image) / tiles_x) * kTile;
    const int cx0 = static_cast<int>(t % tiles_x) * kTile;
    __syncthreads();
    {
      const int cy = cy0 + tid / kTile;
      const int cx = cx0 + tid % kTile;
      acc_t v = 0;
      if (cy < H && cx < W) {
        v = static_cast<acc_t>(grad_out[n * sgn + j * sgc + (static_cast<int64_t>(cy) * R + o / R) * sgh +
                                        (static_cast<int64_t>(cx) * R + o % R) * sgw]);
      }
      g_tile[tid] = v;
    }
    load_input_tile(x_tile, x + n * sxn + static_cast<int64_t>(j) * E * sxc, sxc, sxh, sxw, c0, cn, H, W,
                    cy0 - pad, cx0 - pad, span);
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kMaxItemsPerThread; ++i) {
      const int item = tid + i * kThreads;  // (channel, tap) = (item / KK, item % KK)
      if (item < cn * KK) {
        const int ky = (item % KK) / KS;
        const int kx = item % KS;
        const acc_t* xt = x_tile + (item / KK) * plane + ky * span + kx;
        acc_t sum = acc[i];
        for (int py = 0; py < kTile; ++py) {
          for (int px = 0; px < kTile; ++px) sum += g_tile[py * kTile + px] * xt[py * span + px];
        }
        acc[i] = sum;
      }
    }
    bias_acc += g_tile[tid];
  }

  const int64_t w_row = static_cast<int64_t>(split) * K * RR + jo;
#pragma unroll
  for (int i = 0; i < kMaxItemsPerThread; ++i) {
    const int item = tid + i * kThreads;
    if (item < cn * KK) partial_w[(w_row * E + c0 + item / KK) * KK + item % KK] = acc[i];
  }
  if (cchunk == 0) {  // block-uniform: every thread of the block takes part in the reduction
    const acc_t total = block_reduce(bias_acc, SumOp());
    if (tid == 0) partial_b[w_row] = total;
  }
}

struct Geometry {
  int64_t N, K, E, H, W, R, KS;
};

Geometry check_sr_head(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                       int64_t upscale, const char* op) {
  check_cuda(x, op, "x");
  check_cuda(weight, op, "weight");
  check_same_device(weight, x, op, "weight", "x");
  check_floating(x, op, "x");
  TORCH_CHECK(weight.scalar_type() == x.scalar_type(), op, ": weight has dtype ", weight.scalar_type(),
              " but x has ", x.scalar_type(), "; give both one dtype");
  TORCH_CHECK(x.dim() == 4, op, ": x must be (N, K*E, H, W), got shape ", x.sizes());
  TORCH_CHECK(weight.dim() == 4 && weight.size(2) == weight.size(3) && weight.size(2) % 2 == 1, op,
              ": weight must be (K*R*R, E, k, k) with an odd k, got shape ", weight.sizes());
  TORCH_CHECK(weight.size(2) <= kMaxKernelSize, op, ": kernel size up to ", kMaxKernelSize,
              " is supported, got ", weight.size(2));
  TORCH_CHECK(upscale >= 1 && upscale <= 64, op, ": upscale must be in 1..64, got ", upscale);
  const int64_t RR = upscale * upscale;
  TORCH_CHECK(weight.size(0) % RR == 0, op, ": weight has ", weight.size(0),
              " output channels, not a multiple of upscale**2 = ", RR);
  Geometry g{x.size(0), weight.size(0) / RR, weight.size(1), x.size(2), x.size(3), upscale, weight.size(2)};
  TORCH_CHECK(x.size(1) == g.K * g.E, op, ": x has ", x.size(1), " channels but weight expects K * e = ", g.K,
              " * ", g.E);
  TORCH_CHECK(g.H * upscale <= std::numeric_limits<int32_t>::max() / 2 &&
                  g.W * upscale <= std::numeric_limits<int32_t>::max() / 2,
              op, ": the output map is too large");
  if (bias.has_value()) {
    check_cuda(*bias, op, "bias");
    check_same_device(*bias, x, op, "bias", "x");
    TORCH_CHECK(bias->scalar_type() == x.scalar_type(), op, ": bias has dtype ", bias->scalar_type(),
                " but x has ", x.scalar_type());
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == weight.size(0), op, ": bias must have shape (",
                weight.size(0), ",), got ", bias->sizes());
  }
  return g;
}

// Channels (or sub-pixels) per shared-memory chunk of `plane` elements each.
int64_t chunk_of(int64_t total, int64_t plane, int64_t elem_size, int64_t reserved_elems = 0) {
  const int64_t fit = (kSmemBudget / elem_size - reserved_elems) / plane;
  return std::max<int64_t>(1, std::min(total, fit));
}

}  // namespace

at::Tensor sr_head_forward(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                           int64_t upscale) {
  const char* op = "sr_head (cuda)";
  const Geometry g = check_sr_head(x, weight, bias, upscale, op);
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = at::empty({g.N, g.K, g.H * g.R, g.W * g.R}, x.options());
  if (out.numel() == 0) return out;
  const at::Tensor w = weight.contiguous();
  const std::optional<at::Tensor> b = bias.has_value() ? std::optional<at::Tensor>(bias->contiguous()) : std::nullopt;
  const int64_t tiles_y = ceil_div(g.H * g.R, kTile);
  const int64_t tiles_x = ceil_div(g.W * g.R, kTile);
  const int span = input_tile_span(static_cast<int>(g.R), static_cast<int>(g.KS));
  const int64_t elem = c10::elementSize(at::toAccumulateType(x.scalar_type(), true));
  const int64_t c_chunk = chunk_of(g.E, static_cast<int64_t>(span) * span, elem);
  const unsigned int blocks = grid_size(g.N * g.K * tiles_y * tiles_x, op);
  const size_t smem = static_cast<size_t>(c_chunk * span * span * elem);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "sr_head_forward", [&] {
    sr_head_forward_kernel<scalar_t><<<blocks, kThreads, smem, stream>>>(
        x.const_data_ptr<scalar_t>(), x.stride(0), x.stride(1), x.stride(2), x.stride(3), w.const_data_ptr<scalar_t>(),
        b.has_value() ? b->const_data_ptr<scalar_t>() : nullptr, out.mutable_data_ptr<scalar_t>(),
        static_cast<int>(g.K), static_cast<int>(g.E), static_cast<int>(g.H), static_cast<int>(g.W),
        static_cast<int>(g.R), static_cast<int>(g.KS), static_cast<int>(tiles_y), static_cast<int>(tiles_x), span,
        static_cast<int>(c_chunk));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> sr_head_backward(const at::Tensor& grad_out, const at::Tensor& x,
                                                                const at::Tensor& weight, int64_t upscale) {
  const char* op = "sr_head_backward (cuda)";
  const Geometry g = check_sr_head(x, weight, std::nullopt, upscale, op);
  check_cuda(grad_out, op, "grad_out");
  check_same_device(grad_out, x, op, "grad_out", "x");
  TORCH_CHECK(grad_out.scalar_type() == x.scalar_type(), op, ": grad_out has dtype ", grad_out.scalar_type(),
              " but x has ", x.scalar_type());
  TORCH_CHECK(grad_out.dim() == 4 && grad_out.size(0) == g.N && grad_out.size(1) == g.K &&
                  grad_out.size(2) == g.H * g.R && grad_out.size(3) == g.W * g.R,
              op, ": grad_out must have shape (", g.N, ", ", g.K, ", ", g.H * g.R, ", ", g.W * g.R, "), got ",
              grad_out.sizes());
  const c10::cuda::CUDAGuard guard(x.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const at::Tensor w = weight.contiguous();
  const at::ScalarType acc_type = at::toAccumulateType(x.scalar_type(), true);
  const int64_t elem = c10::elementSize(acc_type);
  const int64_t RR = g.R * g.R;
  const int64_t KK = g.KS * g.KS;

  at::Tensor grad_x = at::empty(x.sizes(), x.options());
  if (grad_x.numel() > 0) {
    const int64_t tiles_y = ceil_div(g.H, kTile);
    const int64_t tiles_x = ceil_div(g.W, kTile);
    const int span = kTile + static_cast<int>(g.KS) - 1;
    const int64_t o_chunk = chunk_of(RR, static_cast<int64_t>(span) * span, elem);
    const unsigned int blocks = grid_size(g.N * g.K * g.E * tiles_y * tiles_x, op);
    const size_t smem = static_cast<size_t>(o_chunk * span * span * elem);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "sr_head_grad_input", [&] {
      sr_head_grad_input_kernel<scalar_t><<<blocks, kThreads, smem, stream>>>(
          grad_out.const_data_ptr<scalar_t>(), grad_out.stride(0), grad_out.stride(1), grad_out.stride(2),
          grad_out.stride(3), w.const_data_ptr<scalar_t>(), grad_x.mutable_data_ptr<scalar_t>(),
          static_cast<int>(g.K), static_cast<int>(g.E), static_cast<int>(g.H), static_cast<int>(g.W),
          static_cast<int>(g.R), static_cast<int>(g.KS), static_cast<int>(tiles_y), static_cast<int>(tiles_x), span,
          static_cast<int>(o_chunk));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }

  const int64_t n_pixels = g.N * g.H * g.W;
  if (g.K * RR == 0 || n_pixels == 0) {
    return {grad_x, at::zeros(weight.sizes(), weight.options()), at::zeros({weight.size(0)}, weight.options())};
  }
  TORCH_CHECK(KK <= kMaxItemsPerThread * kThreads, op, ": kernel too large for grad_weight");
  const int64_t tiles_y = ceil_div(g.H, kTile);
  const int64_t tiles_x = ceil_div(g.W, kTile);
  const int span = kTile + static_cast<int>(g.KS) - 1;
  // channels per block: as many (channel, tap) sums as threads (at least one channel), within the budget
  const int64_t c_chunk = std::max<int64_t>(
      1, std::min({g.E, kThreads / KK, (kSmemBudget / elem - kTile * kTile) / (static_cast<int64_t>(span) * span)}));
  const int64_t n_cchunks = std::max<int64_t>(1, ceil_div(g.E, c_chunk));
  // splits of the pixel tiles: enough blocks to fill the GPU a few times over
  const int64_t n_tiles = g.N * tiles_y * tiles_x;
  const int64_t n_splits = std::max<int64_t>(1, std::min(n_tiles, ceil_div(4096, g.K * RR * n_cchunks)));
  at::Tensor partial_w = at::empty({n_splits, g.K * RR, g.E, KK}, x.options().dtype(acc_type));
  at::Tensor partial_b = at::empty({n_splits, g.K * RR}, x.options().dtype(acc_type));
  const unsigned int blocks = grid_size(g.K * RR * n_cchunks * n_splits, op);
  const size_t smem = static_cast<size_t>((kTile * kTile + c_chunk * span * span) * elem);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "sr_head_grad_weight", [&] {
    using acc_t = at::acc_type<scalar_t, true>;
    sr_head_grad_weight_kernel<scalar_t><<<blocks, kThreads, smem, stream>>>(
        grad_out.const_data_ptr<scalar_t>(), grad_out.stride(0), grad_out.stride(1), grad_out.stride(2),
        grad_out.stride(3), x.const_data_ptr<scalar_t>(), x.stride(0), x.stride(1), x.stride(2), x.stride(3),
        partial_w.mutable_data_ptr<acc_t>(), partial_b.mutable_data_ptr<acc_t>(), static_cast<int>(g.N),
        static_cast<int>(g.K), static_cast<int>(g.E), static_cast<int>(g.H), static_cast<int>(g.W),
        static_cast<int>(g.R), static_cast<int>(g.KS), static_cast<int>(tiles_y), static_cast<int>(tiles_x),
        static_cast<int>(n_splits), static_cast<int>(c_chunk), static_cast<int>(n_cchunks), span);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  at::Tensor grad_weight = partial_w.sum(0).to(weight.scalar_type()).view(weight.sizes());
  at::Tensor grad_bias = partial_b.sum(0).to(weight.scalar_type());
  return {grad_x, grad_weight, grad_bias};
}

}  // namespace srpose_cuda
