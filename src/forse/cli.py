"""The ``forse`` command line: one sub-command per module in ``forse.commands``."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# name on the command line -> module in forse.commands with register(subparsers) and run(args)
COMMANDS = {
    "sky": "sky",
    "mask": "mask",
    "training-set": "training_set",
    "train": "train",
    "extend": "extend",
    "validate": "validate",
    "demo": "demo",
}


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="forse",
        description="Realistic non-Gaussian small scales for Galactic dust maps (ForSE method).",
    )
    parser.add_argument("--version", action="version", version=f"forse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        try:
            mod = importlib.import_module(f"forse.commands.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"forse.commands.{module}":
                raise
            continue  # command not built yet
        p = mod.register(sub, name)
        p.add_argument("--debug", action="store_true",
                       help="show Python tracebacks (also: FORSE_DEBUG=1)")
        p.add_argument("--verbose", action="store_true",
                       help="let TensorFlow's start-up messages through to stderr "
                            "(also: FORSE_LOG_LEVEL=INFO)")
        p.set_defaults(_run=mod.run)
    return parser


def _message(exc: BaseException) -> str:
    """One line: an OSError as "'path': what went wrong", anything else as its text."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename!r}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def main(argv=None) -> int:
    """Run a command. Errors are one line on stderr and exit code 2 (Ctrl-C: 130); with
    ``--debug`` or FORSE_DEBUG=1 they raise with their traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    from ._log import cli_output

    debug = args.debug or os.environ.get("FORSE_DEBUG", "") not in ("", "0")
    try:
        with cli_output(args.verbose):
            return int(args._run(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"forse {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError) as exc:
        if debug:
            raise
        print(f"forse {args.command}: error: {_message(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
