"""train and infer: whole-model throughput (images/s) of zoo models; data in memory, or from a loader.

train: one optimiser step (Adam) on a batch of 256x192 crops.
- reference: `reference.pipeline.reference_train_step` (float32, NCHW; numpy targets per sample, copied
  to the device, the per-joint loss loop, `loss.item()`), as SRPose trains;
- torch.compile(reference): the same step with the model compiled (default mode);
- ours / ours bf16: `engine.trainer.Trainer.train_step` (channels-last, the fused multi-stage loss with
  backend "auto", amp "none" / "bf16" autocast), the step `srpose-fast train` runs.
Checked before timing: the loss and the gradients of the first backbone weight and the last SR head's
weight, from one step with the learning rate set to 0, against the reference's.

train with loader: the same step, each batch drawn from a DataLoader over synthetic JPEG images of about
COCO's size with SRPose's augmentation (`TopDownCocoDataset`; 8 workers on a GPU machine, none on the CPU).
- reference: `reference.pipeline.SRPoseTrainSamples` makes each sample's numpy target in the loader, the
  batch of targets is copied to the device, then the per-joint loss (`reference_train_step_on_targets`);
- ours / ours bf16: `collate_pose` hands over keypoints only and `Trainer.train_step` runs the fused loss.
Checked on the same first crops (unshuffled), as above.

infer: flip-test inference of a batch of crops to image keypoints on the host.
- reference: `reference.pipeline.reference_inference` (two forward passes, flip-back, 16x16 max-pool
  indices and the heatmaps to the host, the numpy loop), as SRPose tests;
- torch.compile(reference): the same with the model compiled (default mode);
- ours / ours bf16: `TopDownPoseModel.predict` (plain and mirrored crops in one batch; SR heads decode
  from the last SR head's input with `sr_head_decode`, backend "auto", so the final 256x192 heatmaps are
  never written), the path `srpose-fast eval` runs, in float32 or under bf16 autocast;
- ours heatmaps+decode / bf16: the same batch through the whole model (heatmaps written), then
  `decode_heatmaps` with backend "auto" (through the model's codec).
Checked before timing: every keypoint must sit on (or tie with) the maximum of the reference's
flip-merged float32 heatmaps, and every score must equal that maximum, within a tolerance per dtype.

FLOPs: counted with torch's FlopCounterMode on the reference's checked call; bytes are not counted.
`--quick` and the tiny profile use the narrow `srpose_demo` model instead of the full-size ones.
"""
from __future__ import annotations

import atexit
import contextlib
import copy
import functools
import itertools
import os
import shutil
import tempfile

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ...codecs.flip import flip_merge
from ...engine.config import TrainConfig
from ...engine.trainer import Trainer
from ...models import build_model
from ...reference.pipeline import (SRPoseTrainSamples, reference_inference, reference_train_step,
                                   reference_train_step_on_targets)
from ..cases import Case, CheckResult, Prepared, Provider, Unavailable, check_keypoints_on_maps
from .common import Settings, compile_mode, sync_to_host

FULL_MODELS = ("srpose_hrnet_w32", "srpose_res50")
SMALL_MODELS = ("srpose_demo",)
LR = 5e-4
TINY_INPUT = (64, 64)  # the smoke test's crops
COMPILED_INFER_BATCH = 32  # each new batch size would compile again
# The loader cases read synthetic COCO-style images (JPEG) of about COCO's size: (images, (H, W)) per profile.
LOADER_IMAGES = {"full": (96, (480, 640)), "quick": (8, (240, 320)), "tiny": (4, (120, 160))}


def default_models(settings: Settings) -> tuple[str, ...]:
    return settings.models or settings.pick(FULL_MODELS, SMALL_MODELS, SMALL_MODELS)


