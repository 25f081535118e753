"""The timer's cache sizes and input rotation (no timing is asserted)."""
import torch

from srpose_fast.benchmarking.timing import MAX_ROTATION_COPIES, benchmark, last_level_cache_bytes, rotation_copies


def _cache_dir(root, index, level, kind, size):
    d = root / f"index{index}"
    d.mkdir()
    (d / "level").write_text(f"{level}\n")
    (d / "type").write_text(f"{kind}\n")
    (d / "size").write_text(f"{size}\n")


def test_last_level_cache_is_the_highest_data_level(tmp_path):
    _cache_dir(tmp_path, 0, 1, "Data", "32K")
    _cache_dir(tmp_path, 1, 1, "Instruction", "32K")
    _cache_dir(tmp_path, 2, 2, "Unified", "512K")
    _cache_dir(tmp_path, 3, 3, "Unified", "32768K")
    assert last_level_cache_bytes(tmp_path) == 32 << 20


def test_unreadable_cache_information_means_no_rotation(tmp_path):
    assert last_level_cache_bytes(tmp_path) == 0
    assert last_level_cache_bytes(tmp_path / "missing") == 0


def test_rotation_covers_twice_the_cache_within_the_caps(monkeypatch):
    from srpose_fast.benchmarking import timing

    monkeypatch.setattr(timing, "last_level_cache_bytes", lambda: 32 << 20)
    cpu = torch.device("cpu")
    assert rotation_copies(16 << 20, cpu) == 4
    assert rotation_copies(1 << 30, cpu) == 1
    assert rotation_copies(1 << 10, cpu) == MAX_ROTATION_COPIES
    assert rotation_copies(0, cpu) == 1


def test_rotated_calls_cycle_through_distinct_inputs_and_never_more_than_they_use(monkeypatch):
    from srpose_fast.benchmarking import timing

    monkeypatch.setattr(timing, "last_level_cache_bytes", lambda: 1 << 20)
    made, seen = [], []

    def make_inputs():
        made.append(torch.zeros(1 << 16))  # 256 KiB: 8 copies cover 2 MiB
        return made[-1]

    result = benchmark(lambda t: seen.append(id(t)), make_inputs, device="cpu", rotate=True, warmup_s=0,
                       min_warmup=0, budget_s=0, min_reps=16, max_reps=16)
    assert result.input_copies == 8 and len(made) == 8
    assert len(set(seen)) == 8
    few = benchmark(lambda t: None, make_inputs, device="cpu", rotate=True, warmup_s=0, min_warmup=0, budget_s=0,
                    min_reps=1, max_reps=3)
    assert few.input_copies == 3
