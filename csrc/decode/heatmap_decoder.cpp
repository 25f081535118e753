// Portable heatmap decoder: see heatmap_decoder.h for the contract.
//
// Each map is decoded on its own: build the float32 map (flip merge, half conversion, or the input
// itself), one vectorisable pass for the maximum and NaN, one pass for the first index holding the
// maximum, then the refinement, which reads only a small window around the argmax.
//
// DARK and DARK-UDP need the Gaussian-blurred map only in a 5x5 (DARK) or 3x3 (DARK-UDP) window,
// computed here in double precision. The reference rescales the blurred map by
// f = max(map) / max(blurred) before the log; log(b * f) = log(b) + log(f) and the constant cancels
// in every difference, so f matters only when the clamp (DARK: b * f >= 1e-10) or the clip
// (DARK-UDP: 1e-3 <= b * f <= 50) touches a window value. Because the kernel is non-negative and
// sums to 1, 0 < max(blurred) <= max(map) whenever a window value b_i is > 0, so f >= 1 and
// b_i * f = max(map) * b_i / max(blurred) <= max(map). Hence:
//   DARK:     every window b_i >= 1e-10                     -> the clamp is inactive,
//   DARK-UDP: every window b_i >= 1e-3 and max(map) <= 50   -> the clip is inactive,
// and the window alone gives the exact answer. Otherwise (rare for real heatmaps) the whole map is
// blurred once to get max(blurred) and the reference's rescale is applied exactly. A 0.1% margin
// on the thresholds covers rounding in the window sums.
#include "heatmap_decoder.h"

#include "conventions.h"

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <type_traits>

#if defined(__SSE2__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace srpose {
namespace decode {

Method parse_method(const std::string& name) {
  if (name == "argmax") return Method::kArgmax;
  if (name == "shift") return Method::kShift;
  if (name == "dark") return Method::kDark;
  if (name == "dark_udp") return Method::kDarkUdp;
  throw std::invalid_argument("decode: method must be one of 'argmax', 'shift', 'dark', 'dark_udp', got '" +
                              name + "'");
}

const char* method_name(Method method) {
  switch (method) {
    case Method::kArgmax: return "argmax";
    case Method::kShift: return "shift";
    case Method::kDark: return "dark";
    case Method::kDarkUdp: return "dark_udp";
  }
  return "unknown";
}

std::vector<int> coco_flip_indices() { return {0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15}; }

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  const std::uint32_t mantissa = h & 0x3ffu;
  std::uint32_t bits;
  if (exponent == 0) {
    // zero or subnormal: mantissa * 2^-24, exact in float
    float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    std::memcpy(&bits, &magnitude, sizeof bits);
    bits |= sign;
  } else if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // inf or NaN (payload kept)
  } else {
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  }
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

void check_arguments(const HeatmapShape& shape, const DecodeOptions& options, bool with_flip) {
  if (shape.n < 0 || shape.k < 0) throw std::invalid_argument("decode: N and K must be >= 0");
  if (shape.h < 1 || shape.w < 1) {
    std::ostringstream msg;
    msg << "decode: heatmaps must be at least 1x1, got H = " << shape.h << ", W = " << shape.w;
    throw std::invalid_argument(msg.str());
  }
  if (options.blur_kernel < 1 || options.blur_kernel % 2 == 0) {
    throw std::invalid_argument("decode: blur_kernel must be a positive odd number, got " +
                                std::to_string(options.blur_kernel));
  }
  if (with_flip) {
    const auto& idx = options.flip_indices;
    if (static_cast<std::int64_t>(idx.size()) != shape.k) {
      std::ostringstream msg;
      msg << "decode: flip_indices has " << idx.size() << " entries, the heatmaps have K = " << shape.k;
      throw std::invalid_argument(msg.str());
    }
    std::vector<char> seen(idx.size(), 0);
    for (int i : idx) {
      if (i < 0 || i >= shape.k || seen[i]) {
        throw std::invalid_argument("decode: flip_indices must be a permutation of 0..K-1");
      }
      seen[i] = 1;
    }
  }
}

