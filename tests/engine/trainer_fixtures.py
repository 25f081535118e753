"""A tiny learnable pose problem for the trainer's tests: runs an epoch in well under a second on a CPU.

Images are 32x32 with one bright dot per keypoint; the model (two stride-2 convs and a 1x1 head,
BatchNorm included) predicts 8x8 heatmaps (output stride 4). `__getitem__` adds noise drawn from
torch's global generator, so a resumed run only matches a straight one when that generator's state
is restored too.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from srpose_fast.codecs.heatmap_codec import HeatmapCodec
from srpose_fast.keypoint_sets import COCO
from srpose_fast.engine.config import TrainConfig
from srpose_fast.engine.distributed import DistInfo, build_sampler
from srpose_fast.models import TopDownPoseModel
from srpose_fast.models.heads import HeatmapHead

SIZE = 32
STRIDE = 4
K = COCO.num_keypoints


class DotDataset(Dataset):
    def __init__(self, n: int = 16, seed: int = 0, noise: float = 0.05):
        g = torch.Generator().manual_seed(seed)
        self.keypoints = torch.rand(n, K, 2, generator=g) * (SIZE - 8) + 4  # input pixels
        ys = torch.arange(SIZE, dtype=torch.float32)[:, None]
        xs = torch.arange(SIZE, dtype=torch.float32)[None, :]
        d = (xs - self.keypoints[..., 0, None, None]) ** 2 + (ys - self.keypoints[..., 1, None, None]) ** 2
        self.images = torch.exp(-d / 4.0)[:, :3]  # (n, 3, H, W): the first three joints as colour planes
        self.noise = noise

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        image = self.images[i] + self.noise * torch.rand(self.images[i].shape)
        return {"image": image, "keypoints": self.keypoints[i], "target_weight": torch.ones(K)}  # input pixels


class TinyBackbone(nn.Module):
    def __init__(self, width: int = 8):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())

    def forward(self, x):
        return [self.body(x)]


class TinyHead(HeatmapHead):
    def __init__(self, width: int = 8):
        super().__init__(HeatmapCodec((SIZE, SIZE), ((SIZE // STRIDE, SIZE // STRIDE),), 1.0, (1.0,), COCO.flip_indices))
        self.final = nn.Conv2d(width, K, 1)

    def forward(self, feats):
        out = self.final(feats[0])
        return [out] if self.training else out


def tiny_model(width: int = 8, seed: int = 0) -> TopDownPoseModel:
    torch.manual_seed(seed)
    return TopDownPoseModel(TinyBackbone(width), TinyHead(width), keypoint_set=COCO)


def tiny_config(out_dir, **changes) -> TrainConfig:
    values = dict(model="tiny", output_dir=str(out_dir), batch_size=4, workers=0, epochs=4, lr=5e-3,
                  warmup_iters=6, lr_steps=(3,), amp="none", channels_last=False, device="cpu",
                  checkpoint_interval=2, log_interval=2, progress=False, tensorboard=False, backend="torch")
    values.update(changes)
    return TrainConfig(**values)


def tiny_loader(config: TrainConfig, info: DistInfo = DistInfo(), n: int = 16) -> DataLoader:
    dataset = DotDataset(n)
    sampler = build_sampler(dataset, info, shuffle=True, seed=config.seed)
    return DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers,
                      generator=torch.Generator())


def ddp_worker(rank: int, world_size: int, port: int, out_dir: str, result_dir: str) -> None:
    """One process of the 2-process gloo test, set up the way torchrun sets up each process."""
    import os
    from pathlib import Path

    from srpose_fast.engine.distributed import init_distributed, prepare_model, shutdown
    from srpose_fast.engine.trainer import Trainer

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    info = init_distributed("cpu")
    try:
        assert info.distributed and info.rank == rank and torch.distributed.get_backend() == "gloo"
        # SyncBatchNorm only runs on GPUs: a CPU run with sync_bn must say so, not fail inside DDP.
        try:
            prepare_model(tiny_model(), info, sync_bn=True)
        except ValueError as err:
            assert "sync_bn needs CUDA" in str(err)
        else:
            raise AssertionError("sync_bn on the CPU was accepted")
        # Each rank writes into its own folder, so the test sees what rank 1 would have written.
        config = tiny_config(Path(out_dir) / f"rank{rank}", epochs=2)
        trainer = Trainer(tiny_model(seed=rank), config, tiny_loader(config, info), dist_info=info)
        assert isinstance(trainer.module, nn.parallel.DistributedDataParallel)
        history = trainer.fit()
        torch.save({"model": trainer.model.state_dict(), "iteration": trainer.iteration,
                    "loss": [row["loss"] for row in history]}, Path(result_dir) / f"rank{rank}.pt")
    finally:
        shutdown(info)