@contextlib.contextmanager
def zero_lr(optimizer: torch.optim.Optimizer):
    """Steps inside leave the weights where they are (Adam with lr 0), so a check changes nothing."""
    saved = [group["lr"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] = 0.0
    try:
        yield
    finally:
        for group, lr in zip(optimizer.param_groups, saved):
            group["lr"] = lr


def _checked_names(model: torch.nn.Module) -> tuple[str, str]:
    names = [name for name, _ in model.named_parameters()]
    last_sr = [name for name in names if name.startswith("head.converge.")]
    return names[0], (last_sr[-2] if len(last_sr) >= 2 else names[-1])  # converge.<last>.conv.weight


def _grads(model: torch.nn.Module, names) -> dict:
    params = dict(model.named_parameters())
    return {name: params[name].grad.detach().float().clone() for name in names}


def _bf16_unavailable(settings: Settings) -> None:
    if not settings.cuda:
        raise Unavailable("bf16 autocast is the GPU setting (the trainer's amp='auto' is float32 on the CPU)")


# ------------------------------------------------------------------------------------------------ train

def _train_inputs(base, n: int, device: torch.device):
    height, width = base.input_size
    hm_h, hm_w = base.heatmap_size
    joints = base.keypoint_set.num_keypoints

    def make():
        images = torch.randn(n, 3, height, width, device=device)
        keypoints = (np.random.rand(n, joints, 2) * np.array([hm_w - 1, hm_h - 1])).astype(np.float32)
        visible = (np.random.rand(n, joints) > 0.2).astype(np.float32)
        return {"images": images, "kp_np": keypoints, "vis_np": visible,  # the reference's: heatmap pixels
                "batch": {"image": images, "keypoints": base.codec.to_input(torch.from_numpy(keypoints)),
                          "target_weight": torch.from_numpy(visible)}}
    return make


def _reference_train(base, settings: Settings, flops: dict, names, compiled: bool) -> Provider:
    def setup():
        mode = compile_mode(settings, autotune=False) if compiled else None
        model = copy.deepcopy(base).to(settings.device)
        called = torch.compile(model, mode=None if mode == "default" else mode) if compiled else model
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)

        def run(inputs):
            return reference_train_step(called, optimizer, inputs["images"], inputs["kp_np"], inputs["vis_np"],
                                        sigma=base.codec.sigma)

        def check_output(inputs):
            counter = FlopCounterMode(display=False) if not compiled else contextlib.nullcontext()
            with zero_lr(optimizer), counter:
                loss = run(inputs)
            if not compiled:
                flops["value"] = counter.get_total_flops()
            return loss, _grads(model, names)
        return Prepared(run=run, check_output=check_output, note="" if mode is None else f"mode={mode}")
    return Provider("torch.compile(reference)" if compiled else "reference", setup, host_sync=True)


def _trainer(base, settings: Settings, amp: str) -> Trainer:
    """The trainer `srpose-fast train` runs (channels-last, the fused loss), on a copy of `base`."""
    model = copy.deepcopy(base)  # the Trainer sets the config's backend, "auto"
    config = TrainConfig(model="benchmark", device=settings.device.type, amp=amp, channels_last=True, lr=LR,
                         output_dir=os.path.join(tempfile.gettempdir(), "srpose_bench_unused"), progress=False,
                         tensorboard=False)
    return Trainer(model, config, train_loader=[])


def _ours_train(base, settings: Settings, names, amp: str) -> Provider:
    def setup():
        if amp == "bf16":
            _bf16_unavailable(settings)
        trainer = _trainer(base, settings, amp)

        def run(inputs):
            return trainer.train_step(inputs["batch"])

        def check_output(inputs):
            with zero_lr(trainer.optimizer):
                loss = run(inputs)
            return float(loss), _grads(trainer.model, names)
        return Prepared(run=run, check_output=check_output)
    return Provider("ours bf16" if amp == "bf16" else "ours", setup, dtype="bfloat16" if amp == "bf16" else "float32",
                    host_sync=True)


