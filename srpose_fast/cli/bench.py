"""`srpose-fast bench`: time every backend against the reference (see benchmarks/)."""
from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from ..benchmarking.runner import run_benchmarks
    from ..benchmarking.suites import parse_suite

    for spec in args.suite or ():
        parse_suite(spec)  # an unknown suite is a ValueError: one line, exit 2
    run_benchmarks(quick=args.quick, out=args.out, suites=args.suite)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="time every backend against the reference (see benchmarks/)")
    p.add_argument("--quick", action="store_true", help="small sizes: a minute or two on a CPU")
    p.add_argument("--out", default="outputs/bench", help="folder for the JSON, the table and the plot")
    p.add_argument("--suite", action="append", default=None,
                   help="run only this suite (repeatable): sr_head, decode, sr_head_decode, loss, deploy, "
                        "train[:MODELS], infer[:MODELS] (MODELS: zoo names, comma-separated)")
    p.set_defaults(func=run)
