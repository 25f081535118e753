// What the two decoders (decode.cu: heatmaps in memory; sr_head_decode.cu: heatmaps computed from the
// SR head's input) share once a map's values can be read: the argmax state and its reduction, the
// refinements ("shift", "dark", "dark_udp"), the transform to image pixels and the stores.
// Semantics: srpose_fast/codecs/decoders.py, flip.py and transforms.py.
//
// A map is read through a Source: `float operator()(int y, int x) const` gives the (flip-merged)
// float32 value at a pixel inside the H x W map.
#pragma once

#include <cmath>
#include <cstdint>

#include "../decode/conventions.h"
#include "common.cuh"

namespace srpose_cuda {

enum DecodeMethod : int { kArgmax = 0, kShift = 1, kDark = 2, kDarkUdp = 3 };

// The kernels' own capacity (the blur's shared-memory window stays within the budget); the ops' validator
// refuses blur kernels above srpose_fast.ops.decode.MAX_BLUR_KERNEL, a smaller bound every backend shares.
constexpr int kMaxBlurKernel = 63;
constexpr int64_t kNoIndex = INT64_MAX;  // "no value seen yet"

// Running argmax: the maximum and its lowest flat index (y * W + x); NaN is tracked apart.
struct ArgmaxState {
  int64_t index;
  float value;
  int nan;
};

__device__ inline ArgmaxState argmax_empty() { return ArgmaxState{kNoIndex, -INFINITY, 0}; }

// One value; a thread visits its indices in increasing order, so a strictly greater value replaces
// the current one and ties keep the lower index.
__device__ inline void argmax_update(ArgmaxState& s, float v, int64_t index) {
  if (v != v) {
    s.nan = 1;
  } else if (s.index == kNoIndex || v > s.value) {
    s.value = v;
    s.index = index;
  }
}

struct ArgmaxCombine {
  __device__ ArgmaxState operator()(ArgmaxState a, ArgmaxState b) const {
    ArgmaxState r = a;
    if (a.index == kNoIndex || (b.index != kNoIndex && (b.value > a.value || (b.value == a.value && b.index < a.index)))) {
      r = b;
    }
    r.nan = a.nan | b.nan;
    return r;
  }
};

// Shared memory a refinement needs (in floats), for blur_kernel kb: the blur's input window, its
// vertical pass and the kTile x kTile blurred tile.
__host__ __device__ inline int blur_window_span(int kb) { return kTile + kb - 1; }
__host__ __device__ inline int refine_smem_floats(int kb) {
  const int span = blur_window_span(kb);
  return span * span + kTile * span + kTile * kTile;
}

// The (zero padded) Gaussian blur of the map on the kTile x kTile positions (oy + a, ox + b), into
// out[a * kTile + b]: the vertical pass first, then the horizontal one (as codecs.gaussian_blur).
// Positions outside the map get values too (the caller ignores them). Whole block; ends synchronised.
template <class Source>
__device__ void blur_tile(const Source& src, int H, int W, int oy, int ox, const float* __restrict__ taps, int kb,
                          float* smem, float* out) {
  const int rb = kb / 2;
  const int span = blur_window_span(kb);
  float* window = smem;                // [span][span]: map at (oy - rb + r, ox - rb + q), 0 outside
  float* vertical = smem + span * span;  // [kTile][span]
  __syncthreads();  // earlier readers of the buffers are done
  for (int i = threadIdx.x; i < span * span; i += kThreads) {
    const int y = oy - rb + i / span;
    const int x = ox - rb + i % span;
    window[i] = (y >= 0 && y < H && x >= 0 && x < W) ? src(y, x) : 0.0f;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < kTile * span; i += kThreads) {
    const int a = i / span;
    const int q = i % span;
    float acc = 0.0f;
    for (int t = 0; t < kb; ++t) acc += taps[t] * window[(a + t) * span + q];
    vertical[i] = acc;
  }
  __syncthreads();
  {
    const int a = threadIdx.x / kTile;
    const int b = threadIdx.x % kTile;
    float acc = 0.0f;
    for (int t = 0; t < kb; ++t) acc += taps[t] * vertical[a * span + b + t];
    out[threadIdx.x] = acc;
  }
  __syncthreads();
}

// The normalised 1-D Gaussian of DARK's blur into taps[0 .. kb): size kb, sigma dark_blur_sigma(kb), in float32
// as codecs.decoders.gaussian_taps computes it (the sum in another order: the last bit of a tap may differ).
// Made in the kernel, so a call launches nothing for it. Whole block; ends synchronised.
static __device__ __noinline__ void gaussian_taps(int kb, float* taps) {
  const float two_sigma2 = static_cast<float>(2.0 * srpose::dark_blur_sigma(kb) * srpose::dark_blur_sigma(kb));
  for (int t = threadIdx.x; t < kb; t += kThreads) {
    const float o = static_cast<float>(t - (kb - 1) / 2);
    taps[t] = expf(-(o * o) / two_sigma2);
  }
  __syncthreads();
  float total = 0.0f;
  for (int t = 0; t < kb; ++t) total += taps[t];
  __syncthreads();  // every thread has read the unnormalised taps
  for (int t = threadIdx.x; t < kb; t += kThreads) taps[t] /= total;
  __syncthreads();
}

// max over the whole map of its blurred values (the reference's rescale divisor). Whole block.
template <class Source>
__device__ float blurred_max(const Source& src, int H, int W, const float* __restrict__ taps, int kb, float* smem) {
  float* out = smem + blur_window_span(kb) * blur_window_span(kb) + kTile * blur_window_span(kb);
  float best = -INFINITY;
  for (int ty = 0; ty < H; ty += kTile) {
    for (int tx = 0; tx < W; tx += kTile) {
      blur_tile(src, H, W, ty, tx, taps, kb, smem, out);
      const int y = ty + static_cast<int>(threadIdx.x) / kTile;
      const int x = tx + static_cast<int>(threadIdx.x) % kTile;
      if (y < H && x < W) best = fmaxf(best, out[threadIdx.x]);
    }
  }
  return block_reduce(best, MaxOp());
}

// torch.clamp: NaN stays NaN (fmaxf/fminf alone would replace it by a bound).
__device__ inline float clamp_keep_nan(float v, float lo, float hi) { return v != v ? v : fminf(fmaxf(v, lo), hi); }

// -(H^-1 g) for the Hessian [[dxx, dxy], [dxy, dyy]]; (0, 0) unless ok and det != 0. Each product and
// difference rounded on its own (no fused multiply-add), as the reference's tensor ops round them.
__device__ inline void newton_step(float dx, float dy, float dxx, float dxy, float dyy, bool ok, float& ox,
                                   float& oy) {
  const float det = __fsub_rn(__fmul_rn(dxx, dyy), __fmul_rn(dxy, dxy));
  ox = 0.0f;
  oy = 0.0f;
  if (ok && det != 0.0f) {
    ox = -__fsub_rn(__fmul_rn(dyy, dx), __fmul_rn(dxy, dy)) / det;
    oy = -__fsub_rn(__fmul_rn(dxx, dy), __fmul_rn(dxy, dx)) / det;
  }
}

// Refines the argmax (x0, y0) of one map, transforms it and stores keypoint and score. Whole block
// (block-uniform control flow; only thread 0 stores).
//   best:      the block's argmax state (identical in every thread)
//   kb:        the blur kernel size ("dark", "dark_udp")
//   center, scale: this image's (x, y) pairs, or nullptr without a transform
//   smem:      refine_smem_floats(kb) floats
template <class Source>
__device__ void refine_and_store(const Source& src, ArgmaxState best, int method, int H, int W, int kb,
                                 const float* __restrict__ center,
                                 const float* __restrict__ scale, float* smem, float* __restrict__ keypoint,
                                 float* __restrict__ score) {
  const bool is_nan = best.nan != 0;
  const float m = best.value;
  const int64_t index = (is_nan || best.index == kNoIndex) ? 0 : best.index;
  const int x0 = static_cast<int>(index % W);
  const int y0 = static_cast<int>(index / W);
  const bool valid = !is_nan && m > 0.0f;
  float ox = 0.0f;
  float oy = 0.0f;

  if (method == kShift) {
    // mmpose 0.x: a quarter pixel toward the higher neighbour, only inside 1 < x < W-1, 1 < y < H-1
    if (threadIdx.x == 0 && valid && x0 > 1 && x0 < W - 1 && y0 > 1 && y0 < H - 1) {
      const float gx = src(y0, x0 + 1) - src(y0, x0 - 1);
      const float gy = src(y0 + 1, x0) - src(y0 - 1, x0);
      ox = gx > 0.0f ? 0.25f : (gx < 0.0f ? -0.25f : 0.0f);
      oy = gy > 0.0f ? 0.25f : (gy < 0.0f ? -0.25f : 0.0f);
    }
  } else if (method == kDark || method == kDarkUdp) {
    const bool udp = method == kDarkUdp;
    const bool ok = udp ? valid : (valid && x0 > 1 && x0 < W - 2 && y0 > 1 && y0 < H - 2);
    if (ok) {  // block-uniform
      __shared__ float taps[kMaxBlurKernel];
      gaussian_taps(kb, taps);
      const int span = blur_window_span(kb);
      float* blur = smem + span * span + kTile * span;  // [kTile][kTile], blur[2][2] at (y0, x0)
      blur_tile(src, H, W, y0 - 2, x0 - 2, taps, kb, smem, blur);
      // The reference multiplies the blurred map by (map max / blurred max) before clamping and taking
      // the log. Where the clamp cannot act the factor only adds a constant to the log, which cancels
      // in every derivative; it is >= 1 when the blurred max is positive (a normalised blur never
      // exceeds the map's maximum). So the exact factor is needed only if some value used is below
      // twice the clamp floor (or, DARK-UDP, the map's max exceeds 49, near the ceiling 50).
      __shared__ int need_factor;
      if (threadIdx.x == 0) {
        const float floor_value = udp ? 1e-3f : 1e-10f;
        int need = (udp && m > 49.0f) ? 1 : 0;
        for (int i = 0; i < 25; ++i) {
          const int y = min(max(y0 - 2 + i / 5, 0), H - 1);
          const int x = min(max(x0 - 2 + i % 5, 0), W - 1);
          if (!(blur[(y - y0 + 2) * kTile + (x - x0 + 2)] >= 2.0f * floor_value)) need = 1;
        }
        need_factor = need;
      }
      __syncthreads();
      float factor = 1.0f;
      if (need_factor) {
        const float bmax = blurred_max(src, H, W, taps, kb, smem);
        factor = bmax != 0.0f ? m / bmax : 1.0f;
        blur_tile(src, H, W, y0 - 2, x0 - 2, taps, kb, smem, blur);  // blurred_max reused the buffers
      }
      if (threadIdx.x == 0) {
        // L at (x0 + dx, y0 + dy), indices clamped into the map (edge padding, as codecs' _sample)
        auto L = [&](int dx, int dy) {
          const int y = min(max(y0 + dy, 0), H - 1);
          const int x = min(max(x0 + dx, 0), W - 1);
          const float v = blur[(y - y0 + 2) * kTile + (x - x0 + 2)] * factor;
          return udp ? logf(clamp_keep_nan(v, 1e-3f, 50.0f)) : logf(clamp_keep_nan(v, 1e-10f, INFINITY));
        };
        if (udp) {
          const float i = L(0, 0);
          const float ix1 = L(1, 0), ix1_ = L(-1, 0), iy1 = L(0, 1), iy1_ = L(0, -1);
          const float dx = 0.5f * (ix1 - ix1_);
          const float dy = 0.5f * (iy1 - iy1_);
          const float dxx = ix1 - 2.0f * i + ix1_;
          const float dyy = iy1 - 2.0f * i + iy1_;
          const float dxy = 0.5f * (L(1, 1) - ix1 - iy1 + 2.0f * i - ix1_ - iy1_ + L(-1, -1));
          const float eps = 1.1920928955078125e-07f;  // float32 machine epsilon
          newton_step(dx, dy, dxx + eps, dxy, dyy + eps, true, ox, oy);
        } else {
          const float centre = L(0, 0);
          const float dx = 0.5f * (L(1, 0) - L(-1, 0));
          const float dy = 0.5f * (L(0, 1) - L(0, -1));
          const float dxx = 0.25f * (L(2, 0) - 2.0f * centre + L(-2, 0));
          const float dyy = 0.25f * (L(0, 2) - 2.0f * centre + L(0, -2));
          const float dxy = 0.25f * (L(1, 1) - L(1, -1) - L(-1, 1) + L(-1, -1));
          newton_step(dx, dy, dxx, dxy, dyy, true, ox, oy);
        }
      }
    }
  }

  if (threadIdx.x == 0) {
    float kx = static_cast<float>(x0) + ox;
    float ky = static_cast<float>(y0) + oy;
    if (center != nullptr) {
      // x_img = x * (crop / W) + (c - crop / 2), crop = scale * kPixelStd; UDP divides by W - 1
      const bool udp = method == kDarkUdp;
      const float crop_x = __fmul_rn(scale[0], srpose::kPixelStd);
      const float crop_y = __fmul_rn(scale[1], srpose::kPixelStd);
      const float step_x = __fdiv_rn(crop_x, static_cast<float>(udp ? W - 1 : W));
      const float step_y = __fdiv_rn(crop_y, static_cast<float>(udp ? H - 1 : H));
      kx = __fadd_rn(__fmul_rn(kx, step_x), __fsub_rn(center[0], __fmul_rn(crop_x, 0.5f)));
      ky = __fadd_rn(__fmul_rn(ky, step_y), __fsub_rn(center[1], __fmul_rn(crop_y, 0.5f)));
    }
    keypoint[0] = is_nan ? NAN : kx;
    keypoint[1] = is_nan ? NAN : ky;
    *score = is_nan ? NAN : (m > 0.0f ? m : 0.0f);
  }
}

}  // namespace srpose_cuda
