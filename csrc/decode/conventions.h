// The heatmap conventions the C++ decoders share, as srpose_fast/codecs/conventions.py defines them in
// Python: the portable decoder (csrc/decode) and the CUDA decoders (csrc/cuda) include this one header.
// Plain C++17, also compiled by nvcc for host and device code.
#pragma once

#if defined(__CUDACC__)
#define SRPOSE_HOST_DEVICE __host__ __device__
#else
#define SRPOSE_HOST_DEVICE
#endif

namespace srpose {

// mmpose's unit of `scale`: a crop of scale s is s * kPixelStd pixels wide/high (PIXEL_STD).
constexpr float kPixelStd = 200.0f;

// The sigma of DARK's Gaussian blur of odd size k, OpenCV's rule for sigma = 0 (dark_blur_sigma).
SRPOSE_HOST_DEVICE inline double dark_blur_sigma(int kernel) { return 0.3 * ((kernel - 1) * 0.5 - 1.0) + 0.8; }

}  // namespace srpose
