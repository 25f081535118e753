// The SR head's grouped conv evaluated straight at pixel-shuffled output positions; shared by the
// SR head forward (sr_head.cu) and the heatmap-free decoder (sr_head_decode.cu).
//
// Shapes: x (N, K*E, H, W), weight (K*RR, E, KS, KS) contiguous, RR = R*R, padding KS / 2, bias (K*RR,).
// Output pixel (Y, X) of joint j is conv channel j*RR + o, o = (Y % R) * R + X % R, at input pixel
// (Y / R, X / R):
//     out(j, Y, X) = sum_{c, ky, kx} x[j*E + c, Y/R + ky - pad, X/R + kx - pad] * weight[j*RR + o, c, ky, kx]
//                    + bias[j*RR + o]
// with x zero outside the map. The sum runs c, ky, kx in ascending order in every code path, so two
// kernels computing the same output get the same bits.
#pragma once

#include "common.cuh"

namespace srpose_cuda {

// Side of the input tile that a run of kTile consecutive output rows (or columns) reads: at most
// (kTile - 1) / R + 2 distinct input pixels, widened by KS - 1 for the taps.
__host__ __device__ inline int input_tile_span(int R, int KS) { return (kTile - 1) / R + 2 + KS - 1; }

// tile[c][r][q] = x[c_begin + c][row0 + r][col0 + q] for c < c_count, r, q < span (zero outside the
// H x W map), cooperatively by the whole block. x_joint points at channel j*E of image n.
template <typename scalar_t, typename acc_t>
__device__ void load_input_tile(acc_t* tile, const scalar_t* __restrict__ x_joint, int64_t sxc, int64_t sxh,
                                int64_t sxw, int c_begin, int c_count, int H, int W, int row0, int col0, int span) {
  const int plane = span * span;
  for (int i = threadIdx.x; i < c_count * plane; i += kThreads) {
    const int c = i / plane;
    const int r = (i / span) % span;
    const int q = i % span;
    const int y = row0 + r;
    const int x = col0 + q;
    acc_t v = 0;
    if (y >= 0 && y < H && x >= 0 && x < W) {
      v = static_cast<acc_t>(x_joint[(c_begin + c) * sxc + y * sxh + x * sxw]);
    }
    tile[i] = v;
  }
}

// acc += the taps of channels c_begin .. c_begin + c_count - 1 for one output, from a tile loaded by
// load_input_tile; (r, q) is the tile position of tap (0, 0), w_out points at weight[j*RR + o].
template <typename scalar_t, typename acc_t>
__device__ void accumulate_from_tile(acc_t& acc, const acc_t* tile, const scalar_t* __restrict__ w_out, int c_begin,
                                     int c_count, int KS, int span, int r, int q) {
  for (int c = 0; c < c_count; ++c) {
    const acc_t* t = tile + (c * span + r) * span + q;
    const scalar_t* wc = w_out + (c_begin + c) * KS * KS;
    for (int ky = 0; ky < KS; ++ky) {
      for (int kx = 0; kx < KS; ++kx) {
        acc += t[ky * span + kx] * static_cast<acc_t>(wc[ky * KS + kx]);
      }
    }
  }
}

// One output value read straight from global memory (no tile): the same sum in the same order.
template <typename scalar_t, typename acc_t>
__device__ acc_t sr_head_value_at(const scalar_t* __restrict__ x_joint, int64_t sxc, int64_t sxh, int64_t sxw,
                                  const scalar_t* __restrict__ w_joint, const scalar_t* __restrict__ b_joint, int E,
                                  int H, int W, int R, int KS, int Y, int X) {
  const int pad = KS / 2;
  const int y = Y / R;
  const int x = X / R;
  const int o = (Y % R) * R + X % R;
  const scalar_t* w_out = w_joint + static_cast<int64_t>(o) * E * KS * KS;
  acc_t acc = 0;
  for (int c = 0; c < E; ++c) {
    for (int ky = 0; ky < KS; ++ky) {
      const int iy = y + ky - pad;
      for (int kx = 0; kx < KS; ++kx) {
        const int ix = x + kx - pad;
        acc_t v = 0;
        if (iy >= 0 && iy < H && ix >= 0 && ix < W) v = static_cast<acc_t>(x_joint[c * sxc + iy * sxh + ix * sxw]);
        acc += v * static_cast<acc_t>(w_out[(c * KS + ky) * KS + kx]);
      }
    }
  }
  if (b_joint != nullptr) acc += static_cast<acc_t>(b_joint[o]);
  return acc;
}

}  // namespace srpose_cuda
