"""SynthMVG generator speed: identities (5 views each, all MVG files written) per second.

Usage: python benchmarks/synth_speed.py [--identities 200] [--workers N]
Prints one line per size (128x96 and 256x192), measured in this run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from mvvton.data.synth import SynthConfig, generate_synthmvg

SIZES: tuple[tuple[int, int], ...] = ((128, 96), (256, 192))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=200)
    parser.add_argument("--workers", type=int, default=None, help="default: all cores")
    args = parser.parse_args(argv)
    workers = args.workers or os.cpu_count() or 1
    print(f"SynthMVG speed, {args.identities} identities x 5 views, {workers} worker(s)")
    for height, width in SIZES:
        out = tempfile.mkdtemp(prefix="synthmvg-bench-")
        try:
            start = time.perf_counter()
            generate_synthmvg(out, SynthConfig(args.identities, height, width, seed=0), workers=workers)
            elapsed = time.perf_counter() - start
        finally:
            shutil.rmtree(out, ignore_errors=True)
        print(f"{height}x{width}: {args.identities / elapsed:6.1f} identities/s ({elapsed:.2f} s)")


if __name__ == "__main__":
    main()