namespace {

// Auto mode: one thread per 2^20 pixels (4 MB of float32) at most. Below that a thread costs more to start
// (tens of microseconds, milliseconds on a busy machine) than it saves on a memory-bound pass.
constexpr std::int64_t kPixelsPerThread = std::int64_t{1} << 20;

// The normalised 1-D Gaussian of the blur, sigma = dark_blur_sigma(k).
std::vector<double> gaussian_kernel(int size) {
  const int radius = (size - 1) / 2;
  const double sigma = dark_blur_sigma(size);
  std::vector<double> g(size);
  double total = 0.0;
  for (int i = 0; i < size; ++i) {
    const double o = i - radius;
    g[i] = std::exp(-(o * o) / (2.0 * sigma * sigma));
    total += g[i];
  }
  for (double& v : g) v /= total;
  return g;
}

struct Argmax {
  std::int64_t index;
  float value;
  bool has_nan;
};

// Maximum, NaN flag and lowest index of the maximum: one pass for the maximum and NaN (four SIMD
// accumulators; SSE2 is the x86-64 baseline, AVX2 is used when the CPU has it), then a scan for the
// first element equal to the maximum, which stops at the peak and reads a map still in cache.
// max(x, m) below is x > m ? x : m (the SSE/AVX operand order), so a NaN never enters the maximum;
// NaN is flagged separately.
#if defined(__SSE2__) || defined(_M_X64)
// The scalar tail of the maximum pass, then the first index holding the maximum (16 floats per test).
Argmax finish_argmax(const float* p, std::int64_t count, std::int64_t i, float best, bool has_nan) {
  for (; i < count; ++i) {
    const float v = p[i];
    best = v > best ? v : best;
    has_nan = has_nan || v != v;
  }
  Argmax out{0, best, has_nan};
  if (has_nan) return out;
  const __m128 target = _mm_set1_ps(best);
  std::int64_t j = 0;
  for (; j + 16 <= count; j += 16) {
    const __m128 any = _mm_or_ps(_mm_or_ps(_mm_cmpeq_ps(_mm_loadu_ps(p + j), target),
                                           _mm_cmpeq_ps(_mm_loadu_ps(p + j + 4), target)),
                                 _mm_or_ps(_mm_cmpeq_ps(_mm_loadu_ps(p + j + 8), target),
                                           _mm_cmpeq_ps(_mm_loadu_ps(p + j + 12), target)));
    if (_mm_movemask_ps(any) != 0) break;  // the first hit is among these 16
  }
  for (; j < count; ++j) {
    if (p[j] == best) {
      out.index = j;
      break;
    }
  }
  return out;
}

Argmax argmax_sse2(const float* p, std::int64_t count) {
  const __m128 neg_inf = _mm_set1_ps(-std::numeric_limits<float>::infinity());
  __m128 m0 = neg_inf, m1 = neg_inf, m2 = neg_inf, m3 = neg_inf;
  __m128 nan = _mm_setzero_ps();
  std::int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m128 a = _mm_loadu_ps(p + i), b = _mm_loadu_ps(p + i + 4);
    const __m128 c = _mm_loadu_ps(p + i + 8), d = _mm_loadu_ps(p + i + 12);
    m0 = _mm_max_ps(a, m0);
    m1 = _mm_max_ps(b, m1);
    m2 = _mm_max_ps(c, m2);
    m3 = _mm_max_ps(d, m3);
    nan = _mm_or_ps(nan, _mm_or_ps(_mm_cmpunord_ps(a, b), _mm_cmpunord_ps(c, d)));
  }
  alignas(16) float lanes[4];
  _mm_store_ps(lanes, _mm_max_ps(_mm_max_ps(m0, m1), _mm_max_ps(m2, m3)));
  float best = -std::numeric_limits<float>::infinity();
  for (float v : lanes) best = v > best ? v : best;
  return finish_argmax(p, count, i, best, _mm_movemask_ps(nan) != 0);
}

