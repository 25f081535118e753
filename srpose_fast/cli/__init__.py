"""The `srpose-fast` command. One module per subcommand in this package, each with `add_parser(sub)`.

A user's mistake (a missing file, a bad value, a checkpoint that does not fit) ends the command with one
line on stderr, `srpose-fast <command>: error: <what is wrong>`, and exit status 2; `--debug` shows the
traceback instead. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import sys

from . import bench, convert, demo, evaluate, export, models, predict, quantization, score, train
from .errors import one_line, one_line_warnings, user_errors

# In the order `srpose-fast --help` lists them.
COMMANDS = (models, train, evaluate, score, predict, export, convert, quantization, bench, demo)


class OneLineParser(argparse.ArgumentParser):
    """argparse's own mistakes (an unknown option, a bad choice, a missing argument) in one line too, without
    the usage block; subcommand parsers are of this class as well."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="srpose-fast", description="SRPose pose estimation with fused kernels: "
                                     "train, evaluate, predict, benchmark.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    for command_parser in sub.choices.values():
        # Also after the subcommand; SUPPRESS keeps an absent flag from overwriting the top-level one.
        command_parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                    help="show the traceback of an error")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with one_line_warnings(f"srpose-fast {args.command}", enabled=not args.debug):
            return args.func(args)
    except Exception as err:
        if args.debug or not isinstance(err, user_errors()):
            raise
        print(f"srpose-fast {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"srpose-fast {args.command}: interrupted", file=sys.stderr)
        return 130
