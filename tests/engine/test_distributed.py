import socket
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from srpose_fast.engine.checkpoint import load_checkpoint
from srpose_fast.engine.distributed import DistInfo, build_sampler, init_distributed
from trainer_fixtures import ddp_worker, tiny_model

TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo")
def test_two_process_gloo_training(tmp_path):
    out_dir, result_dir = tmp_path / "runs", tmp_path / "results"
    result_dir.mkdir()
    context = mp.spawn(ddp_worker, args=(2, _free_port(), str(out_dir), str(result_dir)), nprocs=2, join=False)
    deadline = time.monotonic() + TIMEOUT_S
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the 2-process run did not finish in {TIMEOUT_S} s")

    results = [torch.load(result_dir / f"rank{r}.pt", weights_only=True) for r in range(2)]
    # 16 samples, 8 per rank, batch 4: 2 steps per epoch, 2 epochs.
    assert results[0]["iteration"] == results[1]["iteration"] == 4
    assert results[0]["loss"] == results[1]["loss"]  # the logged loss is the mean over ranks
    for key, value in results[0]["model"].items():  # rank 1 started from other weights: DDP synced them
        assert torch.equal(value, results[1]["model"][key]), key
    assert not (out_dir / "rank1").exists()  # rank 1 wrote no log, config or checkpoint
    rank0 = out_dir / "rank0"
    assert sorted(p.name for p in rank0.iterdir()) == ["config.json", "epoch_002.pth", "latest.pth", "log.csv"]
    checkpoint = load_checkpoint(rank0 / "latest.pth", model := tiny_model(), model_name="tiny")
    assert len(checkpoint["rng"]) == 2  # every rank's generators, for an exact resume
    for key, value in model.state_dict().items():
        assert torch.equal(value, results[0]["model"][key]), key


def test_single_process_without_torchrun(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    info = init_distributed("cpu")
    assert (info.rank, info.world_size, info.distributed, info.is_main) == (0, 1, False, True)
    assert not dist.is_initialized()
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="RANK.*torchrun"):
        init_distributed("cpu")


def test_sampler_order_depends_on_seed_and_epoch_only():
    data = list(range(10))
    a = build_sampler(data, DistInfo(), seed=3)
    b = build_sampler(data, DistInfo(), seed=3)
    a.set_epoch(2), b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)
    shards = [list(build_sampler(data, DistInfo(rank=r, world_size=2), seed=3)) for r in range(2)]
    assert sorted(shards[0] + shards[1]) == data


def test_sync_bn_converts_the_whole_model_or_the_backbone_only():
    from srpose_fast.engine.distributed import convert_sync_bn
    from srpose_fast.models import build_model

    def kinds(module):
        return {type(m).__name__ for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}

    assert kinds(convert_sync_bn(build_model("srpose_demo"), True)) == {"SyncBatchNorm"}
    model = convert_sync_bn(build_model("srpose_demo"), "backbone")
    assert kinds(model.backbone) == {"SyncBatchNorm"} and kinds(model.head) == {"BatchNorm2d"}
    assert kinds(convert_sync_bn(build_model("srpose_demo"), False)) == {"BatchNorm2d"}