// SRPOSE_DECODE_NO_AVX2 (a build option, used by the tests to cover the SSE2 path) turns the dispatch off.
#if defined(__GNUC__) && !defined(__AVX2__) && !defined(SRPOSE_DECODE_NO_AVX2)
#define SRPOSE_AVX2_DISPATCH 1
__attribute__((target("avx2")))
#endif
#if (defined(__AVX2__) && !defined(SRPOSE_DECODE_NO_AVX2)) || defined(SRPOSE_AVX2_DISPATCH)
Argmax argmax_avx2(const float* p, std::int64_t count) {
  const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 m0 = neg_inf, m1 = neg_inf, m2 = neg_inf, m3 = neg_inf;
  __m256 nan = _mm256_setzero_ps();
  std::int64_t i = 0;
  for (; i + 32 <= count; i += 32) {
    const __m256 a = _mm256_loadu_ps(p + i), b = _mm256_loadu_ps(p + i + 8);
    const __m256 c = _mm256_loadu_ps(p + i + 16), d = _mm256_loadu_ps(p + i + 24);
    m0 = _mm256_max_ps(a, m0);
    m1 = _mm256_max_ps(b, m1);
    m2 = _mm256_max_ps(c, m2);
    m3 = _mm256_max_ps(d, m3);
    nan = _mm256_or_ps(nan, _mm256_or_ps(_mm256_cmp_ps(a, b, _CMP_UNORD_Q), _mm256_cmp_ps(c, d, _CMP_UNORD_Q)));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));
  float best = -std::numeric_limits<float>::infinity();
  for (float v : lanes) best = v > best ? v : best;
  if (_mm256_movemask_ps(nan) != 0) return Argmax{0, best, true};
  // skip, 32 floats per test, the blocks that cannot hold the maximum (values > best are only in the tail)
  const __m256 target = _mm256_set1_ps(best);
  std::int64_t j = 0;
  for (; j + 32 <= i; j += 32) {
    const __m256 any = _mm256_or_ps(
        _mm256_or_ps(_mm256_cmp_ps(_mm256_loadu_ps(p + j), target, _CMP_EQ_OQ),
                     _mm256_cmp_ps(_mm256_loadu_ps(p + j + 8), target, _CMP_EQ_OQ)),
        _mm256_or_ps(_mm256_cmp_ps(_mm256_loadu_ps(p + j + 16), target, _CMP_EQ_OQ),
                     _mm256_cmp_ps(_mm256_loadu_ps(p + j + 24), target, _CMP_EQ_OQ)));
    if (_mm256_movemask_ps(any) != 0) break;
  }
  // from block j on: the tail's maximum and NaN, then the first index of the maximum
  Argmax out = finish_argmax(p + j, count - j, i - j, best, false);
  out.index += j;
  return out;
}
#endif

Argmax argmax(const float* p, std::int64_t count) {
#if defined(__AVX2__) && !defined(SRPOSE_DECODE_NO_AVX2)
  return argmax_avx2(p, count);
#elif defined(SRPOSE_AVX2_DISPATCH)
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  return has_avx2 ? argmax_avx2(p, count) : argmax_sse2(p, count);
#else
  return argmax_sse2(p, count);
#endif
}
#else
Argmax argmax(const float* p, std::int64_t count) {
  constexpr int kLanes = 16;
  float lane_max[kLanes];
  int lane_nan[kLanes];
  for (int j = 0; j < kLanes; ++j) {
    lane_max[j] = -std::numeric_limits<float>::infinity();
    lane_nan[j] = 0;
  }
  std::int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const float v = p[i + j];
      lane_max[j] = v > lane_max[j] ? v : lane_max[j];
      lane_nan[j] |= (v != v);
    }
  }
  float best = -std::numeric_limits<float>::infinity();
  int nan = 0;
  for (int j = 0; j < kLanes; ++j) {
    best = lane_max[j] > best ? lane_max[j] : best;
    nan |= lane_nan[j];
  }
  for (; i < count; ++i) {
    const float v = p[i];
    best = v > best ? v : best;
    nan |= (v != v);
  }
  Argmax out{0, best, nan != 0};
  if (out.has_nan) return out;
  for (std::int64_t j = 0; j < count; ++j) {
    if (p[j] == best) {
      out.index = j;
      break;
    }
  }
  return out;
}
#endif

// Per-thread scratch, sized once per call.
struct Scratch {
  std::vector<float> map, flipped;  // half inputs converted to float32
  std::vector<float> merged;        // the flip merge
  std::vector<double> vertical;     // vertical blur pass (window or whole map)
};

