"""Every subcommand's user mistakes end in one line on stderr, `srpose-fast <command>: error: ...`, exit 2
(`--debug` shows the traceback instead): missing and malformed files, wrong keypoint sets, bad boxes, unknown
model names, bad choices (argparse's own errors too), config values of the wrong type, missing images found
before training starts, a training set without labelled keypoints, a checkpoint of another keypoint set."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from srpose_fast.cli import main
from srpose_fast.data.synthetic import generate_synthetic_coco
from srpose_fast.engine.checkpoint import save_checkpoint
from srpose_fast.models import build_model

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A synthetic COCO set (2 images) and the broken files users bring; paths by name."""
    root = tmp_path_factory.mktemp("mistakes")
    ann = generate_synthetic_coco(root / "data", num_images=2, split="val", seed=3, progress=False)
    images = root / "data" / "images" / "val"
    paths = {"root": root, "ann": ann, "images": images, "bad_json": root / "bad.json", "dict_json": root / "dict.json"}
    paths["bad_json"].write_text("{oops")
    paths["dict_json"].write_text('{"a": 1}')
    data = json.loads(ann.read_text())

    def config(name, **values):
        path = root / f"{name}_config.json"
        path.write_text(json.dumps({"model": "srpose_demo", "train_ann": str(ann), "train_images": str(images),
                                    "val_ann": str(ann), "val_images": str(images), "epochs": 1, "batch_size": 2,
                                    "workers": 0, "output_dir": str(root / "work"), **values}))
        return path

    def annotations(name, change):
        copy = json.loads(json.dumps(data))
        change(copy)
        path = root / f"{name}_annotations.json"
        path.write_text(json.dumps(copy))
        return path

    paths["config_epochs_str"] = config("epochs_str", epochs="3")
    paths["config_size"] = config("size", input_size=[128, "96"])
    paths["config_model"] = config("model", model="srpose_nope")
    missing_image = annotations("missing_image", lambda d: d["images"][-1].update(file_name="gone.jpg"))
    paths["config_missing_image"] = config("missing_image", train_ann=str(missing_image))

    def unlabel(d):
        for a in d["annotations"]:
            a.update(keypoints=[0] * 51, num_keypoints=0)
    paths["config_no_keypoints"] = config("no_keypoints", train_ann=str(annotations("no_keypoints", unlabel)))
    torch.manual_seed(0)
    paths["crowdpose_ckpt"] = root / "crowdpose.pth"
    save_checkpoint(paths["crowdpose_ckpt"], build_model("srpose_demo", keypoint_set="crowdpose"),
                    model_name="srpose_demo")
    return paths


