"""`mvvton data {check,prepare,synth}`: dataset checks, preparation from raw photos, SynthMVG generation."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mvvton.cli import CLIError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `data` command and its subcommands."""
    data = subparsers.add_parser("data", help="dataset tools: check, prepare, synth")
    commands = data.add_subparsers(dest="data_command", required=True)

    check = commands.add_parser("check", help="list missing, unreadable or size-mismatched dataset files")
    check.add_argument("root", type=Path, help="dataset root (for --format manifest: the .jsonl file or its folder)")
    check.add_argument("--format", required=True, choices=("mvg", "vitonhd", "dresscode", "manifest"))
    check.add_argument("--max-listed", type=int, default=20, help="problems listed per category (0 = all)")
    check.set_defaults(func=run_check)

    prepare = commands.add_parser("prepare", help="raw person + garment photos -> MVG-layout dataset")
    prepare.add_argument("raw_dir", type=Path, help="persons/, garments/<name>/{front,back}.*, pairs.txt")
    prepare.add_argument("out_dir", type=Path)
    prepare.add_argument("--split", default="test", choices=("train", "test"))
    prepare.add_argument("--size", default="512x384", help="HxW of the written images (default 512x384)")
    prepare.add_argument("--no-progress", action="store_true")
    prepare.set_defaults(func=run_prepare)

    synth = commands.add_parser("synth", help="generate the procedural SynthMVG dataset (MVG layout)")
    synth.add_argument("out_dir", type=Path)
    synth.add_argument("--identities", type=int, required=True)
    synth.add_argument("--size", default="128x96", help="HxW, up to 512x384 (default 128x96)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--split-fraction", type=float, default=0.2, help="fraction of identities in test/")
    synth.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    synth.add_argument("--contact-sheet", type=Path, default=None, help="also write a contact sheet PNG here")
    synth.add_argument("--no-progress", action="store_true")
    synth.set_defaults(func=run_synth)


def parse_size(text: str) -> tuple[int, int]:
    """'128x96' -> (128, 96) (height, width)."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise CLIError(f"--size must look like HxW (e.g. 128x96), got {text!r}") from error
    if height <= 0 or width <= 0:
        raise CLIError(f"--size must be positive, got {text!r}")
    return height, width


class ProgressPrinter:
    """A one-line progress bar on stderr (tqdm when installed)."""

    def __init__(self, total: int, description: str, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar = None
        self.total = total
        self.description = description
        self.start = time.perf_counter()
        self.done = 0
        if enabled:
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc=description, unit="item")
            except ImportError:
                self.bar = None

    def __call__(self, done: int, total: int | None = None) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(done - self.done)
        else:
            rate = done / max(time.perf_counter() - self.start, 1e-9)
            print(f"\r{self.description}: {done}/{self.total} ({rate:.1f}/s)", end="", file=sys.stderr)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            print(file=sys.stderr)


def run_check(args: argparse.Namespace) -> int:
    from mvvton.data.check import check_dataset

    report = check_dataset(args.root, args.format)
    print(report.format_text(None if args.max_listed == 0 else args.max_listed))
    return 0 if report.ok else 1


def run_synth(args: argparse.Namespace) -> int:
    from mvvton.data.synth import SynthConfig, generate_synthmvg, make_contact_sheet

    height, width = parse_size(args.size)
    try:
        config = SynthConfig(args.identities, height, width, args.seed, args.split_fraction)
    except ValueError as error:
        raise CLIError(str(error)) from error
    progress = ProgressPrinter(args.identities, "SynthMVG", enabled=not args.no_progress)
    start = time.perf_counter()
    try:
        meta = generate_synthmvg(args.out_dir, config, workers=args.workers, progress=progress)
    finally:
        progress.close()
    elapsed = time.perf_counter() - start
    splits = meta["splits"]
    print(f"wrote {args.identities} identities ({len(splits['train'])} train, {len(splits['test'])} test) at "
          f"{height}x{width} to {args.out_dir} in {elapsed:.1f}s ({args.identities / elapsed:.1f} identities/s)")
    if args.contact_sheet is not None:
        make_contact_sheet(args.out_dir, args.contact_sheet)
        print(f"contact sheet: {args.contact_sheet}")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from mvvton.data.prepare import prepare_dataset

    height, width = parse_size(args.size)
    progress = None if args.no_progress else ProgressPrinter(0, "prepare")

    def on_progress(done: int, total: int) -> None:
        if progress is not None:
            progress.total = total
            if progress.bar is not None:
                progress.bar.total = total
            progress(done)

    try:
        summary = prepare_dataset(args.raw_dir, args.out_dir, split=args.split, height=height, width=width,
                                  progress=on_progress)  # fmt: skip
    finally:
        if progress is not None:
            progress.close()
    print(f"prepared {summary.written} sample(s), skipped {summary.skipped} complete, {len(summary.failed)} failed "
          f"-> {args.out_dir}")  # fmt: skip
    for sample_id, reason in summary.failed:
        print(f"  failed {sample_id}: {reason}")
    return 0 if not summary.failed else 1
