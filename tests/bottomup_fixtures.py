"""A small synthetic multi-person COCO set on disk for the bottom-up tests."""
from srpose_fast.data.synthetic_multi import generate_synthetic_bottomup


def write_bottomup_set(root, *, num_images: int, seed: int, image_size: tuple[int, int], max_people: int):
    """(annotation file, image folder) of `num_images` validation images under root."""
    ann = generate_synthetic_bottomup(root, num_images=num_images, split="val", seed=seed, image_size=image_size,
                                      max_people=max_people, progress=False)
    return ann, root / "images" / "val"