CASES = [  # (argv with {name} placeholders, what the one line must say)
    (["models", "extra"], "unrecognized arguments: extra"),
    (["train", "{root}/missing.json"], "config file not found"),
    (["train", "{bad_json}"], "not valid JSON"),
    (["train", "{config_epochs_str}"], "config key 'epochs' must be an int, got '3' (str)"),
    (["train", "{config_size}"], "config key 'input_size' must be a list of 2 ints or null"),
    (["train", "{config_model}"], "unknown model 'srpose_nope'"),
    (["train", "{config_missing_image}"], "1 of the 2 images"),
    (["train", "{config_no_keypoints}"], "no training samples: none of the person annotations"),
    (["train", "{config_epochs_str}", "--keypoint-set", "halpe"], "argument --keypoint-set: invalid choice"),
    (["eval", "srpose_nope", "--ann", "{ann}", "--images", "{images}"], "unknown model 'srpose_nope'"),
    (["eval", "srpose_demo", "--ann", "{root}/missing.json", "--images", "{images}"], "annotation file not found"),
    (["eval", "srpose_demo", "--ann", "{bad_json}", "--images", "{images}"], "is not valid JSON"),
    (["eval", "srpose_demo", "--ann", "{ann}", "--images", "{root}"], "2 of the 2 images"),
    (["eval", "srpose_demo", "--ann", "{ann}", "--images", "{images}", "--keypoint-set", "mpii"],
     "the person category has 17 keypoints, keypoint set 'mpii' has 16"),
    (["eval", "srpose_demo", "--ann", "{ann}", "--images", "{images}", "--checkpoint", "{crowdpose_ckpt}"],
     "holds srpose_demo (crowdpose, 14 keypoints), but the model being loaded is srpose_demo (coco, 17 keypoints)"),
    (["eval", "srpose_demo", "--ann", "{ann}", "--images", "{images}", "--detections", "{dict_json}"],
     "expected a JSON list"),
    (["eval", "srpose_demo", "--ann", "{ann}", "--images", "{images}", "--method", "soft"],
     "argument --method: invalid choice: 'soft'"),
    (["eval", "srpose_demo", "--ann", "{ann}", "--images", "{images}", "--batch-size", "0"],
     "--batch-size must be at least 1"),
    (["eval", "bottomup_demo", "--ann", "{root}/missing.json", "--images", "{images}"], "annotation file not found"),
    (["score", "{root}/missing.json", "--ann", "{ann}"], "results file not found"),
    (["score", "{dict_json}", "--ann", "{ann}"], "expected a JSON list of COCO keypoint results"),
    (["predict", "srpose_nope", "{images}"], "unknown model 'srpose_nope'"),
    (["predict", "srpose_demo", "{root}/missing.jpg"], "no such image, folder or video"),
    (["predict", "srpose_demo", "{images}", "--boxes", "[[1, 2, 3]]"], "each box needs 4 numbers"),
    (["predict", "srpose_demo", "{images}", "--checkpoint", "{crowdpose_ckpt}"], "(crowdpose, 14 keypoints)"),
    (["predict", "bottomup_demo", "{images}", "--heatmap"], "--heatmap overlays are for top-down models"),
    (["export", "srpose_nope", "--out", "{root}/m.onnx"], "unknown model 'srpose_nope'"),
    (["export", "srpose_demo", "--out", "{root}/m.onnx", "--method", "soft"], "argument --method: invalid choice"),
    (["export", "srpose_demo", "--out", "{root}/m.onnx", "--checkpoint", "{bad_json}"], "cannot read checkpoint"),
    (["convert", "{root}/missing.pth", "{root}/out.pth"], "checkpoint not found"),
    (["quantization", "--ann", "{bad_json}"], "is not valid JSON"),
    (["bench", "--suite", "nope"], "unknown benchmark suite 'nope'"),
    (["demo", "--size", "huge"], "argument --size: invalid choice: 'huge'"),
]


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a[:2]) + f" {i}" for i, (a, _) in enumerate(CASES)])
def test_a_mistake_is_one_line(files, capsys, argv, message):
    args = [a.format(**files) for a in argv]
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse's own errors exit from parse_args
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "warning:" not in line]
    command = "" if argv[0] == "models" else f" {argv[0]}"
    assert len(lines) == 1 and lines[0].startswith(f"srpose-fast{command}: error:") and message in err, err


def test_debug_shows_the_traceback(files):
    with pytest.raises(ValueError, match="config key 'epochs' must be an int"):
        main(["--debug", "train", str(files["config_epochs_str"])])


def test_the_installed_entry_point_prints_one_line(files):
    """The whole process's stderr: FFmpeg's own complaint about a broken video (written below Python) is silenced."""
    video = files["root"] / "broken.mp4"
    video.write_bytes(b"not a video")
    entry = Path(sys.executable).parent / "srpose-fast"
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"}
    run = subprocess.run([str(entry), "predict", "srpose_demo", str(video)], capture_output=True, text=True,
                         timeout=300, env=env)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == (f"srpose-fast predict: error: could not open video {video} (OpenCV cannot read it; is it "
                          f"truncated or not a video?)\n")
