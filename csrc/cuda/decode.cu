// Batched heatmap decoding on CUDA in one launch: heatmaps (N, K, H, W) -> keypoints (N, K, 2) and
// scores (N, K), float32. Semantics: srpose_fast/ops/decode.py (decode_heatmaps_reference).
//
// One block per map. Its threads stride over the map computing the flip-merged value on the fly
// ((h + f) * 0.5 with f read at the mirrored, shifted column of joint flip_indices[k], in the
// reference's float32 arithmetic; never stored), keep a running argmax, and reduce it (ties: lowest
// flat index; any NaN: NaN). The refinement, transform and stores follow (decode_refine.cuh).
// Argmax, scores and "shift" are exactly the reference's; "dark"/"dark_udp" may differ in the last
// bits of the blurred map (another summation order) and of the log.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <optional>
#include <tuple>

#include "decode_host.h"
#include "decode_refine.cuh"
#include "ops.h"

namespace srpose_cuda {
namespace {

// The (flip-merged) heatmap of one (n, k), read from memory.
template <typename scalar_t>
struct HeatmapSource {
  const scalar_t* h;  // heatmaps[n, k]
  const scalar_t* f;  // flipped[n, flip_indices[k]], or nullptr
  int64_t shh, shw, sfh, sfw;
  int W;
  bool shift;

  __device__ float operator()(int y, int x) const {
    float v = static_cast<float>(h[y * shh + x * shw]);
    if (f != nullptr) {
      // mirrored column W - 1 - x; with the shift one pixel right, column 0 keeping its own value
      const int fx = shift ? W - max(x, 1) : W - 1 - x;
      v = (v + static_cast<float>(f[y * sfh + fx * sfw])) * 0.5f;
    }
    return v;
  }
};

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) decode_heatmaps_kernel(
    const scalar_t* __restrict__ heatmaps, int64_t shn, int64_t shk, int64_t shh, int64_t shw,
    const scalar_t* __restrict__ flipped, int64_t sfn, int64_t sfk, int64_t sfh, int64_t sfw,
    const int32_t* __restrict__ flip_indices, bool shift, int K, int H, int W, int method,
    int kb, const float* __restrict__ center, const float* __restrict__ scale,
    float* __restrict__ keypoints, float* __restrict__ scores) {
  extern __shared__ float smem[];
  const int64_t nk = blockIdx.x;
  const int64_t n = nk / K;
  const int k = static_cast<int>(nk % K);
  HeatmapSource<scalar_t> src{heatmaps + n * shn + k * shk, nullptr, shh, shw, sfh, sfw, W, shift};
  if (flipped != nullptr) {
    const int fk = min(max(flip_indices[k], 0), K - 1);  // a permutation, checked by the Python wrapper
    src.f = flipped + n * sfn + fk * sfk;
  }

  ArgmaxState state = argmax_empty();
  const int64_t HW = static_cast<int64_t>(H) * W;
  for (MapWalk p(W); p.i < HW; p.next()) argmax_update(state, src(p.y, p.x), p.i);
  state = block_reduce(state, ArgmaxCombine());
  refine_and_store(src, state, method, H, W, kb, center == nullptr ? nullptr : center + 2 * n,
                   scale == nullptr ? nullptr : scale + 2 * n, smem, keypoints + 2 * nk, scores + nk);
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> decode_heatmaps(const at::Tensor& heatmaps, const std::optional<at::Tensor>& flipped,
                                                   const std::optional<at::Tensor>& flip_indices, bool flip_shift,
                                                   c10::string_view method, int64_t blur_kernel,
                                                   const std::optional<at::Tensor>& center,
                                                   const std::optional<at::Tensor>& scale) {
  const char* op = "decode_heatmaps (cuda)";
  check_cuda(heatmaps, op, "heatmaps");
  check_floating(heatmaps, op, "heatmaps");
  TORCH_CHECK(heatmaps.dim() == 4, op, ": heatmaps must be (N, K, H, W), got shape ", heatmaps.sizes());
  const int64_t N = heatmaps.size(0), K = heatmaps.size(1), H = heatmaps.size(2), W = heatmaps.size(3);
  TORCH_CHECK(H >= 1 && W >= 1, op, ": heatmaps must have H, W >= 1, got shape ", heatmaps.sizes());
  const int method_id = decode_method_id(method, op);
  check_blur_kernel(blur_kernel, method_id, op);
  check_flip(flipped, flip_indices, heatmaps, K, op, "flipped", "heatmaps");
  check_transform(center, scale, heatmaps, N, H, W, method_id, op);

  const c10::cuda::CUDAGuard guard(heatmaps.device());
  const at::TensorOptions f32 = heatmaps.options().dtype(at::kFloat);
  at::Tensor keypoints = at::empty({N, K, 2}, f32);
  at::Tensor scores = at::empty({N, K}, f32);
  if (N * K == 0) return {keypoints, scores};

  const bool flip = flipped.has_value();
  const at::Tensor fidx = flip ? flip_indices->to(at::kInt).contiguous() : at::Tensor();
  const RefineInputs refine = refine_inputs(method_id, blur_kernel, center, scale);
  const unsigned int blocks = grid_size(N * K, op);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const at::Tensor& f = flip ? *flipped : heatmaps;  // strides only, without flip
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, heatmaps.scalar_type(), "decode_heatmaps", [&] {
    decode_heatmaps_kernel<scalar_t><<<blocks, kThreads, refine.smem, stream>>>(
        heatmaps.const_data_ptr<scalar_t>(), heatmaps.stride(0), heatmaps.stride(1), heatmaps.stride(2),
        heatmaps.stride(3), flip ? f.const_data_ptr<scalar_t>() : nullptr, f.stride(0), f.stride(1), f.stride(2),
        f.stride(3), flip ? fidx.const_data_ptr<int32_t>() : nullptr, flip_shift, static_cast<int>(K),
        static_cast<int>(H), static_cast<int>(W), method_id, static_cast<int>(blur_kernel),
        refine.center_ptr(), refine.scale_ptr(), keypoints.mutable_data_ptr<float>(), scores.mutable_data_ptr<float>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {keypoints, scores};
}

}  // namespace srpose_cuda
