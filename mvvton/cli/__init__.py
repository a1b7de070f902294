"""`mvvton` console command. Each subcommand lives in its own module exposing `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

# module name -> subcommand(s) it registers; imported lazily so `mvvton --help` stays fast.
SUBCOMMAND_MODULES = ("convert", "tryon", "data", "demo", "smoke", "serve", "worker", "eval", "ui")


class CLIError(Exception):
    """An error whose message is meant for the user (printed without a traceback, exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mvvton", description="Multi-view virtual try-on (MV-VTON) on diffusers.")
    parser.add_argument("--verbose", action="store_true", help="print the full traceback of an internal error")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"mvvton.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"mvvton.cli.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def _bounded_int(text: str, low: int, high: int | None, accepted: str) -> int:
    """argparse helper: `text` as an integer in [low, high] or an `ArgumentTypeError` naming `accepted`."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"expected {accepted}, got {value}")
    return value


def seed_argument(text: str) -> int:
    """argparse type for `--seed`: an integer torch accepts (0 .. 2**64 - 1)."""
    return _bounded_int(text, 0, 2**64 - 1, "--seed as an integer in 0 .. 2**64 - 1")


def positive_int(text: str) -> int:
    """argparse type for counts such as `--steps`: an integer >= 1."""
    return _bounded_int(text, 1, None, "an integer >= 1")


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. Exit codes: 0 ok, 1 a check failed, 2 a user error (`error: ...`, one line),
    3 an internal error (`internal error: ...`; `--verbose` prints the traceback), 130 interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from mvvton.errors import MVVTONError

    try:
        result = args.func(args)
    except (CLIError, MVVTONError) as error:  # typed errors carry an actionable message
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.verbose:
            traceback.print_exc()
        summary = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        hint = "" if args.verbose else " (re-run with --verbose for the traceback)"
        print(f"internal error: {summary}{hint}", file=sys.stderr)
        return 3
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
