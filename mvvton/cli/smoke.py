"""`mvvton smoke`: check this install against the original MV-VTON reference fixture (no downloads)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "smoke", help="convert the original-code reference fixture and check all 78 outputs (offline)"
    )
    parser.add_argument("--reference", default=None, help="fixture folder (default: ../shared/reference/tiny)")
    parser.set_defaults(func=_smoke)


def _smoke(args: argparse.Namespace) -> int:
    import torch

    from mvvton.cli import CLIError
    from mvvton.conversion.reference_check import (
        compute_reference_outputs,
        group_errors,
        load_reference_components,
        relative_error,
    )

    torch.set_num_threads(1)
    root = Path(args.reference) if args.reference else Path.cwd().parent / "shared" / "reference" / "tiny"
    if not (root / "weights.safetensors").is_file():
        raise CLIError(f"reference fixture not found at {root}; pass --reference DIR")
    components, inputs, references = load_reference_components(root)
    print(f"converted {root / 'weights.safetensors'} (original MV-VTON checkpoint layout)")
    for group, count in sorted(components["_conversion"].unused_groups.items()):
        print(f"  dropped, unused by the original: {group} ({count} keys)")
    computed = compute_reference_outputs(components, inputs)
    print(f"\n{'output group':52s} {'n':>3s}  max|ours-ref|/max(1,max|ref|)")
    for group, count, error in group_errors(computed, references):
        print(f"{group:52s} {count:3d}  {error:.2e}")
    worst = max(relative_error(computed[name], references[name]) for name in references)
    status = "PASS" if worst <= 1e-3 else "FAIL"
    print(f"\n{status}: {len(references)} outputs of the original code, worst {worst:.2e} (tolerance 1e-3)")
    return 0 if status == "PASS" else 1
