// The host entry points of the CUDA ops, one per schema in csrc/ops.cpp (which registers them as
// srpose_fast::<job>_cuda for the CUDA dispatch key). Each checks its inputs with TORCH_CHECK, launches on
// the current stream and returns freshly allocated, contiguous outputs.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <cstdint>
#include <optional>
#include <tuple>

namespace srpose_cuda {

// sr_head.cu: grouped conv (groups = K joints) + pixel shuffle, and its gradients.
at::Tensor sr_head_forward(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                           int64_t upscale);
std::tuple<at::Tensor, at::Tensor, at::Tensor> sr_head_backward(const at::Tensor& grad_out, const at::Tensor& x,
                                                                const at::Tensor& weight, int64_t upscale);

// decode.cu: heatmaps -> keypoints (N, K, 2) and scores (N, K), float32.
std::tuple<at::Tensor, at::Tensor> decode_heatmaps(const at::Tensor& heatmaps, const std::optional<at::Tensor>& flipped,
                                                   const std::optional<at::Tensor>& flip_indices, bool flip_shift,
                                                   c10::string_view method, int64_t blur_kernel,
                                                   const std::optional<at::Tensor>& center,
                                                   const std::optional<at::Tensor>& scale);

// sr_head_decode.cu: SR-head embeddings -> keypoints and scores, without writing the heatmaps.
std::tuple<at::Tensor, at::Tensor> sr_head_decode(const at::Tensor& emb, const at::Tensor& weight,
                                                  const std::optional<at::Tensor>& bias, int64_t upscale,
                                                  const std::optional<at::Tensor>& flipped_emb,
                                                  const std::optional<at::Tensor>& flip_indices, bool flip_shift,
                                                  c10::string_view method, int64_t blur_kernel,
                                                  const std::optional<at::Tensor>& center,
                                                  const std::optional<at::Tensor>& scale);

// multi_stage_loss.cu: one stage of the heatmap loss with its targets made in the kernel.
at::Tensor heatmap_mse_loss(const at::Tensor& pred, const at::Tensor& keypoints, const at::Tensor& weight, double sigma,
                            int64_t full_h, int64_t full_w, c10::string_view method);
at::Tensor heatmap_mse_loss_backward(const at::Tensor& grad_loss, const at::Tensor& pred, const at::Tensor& keypoints,
                                     const at::Tensor& weight, double sigma, int64_t full_h, int64_t full_w,
                                     c10::string_view method);

}  // namespace srpose_cuda
