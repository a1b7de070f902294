"""Build the warm start of a denoiser retrained on a tiny pretrained autoencoder's latent space (e.g. taef2).

    python training/init_latent_space.py --model mvvton/assets/default_model \
        --taesd /work/shared/pretrained/taef2 --data outputs/data/synthmvg --output outputs/synthmvg/taef2_init

Writes a pipeline folder (every component, `model_index.json`) that `configs/train/synthmvg_taef2.yaml` fine-tunes
with `model.init: converted`: the garment / pose / image encoders and the scheduler unchanged, `vae/` the TAESD-layout
autoencoder as `TinyAutoencoderModel` with `scaling_factor` = 1 / std of its latents of training persons, and the
UNet adapted by `mvvton.conversion.latent_space.adapt_unet_to_latent_space`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from diffusers import DDIMScheduler

from mvvton.conversion.latent_space import adapt_unet_to_latent_space
from mvvton.data import MVGDataset
from mvvton.models import TinyAutoencoderModel
from mvvton.pipelines import MVVTONPipeline
from mvvton.training.vae_loss import latent_scaling_factor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="pipeline folder to warm-start from")
    parser.add_argument("--taesd", required=True, help="folder with <name>_encoder.pth and <name>_decoder.pth")
    parser.add_argument("--data", required=True, help="SynthMVG root (train split measures the latent scale)")
    parser.add_argument("--output", required=True)
    parser.add_argument("--num-levels", type=int, default=None, help="UNet levels to keep (default: as many as fit)")
    parser.add_argument("--scale-samples", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)

    taesd = Path(args.taesd)
    (encoder_path,) = taesd.glob("*_encoder.pth")
    (decoder_path,) = taesd.glob("*_decoder.pth")
    vae = TinyAutoencoderModel.from_taesd_state_dicts(
        torch.load(encoder_path, weights_only=True), torch.load(decoder_path, weights_only=True)
    ).eval()
    pipe = MVVTONPipeline.from_pretrained(args.model)
    height, width = pipe.config.default_height, pipe.config.default_width

    dataset = MVGDataset(Path(args.data), split="train", paired=True, height=height, width=width)
    step = max(len(dataset) // args.scale_samples, 1)
    persons = torch.stack([dataset[i]["person"] for i in range(0, len(dataset), step)][: args.scale_samples])
    with torch.no_grad():
        scaling_factor = latent_scaling_factor(vae, persons)
    vae.register_to_config(scaling_factor=scaling_factor)
    print(f"scaling_factor {scaling_factor:.4f} from {len(persons)} training persons")

    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    latent_size = (height // scale, width // scale)
    num_levels = args.num_levels
    if num_levels is None:  # the UNet halves the latent (levels - 1) times: keep as many levels as divide it
        num_levels = len(pipe.unet.config.block_out_channels)
        while any(size % 2 ** (num_levels - 1) for size in latent_size):
            num_levels -= 1
    unet = adapt_unet_to_latent_space(pipe.unet, vae.config.latent_channels, latent_size, num_levels)
    print(f"UNet: {num_levels} levels, latent {vae.config.latent_channels}x{latent_size[0]}x{latent_size[1]}")

    new_pipe = MVVTONPipeline(
        vae=vae, unet=unet, garment_encoder=pipe.garment_encoder, pose_encoder=pipe.pose_encoder,
        image_encoder=pipe.image_encoder, scheduler=DDIMScheduler.from_config(pipe.scheduler.config),
        default_height=height, default_width=width, garment_timestep=pipe.config.garment_timestep,
    )  # fmt: skip
    new_pipe.save_pretrained(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
