// ctest for the portable heatmap decoder: cases with answers known in closed form. The comparison
// against the torch reference lives in tests/deploy/test_heatmap_decoder.py.
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "heatmap_decoder.h"

namespace {

int g_failures = 0;

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (!(cond)) {                                                          \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++g_failures;                                                         \
    }                                                                       \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                                        \
  do {                                                                                               \
    const double va = (a), vb = (b);                                                                 \
    if (!(std::fabs(va - vb) <= (tol))) {                                                            \
      std::fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g, %s = %.9g, tol %g\n", __FILE__, __LINE__, #a, va, #b, \
                   vb, static_cast<double>(tol));                                                    \
      ++g_failures;                                                                                  \
    }                                                                                                \
  } while (0)

template <typename Fn>
bool throws_invalid_argument(Fn fn) {
  try {
    fn();
  } catch (const std::invalid_argument&) {
    return true;
  }
  return false;
}

using srpose::decode::DecodeOptions;
using srpose::decode::HeatmapShape;
using srpose::decode::Method;

struct Result {
  std::vector<float> keypoints, scores;
};

Result run(const std::vector<float>& maps, const HeatmapShape& shape, const DecodeOptions& options,
           const std::vector<float>* flipped = nullptr, const std::vector<float>* center = nullptr,
           const std::vector<float>* scale = nullptr) {
  Result r;
  const auto items = static_cast<std::size_t>(shape.n * shape.k);
  r.keypoints.assign(items * 2, -12345.0f);  // poisoned: an unwritten output fails the checks
  r.scores.assign(items, -12345.0f);
  srpose::decode::decode_heatmaps(maps.data(), flipped ? flipped->data() : nullptr, shape,
                                  center ? center->data() : nullptr, scale ? scale->data() : nullptr, options,
                                  r.keypoints.data(), r.scores.data());
  return r;
}

// A sampled 2-D Gaussian (peak 1) centred at (mx, my).
std::vector<float> gaussian_map(int h, int w, double mx, double my, double sigma) {
  std::vector<float> m(static_cast<std::size_t>(h) * w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      m[y * w + x] = static_cast<float>(std::exp(-((x - mx) * (x - mx) + (y - my) * (y - my)) / (2 * sigma * sigma)));
  return m;
}

std::uint16_t float_to_half_exact(float v) {
  // only for values exactly representable as normal halves (the tests use multiples of 1/1024 in [0.5, 2))
  std::uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  const std::uint32_t sign = (bits >> 16) & 0x8000u;
  const std::int32_t exponent = static_cast<std::int32_t>((bits >> 23) & 0xff) - 127 + 15;
  const std::uint32_t mantissa = (bits >> 13) & 0x3ffu;
  return static_cast<std::uint16_t>(sign | (static_cast<std::uint32_t>(exponent) << 10) | mantissa);
}

void test_half_to_float() {
  using srpose::decode::half_to_float;
  CHECK(half_to_float(0x0000) == 0.0f);
  CHECK(std::signbit(half_to_float(0x8000)));
  CHECK(half_to_float(0x3c00) == 1.0f);
  CHECK(half_to_float(0xc000) == -2.0f);
  CHECK(half_to_float(0x3555) == 0.333251953125f);
  CHECK(half_to_float(0x7bff) == 65504.0f);
  CHECK(half_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(half_to_float(0x03ff) == std::ldexp(1023.0f, -24));  // largest subnormal
  CHECK(std::isinf(half_to_float(0x7c00)) && half_to_float(0x7c00) > 0);
  CHECK(std::isinf(half_to_float(0xfc00)) && half_to_float(0xfc00) < 0);
  CHECK(std::isnan(half_to_float(0x7e00)));
}

void test_methods_and_arguments() {
  CHECK(srpose::decode::parse_method("dark_udp") == Method::kDarkUdp);
  CHECK(std::string(srpose::decode::method_name(Method::kShift)) == "shift");
  CHECK(throws_invalid_argument([] { srpose::decode::parse_method("udp"); }));
  HeatmapShape shape{1, 3, 4, 4};
  DecodeOptions options;
  options.blur_kernel = 4;
  CHECK(throws_invalid_argument([&] { srpose::decode::check_arguments(shape, options, false); }));
  options.blur_kernel = 3;
  options.flip_indices = {0, 1};
  CHECK(throws_invalid_argument([&] { srpose::decode::check_arguments(shape, options, true); }));
  options.flip_indices = {0, 1, 1};
  CHECK(throws_invalid_argument([&] { srpose::decode::check_arguments(shape, options, true); }));
  options.flip_indices = {2, 1, 0};
  srpose::decode::check_arguments(shape, options, true);  // a permutation: fine
  CHECK(throws_invalid_argument([&] { srpose::decode::check_arguments(HeatmapShape{1, 1, 0, 4}, options, false); }));
  CHECK(srpose::decode::coco_flip_indices().size() == 17);
}

void test_argmax_special_maps() {
  const HeatmapShape shape{1, 4, 5, 6};
  std::vector<float> maps(static_cast<std::size_t>(4 * 5 * 6), 0.1f);
  float* tie = maps.data();
  tie[2 * 6 + 4] = 0.9f;  // (x 4, y 2)
  tie[3 * 6 + 1] = 0.9f;  // later flat index: loses the tie
  float* nan_map = maps.data() + 30;
  nan_map[17] = std::numeric_limits<float>::quiet_NaN();
  float* negative = maps.data() + 60;
  for (int i = 0; i < 30; ++i) negative[i] = -1.0f - i;
  negative[7] = -0.5f;  // the maximum, at (x 1, y 1)
  float* zeros = maps.data() + 90;
  for (int i = 0; i < 30; ++i) zeros[i] = 0.0f;
  for (Method method : {Method::kArgmax, Method::kShift, Method::kDark, Method::kDarkUdp}) {
    DecodeOptions options;
    options.method = method;
    options.blur_kernel = 3;
    const Result r = run(maps, shape, options);
    if (method == Method::kArgmax) {
      CHECK(r.keypoints[0] == 4.0f && r.keypoints[1] == 2.0f);
    }
    CHECK(r.scores[0] == 0.9f);
    CHECK(std::isnan(r.scores[1]) && std::isnan(r.keypoints[2]) && std::isnan(r.keypoints[3]));
    CHECK(r.scores[2] == 0.0f && r.keypoints[4] == 1.0f && r.keypoints[5] == 1.0f);  // never refined
    CHECK(r.scores[3] == 0.0f && r.keypoints[6] == 0.0f && r.keypoints[7] == 0.0f);  // all zero: index 0
  }
}

// The SIMD argmax against a plain loop: every map length up to 200 (SIMD blocks plus tails), the
// maximum or a NaN at every kind of position, ties, -inf and negative maps.
void test_argmax_against_a_loop() {
  std::uint32_t state = 7u;
  auto next = [&state]() {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  DecodeOptions options;
  options.method = Method::kArgmax;
  for (int w = 1; w <= 200; ++w) {
    for (int trial = 0; trial < 6; ++trial) {
      std::vector<float> map(static_cast<std::size_t>(w));
      for (float& v : map) v = static_cast<float>(next() % 50) / 7.0f - (trial == 3 ? 20.0f : 0.0f);
      if (trial == 1) map[next() % w] = 1e6f;                                      // a unique peak
      if (trial == 2) map[next() % w] = map[next() % w] = 1e6f;                   // a tie
      if (trial == 4) map[next() % w] = std::numeric_limits<float>::quiet_NaN();  // NaN anywhere
      if (trial == 5) std::fill(map.begin(), map.end(), -std::numeric_limits<float>::infinity());
      std::int64_t index = 0;
      bool nan = false;
      for (int i = 0; i < w; ++i) {
        nan = nan || std::isnan(map[i]);
        if (map[i] > map[index]) index = i;
      }
      const Result r = run(map, HeatmapShape{1, 1, 1, w}, options);
      if (nan) {
        CHECK(std::isnan(r.scores[0]) && std::isnan(r.keypoints[0]));
      } else {
        CHECK(r.keypoints[0] == static_cast<float>(index) && r.keypoints[1] == 0.0f);
        CHECK(r.scores[0] == (map[index] > 0 ? map[index] : 0.0f));
      }
    }
  }
}

void test_shift() {
  const HeatmapShape shape{1, 1, 7, 7};
  std::vector<float> map(49, 0.0f);
  map[3 * 7 + 3] = 1.0f;
  map[3 * 7 + 4] = 0.5f;  // right neighbour higher: +0.25 in x
  map[2 * 7 + 3] = 0.5f;  // upper neighbour higher: -0.25 in y
  DecodeOptions options;
  options.method = Method::kShift;
  Result r = run(map, shape, options);
  CHECK(r.keypoints[0] == 3.25f && r.keypoints[1] == 2.75f);
  // on the border band (x == 1) there is no shift
  std::vector<float> edge(49, 0.0f);
  edge[3 * 7 + 1] = 1.0f;
  edge[3 * 7 + 2] = 0.5f;
  r = run(edge, shape, options);
  CHECK(r.keypoints[0] == 1.0f && r.keypoints[1] == 3.0f);
}

// DARK on a sampled Gaussian recovers the sub-pixel centre: blurring a Gaussian gives a Gaussian,
// whose log is a quadratic, so one Newton step lands on the centre up to sampling error.
void test_dark_recovers_gaussian_centre() {
  const int h = 64, w = 48;
  const double mx = 20.3, my = 31.7;
  const std::vector<float> map = gaussian_map(h, w, mx, my, 2.5);
  for (Method method : {Method::kDark, Method::kDarkUdp}) {
    DecodeOptions options;
    options.method = method;
    const Result r = run(map, HeatmapShape{1, 1, h, w}, options);
    CHECK_NEAR(r.keypoints[0], mx, 0.02);
    CHECK_NEAR(r.keypoints[1], my, 0.02);
    CHECK_NEAR(r.scores[0], map[32 * w + 20], 0.0);
  }
}

// Columns constant in y with identity blur: the y derivatives vanish exactly (log(1) = 0 keeps the sums
// exact), so only DARK-UDP's eps makes the Hessian invertible; the x step is then -dx / (dxx + eps).
void test_dark_udp_eps() {
  const float g[7] = {0.2f, 0.5f, 0.8f, 1.0f, 0.6f, 0.3f, 0.1f};
  std::vector<float> map(5 * 7);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 7; ++x) map[y * 7 + x] = g[x];
  DecodeOptions options;
  options.method = Method::kDarkUdp;
  options.blur_kernel = 1;
  const Result r = run(map, HeatmapShape{1, 1, 5, 7}, options);
  const double l2 = std::log(static_cast<double>(g[2])), l4 = std::log(static_cast<double>(g[4]));
  const double dx = 0.5 * (l4 - l2), dxx = l4 + l2;  // log(g[3]) = 0
  CHECK_NEAR(r.keypoints[0], 3.0 - dx / (dxx + FLT_EPSILON), 1e-5);
  CHECK(r.keypoints[1] == 0.0f);
}

void test_flip_merge() {
  // flipped = the mirror image of the maps with channels swapped: the merge gives the maps back
  // (flip_shift off), or the maps averaged with a one-pixel right shift (flip_shift on).
  const int k = 2, h = 9, w = 11;
  std::vector<float> maps = gaussian_map(h, w, 3.4, 4.2, 1.5);
  const std::vector<float> second = gaussian_map(h, w, 7.1, 5.6, 1.5);
  maps.insert(maps.end(), second.begin(), second.end());
  std::vector<float> flipped(maps.size());
  for (int c = 0; c < k; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) flipped[((1 - c) * h + y) * w + (w - 1 - x)] = maps[(c * h + y) * w + x];
  DecodeOptions options;
  options.method = Method::kDark;
  options.blur_kernel = 5;
  options.flip_indices = {1, 0};
  options.flip_shift = false;
  const Result plain = run(maps, HeatmapShape{1, k, h, w}, options);
  const Result merged = run(maps, HeatmapShape{1, k, h, w}, options, &flipped);
  for (std::size_t i = 0; i < plain.keypoints.size(); ++i) CHECK(plain.keypoints[i] == merged.keypoints[i]);
  options.flip_shift = true;
  options.method = Method::kArgmax;
  const Result shifted = run(maps, HeatmapShape{1, k, h, w}, options, &flipped);
  // merged[y][x] = (m[y][x] + m[y][x - 1]) / 2 peaks between 3.4 and 4.4 in x: column 4
  CHECK(shifted.keypoints[0] == 4.0f && shifted.keypoints[1] == 4.0f);
  CHECK_NEAR(shifted.scores[0], 0.5 * (maps[4 * w + 4] + maps[4 * w + 3]), 1e-7);
}

void test_transform() {
  const HeatmapShape shape{2, 1, 8, 6};
  std::vector<float> maps(2 * 48, 0.0f);
  maps[5 * 6 + 2] = 1.0f;       // instance 0: (2, 5)
  maps[48 + 1 * 6 + 4] = 1.0f;  // instance 1: (4, 1)
  const std::vector<float> center = {100.0f, 200.0f, -10.0f, 50.0f};
  const std::vector<float> scale = {1.2f, 1.6f, 0.6f, 0.8f};
  for (Method method : {Method::kArgmax, Method::kDarkUdp}) {
    DecodeOptions options;
    options.method = method;
    options.blur_kernel = 1;  // identity blur; a single spike keeps dark_udp's step at exactly 0
    const Result r = run(maps, shape, options, nullptr, &center, &scale);
    const double dw = method == Method::kDarkUdp ? 5.0 : 6.0, dh = method == Method::kDarkUdp ? 7.0 : 8.0;
    const double xs[2] = {2, 4}, ys[2] = {5, 1};
    for (int n = 0; n < 2; ++n) {
      const double sw = scale[n * 2] * 200.0, sh = scale[n * 2 + 1] * 200.0;
      CHECK_NEAR(r.keypoints[n * 2], xs[n] * sw / dw + center[n * 2] - sw / 2, 1e-3);
      CHECK_NEAR(r.keypoints[n * 2 + 1], ys[n] * sh / dh + center[n * 2 + 1] - sh / 2, 1e-3);
    }
  }
  DecodeOptions options;
  CHECK(throws_invalid_argument([&] { run(maps, shape, options, nullptr, &center, nullptr); }));
}

void test_threads_and_half() {
  const int n = 3, k = 5, h = 24, w = 20;
  std::vector<float> maps;
  std::vector<std::uint16_t> halves;
  std::uint32_t state = 12345u;
  for (int i = 0; i < n * k * h * w; ++i) {
    state = state * 1664525u + 1013904223u;
    const float v = 0.5f + static_cast<float>(state >> 22) / 1024.0f;  // in [0.5, 1.5), exact in half
    maps.push_back(v);
    halves.push_back(float_to_half_exact(v));
  }
  for (Method method : {Method::kShift, Method::kDark, Method::kDarkUdp}) {
    DecodeOptions options;
    options.method = method;
    options.num_threads = 1;
    const Result one = run(maps, HeatmapShape{n, k, h, w}, options);
    options.num_threads = 4;
    CHECK(srpose::decode::resolved_num_threads(HeatmapShape{n, k, h, w}, options) == 4);
    const Result four = run(maps, HeatmapShape{n, k, h, w}, options);
    CHECK(std::memcmp(one.keypoints.data(), four.keypoints.data(), one.keypoints.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(one.scores.data(), four.scores.data(), one.scores.size() * sizeof(float)) == 0);
    Result half;
    half.keypoints.assign(one.keypoints.size(), -1.0f);
    half.scores.assign(one.scores.size(), -1.0f);
    srpose::decode::decode_heatmaps(halves.data(), nullptr, HeatmapShape{n, k, h, w}, nullptr, nullptr, options,
                                    half.keypoints.data(), half.scores.data());
    CHECK(std::memcmp(one.keypoints.data(), half.keypoints.data(), one.keypoints.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(one.scores.data(), half.scores.data(), one.scores.size() * sizeof(float)) == 0);
  }
}

void test_empty_batch() {
  DecodeOptions options;
  float dummy = 0.0f;
  srpose::decode::decode_heatmaps(static_cast<const float*>(nullptr), nullptr, HeatmapShape{0, 17, 64, 48}, nullptr,
                                  nullptr, options, &dummy, &dummy);
  CHECK(dummy == 0.0f);
}

}  // namespace

int main() {
  test_half_to_float();
  test_methods_and_arguments();
  test_argmax_special_maps();
  test_argmax_against_a_loop();
  test_shift();
  test_dark_recovers_gaussian_centre();
  test_dark_udp_eps();
  test_flip_merge();
  test_transform();
  test_threads_and_half();
  test_empty_batch();
  if (g_failures != 0) {
    std::fprintf(stderr, "%d check(s) failed\n", g_failures);
    return 1;
  }
  std::printf("heatmap decoder: all checks passed\n");
  return 0;
}
