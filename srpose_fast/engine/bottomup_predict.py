"""Bottom-up prediction on a whole image: every person, no boxes.

`predict_people` resizes an image as the original's test time does (`data.bottomup_resize`), runs the
model (batch 1, flip test as asked) and returns its people in the image's pixels. `srpose-fast predict`
(engine.predict) and the bottom-up evaluator (engine.bottomup_evaluator) go through the same resize.
"""
from __future__ import annotations

import numpy as np
import torch

from ..codecs.bottomup_decode import BottomUpPoses
from ..data.bottomup_resize import bottomup_resize


@torch.no_grad()
def predict_people(model, image_rgb: np.ndarray, *, flip_test: bool = True, backend: str | None = "auto"
                   ) -> BottomUpPoses:
    """The people of one uint8 RGB image (h, w, 3), keypoints in its pixels; backend None: the model's."""
    inputs, geometry = bottomup_resize(image_rgb, model.codec.input_size)
    images = torch.from_numpy(inputs)[None].to(next(model.parameters()).device)
    return model.predict(images, flip_test=flip_test, center=geometry.center, scale=geometry.scale,
                         backend=backend)[0]
