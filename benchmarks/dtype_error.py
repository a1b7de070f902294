"""Half-precision error vs the original fp32 outputs on the tiny reference fixture, per output group.

    python benchmarks/dtype_error.py [--fixture ../shared/reference/tiny] [--modes fp32 layerwise bf16]

Loads the fixture (original MV-VTON code, fp32, random tiny weights; see its README.md), runs every output of the
original's test-time graph with our modules in each dtype setting and prints the worst relative error per output
group, `max|ours - ref| / max(1, max|ref|)` (fixture tolerance for fp32: 1e-3):

- `fp32`: float32 everywhere;
- `layerwise`: weights stored in bfloat16, Linear / Conv computed in float32 (`enable_layerwise_casting`);
- `bf16`: weights and activations bfloat16 with the fp32 islands (normalisation, mapper and soft-selection softmax).

bf16 convolutions in the default NCHW oneDNN path are pathologically slow on CPUs without native bf16 (see
docs/benchmarks.md); `--no-mkldnn` (default on) runs them through ATen's own kernels instead (same math).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from mvvton.conversion.reference_check import compute_reference_outputs, group_errors, load_reference_components

MODES = ("fp32", "layerwise", "bf16")
MODEL_NAMES = ("unet", "garment_encoder", "pose_encoder", "image_encoder")


def run_mode(fixture: Path, mode: str) -> tuple[list[tuple[str, int, float]], float]:
    components, inputs, references = load_reference_components(fixture)
    if mode == "bf16":
        for name in MODEL_NAMES:
            components[name].to(torch.bfloat16)
        inputs = {key: value.bfloat16() if value.is_floating_point() else value for key, value in inputs.items()}
    elif mode == "layerwise":
        for name in MODEL_NAMES:
            components[name].enable_layerwise_casting(storage_dtype=torch.bfloat16, compute_dtype=torch.float32)
    start = time.perf_counter()
    outputs = compute_reference_outputs(components, inputs)
    elapsed = time.perf_counter() - start
    outputs = {name: value.float() for name, value in outputs.items()}
    return group_errors(outputs, references), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_fixture = Path(__file__).resolve().parents[2] / "shared" / "reference" / "tiny"
    parser.add_argument("--fixture", type=Path, default=default_fixture)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--mkldnn", action="store_true", help="keep oneDNN for bf16 convolutions (slow without bf16 ISA)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    columns = {}
    for mode in args.modes:
        with torch.backends.mkldnn.flags(enabled=args.mkldnn or mode != "bf16"):
            rows, elapsed = run_mode(args.fixture, mode)
        columns[mode] = (rows, elapsed)
        print(
            f"{mode}: {elapsed:.1f} s; " + "; ".join(f"{group}: {error:.1e}" for group, _, error in rows), flush=True
        )
    groups = [group for group, _, _ in next(iter(columns.values()))[0]]
    print(f"\nworst relative error vs the original fp32 outputs ({args.fixture}), {args.threads} thread(s)")
    print("| output group | n | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for index, group in enumerate(groups):
        count = next(iter(columns.values()))[0][index][1]
        cells = " | ".join(f"{rows[index][2]:.1e}" for rows, _ in columns.values())
        print(f"| {group} | {count} | {cells} |")
    print("| time to compute all outputs (s) | | " + " | ".join(f"{t:.1f}" for _, t in columns.values()) + " |")


if __name__ == "__main__":
    main()
