// One stage of the multi-stage heatmap loss on CUDA, with the targets made in the kernel (none
// materialised). Semantics: srpose_fast/codecs/targets.py (encode_heatmaps) pooled to pred's size, and
// srpose_fast/losses/multi_stage.py (joints_mse_loss); the Triton twin is kernels/multi_stage_loss.py.
//
// pred (N, K, h, w); keypoints (N, K, 2) (x, y) in pixels of the full-resolution (full_h, full_w) map,
// full_h = BH * h, full_w = BW * w; weight (N, K) visibility.
// The full-resolution target is separable, T(y, x) = gy(y) * gx(x) (1-D Gaussian times window mask per
// axis), so its adaptive average pool to (h, w) is the outer product of per-axis block means:
//     t(i, j) = (mean_{y in block i} gy(y)) * (mean_{x in block j} gx(x)).
// A block per (n, k): it derives the joint's window, centre and effective weight from the keypoint
// (float64 bounds, as the reference), puts the two block-mean profiles (h + w floats) in shared
// memory and strides over the map.
// - forward:  partial[n, k] = w_eff^2 * sum (pred - t)^2 (fp32); the loss is sum(partial) / (N*K*h*w).
//             Deterministic: fixed-order partials, no atomics.
// - backward: grad_pred = grad_loss * 2 * w_eff^2 * (pred - t) / (N*K*h*w), in pred's dtype.
#include <ATen/Dispatch.h>
#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/sum.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cmath>

#include "common.cuh"
#include "ops.h"

