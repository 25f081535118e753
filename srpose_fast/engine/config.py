"""Training settings as one plain dataclass, read from a JSON (or TOML) file.

The files in `configs/` hold SRPose's settings (SPEC.md section 2) for each zoo model; copy one and
edit it. A file sets any subset of `TrainConfig`'s fields; the rest keep their defaults. Keys that
start with "_" are comments and are ignored; any other unknown key is an error (a typo should not
silently train with a default).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..codecs.conventions import DECODE_METHODS, TARGET_METHODS

AMP_MODES = ("auto", "bf16", "fp16", "none")
OPTIMIZERS = ("adam", "adamw")


@dataclass
class TrainConfig:
    """Everything `train()` needs. Defaults are SRPose's HRNet-W32 COCO settings.

    Sizes are (H, W). `batch_size` is per process (per GPU): SRPose trains 32 x 8 GPUs.
    `amp`: "auto" = bf16 autocast on CUDA and none on the CPU; "fp16" adds a GradScaler.
    `lr_steps`: epochs (0-based) from which the learning rate is multiplied by another `lr_gamma`.
    `warmup_iters`: iterations of linear warm-up from `warmup_ratio * lr` to `lr`.
    `no_weight_decay`: parameters whose name contains one of these strings train with weight decay 0
    (mmcv's `paramwise_cfg.custom_keys` with `decay_mult=0`); every string must match a parameter.
    `checkpoint_interval`: epochs between kept `epoch_NNN.pth` files (`latest.pth` is written every epoch).
    `init_from`: weights the run starts from (any layout `models.weights.load_weights` reads: a srpose-fast
    checkpoint, an SRPose release, an mmpose top-down checkpoint); unlike resuming, the optimiser,
    schedule and epoch count start afresh, and `pretrained` is not loaded (the file holds every weight).
    `box_shift_prob`: share of training boxes whose centre moves by up to +-20% of the box, drawn once
    when the training set is built (SRPose's mmpose 0.x `_xywh2cs`).
    Evaluation protocol (SRPose's COCO test settings, SPEC.md sections 3 and 4): person boxes from
    `val_bbox_file` (null: the ground truth's) with score >= `det_bbox_thr`, `flip_test`, `decode_method`,
    instance score = box score x mean keypoint score above `vis_thr`, OKS-NMS at `oks_nms_thr`.
    `val_interval`: epochs between evaluations during training (0: none); each writes its AP to the logs
    and keeps the best-AP checkpoint as `best.pth`.
    `log_interval`: iterations between log rows. `progress`: None = a tqdm bar only on a terminal.
    `backend`: the fused ops' backend in training and evaluation alike (SR head, loss, decode): "auto"
    (per op and device: triton, else cuda, on a GPU; the C++ decoder or torch on the CPU), "torch", "triton",
    "cuda" or "cpp" (decode only). `loss_backend`, its old name, is still accepted with a DeprecationWarning.
    """

    # model
    model: str = "srpose_hrnet_w32"
    keypoint_set: str | None = None  # None: the training file's (data/layouts.py)
    input_size: tuple[int, int] | None = None
    pretrained: str | None = None
    init_from: str | None = None
    # data
    train_ann: str = "data/coco/annotations/person_keypoints_train2017.json"
    train_images: str = "data/coco/train2017"
    val_ann: str = "data/coco/annotations/person_keypoints_val2017.json"
    val_images: str = "data/coco/val2017"
    val_bbox_file: str | None = None
    # evaluation protocol
    det_bbox_thr: float = 0.0
    flip_test: bool = True
    decode_method: str = "shift"
    vis_thr: float = 0.2
    oks_nms_thr: float = 0.9
    val_interval: int = 0
    # augmentation (SPEC.md section 2)
    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8  # half-body needs more visible joints than this (mmpose: COCO 8, CrowdPose 6)
    scale_factor: float = 0.5
    rot_factor: float = 40.0
    rot_prob: float = 0.6
    box_shift_prob: float = 0.3
    # loader
    batch_size: int = 32
    workers: int = 4
    drop_last: bool = False
    # optimisation
    epochs: int = 210
    optimizer: str = "adam"
    lr: float = 5e-4
    weight_decay: float = 0.0
    no_weight_decay: tuple[str, ...] = ()
    warmup_iters: int = 500
    warmup_ratio: float = 0.001
    lr_steps: tuple[int, ...] = (170, 200)
    lr_gamma: float = 0.1
    grad_clip: float | None = None
    # precision and layout
    amp: str = "auto"
    channels_last: bool = True
    sync_bn: bool | str = False  # true (every BatchNorm), "backbone" (the backbone's only), false
    # fused ops (SR head, loss, decode) and the loss's targets
    backend: str = "auto"
    target_method: str = "msra"
    # run
    seed: int = 0
    device: str = "auto"
    output_dir: str = "work_dirs/srpose_hrnet_w32"
    checkpoint_interval: int = 10
    log_interval: int = 50
    progress: bool | None = None
    tensorboard: bool = True

    loss_backend: dataclasses.InitVar[str | None] = None  # deprecated: backend

    def __post_init__(self, loss_backend: str | None = None):
        from ..ops.backend import BACKENDS

        for field in dataclasses.fields(self):
            check_type(field.name, getattr(self, field.name), _field_types()[field.name])
        if loss_backend is not None:
            warnings.warn("the config key loss_backend is deprecated: use backend (it sets the SR head's and the "
                          "decode's backend too)", DeprecationWarning, stacklevel=3)
            if self.backend not in ("auto", loss_backend):
                raise ValueError(f"backend {self.backend!r} and its old name loss_backend {loss_backend!r} disagree")
            self.backend = loss_backend
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.input_size is not None:
            self.input_size = tuple(int(v) for v in self.input_size)
            if len(self.input_size) != 2 or any(v <= 0 or v % 32 for v in self.input_size):
                raise ValueError(f"input_size must be (H, W), positive multiples of 32, got {self.input_size}")
        self.lr_steps = tuple(int(s) for s in self.lr_steps)
        if list(self.lr_steps) != sorted(self.lr_steps):
            raise ValueError(f"lr_steps must be increasing, got {self.lr_steps}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        if isinstance(self.sync_bn, str) and self.sync_bn != "backbone":
            raise ValueError(f"config key 'sync_bn' must be true, false or \"backbone\", got {self.sync_bn!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.target_method not in TARGET_METHODS:
            raise ValueError(f"target_method must be one of {TARGET_METHODS}, got {self.target_method!r}")
        for name in ("batch_size", "epochs", "checkpoint_interval", "log_interval"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.workers < 0 or self.warmup_iters < 0:
            raise ValueError("workers and warmup_iters must be >= 0")
        if not 0 < self.warmup_ratio <= 1:
            raise ValueError(f"warmup_ratio must be in (0, 1], got {self.warmup_ratio}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or null, got {self.grad_clip}")
        if isinstance(self.no_weight_decay, str) or not all(isinstance(k, str) and k for k in self.no_weight_decay):
            raise ValueError(f"no_weight_decay must be a list of non-empty parameter-name parts, "
                             f"got {self.no_weight_decay!r}")
        self.no_weight_decay = tuple(self.no_weight_decay)
        if self.decode_method not in DECODE_METHODS:
            raise ValueError(f"decode_method must be one of {DECODE_METHODS}, got {self.decode_method!r}")
        for name in ("box_shift_prob", "vis_thr", "oks_nms_thr"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.val_interval < 0:
            raise ValueError(f"val_interval must be >= 0 (0: no evaluation during training), got {self.val_interval}")

    def to_dict(self) -> dict:
        """Plain JSON-able values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


@functools.cache
def _field_types() -> dict:
    return typing.get_type_hints(TrainConfig)


_TYPE_NAMES = {type(None): ("null", "nulls"), bool: ("true or false", "booleans"), int: ("an int", "ints"),
               float: ("a number", "numbers"), str: ("a string", "strings")}


def _describe(hint) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(arm) for arm in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_TYPE_NAMES[args[0]][1]}"
        return f"a list of {len(args)} {_TYPE_NAMES[args[0]][1]}"  # the fixed-length tuples hold one type
    return _TYPE_NAMES[hint][0]


def _matches(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arm) for arm in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is float:  # an int is a number too (JSON writes 1e-3 and 1 alike)
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint) and not (hint is int and isinstance(value, bool))


def check_type(name: str, value, hint) -> None:
    """A ValueError naming the config key and the type its annotation asks for, unless `value` has it."""
    if not _matches(value, hint):
        raise ValueError(f"config key {name!r} must be {_describe(hint)}, got {value!r} ({type(value).__name__})")


def config_from_dict(values: dict, *, source: str = "config") -> TrainConfig:
    """A TrainConfig from a mapping; keys starting with "_" are ignored, unknown keys are an error."""
    known = {f.name for f in dataclasses.fields(TrainConfig)} | {"loss_backend"}  # the deprecated name too
    values = {k: v for k, v in values.items() if not k.startswith("_")}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{source}: unknown keys {unknown}; known keys: {sorted(known)}")
    try:
        return TrainConfig(**values)
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None


def load_config(path: str | Path) -> TrainConfig:
    """Read a `.json` or `.toml` file into a TrainConfig."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text()
    if path.suffix == ".toml":
        import tomllib  # Python >= 3.11

        values = tomllib.loads(text)
    elif path.suffix == ".json":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON: {err}") from None
    else:
        raise ValueError(f"{path}: a config must be a .json or .toml file")
    if not isinstance(values, dict):
        raise ValueError(f"{path}: the top level must be an object of settings")
    return config_from_dict(values, source=str(path))


__all__ = ["AMP_MODES", "OPTIMIZERS", "TrainConfig", "config_from_dict", "load_config"]
