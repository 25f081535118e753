// The heatmap-free decoder on CUDA: the final SR head's input emb (N, K*E, h, w) straight to
// keypoints (N, K, 2) and scores (N, K), float32, never writing the (N, K, R*h, R*w) heatmaps.
// Semantics: srpose_fast/ops/sr_head_decode.py (sr_head_decode_reference = sr_head, then decode).
//
// Two launches:
// 1. argmax: a block per (map, split) takes the 16x16 heatmap tiles split, split + S, ... of its map;
//    each tile's heatmap values are the SR head's conv evaluated at the shuffled positions
//    (sr_head_tile.cuh: input tile staged in shared memory, one thread per value, fp32 accumulation).
//    With flip the flipped image's value of joint flip_indices[j] at the mirrored (shifted) column
//    comes from a second tile over the mirrored input columns. The block's running argmax of the
//    merged values goes to a partial buffer (value, NaN if any NaN; lowest flat index of the max).
// 2. refine: a block per map reduces its partials and refines as decode.cu does
//    (decode_refine.cuh), recomputing only the heatmap values it reads, each from its taps
//    (sr_head_value_at: the same sum in the same order as the argmax pass, so the same bits).
// Heatmap values are float32 (fp64 for fp64 inputs) and never rounded to a 16-bit input dtype.
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <optional>
#include <tuple>

#include "decode_host.h"
#include "decode_refine.cuh"
#include "ops.h"
#include "sr_head_tile.cuh"

namespace srpose_cuda {
namespace {

constexpr int kMaxKernelSize = 31;      // as the SR head (sr_head.cu)
constexpr int64_t kTargetBlocks = 2048;  // argmax blocks to aim for: fills an H200 a few times over

// The column of the flipped map merged into plain column X of a width-W map (codecs.flip.flip_merge).
__device__ inline int flipped_column(int X, int W, bool shift) { return shift ? W - max(X, 1) : W - 1 - X; }

// The (flip-merged) heatmap of one (n, j), each value computed from the SR head's taps.
template <typename scalar_t>
struct SrHeadSource {
  using acc_t = at::acc_type<scalar_t, true>;
  const scalar_t* x_joint;   // emb[n, j*E]
  const scalar_t* fx_joint;  // flipped_emb[n, fj*E], or nullptr
  int64_t sxc, sxh, sxw, sfc, sfh, sfw;
  const scalar_t* w_joint;   // weight[j*RR]
  const scalar_t* fw_joint;  // weight[fj*RR]
  const scalar_t* b_joint;   // bias + j*RR, or nullptr
  const scalar_t* fb_joint;  // bias + fj*RR, or nullptr
  int E, h, w, R, KS;
  bool shift;