// Blurred values (zero padding, vertical pass then horizontal) for rows y0..y1, columns x0..x1,
// all inside the map, written row-major to `out`.
void blur_window(const float* m, int height, int width, const std::vector<double>& g, int y0, int y1, int x0,
                 int x1, std::vector<double>& vertical, double* out) {
  const int radius = static_cast<int>(g.size() / 2);
  const int c0 = std::max(0, x0 - radius), c1 = std::min(width - 1, x1 + radius);
  const int cols = c1 - c0 + 1;
  vertical.assign(static_cast<std::size_t>(y1 - y0 + 1) * cols, 0.0);
  for (int yy = y0; yy <= y1; ++yy) {
    double* row = vertical.data() + static_cast<std::size_t>(yy - y0) * cols;
    const int i0 = std::max(0, radius - yy), i1 = std::min(static_cast<int>(g.size()) - 1, height - 1 - yy + radius);
    for (int i = i0; i <= i1; ++i) {
      const float* src = m + static_cast<std::int64_t>(yy + i - radius) * width + c0;
      const double wgt = g[i];
      for (int c = 0; c < cols; ++c) row[c] += wgt * src[c];
    }
  }
  for (int yy = y0; yy <= y1; ++yy) {
    const double* row = vertical.data() + static_cast<std::size_t>(yy - y0) * cols;
    for (int xx = x0; xx <= x1; ++xx) {
      const int j0 = std::max(0, radius - xx), j1 = std::min(static_cast<int>(g.size()) - 1, width - 1 - xx + radius);
      double acc = 0.0;
      for (int j = j0; j <= j1; ++j) acc += g[j] * row[xx + j - radius - c0];
      out[(yy - y0) * (x1 - x0 + 1) + (xx - x0)] = acc;
    }
  }
}

// The maximum of the whole blurred map (the reference's rescale denominator).
double blurred_max(const float* m, int height, int width, const std::vector<double>& g, std::vector<double>& vertical) {
  const int radius = static_cast<int>(g.size() / 2);
  const int taps = static_cast<int>(g.size());
  vertical.assign(static_cast<std::size_t>(height) * width, 0.0);
  for (int yy = 0; yy < height; ++yy) {
    double* row = vertical.data() + static_cast<std::size_t>(yy) * width;
    const int i0 = std::max(0, radius - yy), i1 = std::min(taps - 1, height - 1 - yy + radius);
    for (int i = i0; i <= i1; ++i) {
      const float* src = m + static_cast<std::int64_t>(yy + i - radius) * width;
      const double wgt = g[i];
      for (int c = 0; c < width; ++c) row[c] += wgt * src[c];
    }
  }
  double best = -std::numeric_limits<double>::infinity();
  for (int yy = 0; yy < height; ++yy) {
    const double* row = vertical.data() + static_cast<std::size_t>(yy) * width;
    for (int xx = 0; xx < width; ++xx) {
      const int j0 = std::max(0, radius - xx), j1 = std::min(taps - 1, width - 1 - xx + radius);
      double acc = 0.0;
      for (int j = j0; j <= j1; ++j) acc += g[j] * row[xx + j - radius];
      best = std::max(best, acc);
    }
  }
  return best;
}

// -(H^-1 g) for [[dxx, dxy], [dxy, dyy]]; false (no step) when the determinant is 0.
bool newton_step(double dx, double dy, double dxx, double dxy, double dyy, double* ox, double* oy) {
  const double det = dxx * dyy - dxy * dxy;
  if (!(det != 0.0)) return false;
  *ox = -(dyy * dx - dxy * dy) / det;
  *oy = -(dxx * dy - dxy * dx) / det;
  return true;
}

