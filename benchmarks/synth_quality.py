"""Garment-region quality on held-out SynthMVG identities, per view, for the baselines and model variants.

    python benchmarks/synth_quality.py [--model DIR] [--identities 30] [--steps 50] [--data-seed 777]
        [--strength S] [--variants prewarp model front_as_back]

Variants (see mvvton/evaluation/tryon_eval.py): (a) agnostic input, (b) geometric pre-warp composite, (c) model with
front + back garments, (d) model given the front garment as both views, (e) hard selection off (global branch always
the front garment) and soft selection off (garment tokens unmixed). End to end, with the library's own TPS pre-warp of
the routed garment photo instead of the dataset's: the TPS composite, the model on it, and the front photo given as
both views (so a back view's pre-warp comes from the front photo too). Identities come from a data seed the training
never used; all variants see the same samples and seeds in one run. `--strength` overrides the pipeline folder's
`default_strength` (how far the pre-warp is noised before denoising; 1 = the released sampler).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from mvvton.cli.demo import DEFAULT_MODEL_DIR
from mvvton.data import MVGDataset
from mvvton.data.synth import SynthConfig, generate_synthmvg
from mvvton.evaluation.tryon_eval import (
    BASELINE_VARIANTS,
    END_TO_END_VARIANTS,
    MODEL_VARIANTS,
    evaluate_tryon,
    format_table,
)
from mvvton.pipelines import MVVTONPipeline
from mvvton.pipelines.pipeline_mvvton import check_strength


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--identities", type=int, default=30, help="held-out identities (3 MVG samples each)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--data-seed", type=int, default=777)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--strength", type=float, default=None, help="default: the folder's default_strength")
    parser.add_argument("--guidance-scale", type=float, default=1.0, help="classifier-free guidance (1: off)")
    all_variants = BASELINE_VARIANTS + MODEL_VARIANTS + END_TO_END_VARIANTS
    parser.add_argument("--variants", nargs="+", choices=all_variants, default=list(all_variants))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = MVVTONPipeline.from_pretrained(args.model)
    if args.strength is not None:
        pipe.register_to_config(default_strength=check_strength(args.strength))
    pipe.set_progress_bar_config(disable=True)
    height, width = pipe.config.default_height, pipe.config.default_width
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # test_fraction 0.5 of 2N identities -> N held-out test identities
        generate_synthmvg(tmp, SynthConfig(identities=2 * args.identities, height=height, width=width,
                                           seed=args.data_seed, test_fraction=0.5))  # fmt: skip
        dataset = MVGDataset(Path(tmp), split="test", paired=True, height=height, width=width)
        results = evaluate_tryon(pipe, dataset, variants=tuple(args.variants), num_inference_steps=args.steps,
                                 guidance_scale=args.guidance_scale)
    print(
        f"model {args.model}; {len(dataset)} held-out samples ({args.identities} identities, data seed "
        f"{args.data_seed}); {args.steps} DDIM steps; strength {pipe.config.default_strength}; guidance "
        f"{args.guidance_scale}; garment region = inpaint mask; {time.perf_counter() - start:.0f} s"
    )
    print(format_table(results))


if __name__ == "__main__":
    main()
