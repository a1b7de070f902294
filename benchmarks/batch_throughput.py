"""Batch-inference throughput (images/s) with 1 and 2 processes on the embedded model, on held-out SynthMVG.

    python benchmarks/batch_throughput.py [--identities 8] [--steps 20] [--processes 1 2] [--keep DIR]

Each configuration is a real `inference/infer_batch.py` run (N > 1: `accelerate launch --multi_gpu`, gloo on CPU)
into its own folder; the outputs of every configuration are compared byte for byte. Reported: wall time of the
command (imports, model load and process start included) and the rendering time of the slowest process (from
run.json), each as images/s. `--keep DIR` keeps the data and the 1-process outputs (e.g. for `mvvton eval --run`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_configuration(processes: int, args: argparse.Namespace, data: Path, out: Path) -> dict:
    script = [
        str(REPO / "inference" / "infer_batch.py"), "--pretrained_model_name_or_path", args.model, "--dataset", "mvg",
        "--data_root", str(data), "--split", "test", "--output_dir", str(out), "--batch_size", str(args.batch_size),
        "--num_inference_steps", str(args.steps), "--num_threads", str(args.threads), "--no_progress",
    ]  # fmt: skip
    if processes == 1:
        command = [sys.executable, *script]
    else:
        command = [
            sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
            *script,
        ]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    subprocess.run(command, env=environment, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    run = json.loads((out / "run.json").read_text())
    rendering = max(process["seconds"] for process in run["processes"])
    return {"processes": processes, "images": run["num_samples"], "wall": wall, "rendering": rendering}


def main() -> None:
    from mvvton.cli.demo import DEFAULT_MODEL_DIR
    from mvvton.data.synth import SynthConfig, generate_synthmvg
    from mvvton.pipelines import MVVTONPipeline

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--identities", type=int, default=8, help="held-out identities (3 MVG samples each)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--data-seed", type=int, default=777)
    parser.add_argument("--keep", default=None, help="keep data and outputs in this folder")
    args = parser.parse_args()
    config = MVVTONPipeline.load_config(args.model)
    height, width = config["default_height"], config["default_width"]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.keep) if args.keep else Path(scratch)
        data = root / "synthmvg_heldout"
        if not data.exists():
            # test_fraction 0.5 of 2N identities -> N held-out test identities (data seed never used in training)
            generate_synthmvg(data, SynthConfig(identities=2 * args.identities, height=height, width=width,
                                                seed=args.data_seed, test_fraction=0.5))  # fmt: skip
        results = []
        for processes in args.processes:
            out = root / f"outputs_{processes}p"
            results.append(run_configuration(processes, args, data, out))
            print(f"{processes} process(es): {results[-1]}", flush=True)
        reference = {p.relative_to(root / f"outputs_{args.processes[0]}p"): p.read_bytes()
                     for p in sorted((root / f"outputs_{args.processes[0]}p").rglob("*.png"))}  # fmt: skip
        for processes in args.processes[1:]:
            folder = root / f"outputs_{processes}p"
            same = reference == {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*.png"))}
            print(f"outputs of {processes} processes byte-identical to {args.processes[0]}: {same}")
    print(
        f"\nmodel {args.model}; {results[0]['images']} held-out samples ({args.identities} identities, data seed "
        f"{args.data_seed}) at {height}x{width}; {args.steps} DDIM steps; batch size {args.batch_size}; "
        f"{args.threads} torch thread(s) per process; {os.cpu_count()} CPUs visible\n"
    )
    print("| processes | wall s | images/s (wall) | rendering s (slowest process) | images/s (rendering) |")
    print("|---|---|---|---|---|")
    for result in results:
        print(
            f"| {result['processes']} | {result['wall']:.1f} | {result['images'] / result['wall']:.3f} | "
            f"{result['rendering']:.1f} | {result['images'] / result['rendering']:.3f} |"
        )


if __name__ == "__main__":
    main()
