"""pytest-benchmark over the CPU parts of the benchmark harness: `pytest benchmarks --benchmark-only`.

The cases are `srpose-fast bench`'s own (quick profile, on the CPU): the deployment decoder against
mmpose-style DARK and SRPose's decode (`deploy`), the decode paths with their device-to-host copies
(`decode`) and the multi-stage loss with its targets (`loss`). As in `srpose-fast bench`, every provider
is checked against the case's reference before it is timed; one that cannot run here (Triton, CUDA)
is skipped with its reason. The normal test run never collects this file (testpaths = tests).
"""
import pytest
import torch

from srpose_fast.benchmarking.cases import Unavailable, prepare
from srpose_fast.benchmarking.suites import SUITES, Settings

CPU_SUITES = ("deploy", "decode", "loss")


def _params():
    settings = Settings(device=torch.device("cpu"), profile="quick")
    for suite in CPU_SUITES:
        for case in SUITES[suite](settings):
            for provider in (case.reference, *case.providers):
                yield pytest.param(case, provider, id=f"{suite}:{case.name}:{provider.name}".replace(" ", "_"))


@pytest.mark.parametrize("case,provider", list(_params()))
def test_cpu(benchmark, case, provider):
    try:
        prepared = prepare(provider)
    except Unavailable as err:
        pytest.skip(str(err))
    inputs = case.make_inputs()
    expected = prepare(case.reference).run(inputs)
    if provider is not case.reference:
        result = case.check(inputs, expected, (prepared.check_output or prepared.run)(inputs), provider)
        assert result.passed, result.detail
    benchmark.extra_info.update(suite=case.suite, case=case.name, backend=provider.name, batch=case.batch)
    benchmark(prepared.run, inputs)
