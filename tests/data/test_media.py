"""What predict reads (srpose_fast.data.media): an image, a folder, a video written here with OpenCV."""
import cv2
import numpy as np
import pytest

from srpose_fast.data.media import open_media


def write_video(path, frames, fps=10.0):
    """An mp4 (mp4v) of the given BGR frames, as phones and OpenCV write them."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def test_an_image_a_folder_and_a_video(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (24, 32, 3), np.uint8) for _ in range(3)]
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, image in zip(("b.png", "a.jpg", "c.PNG"), images):
        cv2.imwrite(str(folder / name), image)
    (folder / "notes.txt").write_text("not an image")

    one = open_media(folder / "b.png")
    assert (one.kind, one.length, one.names()) == ("image", 1, ["b.png"])
    (frame,) = one.frames()
    np.testing.assert_array_equal(frame.image, images[0])  # PNG: lossless

    many = open_media(folder)
    assert (many.kind, many.length, many.names()) == ("folder", 3, ["a.jpg", "b.png", "c.PNG"])
    assert [(f.name, f.index) for f in many.frames()] == [("a.jpg", 0), ("b.png", 1), ("c.PNG", 2)]

    video = open_media(write_video(tmp_path / "clip.mp4", images + images, fps=12.0))
    assert (video.kind, video.length, video.fps, video.names()) == ("video", 6, 12.0, ["clip.mp4"])
    frames = list(video.frames())
    assert [f.index for f in frames] == list(range(6)) and {f.name for f in frames} == {"clip.mp4"}
    assert all(f.image.shape == (24, 32, 3) for f in frames)


def test_missing_empty_and_unreadable_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such image, folder or video"):
        open_media(tmp_path / "nope.jpg")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        open_media(tmp_path / "empty")
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="could not open video"):
        open_media(tmp_path / "broken.mp4")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="could not decode image"):
        list(open_media(tmp_path / "broken.jpg").frames())
