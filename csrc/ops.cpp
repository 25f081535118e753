// srpose_fast._C: the schemas of the CUDA C++ ops and their CUDA kernels' registration.
//
// The ops live in their own namespace, srpose_fast_cuda, so they never clash with the Triton ops that
// srpose_fast/ops/*.py register under srpose_fast::; the signatures are the same. Their fake (meta)
// implementations and autograd formulas are registered in Python, next to each op's public function
// (srpose_fast/ops/sr_head.py, decode.py, sr_head_decode.py, multi_stage_loss.py).
// Importing srpose_fast._C (after torch) runs the registrations below.
#include <Python.h>
#include <torch/library.h>

#include "cuda/ops.h"

extern "C" {
// A module with no Python functions: importing it only loads this library, which registers the ops.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(srpose_fast_cuda, m) {
  m.def("sr_head(Tensor x, Tensor weight, Tensor? bias, int upscale) -> Tensor");
  m.def("sr_head_backward(Tensor grad_out, Tensor x, Tensor weight, int upscale) -> (Tensor, Tensor, Tensor)");
  m.def(
      "decode_heatmaps(Tensor heatmaps, Tensor? flipped, Tensor? flip_indices, bool flip_shift, str method, "
      "int blur_kernel, Tensor? center, Tensor? scale) -> (Tensor, Tensor)");
  m.def(
      "sr_head_decode(Tensor emb, Tensor weight, Tensor? bias, int upscale, Tensor? flipped_emb, "
      "Tensor? flip_indices, bool flip_shift, str method, int blur_kernel, Tensor? center, Tensor? scale) "
      "-> (Tensor, Tensor)");
  m.def(
      "heatmap_mse_loss(Tensor pred, Tensor keypoints, Tensor weight, float sigma, int full_h, int full_w, "
      "str method) -> Tensor");
  m.def(
      "heatmap_mse_loss_backward(Tensor grad_loss, Tensor pred, Tensor keypoints, Tensor weight, float sigma, "
      "int full_h, int full_w, str method) -> Tensor");
}

TORCH_LIBRARY_IMPL(srpose_fast_cuda, CUDA, m) {
  m.impl("sr_head", &srpose_cuda::sr_head_forward);
  m.impl("sr_head_backward", &srpose_cuda::sr_head_backward);
  m.impl("decode_heatmaps", &srpose_cuda::decode_heatmaps);
  m.impl("sr_head_decode", &srpose_cuda::sr_head_decode);
  m.impl("heatmap_mse_loss", &srpose_cuda::heatmap_mse_loss);
  m.impl("heatmap_mse_loss_backward", &srpose_cuda::heatmap_mse_loss_backward);
}