// DARK at integer (x, y) with 1 < x < W-2 and 1 < y < H-2; peak = the map's maximum (> 0).
void refine_dark(const float* m, int height, int width, int x, int y, float peak, const std::vector<double>& g,
                 Scratch& scratch, double* ox, double* oy) {
  double b[25];  // blurred values, rows y-2..y+2, columns x-2..x+2
  blur_window(m, height, width, g, y - 2, y + 2, x - 2, x + 2, scratch.vertical, b);
  auto at = [&b](int dx, int dy) -> double& { return b[(dy + 2) * 5 + (dx + 2)]; };
  static const int kUsed[13][2] = {{0, 0},  {1, 0},  {-1, 0}, {2, 0},  {-2, 0}, {0, 1},  {0, -1},
                                   {0, 2},  {0, -2}, {1, 1},  {1, -1}, {-1, 1}, {-1, -1}};
  constexpr double kFloor = 1e-10;
  bool clamp_free = true;
  for (const auto& o : kUsed) clamp_free = clamp_free && at(o[0], o[1]) >= kFloor * 1.001;
  const double factor = [&]() {
    if (clamp_free) return 1.0;  // log(factor) cancels in every difference
    const double bmax = blurred_max(m, height, width, g, scratch.vertical);
    return bmax != 0.0 ? static_cast<double>(peak) / bmax : 1.0;
  }();
  for (const auto& o : kUsed) at(o[0], o[1]) = std::log(std::max(at(o[0], o[1]) * factor, kFloor));
  const double dx = 0.5 * (at(1, 0) - at(-1, 0));
  const double dy = 0.5 * (at(0, 1) - at(0, -1));
  const double dxx = 0.25 * (at(2, 0) - 2.0 * at(0, 0) + at(-2, 0));
  const double dyy = 0.25 * (at(0, 2) - 2.0 * at(0, 0) + at(0, -2));
  const double dxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1));
  if (!newton_step(dx, dy, dxx, dxy, dyy, ox, oy)) *ox = *oy = 0.0;
}

// DARK-UDP at any integer (x, y): the log map is read with edge padding (indices clamped).
void refine_dark_udp(const float* m, int height, int width, int x, int y, float peak, const std::vector<double>& g,
                     Scratch& scratch, double* ox, double* oy) {
  const int y0 = std::max(0, y - 1), y1 = std::min(height - 1, y + 1);
  const int x0 = std::max(0, x - 1), x1 = std::min(width - 1, x + 1);
  const int cols = x1 - x0 + 1, rows = y1 - y0 + 1;
  double b[9];
  blur_window(m, height, width, g, y0, y1, x0, x1, scratch.vertical, b);
  constexpr double kLow = 1e-3, kHigh = 50.0;
  bool clip_free = static_cast<double>(peak) <= kHigh / 1.001;
  for (int i = 0; i < rows * cols; ++i) clip_free = clip_free && b[i] >= kLow * 1.001;
  const double factor = [&]() {
    if (clip_free) return 1.0;
    const double bmax = blurred_max(m, height, width, g, scratch.vertical);
    return bmax != 0.0 ? static_cast<double>(peak) / bmax : 1.0;
  }();
  for (int i = 0; i < rows * cols; ++i) b[i] = std::log(std::min(std::max(b[i] * factor, kLow), kHigh));
  auto at = [&](int dx, int dy) {
    const int xx = std::min(std::max(x + dx, 0), width - 1), yy = std::min(std::max(y + dy, 0), height - 1);
    return b[(yy - y0) * cols + (xx - x0)];
  };
  const double i = at(0, 0);
  const double ix1 = at(1, 0), ix1_ = at(-1, 0), iy1 = at(0, 1), iy1_ = at(0, -1);
  const double dx = 0.5 * (ix1 - ix1_);
  const double dy = 0.5 * (iy1 - iy1_);
  const double dxx = ix1 - 2.0 * i + ix1_;
  const double dyy = iy1 - 2.0 * i + iy1_;
  const double dxy = 0.5 * (at(1, 1) - ix1 - iy1 + 2.0 * i - ix1_ - iy1_ + at(-1, -1));
  const double eps = static_cast<double>(FLT_EPSILON);
  if (!newton_step(dx, dy, dxx + eps, dxy, dyy + eps, ox, oy)) *ox = *oy = 0.0;
}

// Half to float for a whole map: F16C (8 per instruction) when the CPU has it, else the exact scalar rule.
void halves_to_floats_scalar(const std::uint16_t* src, std::int64_t count, float* dst) {
  for (std::int64_t i = 0; i < count; ++i) dst[i] = half_to_float(src[i]);
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(SRPOSE_DECODE_NO_AVX2)
#define SRPOSE_F16C_DISPATCH 1
__attribute__((target("avx,f16c"))) void halves_to_floats_f16c(const std::uint16_t* src, std::int64_t count,
                                                                 float* dst) {
  std::int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  }
  halves_to_floats_scalar(src + i, count - i, dst + i);
}
#endif

