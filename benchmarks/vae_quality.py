"""Reconstruction quality of one or more VAEs on held-out SynthMVG people, in the garment region.

    python benchmarks/vae_quality.py [VAE_DIR ...] [--identities 20] [--data-seed 777]

Prints garment-region PSNR and the mean-colour error (mean over samples of |region-mean colour of the reconstruction −
that of the photo|, averaged over RGB, in 0–255 units): PSNR hides a hue shift, the colour error shows it. Default: the
embedded model's VAE. A folder may hold an `AutoencoderKL` or a `TinyAutoencoderModel` (its config says which).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from mvvton.cli.demo import DEFAULT_MODEL_DIR
from mvvton.data import MVGDataset
from mvvton.data.synth import SynthConfig, generate_synthmvg
from mvvton.evaluation.metrics import psnr
from mvvton.models import load_autoencoder


def region_mean(images: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """`(B, 3, H, W)` and `(B, 1, H, W)` -> `(B, 3)` mean colour inside the region."""
    return (images * region).sum(dim=(2, 3)) / region.sum(dim=(2, 3)).clamp_min(1.0)


@torch.no_grad()
def vae_scores(vae: torch.nn.Module, dataset: MVGDataset) -> tuple[float, float]:
    psnrs, colour_errors = [], []
    for batch in DataLoader(dataset, batch_size=16):
        reconstruction = vae.decode(vae.encode(batch["person"]).latent_dist.mode()).sample.clamp(-1, 1)
        target, output = (batch["person"] + 1) / 2, (reconstruction + 1) / 2
        region = (batch["inpaint_mask"] > 0.5).float()
        psnrs.append(psnr(output, target, region))
        colour_errors.append((region_mean(output, region) - region_mean(target, region)).abs().mean(dim=1) * 255)
    return torch.cat(psnrs).mean().item(), torch.cat(colour_errors).mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vaes", nargs="*", default=[str(DEFAULT_MODEL_DIR / "vae")])
    parser.add_argument("--identities", type=int, default=20, help="held-out identities (3 samples each)")
    parser.add_argument("--data-seed", type=int, default=777)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        generate_synthmvg(tmp, SynthConfig(identities=2 * args.identities, height=128, width=96,
                                           seed=args.data_seed, test_fraction=0.5))  # fmt: skip
        dataset = MVGDataset(Path(tmp), split="test", paired=True, height=128, width=96)
        print(f"{len(dataset)} held-out samples (data seed {args.data_seed})")
        print("| VAE | garment-region PSNR (dB) | mean-colour error (/255) |\n|---|---|---|")
        for path in args.vaes:
            score, colour = vae_scores(load_autoencoder(path).eval(), dataset)
            print(f"| {path} | {score:.2f} | {colour:.2f} |")


if __name__ == "__main__":
    main()
