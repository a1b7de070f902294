"""Denoising speed with and without caching the local-token key/value projections, measured side by side.

The garment tokens are fixed for a whole call, so each joint-attention block can project its (cumulative) local
tokens to keys/values once instead of at every step. Run:

    python benchmarks/local_kv_cache.py [--size small|sd]

`small` = a 4-level UNet (block_out 64/128/256/256, token width 256) at a 64x48 latent with the released token counts
(garment encoder output for 512x512 garments: 2 x (1024, 1024, 1024, 256, ...) tokens).
"""

from __future__ import annotations

import argparse
import time

import torch
from diffusers import UNet2DConditionModel

from mvvton.models import MVVTONUNet2DConditionModel
from mvvton.models.attention_processor import GarmentTokens

TOKENS_PER_LEVEL = (2048, 2048, 2048, 512, 512, 512, 128, 128, 128, 32, 32, 32)  # front + back, 512x512 garments


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=("small", "sd"), default="small")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    channels, dim = ((64, 128, 256, 256), 256) if args.size == "small" else ((320, 640, 1280, 1280), 768)
    plain = UNet2DConditionModel(block_out_channels=channels, in_channels=9, cross_attention_dim=dim, attention_head_dim=8)
    unet = MVVTONUNet2DConditionModel.from_unet(plain).eval()
    sample, context = torch.randn(1, 9, 64, 48), torch.randn(1, 1, dim)
    levels = [torch.randn(1, n, dim) for n in TOKENS_PER_LEVEL]
    timings = {}
    with torch.no_grad():
        for label, cache in (("uncached", False), ("cached", True), ("uncached again", False), ("cached again", True)):
            tokens = GarmentTokens(levels, cache_projections=cache)
            unet(sample, 999, context, garment_tokens=tokens)  # warm-up (and, cached: fills the cache)
            start = time.perf_counter()
            for step in range(args.steps):
                unet(sample, 981 - 20 * step, context, garment_tokens=tokens)
            timings[label] = (time.perf_counter() - start) / args.steps
    print(f"UNet {args.size} ({sum(p.numel() for p in unet.parameters()) / 1e6:.1f} M params), latent 64x48, "
          f"{sum(TOKENS_PER_LEVEL)} local tokens, {args.threads} threads, {args.steps} steps each")
    for label, seconds in timings.items():
        print(f"  {label:15s} {seconds * 1000:8.1f} ms/step")
    uncached = (timings["uncached"] + timings["uncached again"]) / 2
    cached = (timings["cached"] + timings["cached again"]) / 2
    print(f"speed-up per step: {uncached / cached:.2f}x")


if __name__ == "__main__":
    main()
