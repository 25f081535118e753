// Portable heatmap decoder for srpose-fast deployments: C++17, no torch, no CUDA.
//
// Decodes (N, K, H, W) contiguous heatmaps into keypoints (N, K, 2) as (x, y) and scores (N, K),
// with the semantics of the project's torch reference (srpose_fast.codecs.decoders and
// srpose_fast.codecs.flip, as called by srpose_fast.ops.decode.decode_heatmaps):
//
//   1. flip merge (when `flipped` is given): f = flipped[:, flip_indices] mirrored on the width
//      axis; with flip_shift f[..., 1:] = f[..., :-1] (column 0 keeps its value);
//      merged = (heatmaps + f) * 0.5 in float32.
//   2. argmax: lowest flat index on ties; NaN in a map -> score NaN, keypoint (NaN, NaN);
//      maximum <= 0 -> score 0, keypoint at the argmax, no refinement; else score = maximum.
//   3. refinement: kArgmax (none), kShift (quarter pixel), kDark, kDarkUdp (one Newton step on the
//      log of the Gaussian-blurred map; see heatmap_decoder.cpp for the exact formulas).
//   4. to image coordinates (when center and scale are given; scale in units of 200 px):
//      x_img = x * s_w / W + c_x - s_w / 2 (W - 1 and H - 1 for kDarkUdp).
//
// Maps are independent, so the N * K maps are split across `num_threads` threads; every map is
// decoded by the same code whatever the thread count, so results do not depend on it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace srpose {
namespace decode {

enum class Method { kArgmax, kShift, kDark, kDarkUdp };

// "argmax", "shift", "dark", "dark_udp" -> Method; std::invalid_argument for any other name.
Method parse_method(const std::string& name);
const char* method_name(Method method);

// COCO's left/right swap for 17 keypoints.
std::vector<int> coco_flip_indices();

struct DecodeOptions {
  Method method = Method::kDark;
  int blur_kernel = 11;           // odd, >= 1; used by kDark and kDarkUdp
  bool flip_shift = true;         // shift the mirrored map one pixel right (false for UDP maps)
  std::vector<int> flip_indices;  // a permutation of 0..K-1; required when `flipped` is given
  int num_threads = 0;            // 0: std::thread::hardware_concurrency()
};

// The shape of a contiguous (N, K, H, W) batch.
struct HeatmapShape {
  std::int64_t n = 0, k = 0, h = 0, w = 0;
};

// IEEE 754 binary16 (stored as its bit pattern) to float, exact for every value.
float half_to_float(std::uint16_t bits);

// Throws std::invalid_argument with a readable message when the shape or options are unusable
// (H or W < 1, even or non-positive blur kernel, flip_indices not a permutation of 0..K-1 when
// `with_flip`, negative counts).
void check_arguments(const HeatmapShape& shape, const DecodeOptions& options, bool with_flip);

// Decode one batch. `flipped` may be null (no flip test). `center` and `scale` are (N, 2) each,
// both null (heatmap pixels out) or both given (image pixels out). `keypoints` receives N * K * 2
// floats, `scores` N * K floats. Inputs are read only; nothing is allocated per element.
void decode_heatmaps(const float* heatmaps, const float* flipped, const HeatmapShape& shape,
                     const float* center, const float* scale, const DecodeOptions& options,
                     float* keypoints, float* scores);

// The same for IEEE half inputs stored as uint16 bit patterns (converted to float on read).
void decode_heatmaps(const std::uint16_t* heatmaps, const std::uint16_t* flipped,
                     const HeatmapShape& shape, const float* center, const float* scale,
                     const DecodeOptions& options, float* keypoints, float* scores);

// The number of threads decode_heatmaps uses for `options` and `shape` (for logs and benchmarks).
int resolved_num_threads(const HeatmapShape& shape, const DecodeOptions& options);

}  // namespace decode
}  // namespace srpose