void halves_to_floats(const std::uint16_t* src, std::int64_t count, float* dst) {
#if defined(SRPOSE_F16C_DISPATCH)
  static const bool has_f16c = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
  if (has_f16c) {
    halves_to_floats_f16c(src, count, dst);
    return;
  }
#endif
  halves_to_floats_scalar(src, count, dst);
}

// A map as float32: float input is read in place, half input is converted into `buffer`.
const float* as_floats(const float* src, std::int64_t, std::vector<float>&) { return src; }
const float* as_floats(const std::uint16_t* src, std::int64_t count, std::vector<float>& buffer) {
  halves_to_floats(src, count, buffer.data());
  return buffer.data();
}

// The float32 map of item (n, k): the input itself, its half conversion, or the flip merge.
template <typename T>
const float* prepare_map(const T* heatmaps, const T* flipped, const HeatmapShape& s, const DecodeOptions& opt,
                         std::int64_t n, std::int64_t k, Scratch& scratch) {
  const std::int64_t hw = s.h * s.w;
  const float* a = as_floats(heatmaps + (n * s.k + k) * hw, hw, scratch.map);
  if (flipped == nullptr) return a;
  const std::int64_t source = opt.flip_indices[static_cast<std::size_t>(k)];
  const float* f = as_floats(flipped + (n * s.k + source) * hw, hw, scratch.flipped);
  float* dst = scratch.merged.data();
  const std::int64_t w = s.w;
  const std::int64_t shift = (opt.flip_shift && w > 1) ? 1 : 0;
  for (std::int64_t y = 0; y < s.h; ++y) {
    const float* row = a + y * w;
    const float* mirror = f + y * w + (w - 1 + shift);  // column x reads mirror[-x]
    float* out = dst + y * w;
    // mirrored column x is f[w - 1 - x]; shifted, column x >= 1 takes mirrored column x - 1
    if (shift) out[0] = (row[0] + f[y * w + w - 1]) * 0.5f;
    for (std::int64_t x = shift; x < w; ++x) out[x] = (row[x] + mirror[-x]) * 0.5f;
  }
  return dst;
}

