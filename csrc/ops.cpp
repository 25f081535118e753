// srpose_fast._C: the schemas of the CUDA C++ ops and their CUDA kernels' registration.
//
// Every op of the project lives in one namespace, srpose_fast::, one op per job and backend:
// <job>_cuda here, <job>_triton defined in Python (srpose_fast/ops/registry.py, triton_op), with the same
// signatures. Both sides add to the namespace as fragments (TORCH_LIBRARY_FRAGMENT here, torch.library in
// Python), so they coexist. The fakes (meta implementations) and autograd formulas of every backend are
// registered in Python by srpose_fast/ops/registry.py. Importing srpose_fast._C (after torch) runs the
// registrations below.
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

TORCH_LIBRARY_FRAGMENT(srpose_fast, m) {
  m.def("sr_head_cuda(Tensor x, Tensor weight, Tensor? bias, int upscale) -> Tensor");
  m.def("sr_head_backward_cuda(Tensor grad_out, Tensor x, Tensor weight, int upscale) -> (Tensor, Tensor, Tensor)");
  m.def(
      "decode_heatmaps_cuda(Tensor heatmaps, Tensor? flipped, Tensor? flip_indices, bool flip_shift, str method, "
      "int blur_kernel, Tensor? center, Tensor? scale) -> (Tensor, Tensor)");
  m.def(
      "sr_head_decode_cuda(Tensor emb, Tensor weight, Tensor? bias, int upscale, Tensor? flipped_emb, "
      "Tensor? flip_indices, bool flip_shift, str method, int blur_kernel, Tensor? center, Tensor? scale) "
      "-> (Tensor, Tensor)");
  m.def(
      "heatmap_mse_loss_cuda(Tensor pred, Tensor keypoints, Tensor weight, float sigma, int full_h, int full_w, "
      "str method) -> Tensor");
  m.def(
      "heatmap_mse_loss_backward_cuda(Tensor grad_loss, Tensor pred, Tensor keypoints, Tensor weight, float sigma, "
      "int full_h, int full_w, str method) -> Tensor");
}

TORCH_LIBRARY_IMPL(srpose_fast, CUDA, m) {
  m.impl("sr_head_cuda", &srpose_cuda::sr_head_forward);
  m.impl("sr_head_backward_cuda", &srpose_cuda::sr_head_backward);
  m.impl("decode_heatmaps_cuda", &srpose_cuda::decode_heatmaps);
  m.impl("sr_head_decode_cuda", &srpose_cuda::sr_head_decode);
  m.impl("heatmap_mse_loss_cuda", &srpose_cuda::heatmap_mse_loss);
  m.impl("heatmap_mse_loss_backward_cuda", &srpose_cuda::heatmap_mse_loss_backward);
}
