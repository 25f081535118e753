// Host-side pieces both decoders (decode.cu, sr_head_decode.cu) share: argument checks with messages
// that name the op, and what the refinement reads besides the maps.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <optional>

#include "common.cuh"
#include "decode_refine.cuh"

namespace srpose_cuda {

inline int decode_method_id(c10::string_view method, const char* op) {
  if (method == "argmax") return kArgmax;
  if (method == "shift") return kShift;
  if (method == "dark") return kDark;
  if (method == "dark_udp") return kDarkUdp;
  TORCH_CHECK(false, op, ": method must be one of argmax, shift, dark, dark_udp, got '", std::string(method), "'");
  return -1;
}

inline void check_blur_kernel(int64_t blur_kernel, int method_id, const char* op) {
  TORCH_CHECK(blur_kernel >= 1 && blur_kernel % 2 == 1, op, ": blur_kernel must be a positive odd int, got ",
              blur_kernel);
  TORCH_CHECK(method_id < kDark || blur_kernel <= kMaxBlurKernel, op, ": blur_kernel up to ", kMaxBlurKernel,
              " is supported, got ", blur_kernel);
}

// flipped (the mirrored image's maps or embeddings) and flip_indices (K,) come together.
inline void check_flip(const std::optional<at::Tensor>& flipped, const std::optional<at::Tensor>& flip_indices,
                       const at::Tensor& plain, int64_t K, const char* op, const char* name, const char* plain_name) {
  TORCH_CHECK(flipped.has_value() == flip_indices.has_value(), op, ": give ", name, " and flip_indices together");
  if (!flipped.has_value()) return;
  check_cuda(*flipped, op, name);
  check_same_device(*flipped, plain, op, name, plain_name);
  TORCH_CHECK(flipped->sizes() == plain.sizes(), op, ": ", name, " has shape ", flipped->sizes(), ", ", plain_name,
              " ", plain.sizes());
  TORCH_CHECK(flipped->scalar_type() == plain.scalar_type(), op, ": ", name, " has dtype ", flipped->scalar_type(),
              ", ", plain_name, " ", plain.scalar_type(), "; give both one dtype");
  check_same_device(*flip_indices, plain, op, "flip_indices", plain_name);
  TORCH_CHECK(flip_indices->dim() == 1 && flip_indices->size(0) == K, op, ": flip_indices must have shape (", K,
              ",), got ", flip_indices->sizes());
  TORCH_CHECK(!flip_indices->is_floating_point() && !flip_indices->is_complex(), op,
              ": flip_indices must be integers, got ", flip_indices->scalar_type());
}

// center and scale: (N, 2) each, both or neither, on the maps' device.
inline void check_transform(const std::optional<at::Tensor>& center, const std::optional<at::Tensor>& scale,
                            const at::Tensor& ref, int64_t N, int64_t H, int64_t W, int method_id, const char* op) {
  TORCH_CHECK(center.has_value() == scale.has_value(), op, ": give both center and scale, or neither");
  if (!center.has_value()) return;
  for (const at::Tensor* t : {&*center, &*scale}) {
    const char* name = t == &*center ? "center" : "scale";
    check_same_device(*t, ref, op, name, "the maps");
    TORCH_CHECK(t->dim() == 2 && t->size(0) == N && t->size(1) == 2, op, ": ", name, " must be (N, 2) = (", N,
                ", 2), got shape ", t->sizes());
    TORCH_CHECK(!t->is_complex() && t->scalar_type() != at::kBool, op, ": ", name, " must hold real numbers, got ",
                t->scalar_type());
  }
  TORCH_CHECK(method_id != kDarkUdp || (H >= 2 && W >= 2), op,
              ": dark_udp's (W - 1, H - 1) scaling needs maps of at least 2x2");
}

// What the refinement reads besides the maps: center and scale as float32 (no copy when they already are),
// and the shared memory the blurred tile takes ("dark"/"dark_udp"; the kernel makes its blur taps itself).
// Pointers are null where a tensor is absent.
struct RefineInputs {
  at::Tensor center, scale;
  size_t smem = 0;
  const float* center_ptr() const { return center.defined() ? center.const_data_ptr<float>() : nullptr; }
  const float* scale_ptr() const { return scale.defined() ? scale.const_data_ptr<float>() : nullptr; }
};

inline RefineInputs refine_inputs(int method_id, int64_t blur_kernel, const std::optional<at::Tensor>& center,
                                  const std::optional<at::Tensor>& scale) {
  RefineInputs in;
  if (method_id >= kDark) in.smem = refine_smem_floats(static_cast<int>(blur_kernel)) * sizeof(float);
  if (center.has_value()) in.center = center->to(at::kFloat).contiguous();
  if (scale.has_value()) in.scale = scale->to(at::kFloat).contiguous();
  return in;
}

}  // namespace srpose_cuda