def _train_check(settings: Settings):
    """The loss and the last SR head's weight gradient closely; the first backbone weight's gradient
    loosely: at random init it is a sum with much cancellation (on the CPU in float32, NCHW and
    channels-last were 1.5% and 3% apart in two runs), so it only shows that the gradient reaches the stem."""
    def check(inputs, expected, output, provider):
        ref_loss, ref_grads = expected
        loss, grads = output
        if provider.dtype == "bfloat16":
            loss_tol, head_tol = 2e-2, 0.2
        elif settings.cuda:  # cuDNN convolutions use TF32 in float32 by default, in other algorithms per layout
            loss_tol, head_tol = 1e-3, 5e-2
        else:
            loss_tol, head_tol = 1e-4, 1e-3
        stem, last_sr = ref_grads
        tols = {stem: 0.3, last_sr: head_tol}
        errors = {k: float((grads[k] - g).norm() / g.norm().clamp_min(1e-30)) for k, g in ref_grads.items()}
        loss_err = abs(loss - ref_loss) / max(abs(ref_loss), 1e-30)
        passed = loss_err <= loss_tol and all(errors[k] <= tols[k] for k in errors) and np.isfinite(loss)
        return CheckResult(bool(passed), errors[last_sr], head_tol, f"relative L2 error of {last_sr}'s gradient",
                           f"loss {loss:.6g} vs {ref_loss:.6g} (relative error {loss_err:.3g}, tol {loss_tol:g}); "
                           f"{stem} gradient relative error {errors[stem]:.3g} (tol {tols[stem]:g})")
    return check


# ------------------------------------------------------------------------------------ train with the loader

@functools.lru_cache(maxsize=None)
def _synthetic_train_set(profile: str) -> tuple[str, str]:
    """(annotation file, image folder) of a synthetic training set, written once per process and removed
    when the process exits."""
    from ...data.synthetic import generate_synthetic_coco

    num_images, image_size = LOADER_IMAGES[profile]
    root = tempfile.mkdtemp(prefix="srpose_bench_images_")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    ann = generate_synthetic_coco(root, num_images=num_images, split="train", seed=0, image_size=image_size,
                                  progress=False)
    return str(ann), os.path.join(root, "images", "train")


def _loader_inputs(base, settings: Settings, n: int):
    def make():
        from ...data.coco import TopDownCocoDataset

        ann, images = _synthetic_train_set(settings.profile)
        dataset = TopDownCocoDataset(ann, images, keypoint_set=base.keypoint_set, input_size=base.input_size,
                                     heatmap_size=base.heatmap_size, train=True, seed=0)
        if len(dataset) < n:
            raise Unavailable(f"the synthetic set holds {len(dataset)} person crops, fewer than a batch of {n}")
        return {"dataset": dataset, "check_indices": list(range(n))}
    return make


