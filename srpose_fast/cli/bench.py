"""`srpose-fast bench`: time every backend against the reference (see benchmarks/)."""
from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from ..benchmarking.runner import case_id, run_benchmarks, selected_cases
    from ..benchmarking.suites import parse_suite

    for spec in args.suite or ():
        parse_suite(spec)  # an unknown suite is a ValueError: one line, exit 2
    if args.list:
        profile = "quick" if args.quick else "full"
        for case in selected_cases(args.suite, args.cases, profile=profile):
            providers = ", ".join(p.name for p in [case.reference, *case.providers])
            print(f"{case_id(case)}  [{case.dtype}, {case.shape}]  {providers}")
        return 0
    run_benchmarks(quick=args.quick, out=args.out, suites=args.suite, cases=args.cases)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="time every backend against the reference (see benchmarks/)")
    p.add_argument("--quick", action="store_true", help="small sizes: a minute or two on a CPU")
    p.add_argument("--out", default="outputs/bench", help="folder for the JSON, the table and the plot")
    p.add_argument("--suite", action="append", default=None,
                   help="run only this suite (repeatable): sr_head, decode, sr_head_decode, loss, deploy, export, bottomup, "
                        "loss_bottomup, train[:MODELS], infer[:MODELS] (MODELS: zoo names, comma-separated)")
    p.add_argument("--cases", metavar="REGEX", default=None,
                   help='run only the cases whose "<suite>/<case name>" matches REGEX (re.search), '
                        'e.g. "decode/dark\\+flip 256x192 N64$"')
    p.add_argument("--list", action="store_true", help="list the selected cases and their providers; run nothing")
    p.set_defaults(func=run)
