// srpose_fast.deploy._decoder: numpy front of the portable C++ decoder (heatmap_decoder.h).
//
// Strict on purpose: arrays must already be C-contiguous float32 or float16 (center and scale
// float32); srpose_fast/deploy/decoder.py converts user input and gives the friendly errors.
// The GIL is released while decoding.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "heatmap_decoder.h"

namespace py = pybind11;
using srpose::decode::DecodeOptions;
using srpose::decode::HeatmapShape;

namespace {

enum class Kind { kFloat32, kFloat16 };

Kind kind_of(const py::array& a, const char* name) {
  const py::dtype dt = a.dtype();
  if (dt.kind() == 'f' && dt.itemsize() == 4) return Kind::kFloat32;
  if (dt.kind() == 'f' && dt.itemsize() == 2) return Kind::kFloat16;
  throw std::invalid_argument(std::string("decode: ") + name + " must be float32 or float16");
}

void require_c_contiguous(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style)) {
    throw std::invalid_argument(std::string("decode: ") + name + " must be C-contiguous");
  }
}

const float* pair_array(const std::optional<py::array>& a, const char* name, py::ssize_t n) {
  if (!a) return nullptr;
  require_c_contiguous(*a, name);
  if (kind_of(*a, name) != Kind::kFloat32) throw std::invalid_argument(std::string("decode: ") + name + " must be float32");
  if (a->ndim() != 2 || a->shape(0) != n || a->shape(1) != 2) {
    throw std::invalid_argument(std::string("decode: ") + name + " must have shape (N, 2) = (" + std::to_string(n) +
                                ", 2)");
  }
  return static_cast<const float*>(a->data());
}

py::tuple decode(const py::array& heatmaps, const std::optional<py::array>& flipped,
                 const std::optional<py::array>& center, const std::optional<py::array>& scale,
                 const std::string& method, int blur_kernel, bool flip_shift, const std::vector<int>& flip_indices,
                 int num_threads) {
  if (heatmaps.ndim() != 4) throw std::invalid_argument("decode: heatmaps must be (N, K, H, W)");
  require_c_contiguous(heatmaps, "heatmaps");
  const Kind kind = kind_of(heatmaps, "heatmaps");
  HeatmapShape shape{heatmaps.shape(0), heatmaps.shape(1), heatmaps.shape(2), heatmaps.shape(3)};
  if (flipped) {
    require_c_contiguous(*flipped, "flipped");
    if (kind_of(*flipped, "flipped") != kind) throw std::invalid_argument("decode: flipped must have the heatmaps' dtype");
    if (flipped->ndim() != 4 || flipped->shape(0) != shape.n || flipped->shape(1) != shape.k ||
        flipped->shape(2) != shape.h || flipped->shape(3) != shape.w) {
      throw std::invalid_argument("decode: flipped must have the heatmaps' shape");
    }
  }
  const float* center_ptr = pair_array(center, "center", shape.n);
  const float* scale_ptr = pair_array(scale, "scale", shape.n);

  DecodeOptions options;
  options.method = srpose::decode::parse_method(method);
  options.blur_kernel = blur_kernel;
  options.flip_shift = flip_shift;
  options.flip_indices = flip_indices;
  options.num_threads = num_threads;
  srpose::decode::check_arguments(shape, options, flipped.has_value());
  if ((center_ptr == nullptr) != (scale_ptr == nullptr)) {
    throw std::invalid_argument("decode: give both center and scale, or neither");
  }

  py::array_t<float> keypoints({shape.n, shape.k, py::ssize_t{2}});
  py::array_t<float> scores({shape.n, shape.k});
  float* kp = keypoints.mutable_data();
  float* sc = scores.mutable_data();
  const void* hm = heatmaps.data();
  const void* fl = flipped ? flipped->data() : nullptr;
  {
    py::gil_scoped_release release;
    if (kind == Kind::kFloat32) {
      srpose::decode::decode_heatmaps(static_cast<const float*>(hm), static_cast<const float*>(fl), shape, center_ptr,
                                      scale_ptr, options, kp, sc);
    } else {
      srpose::decode::decode_heatmaps(static_cast<const std::uint16_t*>(hm), static_cast<const std::uint16_t*>(fl),
                                      shape, center_ptr, scale_ptr, options, kp, sc);
    }
  }
  return py::make_tuple(keypoints, scores);
}

}  // namespace

PYBIND11_MODULE(_decoder, m) {
  m.doc() = "Portable C++ heatmap decoder (argmax, shift, dark, dark_udp) for srpose-fast deployments";
  m.def("decode", &decode, py::arg("heatmaps"), py::arg("flipped") = py::none(), py::arg("center") = py::none(),
        py::arg("scale") = py::none(), py::arg("method") = "dark", py::arg("blur_kernel") = 11,
        py::arg("flip_shift") = true, py::arg("flip_indices") = std::vector<int>{}, py::arg("num_threads") = 0,
        "Decode C-contiguous float32/float16 (N, K, H, W) heatmaps; returns (keypoints (N, K, 2), scores (N, K)) "
        "float32. The GIL is released while decoding.");
  m.def("coco_flip_indices", &srpose::decode::coco_flip_indices, "COCO's 17-keypoint left/right swap");
  m.def("resolved_num_threads",
        [](py::ssize_t n, py::ssize_t k, py::ssize_t h, py::ssize_t w, int num_threads) {
          DecodeOptions options;
          options.num_threads = num_threads;
          return srpose::decode::resolved_num_threads(HeatmapShape{n, k, h, w}, options);
        },
        py::arg("n"), py::arg("k"), py::arg("h"), py::arg("w"), py::arg("num_threads") = 0,
        "Threads a decode of that shape would use");
}