template <typename T>
void decode_item(const T* heatmaps, const T* flipped, const HeatmapShape& s, const float* center,
                 const float* scale, const DecodeOptions& opt, const std::vector<double>& g, std::int64_t item,
                 Scratch& scratch, float* keypoints, float* scores) {
  const std::int64_t n = item / s.k, k = item % s.k;
  const int height = static_cast<int>(s.h), width = static_cast<int>(s.w);
  const float* m = prepare_map(heatmaps, flipped, s, opt, n, k, scratch);
  const Argmax am = argmax(m, s.h * s.w);
  float* kp = keypoints + item * 2;
  if (am.has_nan) {
    kp[0] = kp[1] = scores[item] = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  const int x = static_cast<int>(am.index % width), y = static_cast<int>(am.index / width);
  float fx = static_cast<float>(x), fy = static_cast<float>(y);
  if (am.value > 0.0f) {
    scores[item] = am.value;
    double ox = 0.0, oy = 0.0;
    switch (opt.method) {
      case Method::kArgmax:
        break;
      case Method::kShift:
        if (x > 1 && x < width - 1 && y > 1 && y < height - 1) {
          const float* c = m + am.index;
          const float gx = c[1] - c[-1];
          const float gy = c[width] - c[-width];
          ox = 0.25 * ((gx > 0.0f) - (gx < 0.0f));
          oy = 0.25 * ((gy > 0.0f) - (gy < 0.0f));
        }
        break;
      case Method::kDark:
        if (x > 1 && x < width - 2 && y > 1 && y < height - 2) {
          refine_dark(m, height, width, x, y, am.value, g, scratch, &ox, &oy);
        }
        break;
      case Method::kDarkUdp:
        refine_dark_udp(m, height, width, x, y, am.value, g, scratch, &ox, &oy);
        break;
    }
    fx += static_cast<float>(ox);
    fy += static_cast<float>(oy);
  } else {
    scores[item] = 0.0f;
  }
  if (center != nullptr) {
    const bool udp = opt.method == Method::kDarkUdp;
    const float denom_w = static_cast<float>(udp ? width - 1 : width);
    const float denom_h = static_cast<float>(udp ? height - 1 : height);
    // the reference's float32 order: x * (s / W) + (c - s / 2)
    const float sw = scale[n * 2] * kPixelStd, sh = scale[n * 2 + 1] * kPixelStd;
    fx = fx * (sw / denom_w) + (center[n * 2] - sw * 0.5f);
    fy = fy * (sh / denom_h) + (center[n * 2 + 1] - sh * 0.5f);
  }
  kp[0] = fx;
  kp[1] = fy;
}

template <typename T>
void decode_impl(const T* heatmaps, const T* flipped, const HeatmapShape& s, const float* center, const float* scale,
                 const DecodeOptions& opt, float* keypoints, float* scores) {
  check_arguments(s, opt, flipped != nullptr);
  if ((center == nullptr) != (scale == nullptr)) {
    throw std::invalid_argument("decode: give both center and scale, or neither");
  }
  if (center != nullptr && opt.method == Method::kDarkUdp && (s.h < 2 || s.w < 2)) {
    throw std::invalid_argument("decode: dark_udp's (W - 1, H - 1) scaling needs maps of at least 2x2");
  }
  const std::int64_t items = s.n * s.k;
  if (items == 0) return;
  const std::vector<double> g = gaussian_kernel(opt.blur_kernel);
  const std::size_t hw = static_cast<std::size_t>(s.h * s.w);
  const bool half = !std::is_same<T, float>::value;
  const std::size_t map_size = half ? hw : 0;
  const std::size_t flipped_size = half && flipped != nullptr ? hw : 0;
  const std::size_t merged_size = flipped != nullptr ? hw : 0;
  const int threads = resolved_num_threads(s, opt);
  const std::int64_t chunk = std::max<std::int64_t>(1, items / (static_cast<std::int64_t>(threads) * 8));
  std::atomic<std::int64_t> next{0};
  auto worker = [&]() {
    Scratch scratch;
    scratch.map.resize(map_size);
    scratch.flipped.resize(flipped_size);
    scratch.merged.resize(merged_size);
    for (;;) {
      const std::int64_t begin = next.fetch_add(chunk, std::memory_order_relaxed);
      if (begin >= items) break;
      const std::int64_t end = std::min(items, begin + chunk);
      for (std::int64_t item = begin; item < end; ++item) {
        decode_item(heatmaps, flipped, s, center, scale, opt, g, item, scratch, keypoints, scores);
      }
    }
  };
  if (threads <= 1) {
    worker();
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads - 1));
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
}

}  // namespace

int resolved_num_threads(const HeatmapShape& shape, const DecodeOptions& options) {
  const std::int64_t items = std::max<std::int64_t>(0, shape.n * shape.k);
  if (items <= 1) return 1;
  std::int64_t wanted;
  if (options.num_threads > 0) {
    wanted = options.num_threads;  // explicit: as many as asked, at most one per map
  } else {
    // Asked once: glibc reads /sys for it, about 10 us, a third of a small decode.
    static const unsigned hw = std::thread::hardware_concurrency();
    const std::int64_t by_work = std::max<std::int64_t>(1, items * shape.h * shape.w / kPixelsPerThread);
    wanted = std::min<std::int64_t>(hw == 0 ? 1 : hw, by_work);
  }
  return static_cast<int>(std::max<std::int64_t>(1, std::min(wanted, items)));
}

void decode_heatmaps(const float* heatmaps, const float* flipped, const HeatmapShape& shape, const float* center,
                     const float* scale, const DecodeOptions& options, float* keypoints, float* scores) {
  decode_impl(heatmaps, flipped, shape, center, scale, options, keypoints, scores);
}

void decode_heatmaps(const std::uint16_t* heatmaps, const std::uint16_t* flipped, const HeatmapShape& shape,
                     const float* center, const float* scale, const DecodeOptions& options, float* keypoints,
                     float* scores) {
  decode_impl(heatmaps, flipped, shape, center, scale, options, keypoints, scores);
}

}  // namespace decode
}  // namespace srpose
