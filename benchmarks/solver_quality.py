"""Fewer steps at the same quality: garment-region PSNR / SSIM of fast solvers vs DDIM 50 on held-out SynthMVG.

    python benchmarks/solver_quality.py [--model DIR] [--identities 10] [--steps 10 20 25] [--solvers ...] [--threads 1]

Every setting renders the same held-out samples with the same seeds and the released start (pre-warp noised to
t = 999). Columns: mean PSNR / SSIM against the ground truth in the regenerated region, the PSNR difference to
DDIM 50 (the reference setting), the PSNR of the setting's output against DDIM 50's own output (agreement), and
the wall time of the whole setting. Solvers: `mvvton.pipelines.solvers.FAST_SOLVERS`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from mvvton.batch_inference import render_batch, sample_seed, to_unit
from mvvton.cli.demo import DEFAULT_MODEL_DIR
from mvvton.data import MVGDataset
from mvvton.data.synth import SynthConfig, generate_synthmvg
from mvvton.evaluation.metrics import psnr, ssim
from mvvton.pipelines import MVVTONPipeline
from mvvton.pipelines.solvers import fast_scheduler

REFERENCE = ("ddim (released, leading)", 50)


def render_all(
    pipe, dataset, num_inference_steps: int, seed: int = 23
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(outputs, targets, regions), each `(N, C, H, W)`, for the whole dataset with one scheduler setting."""
    outputs, targets, regions = [], [], []
    for batch in DataLoader(dataset, batch_size=4, shuffle=False):
        indices = list(range(len(batch["sample_id"])))
        seeds = [sample_seed(seed, sample_id) for sample_id in batch["sample_id"]]
        images = render_batch(pipe, batch, indices, seeds, num_inference_steps=num_inference_steps, output_type="pt")
        outputs.append(images.images.float().cpu())
        targets.append(to_unit(batch["person"]))
        regions.append((batch["inpaint_mask"] > 0.5).float())
    return torch.cat(outputs), torch.cat(targets), torch.cat(regions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--identities", type=int, default=10, help="held-out identities (3 MVG samples each)")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 25])
    parser.add_argument("--solvers", nargs="+", default=["dpmpp_2m", "dpmpp_sde", "unipc"])
    parser.add_argument("--ddim-steps", type=int, nargs="*", default=[20], help="released DDIM at fewer steps")
    parser.add_argument("--data-seed", type=int, default=777)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = MVVTONPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    released = pipe.scheduler
    height, width = pipe.config.default_height, pipe.config.default_width
    settings = [(REFERENCE[0], released, REFERENCE[1])]
    settings += [("ddim (released, leading)", released, steps) for steps in args.ddim_steps]
    settings += [(f"{solver} (trailing)", fast_scheduler(released, solver), steps)
                 for solver in args.solvers for steps in args.steps]  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        generate_synthmvg(tmp, SynthConfig(identities=2 * args.identities, height=height, width=width,
                                           seed=args.data_seed, test_fraction=0.5))  # fmt: skip
        dataset = MVGDataset(Path(tmp), split="test", paired=True, height=height, width=width)
        reference_images = None
        for name, scheduler, steps in settings:
            pipe.scheduler = scheduler
            start = time.perf_counter()
            images, targets, regions = render_all(pipe, dataset, steps)
            elapsed = time.perf_counter() - start
            if reference_images is None:
                reference_images, reference_psnr = images, psnr(images, targets, regions)
            scores = psnr(images, targets, regions)
            rows.append((name, steps, scores.mean().item(), ssim(images, targets, regions).mean().item(),
                         (scores - reference_psnr).mean().item(),
                         psnr(images, reference_images, regions).mean().item(), elapsed))  # fmt: skip
            print(f"done {name} {steps} steps in {elapsed:.0f} s", flush=True)
    print(
        f"\nmodel {args.model}; {len(dataset)} held-out samples ({args.identities} identities, data seed "
        f"{args.data_seed}, {height}x{width}); {args.threads} thread(s); region = inpaint mask; "
        f"reference = {REFERENCE[0]} {REFERENCE[1]} steps"
    )
    print("| sampler | steps | PSNR | SSIM | ΔPSNR vs DDIM 50 | PSNR vs DDIM-50 output | time (s) |")
    print("|---|---|---|---|---|---|---|")
    for name, steps, p, s, delta, agreement, elapsed in rows:
        agreement_text = "—" if name == REFERENCE[0] and steps == REFERENCE[1] else f"{agreement:.2f}"
        print(f"| {name} | {steps} | {p:.2f} | {s:.3f} | {delta:+.2f} | {agreement_text} | {elapsed:.0f} |")


if __name__ == "__main__":
    main()
