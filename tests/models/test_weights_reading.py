"""Reading checkpoint files without running their code (srpose_fast/models/weights/reading.py)."""
import os
import pickle
import sys

import numpy as np
import pytest
import torch
from torch import nn

from checkpoint_files import MMENGINE_HISTORY_BUFFER, HistoryBuffer, save_mmengine
from srpose_fast.models.weights import CheckpointError
from srpose_fast.models.weights.reading import Placeholder, read_file


class _Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.head = nn.Conv2d(4, 17, 1)


def test_mmengine_training_file_is_read_through_the_allow_list(tmp_path):
    model = _Small()
    path = save_mmengine(tmp_path / "epoch_210.pth", model)
    assert MMENGINE_HISTORY_BUFFER not in sys.modules
    with pytest.raises(pickle.UnpicklingError):  # what the plain weights-only load does with this file
        torch.load(path, weights_only=True)
    created = HistoryBuffer.created
    checkpoint = read_file(path)

    assert HistoryBuffer.created == created, "a class named by the file was instantiated"
    meta = checkpoint["meta"]["dataset_meta"]
    assert isinstance(meta["sigmas"], np.ndarray) and meta["sigmas"].dtype == np.float32
    assert meta["sigmas"][0] == np.float32(0.026) and meta["skeleton_link_colors"].shape == (19, 3)
    buffer = checkpoint["message_hub"]["log_scalars"]["train/loss"]
    assert isinstance(buffer, Placeholder) and buffer.qualified_name == f"{MMENGINE_HISTORY_BUFFER}.HistoryBuffer"
    np.testing.assert_array_equal(buffer.state["_log_history"], [1e-3, 9e-4])
    for key, value in model.state_dict().items():
        assert torch.equal(checkpoint["state_dict"][key], value), key


def test_published_mmengine_file_reads_with_numpy_meta(tmp_path):
    checkpoint = read_file(save_mmengine(tmp_path / "published.pth", _Small(), form="published"))
    assert set(checkpoint) == {"meta", "state_dict"} and checkpoint["meta"]["mmengine_version"] == "0.7.4"


class _Calls:
    """Pickles as a call of `function(*args)`: what a full unpickle would run."""

    def __init__(self, function, *args):
        self.call = function, args

    def __reduce__(self):
        return self.call


class Unknown:
    pass


Unknown.__module__ = "other_project_hooks"


def test_a_class_the_reader_does_not_know_becomes_an_inert_placeholder(tmp_path, monkeypatch):
    module = type(sys)("other_project_hooks")
    module.Unknown = Unknown
    monkeypatch.setitem(sys.modules, "other_project_hooks", module)
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {"w": torch.ones(2)}, "meta": {"hook": _Calls(Unknown, 1, "two")}}, path)
    monkeypatch.delitem(sys.modules, "other_project_hooks")
    checkpoint = read_file(path)
    assert isinstance(checkpoint["meta"]["hook"], Placeholder) and checkpoint["meta"]["hook"].args == (1, "two")
    assert torch.equal(checkpoint["state_dict"]["w"], torch.ones(2))


def test_a_file_that_would_run_a_command_is_refused(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.ones(2)}, "meta": {"x": _Calls(os.system, f"touch {marker}")}}, path)
    with pytest.raises(CheckpointError, match=rf"refusing to read checkpoint {path}: .*GLOBAL posix\.system"):
        read_file(path)
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "text", "legacy_pickle"])
def test_unreadable_files_are_named(tmp_path, damage):
    path = tmp_path / "c.pth"
    good = tmp_path / "good.pth"
    torch.save({"state_dict": {"w": torch.randn(64, 64)}}, good)
    data = good.read_bytes()
    content = {"truncated": data[: len(data) // 2], "garbage": bytes(range(256)) * 8, "empty": b"",
               "text": b'{"not": "a checkpoint"}\n', "legacy_pickle": pickle.dumps({"w": [1, 2]}, protocol=2)}[damage]
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"cannot read checkpoint {path} \({len(content)} bytes\)"):
        read_file(path)


def test_missing_file_and_folder_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        read_file(tmp_path / "nothing.pth")
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        read_file(tmp_path)


class CfgNode(dict):
    """yacs's config node (a dict subclass with attributes), as HRFormer's and Swin's ImageNet files store it."""

    created = 0

    def __init__(self, values=None):
        super().__init__(values or {})
        CfgNode.created += 1
        self.__dict__["_immutable"] = True


CfgNode.__module__ = "yacs.config"


def test_a_dict_subclass_the_weights_only_unpickler_cannot_fill_is_read_into_a_placeholder(tmp_path, monkeypatch):
    package, module = type(sys)("yacs"), type(sys)("yacs.config")
    package.config, module.CfgNode = module, CfgNode
    monkeypatch.setitem(sys.modules, "yacs", package)
    monkeypatch.setitem(sys.modules, "yacs.config", module)
    path = tmp_path / "hrt_small.pth"
    config = CfgNode({"MODEL": CfgNode({"NAME": "hrt_small"}), "TRAIN": {"EPOCHS": 300}})
    torch.save({"model": {"conv1.weight": torch.arange(4.0)}, "config": config, "epoch": 299}, path)
    monkeypatch.delitem(sys.modules, "yacs.config")
    monkeypatch.delitem(sys.modules, "yacs")
    with pytest.raises(pickle.UnpicklingError):  # what the plain weights-only load does with this file
        torch.load(path, weights_only=True)
    created = CfgNode.created
    checkpoint = read_file(path)
    assert CfgNode.created == created, "a class named by the file was instantiated"
    assert isinstance(checkpoint["config"], Placeholder) and checkpoint["config"].qualified_name == "yacs.config.CfgNode"
    assert checkpoint["config"]["MODEL"]["NAME"] == "hrt_small" and checkpoint["config"].state == {"_immutable": True}
    assert torch.equal(checkpoint["model"]["conv1.weight"], torch.arange(4.0)) and checkpoint["epoch"] == 299