namespace srpose_cuda {
namespace {

enum TargetMethod : int { kMsra = 0, kUnbiased = 1, kUdp = 2 };

// One axis of one joint, as encode_heatmaps' _axis_profile. The window is the pixel range [lo, hi)
// (unused by "unbiased"); `outside` says it misses the map. trunc is Python's int() of a float.
struct AxisWindow {
  double lo, hi;
  float centre;
  bool outside;
};

__device__ inline AxisWindow axis_window(double p, int length, double tmp, double half, int method) {
  AxisWindow a;
  if (method == kUnbiased) {
    a.lo = p - tmp;
    a.hi = p + tmp + 1.0;
    a.centre = static_cast<float>(p);
  } else {
    const double mu = trunc(p + 0.5);
    a.lo = trunc(mu - tmp);
    a.hi = trunc(mu + tmp + 1.0);
    double centre = a.lo + half;
    if (method == kUdp) centre = centre + (p - mu);
    a.centre = static_cast<float>(centre);
  }
  a.outside = a.lo >= length || a.hi < 0;
  return a;
}

// Mean of the axis profile over the `block` full-resolution pixels of prediction index i.
__device__ inline float block_mean(int i, int block, const AxisWindow& a, float two_sigma2, int method) {
  float sum = 0.0f;
  for (int s = 0; s < block; ++s) {
    const int pix = i * block + s;
    if (method != kUnbiased && !(pix >= a.lo && pix < a.hi)) continue;
    const float d = static_cast<float>(pix) - a.centre;
    sum += expf(-(d * d) / two_sigma2);
  }
  return sum / static_cast<float>(block);
}

// Puts joint (n, k)'s block-mean profiles in shared memory (prof_y[h], prof_x[w]; prof_y is zero
// when the Gaussian is not drawn) and returns its effective weight. Whole block; ends synchronised.
__device__ float joint_profiles(const double* __restrict__ keypoints, const float* __restrict__ weight, int64_t nk,
                                int h, int w, int full_h, int full_w, double tmp, double half, float two_sigma2,
                                int method, float* prof_y, float* prof_x) {
  const double px = keypoints[2 * nk];
  const double py = keypoints[2 * nk + 1];
  const AxisWindow ax = axis_window(px, full_w, tmp, half, method);
  const AxisWindow ay = axis_window(py, full_h, tmp, half, method);
  const float w_eff = (ax.outside || ay.outside) ? 0.0f : weight[nk];
  const bool draw = w_eff > 0.5f;
  for (int i = threadIdx.x; i < h; i += kThreads) {
    prof_y[i] = draw ? block_mean(i, full_h / h, ay, two_sigma2, method) : 0.0f;
  }
  for (int j = threadIdx.x; j < w; j += kThreads) prof_x[j] = block_mean(j, full_w / w, ax, two_sigma2, method);
  __syncthreads();
  return w_eff;
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) heatmap_mse_forward_kernel(
    const scalar_t* __restrict__ pred, int64_t spn, int64_t spk, int64_t sph, int64_t spw,
    const double* __restrict__ keypoints, const float* __restrict__ weight, float* __restrict__ partial, int K, int h,
    int w, int full_h, int full_w, double tmp, double half, float two_sigma2, int method) {
  extern __shared__ float profiles[];
  const int64_t nk = blockIdx.x;
  const float w_eff = joint_profiles(keypoints, weight, nk, h, w, full_h, full_w, tmp, half, two_sigma2, method,
                                     profiles, profiles + h);
  const scalar_t* p = pred + (nk / K) * spn + (nk % K) * spk;
  float acc = 0.0f;
  for (MapWalk q(w); q.i < static_cast<int64_t>(h) * w; q.next()) {
    const float d = static_cast<float>(p[q.y * sph + q.x * spw]) - profiles[q.y] * profiles[h + q.x];
    acc += d * d;
  }
  const float total = block_reduce(acc, SumOp());
  if (threadIdx.x == 0) partial[nk] = total * (w_eff * w_eff);
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) heatmap_mse_backward_kernel(
    const float* __restrict__ grad_loss, const scalar_t* __restrict__ pred, int64_t spn, int64_t spk, int64_t sph,
    int64_t spw, const double* __restrict__ keypoints, const float* __restrict__ weight,
    scalar_t* __restrict__ grad_pred, int K, int h, int w, int full_h, int full_w, double tmp, double half,
    float two_sigma2, int method, float inv_count) {
  extern __shared__ float profiles[];
  const int64_t nk = blockIdx.x;
  const float w_eff = joint_profiles(keypoints, weight, nk, h, w, full_h, full_w, tmp, half, two_sigma2, method,
                                     profiles, profiles + h);
  const float scale = *grad_loss * (2.0f * w_eff * w_eff) * inv_count;
  const scalar_t* p = pred + (nk / K) * spn + (nk % K) * spk;
  scalar_t* g = grad_pred + nk * h * w;  // contiguous
  for (MapWalk q(w); q.i < static_cast<int64_t>(h) * w; q.next()) {
    const float d = static_cast<float>(p[q.y * sph + q.x * spw]) - profiles[q.y] * profiles[h + q.x];
    g[q.i] = static_cast<scalar_t>(scale * d);
  }
}

struct LossArgs {
  int64_t N, K, h, w;
  int method;
  at::Tensor keypoints;  // float64 (N, K, 2), contiguous
  at::Tensor weight;     // float32 (N, K), contiguous
  size_t smem;
};

LossArgs check_loss(const at::Tensor& pred, const at::Tensor& keypoints, const at::Tensor& weight, double sigma,
                    int64_t full_h, int64_t full_w, c10::string_view method, const char* op) {
  check_cuda(pred, op, "pred");
  check_floating(pred, op, "pred");
  check_same_device(keypoints, pred, op, "keypoints", "pred");
  check_same_device(weight, pred, op, "weight", "pred");
  TORCH_CHECK(pred.dim() == 4, op, ": pred must be (N, K, h, w), got shape ", pred.sizes());
  LossArgs a;
  a.N = pred.size(0);
  a.K = pred.size(1);
  a.h = pred.size(2);
  a.w = pred.size(3);
  TORCH_CHECK(keypoints.dim() == 3 && keypoints.size(0) == a.N && keypoints.size(1) == a.K && keypoints.size(2) == 2 &&
                  keypoints.is_floating_point(),
              op, ": keypoints must be float (N=", a.N, ", K=", a.K, ", 2), got ", keypoints.scalar_type(), " ",
              keypoints.sizes());
  TORCH_CHECK(weight.dim() == 2 && weight.size(0) == a.N && weight.size(1) == a.K && weight.is_floating_point(), op,
              ": weight must be float (N=", a.N, ", K=", a.K, "), got ", weight.scalar_type(), " ", weight.sizes());
  TORCH_CHECK(std::isfinite(sigma) && sigma > 0, op, ": sigma must be positive and finite, got ", sigma);
  if (method == "msra") {
    a.method = kMsra;
  } else if (method == "unbiased") {
    a.method = kUnbiased;
  } else if (method == "udp") {
    a.method = kUdp;
  } else {
    TORCH_CHECK(false, op, ": method must be one of msra, unbiased, udp, got '", std::string(method), "'");
  }
  TORCH_CHECK(a.h >= 1 && a.w >= 1 && full_h >= 1 && full_w >= 1 && full_h % a.h == 0 && full_w % a.w == 0, op,
              ": the full-resolution size ", full_h, "x", full_w, " must be a whole multiple of pred's ", a.h, "x",
              a.w);
  TORCH_CHECK(full_h <= std::numeric_limits<int32_t>::max() && full_w <= std::numeric_limits<int32_t>::max(), op,
              ": the full-resolution map is too large");
  a.smem = static_cast<size_t>(a.h + a.w) * sizeof(float);
  TORCH_CHECK(static_cast<int64_t>(a.smem) <= kSmemBudget, op, ": pred's h + w = ", a.h + a.w,
              " is too large (up to ", kSmemBudget / static_cast<int64_t>(sizeof(float)), ")");
  a.keypoints = keypoints.to(at::kDouble).contiguous();  // fp32 -> fp64 is exact: the reference's bounds
  a.weight = weight.to(at::kFloat).contiguous();
  return a;
}

}  // namespace

at::Tensor heatmap_mse_loss(const at::Tensor& pred, const at::Tensor& keypoints, const at::Tensor& weight, double sigma,
                            int64_t full_h, int64_t full_w, c10::string_view method) {
  const char* op = "heatmap_mse_loss (cuda)";
  const LossArgs a = check_loss(pred, keypoints, weight, sigma, full_h, full_w, method, op);
  const c10::cuda::CUDAGuard guard(pred.device());
  at::Tensor partial = at::empty({a.N * a.K}, pred.options().dtype(at::kFloat));
  if (a.N * a.K > 0) {
    const double tmp = 3.0 * sigma;
    const double half = std::floor((2.0 * tmp + 1.0) / 2.0);  // Python's (2 tmp + 1) // 2
    const unsigned int blocks = grid_size(a.N * a.K, op);
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, pred.scalar_type(), "heatmap_mse_loss", [&] {
      heatmap_mse_forward_kernel<scalar_t><<<blocks, kThreads, a.smem, stream>>>(
          pred.const_data_ptr<scalar_t>(), pred.stride(0), pred.stride(1), pred.stride(2), pred.stride(3),
          a.keypoints.const_data_ptr<double>(), a.weight.const_data_ptr<float>(), partial.mutable_data_ptr<float>(),
          static_cast<int>(a.K), static_cast<int>(a.h), static_cast<int>(a.w), static_cast<int>(full_h),
          static_cast<int>(full_w), tmp, half, static_cast<float>(2.0 * sigma * sigma), a.method);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  // An empty pred gives 0 / 0 = NaN, as torch's mean of an empty tensor.
  return partial.sum() / static_cast<double>(a.N * a.K * a.h * a.w);
}

at::Tensor heatmap_mse_loss_backward(const at::Tensor& grad_loss, const at::Tensor& pred, const at::Tensor& keypoints,
                                     const at::Tensor& weight, double sigma, int64_t full_h, int64_t full_w,
                                     c10::string_view method) {
  const char* op = "heatmap_mse_loss_backward (cuda)";
  const LossArgs a = check_loss(pred, keypoints, weight, sigma, full_h, full_w, method, op);
  check_same_device(grad_loss, pred, op, "grad_loss", "pred");
  TORCH_CHECK(grad_loss.numel() == 1, op, ": grad_loss must be a scalar, got shape ", grad_loss.sizes());
  const c10::cuda::CUDAGuard guard(pred.device());
  at::Tensor grad_pred = at::empty(pred.sizes(), pred.options());
  if (grad_pred.numel() == 0) return grad_pred;
  const at::Tensor g = grad_loss.to(at::kFloat).contiguous();
  const double tmp = 3.0 * sigma;
  const double half = std::floor((2.0 * tmp + 1.0) / 2.0);
  const float inv_count = static_cast<float>(1.0 / static_cast<double>(a.N * a.K * a.h * a.w));
  const unsigned int blocks = grid_size(a.N * a.K, op);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, pred.scalar_type(), "heatmap_mse_loss_backward", [&] {
    heatmap_mse_backward_kernel<scalar_t><<<blocks, kThreads, a.smem, stream>>>(
        g.const_data_ptr<float>(), pred.const_data_ptr<scalar_t>(), pred.stride(0), pred.stride(1), pred.stride(2),
        pred.stride(3), a.keypoints.const_data_ptr<double>(), a.weight.const_data_ptr<float>(),
        grad_pred.mutable_data_ptr<scalar_t>(), static_cast<int>(a.K), static_cast<int>(a.h), static_cast<int>(a.w),
        static_cast<int>(full_h), static_cast<int>(full_w), tmp, half, static_cast<float>(2.0 * sigma * sigma),
        a.method, inv_count);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad_pred;
}

}  // namespace srpose_cuda