  __device__ float operator()(int Y, int X) const {
    float v = static_cast<float>(
        sr_head_value_at<scalar_t, acc_t>(x_joint, sxc, sxh, sxw, w_joint, b_joint, E, h, w, R, KS, Y, X));
    if (fx_joint != nullptr) {
      const int fX = flipped_column(X, w * R, shift);
      const float f = static_cast<float>(
          sr_head_value_at<scalar_t, acc_t>(fx_joint, sfc, sfh, sfw, fw_joint, fb_joint, E, h, w, R, KS, Y, fX));
      v = (v + f) * 0.5f;
    }
    return v;
  }
};

template <typename scalar_t>
__device__ SrHeadSource<scalar_t> make_source(const scalar_t* emb, int64_t sxn, int64_t sxc, int64_t sxh, int64_t sxw,
                                              const scalar_t* femb, int64_t sfn, int64_t sfc, int64_t sfh, int64_t sfw,
                                              const scalar_t* weight, const scalar_t* bias,
                                              const int32_t* flip_indices, bool shift, int64_t n, int j, int K, int E,
                                              int h, int w, int R, int KS) {
  const int64_t per_joint = static_cast<int64_t>(R) * R * E * KS * KS;  // weight elements of one joint
  const int fj = femb != nullptr ? min(max(flip_indices[j], 0), K - 1) : j;  // a permutation (Python checks)
  SrHeadSource<scalar_t> s;
  s.x_joint = emb + n * sxn + static_cast<int64_t>(j) * E * sxc;
  s.fx_joint = femb != nullptr ? femb + n * sfn + static_cast<int64_t>(fj) * E * sfc : nullptr;
  s.sxc = sxc; s.sxh = sxh; s.sxw = sxw; s.sfc = sfc; s.sfh = sfh; s.sfw = sfw;
  s.w_joint = weight + j * per_joint;
  s.fw_joint = weight + fj * per_joint;
  s.b_joint = bias != nullptr ? bias + static_cast<int64_t>(j) * R * R : nullptr;
  s.fb_joint = bias != nullptr ? bias + static_cast<int64_t>(fj) * R * R : nullptr;
  s.E = E; s.h = h; s.w = w; s.R = R; s.KS = KS;
  s.shift = shift;
  return s;
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) sr_head_argmax_kernel(
    const scalar_t* __restrict__ emb, int64_t sxn, int64_t sxc, int64_t sxh, int64_t sxw,
    const scalar_t* __restrict__ femb, int64_t sfn, int64_t sfc, int64_t sfh, int64_t sfw,
    const scalar_t* __restrict__ weight, const scalar_t* __restrict__ bias, const int32_t* __restrict__ flip_indices,
    bool shift, int K, int E, int h, int w, int R, int KS, int tiles_y, int tiles_x, int n_splits, int span,
    int c_chunk, float* __restrict__ part_val, int64_t* __restrict__ part_idx) {
  using acc_t = at::acc_type<scalar_t, true>;
  extern __shared__ __align__(sizeof(double)) unsigned char smem_raw[];
  acc_t* tile = reinterpret_cast<acc_t*>(smem_raw);   // [c_chunk][span][span], plain
  acc_t* ftile = tile + c_chunk * span * span;        // the same, flipped (with flip)

  const int split = static_cast<int>(blockIdx.x % n_splits);
  const int64_t nk = blockIdx.x / n_splits;
  const int64_t n = nk / K;
  const int j = static_cast<int>(nk % K);
  const SrHeadSource<scalar_t> s =
      make_source(emb, sxn, sxc, sxh, sxw, femb, sfn, sfc, sfh, sfw, weight, bias, flip_indices, shift, n, j, K, E,
                  h, w, R, KS);
  const bool flip = femb != nullptr;
  const int H = h * R;
  const int W = w * R;
  const int pad = KS / 2;
  const int KK = KS * KS;

  ArgmaxState state = argmax_empty();
  for (int t = split; t < tiles_y * tiles_x; t += n_splits) {
    const int Y0 = (t / tiles_x) * kTile;
    const int X0 = (t % tiles_x) * kTile;
    const int Y = Y0 + static_cast<int>(threadIdx.x) / kTile;
    const int X = X0 + static_cast<int>(threadIdx.x) % kTile;
    const bool active = Y < H && X < W;
    const int o = (Y % R) * R + X % R;
    const int r = Y / R - Y0 / R;
    const int q = X / R - X0 / R;
    // Flipped columns of this tile's (valid) columns X0 .. X_last: a run from fX(X_last) to fX(X0).
    const int X_last = min(X0 + kTile - 1, W - 1);
    const int fX_lo = flipped_column(X_last, W, shift);
    const int fX = flipped_column(X, W, shift);
    const int fo = (Y % R) * R + fX % R;
    const int fq = fX / R - fX_lo / R;

    acc_t acc = 0;
    acc_t facc = 0;
    for (int c0 = 0; c0 < E; c0 += c_chunk) {
      const int cn = min(c_chunk, E - c0);
      __syncthreads();
      load_input_tile(tile, s.x_joint, sxc, sxh, sxw, c0, cn, h, w, Y0 / R - pad, X0 / R - pad, span);
      if (flip) load_input_tile(ftile, s.fx_joint, sfc, sfh, sfw, c0, cn, h, w, Y0 / R - pad, fX_lo / R - pad, span);
      __syncthreads();
      if (active) {
        accumulate_from_tile(acc, tile, s.w_joint + static_cast<int64_t>(o) * E * KK, c0, cn, KS, span, r, q);
        if (flip) {
          accumulate_from_tile(facc, ftile, s.fw_joint + static_cast<int64_t>(fo) * E * KK, c0, cn, KS, span, r, fq);
        }
      }
    }
    if (active) {
      if (s.b_joint != nullptr) acc += static_cast<acc_t>(s.b_joint[o]);
      float v = static_cast<float>(acc);
      if (flip) {
        if (s.fb_joint != nullptr) facc += static_cast<acc_t>(s.fb_joint[fo]);
        v = (v + static_cast<float>(facc)) * 0.5f;
      }
      argmax_update(state, v, static_cast<int64_t>(Y) * W + X);
    }
  }
  state = block_reduce(state, ArgmaxCombine());
  if (threadIdx.x == 0) {
    part_val[nk * n_splits + split] = state.nan ? NAN : state.value;
    part_idx[nk * n_splits + split] = state.index;
  }
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) sr_head_refine_kernel(
    const scalar_t* __restrict__ emb, int64_t sxn, int64_t sxc, int64_t sxh, int64_t sxw,
    const scalar_t* __restrict__ femb, int64_t sfn, int64_t sfc, int64_t sfh, int64_t sfw,
    const scalar_t* __restrict__ weight, const scalar_t* __restrict__ bias, const int32_t* __restrict__ flip_indices,
    bool shift, int K, int E, int h, int w, int R, int KS, int n_splits, const float* __restrict__ part_val,
    const int64_t* __restrict__ part_idx, int method, int kb, const float* __restrict__ center,
    const float* __restrict__ scale, float* __restrict__ keypoints, float* __restrict__ scores) {
  extern __shared__ float smem[];
  const int64_t nk = blockIdx.x;
  const int64_t n = nk / K;
  const int j = static_cast<int>(nk % K);

  ArgmaxState state = argmax_empty();
  for (int i = threadIdx.x; i < n_splits; i += kThreads) {
    const float v = part_val[nk * n_splits + i];
    const ArgmaxState p = v != v ? ArgmaxState{kNoIndex, -INFINITY, 1} : ArgmaxState{part_idx[nk * n_splits + i], v, 0};
    state = ArgmaxCombine()(state, p);
  }
  state = block_reduce(state, ArgmaxCombine());

  const SrHeadSource<scalar_t> src =
      make_source(emb, sxn, sxc, sxh, sxw, femb, sfn, sfc, sfh, sfw, weight, bias, flip_indices, shift, n, j, K, E,
                  h, w, R, KS);
  refine_and_store(src, state, method, h * R, w * R, kb, center == nullptr ? nullptr : center + 2 * n,
                   scale == nullptr ? nullptr : scale + 2 * n, smem, keypoints + 2 * nk, scores + nk);
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> sr_head_decode(const at::Tensor& emb, const at::Tensor& weight,
                                                  const std::optional<at::Tensor>& bias, int64_t upscale,
                                                  const std::optional<at::Tensor>& flipped_emb,
                                                  const std::optional<at::Tensor>& flip_indices, bool flip_shift,
                                                  c10::string_view method, int64_t blur_kernel,
                                                  const std::optional<at::Tensor>& center,
                                                  const std::optional<at::Tensor>& scale) {
  const char* op = "sr_head_decode (cuda)";
  check_cuda(emb, op, "emb");
  check_cuda(weight, op, "weight");
  check_same_device(weight, emb, op, "weight", "emb");
  check_floating(emb, op, "emb");
  TORCH_CHECK(weight.scalar_type() == emb.scalar_type(), op, ": weight has dtype ", weight.scalar_type(),
              " but emb has ", emb.scalar_type(), "; give both one dtype");
  TORCH_CHECK(emb.dim() == 4, op, ": emb must be (N, K*E, h, w), got shape ", emb.sizes());
  TORCH_CHECK(weight.dim() == 4 && weight.size(2) == weight.size(3) && weight.size(2) % 2 == 1, op,
              ": weight must be (K*R*R, E, k, k) with an odd k, got shape ", weight.sizes());
  TORCH_CHECK(weight.size(2) <= kMaxKernelSize, op, ": kernel size up to ", kMaxKernelSize, " is supported, got ",
              weight.size(2));
  TORCH_CHECK(upscale >= 1 && upscale <= 64, op, ": upscale must be in 1..64, got ", upscale);
  const int64_t R = upscale, RR = upscale * upscale;
  TORCH_CHECK(weight.size(0) % RR == 0, op, ": weight has ", weight.size(0),
              " output channels, not a multiple of upscale**2 = ", RR);
  const int64_t N = emb.size(0), K = weight.size(0) / RR, E = weight.size(1), h = emb.size(2), w = emb.size(3);
  const int64_t KS = weight.size(2);
  TORCH_CHECK(emb.size(1) == K * E, op, ": emb has ", emb.size(1), " channels but weight expects K * e = ", K, " * ",
              E);
  TORCH_CHECK(h >= 1 && w >= 1, op, ": emb must have h, w >= 1, got shape ", emb.sizes());
  TORCH_CHECK(h * R * w * R <= std::numeric_limits<int32_t>::max(), op, ": the heatmaps would be too large");
  if (bias.has_value()) {
    check_cuda(*bias, op, "bias");
    check_same_device(*bias, emb, op, "bias", "emb");
    TORCH_CHECK(bias->scalar_type() == emb.scalar_type(), op, ": bias has dtype ", bias->scalar_type(),
                " but emb has ", emb.scalar_type());
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == weight.size(0), op, ": bias must have shape (", weight.size(0),
                ",), got ", bias->sizes());
  }
  const int method_id = decode_method_id(method, op);
  check_blur_kernel(blur_kernel, method_id, op);
  check_flip(flipped_emb, flip_indices, emb, K, op, "flipped_emb", "emb");
  check_transform(center, scale, emb, N, h * R, w * R, method_id, op);

  const c10::cuda::CUDAGuard guard(emb.device());
  const at::TensorOptions f32 = emb.options().dtype(at::kFloat);
  at::Tensor keypoints = at::empty({N, K, 2}, f32);
  at::Tensor scores = at::empty({N, K}, f32);
  if (N * K == 0) return {keypoints, scores};

  const bool flip = flipped_emb.has_value();
  const at::Tensor wc = weight.contiguous();
  const at::Tensor bc = bias.has_value() ? bias->contiguous() : at::Tensor();
  const at::Tensor fidx = flip ? flip_indices->to(at::kInt).contiguous() : at::Tensor();
  const at::Tensor& femb = flip ? *flipped_emb : emb;  // strides only, without flip
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  // 1. argmax partials
  const int64_t tiles_y = ceil_div(h * R, kTile);
  const int64_t tiles_x = ceil_div(w * R, kTile);
  const int64_t n_splits = std::max<int64_t>(1, std::min(tiles_y * tiles_x, ceil_div(kTargetBlocks, N * K)));
  const int span = input_tile_span(static_cast<int>(R), static_cast<int>(KS));
  const int64_t elem = c10::elementSize(at::toAccumulateType(emb.scalar_type(), true));
  const int64_t tiles = flip ? 2 : 1;
  const int64_t c_chunk =
      std::max<int64_t>(1, std::min(E, kSmemBudget / elem / (tiles * static_cast<int64_t>(span) * span)));
  const size_t argmax_smem = static_cast<size_t>(tiles * c_chunk * span * span * elem);
  at::Tensor part_val = at::empty({N * K, n_splits}, f32);
  at::Tensor part_idx = at::empty({N * K, n_splits}, emb.options().dtype(at::kLong));
  const unsigned int argmax_blocks = grid_size(N * K * n_splits, op);

  // 2. refinement
  const RefineInputs refine = refine_inputs(method_id, blur_kernel, center, scale);
  const unsigned int refine_blocks = grid_size(N * K, op);

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, emb.scalar_type(), "sr_head_decode", [&] {
    const scalar_t* femb_ptr = flip ? femb.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* bias_ptr = bc.defined() ? bc.const_data_ptr<scalar_t>() : nullptr;
    const int32_t* fidx_ptr = flip ? fidx.const_data_ptr<int32_t>() : nullptr;
    sr_head_argmax_kernel<scalar_t><<<argmax_blocks, kThreads, argmax_smem, stream>>>(
        emb.const_data_ptr<scalar_t>(), emb.stride(0), emb.stride(1), emb.stride(2), emb.stride(3), femb_ptr,
        femb.stride(0), femb.stride(1), femb.stride(2), femb.stride(3), wc.const_data_ptr<scalar_t>(), bias_ptr,
        fidx_ptr, flip_shift, static_cast<int>(K), static_cast<int>(E), static_cast<int>(h), static_cast<int>(w),
        static_cast<int>(R), static_cast<int>(KS), static_cast<int>(tiles_y), static_cast<int>(tiles_x),
        static_cast<int>(n_splits), span, static_cast<int>(c_chunk), part_val.mutable_data_ptr<float>(),
        part_idx.mutable_data_ptr<int64_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    sr_head_refine_kernel<scalar_t><<<refine_blocks, kThreads, refine.smem, stream>>>(
        emb.const_data_ptr<scalar_t>(), emb.stride(0), emb.stride(1), emb.stride(2), emb.stride(3), femb_ptr,
        femb.stride(0), femb.stride(1), femb.stride(2), femb.stride(3), wc.const_data_ptr<scalar_t>(), bias_ptr,
        fidx_ptr, flip_shift, static_cast<int>(K), static_cast<int>(E), static_cast<int>(h), static_cast<int>(w),
        static_cast<int>(R), static_cast<int>(KS), static_cast<int>(n_splits), part_val.const_data_ptr<float>(),
        part_idx.const_data_ptr<int64_t>(), method_id, static_cast<int>(blur_kernel),
        refine.center_ptr(), refine.scale_ptr(), keypoints.mutable_data_ptr<float>(), scores.mutable_data_ptr<float>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {keypoints, scores};
}

}  // namespace srpose_cuda
