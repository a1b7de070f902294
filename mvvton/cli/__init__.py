"""`mvvton` console command. Each subcommand lives in its own module exposing `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys

# module name -> subcommand(s) it registers; imported lazily so `mvvton --help` stays fast.
SUBCOMMAND_MODULES = ("convert", "tryon", "data", "demo", "smoke", "serve", "ui")


class CLIError(Exception):
    """An error whose message is meant for the user (printed without a traceback, exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mvvton", description="Multi-view virtual try-on (MV-VTON) on diffusers.")
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except CLIError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # typed library errors carry an actionable message
        from mvvton.errors import MVVTONError

        if isinstance(error, MVVTONError):
            print(f"error: {error}", file=sys.stderr)
            return 2
        raise
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