def _loader_workers(settings: Settings) -> int:
    """SRPose trains with 2 workers per GPU and more when the machine has them; none on a 2-core CPU run."""
    return min(8, (os.cpu_count() or 1) // 2) if settings.cuda else 0


def _batches(dataset, n: int, collate_fn, settings: Settings):
    """Endless shuffled batches of `dataset` from a DataLoader whose workers live as long as the iterator."""
    workers = _loader_workers(settings)
    loader = torch.utils.data.DataLoader(dataset, batch_size=n, shuffle=True, drop_last=True, num_workers=workers,
                                         collate_fn=collate_fn, pin_memory=settings.cuda,
                                         persistent_workers=workers > 0)
    return itertools.chain.from_iterable(itertools.repeat(loader))


def _reference_loader_train(base, settings: Settings, names) -> Provider:
    def setup():
        model = copy.deepcopy(base).to(settings.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        state: dict = {}

        def step(batch):
            images, target, target_weight = batch
            return reference_train_step_on_targets(model, optimizer, images.to(settings.device), target,
                                                   target_weight)

        def run(inputs):
            if "batches" not in state:
                samples = SRPoseTrainSamples(inputs["dataset"], sigma=base.codec.sigma)
                state["batches"] = _batches(samples, len(inputs["check_indices"]), None, settings)
            return step(next(state["batches"]))

        def check_output(inputs):
            samples = SRPoseTrainSamples(inputs["dataset"], sigma=base.codec.sigma)
            batch = torch.utils.data.default_collate([samples[i] for i in inputs["check_indices"]])
            with zero_lr(optimizer):
                loss = step(batch)
            return loss, _grads(model, names)
        return Prepared(run=run, check_output=check_output, note=f"{_loader_workers(settings)} workers")
    return Provider("reference", setup, host_sync=True)


def _ours_loader_train(base, settings: Settings, names, amp: str) -> Provider:
    def setup():
        from ...data.collate import collate_pose

        if amp == "bf16":
            _bf16_unavailable(settings)
        trainer = _trainer(base, settings, amp)
        state: dict = {}

        def run(inputs):
            if "batches" not in state:
                state["batches"] = _batches(inputs["dataset"], len(inputs["check_indices"]), collate_pose, settings)
            return trainer.train_step(next(state["batches"]))

        def check_output(inputs):
            batch = collate_pose([inputs["dataset"][i] for i in inputs["check_indices"]])
            with zero_lr(trainer.optimizer):
                loss = trainer.train_step(batch)
            return float(loss), _grads(trainer.model, names)
        return Prepared(run=run, check_output=check_output, note=f"{_loader_workers(settings)} workers")
    return Provider("ours bf16" if amp == "bf16" else "ours", setup, dtype="bfloat16" if amp == "bf16" else "float32",
                    host_sync=True)


def build_train_cases(settings: Settings) -> list[Case]:
    batches = settings.pick((32,), (2,), (2,))
    cases = []
    for name in default_models(settings):
        base = build_model(name, backend="torch", input_size=settings.pick(None, None, TINY_INPUT))
        names = _checked_names(base)
        height, width = base.input_size
        for n in batches:
            flops: dict = {}
            cases.append(Case(
                suite="train", op=f"train {name}", name=f"{name} N{n}", shape=f"({n},3,{height},{width})",
                dtype="float32", batch=n, make_inputs=_train_inputs(base, n, settings.device),
                reference=_reference_train(base, settings, flops, names, compiled=False),
                providers=[_ours_train(base, settings, names, "none"), _ours_train(base, settings, names, "bf16"),
                           _reference_train(base, settings, flops, names, compiled=True)],
                check=_train_check(settings), flops=lambda f=flops: f.get("value", 0.0), items_name="images",
                extra={"model": name}))
            cases.append(Case(
                suite="train", op=f"train+loader {name}", name=f"{name} N{n} with loader",
                shape=f"({n},3,{height},{width})", dtype="float32", batch=n,
                make_inputs=_loader_inputs(base, settings, n),
                reference=_reference_loader_train(base, settings, names),
                providers=[_ours_loader_train(base, settings, names, "none"),
                           _ours_loader_train(base, settings, names, "bf16")],
                check=_train_check(settings), items_name="images", extra={"model": name}))
    return cases


# ------------------------------------------------------------------------------------------------ infer

def _infer_inputs(base, n: int, device: torch.device):
    height, width = base.input_size

    def make():
        images = torch.randn(n, 3, height, width, device=device)
        # The crop itself as the box: image pixels are input pixels.
        center, scale = (t.numpy().copy() for t in base.codec.crop_center_scale(n))
        return {"images": images, "center_np": center, "scale_np": scale,
                "center": torch.from_numpy(center).to(device), "scale": torch.from_numpy(scale).to(device)}
    return make


def _reference_infer(base, settings: Settings, flops: dict, compiled: bool, batch: int = 0) -> Provider:
    flip_indices = base.keypoint_set.flip_indices

    def setup():
        mode = compile_mode(settings, autotune=False) if compiled else None
        if compiled and batch != COMPILED_INFER_BATCH:
            raise Unavailable(f"compiled reference timed at batch {COMPILED_INFER_BATCH} only (compile time)")
        model = copy.deepcopy(base).to(settings.device).eval()
        called = torch.compile(model, mode=None if mode == "default" else mode) if compiled else model

        def run(inputs):
            return reference_inference(called, inputs["images"], inputs["center_np"], inputs["scale_np"],
                                       flip_indices=flip_indices)

        def check_output(inputs):
            keypoints, scores = run(inputs)
            counter = FlopCounterMode(display=False)
            with torch.no_grad(), counter:
                maps = flip_merge(model(inputs["images"]), model(inputs["images"].flip(3)), flip_indices)
            flops["value"] = counter.get_total_flops()
            return keypoints, scores, maps
        return Prepared(run=run, check_output=check_output if not compiled else None,
                        note="" if mode is None else f"mode={mode}")
    return Provider("torch.compile(reference)" if compiled else "reference", setup, host_sync=True)


def heatmaps_then_decode(model, images: torch.Tensor, center: torch.Tensor, scale: torch.Tensor):
    """Flip-test keypoints the two-step way: the full heatmaps of both crops, then the codec's `decode_heatmaps`
    (what `predict` did before SR heads decoded from the last SR head's input)."""
    n = images.shape[0]
    heatmaps = model(torch.cat([images, images.flip(3)]))
    return model.codec.decode(heatmaps[:n], heatmaps[n:], center=center, scale=scale, method="shift")


def _ours_infer(base, settings: Settings, bf16: bool, two_step: bool) -> Provider:
    def setup():
        if bf16:
            _bf16_unavailable(settings)
        model = copy.deepcopy(base).to(settings.device).eval()
        model.set_backend("auto")  # `base` is built with the torch backend for the references
        autocast = (lambda: torch.autocast(settings.device.type, dtype=torch.bfloat16)) if bf16 \
            else contextlib.nullcontext

        @torch.no_grad()
        def run(inputs):
            with autocast():
                if two_step:
                    out = heatmaps_then_decode(model, inputs["images"], inputs["center"], inputs["scale"])
                else:
                    out = model.predict(inputs["images"], flip_test=True, method="shift", center=inputs["center"],
                                        scale=inputs["scale"])
            return sync_to_host(*out)
        return Prepared(run=run)
    name = "ours heatmaps+decode" if two_step else "ours"
    return Provider(name + (" bf16" if bf16 else ""), setup, dtype="bfloat16" if bf16 else "float32",
                    host_sync=True)


def _infer_check(settings: Settings):
    def check(inputs, expected, output, provider):
        ref_kp, ref_scores, maps = expected
        kp, scores = output[:2]
        if provider.dtype == "bfloat16":
            value_tol, ties = 0.1, 1.0
        elif settings.cuda:  # TF32 convolutions, other algorithms for the batched flip
            value_tol, ties = 2e-2, 0.5
        else:
            value_tol, ties = 1e-3, 0.1
        return check_keypoints_on_maps(maps, ref_kp, ref_scores, kp, scores, value_tol=value_tol, kp_atol=1e-3,
                                       max_tie_fraction=ties)
    return check


def build_infer_cases(settings: Settings) -> list[Case]:
    batches = settings.pick((32, 256), (1, 4), (1,))
    cases = []
    for name in default_models(settings):
        base = build_model(name, backend="torch", input_size=settings.pick(None, None, TINY_INPUT))
        height, width = base.input_size
        for n in batches:
            flops: dict = {}
            cases.append(Case(
                suite="infer", op=f"infer {name}", name=f"{name} N{n}", shape=f"({n},3,{height},{width})",
                dtype="float32", batch=n, make_inputs=_infer_inputs(base, n, settings.device),
                reference=_reference_infer(base, settings, flops, compiled=False),
                providers=[_ours_infer(base, settings, bf16, two) for two in (False, True) for bf16 in (False, True)]
                + [_reference_infer(base, settings, flops, compiled=True, batch=n)],
                check=_infer_check(settings), flops=lambda f=flops: f.get("value", 0.0), items_name="images",
                extra={"model": name}))
    return cases
