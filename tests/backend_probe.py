"""Which backend each fused op is asked for: `record_backends(monkeypatch)` swaps the `resolve_backend` of every
loaded op module for one that records (op, requested backend) and runs the torch reference."""
from __future__ import annotations

import sys

import srpose_fast.ops  # noqa: F401  (loads every public op's module)


def record_backends(monkeypatch) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []

    def recording(backend, device, *, op, supported=None):
        calls.append((op, backend))
        return "torch"

    for name, module in list(sys.modules.items()):
        if name.startswith("srpose_fast.ops.") and name != "srpose_fast.ops.backend" \
                and hasattr(module, "resolve_backend"):
            monkeypatch.setattr(module, "resolve_backend", recording)
    return calls
