// Helpers every CUDA file of srpose_fast._C shares: launch constants, input checks, block reductions.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <limits>

namespace srpose_cuda {

// Every kernel runs blocks of kThreads threads; the 2-D ones see them as kTile x kTile.
constexpr int kThreads = 256;
constexpr int kTile = 16;
static_assert(kTile * kTile == kThreads, "one thread per element of a kTile x kTile tile");
// Dynamic shared memory a kernel may ask for: below the 48 KB every GPU gives without opting in,
// leaving room for the small static arrays of the reductions.
constexpr int64_t kSmemBudget = 32 * 1024;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline void check_cuda(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.is_cuda(), op, ": ", name, " must be a CUDA tensor, got one on ", t.device());
}

inline void check_same_device(const at::Tensor& t, const at::Tensor& ref, const char* op, const char* name,
                              const char* ref_name) {
  TORCH_CHECK(t.device() == ref.device(), op, ": ", name, " is on ", t.device(), " but ", ref_name, " is on ",
              ref.device(), "; move them to one GPU");
}

inline void check_floating(const at::Tensor& t, const char* op, const char* name) {
  const auto s = t.scalar_type();
  TORCH_CHECK(s == at::kFloat || s == at::kHalf || s == at::kBFloat16 || s == at::kDouble, op, ": ", name,
              " must be float32, float16, bfloat16 or float64, got ", s);
}

// A 1-D grid of `blocks` blocks; the x dimension takes up to 2^31 - 1.
inline unsigned int grid_size(int64_t blocks, const char* op) {
  TORCH_CHECK(blocks > 0 && blocks <= std::numeric_limits<int32_t>::max(), op, ": the input needs ", blocks,
              " thread blocks, more than one launch can take; split the batch");
  return static_cast<unsigned int>(blocks);
}

// A thread's walk over the flat indices threadIdx.x, threadIdx.x + kThreads, ... of an H x W map as (y, x),
// in increasing order, without a division per element (which would keep the loads from vectorising):
//   for (MapWalk p(W); p.i < HW; p.next()) use(p.y, p.x, p.i);
struct MapWalk {
  int64_t i;
  int y, x, W, dy, dx;
  __device__ explicit MapWalk(int width)
      : i(threadIdx.x), y(static_cast<int>(threadIdx.x) / width), x(static_cast<int>(threadIdx.x) % width), W(width),
        dy(kThreads / width), dx(kThreads % width) {}
  __device__ void next() {
    i += kThreads;
    y += dy;
    x += dx;
    if (x >= W) {
      x -= W;
      ++y;
    }
  }
};

struct SumOp {
  template <typename T>
  __device__ T operator()(T a, T b) const { return a + b; }
};

struct MaxOp {
  template <typename T>
  __device__ T operator()(T a, T b) const { return a > b ? a : b; }
};

// Combines one value per thread of a kThreads block (a plain shared-memory tree: simple and
// deterministic); every thread gets the result. Every thread of the block must call it.
template <typename T, typename Combine>
__device__ T block_reduce(T value, Combine combine) {
  __shared__ T scratch[kThreads];
  const int tid = threadIdx.x;
  scratch[tid] = value;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (tid < s) scratch[tid] = combine(scratch[tid], scratch[tid + s]);
    __syncthreads();
  }
  const T result = scratch[0];
  __syncthreads();  // the scratch may be reused by the next call
  return result;
}

}  // namespace srpose_cuda
