"""Warm-start a trained MV-VTON denoiser for a different autoencoder (latent channels and downsampling factor).

A new autoencoder changes the denoiser's input/output channels (`2C + 1` in: noisy latent, pre-warp latent, keep-mask;
`C` out) and, if it downsamples more, the latent size. `adapt_unet_to_latent_space` keeps every weight whose shape
still fits: all resnet/attention/joint-attention blocks, the time embedding and the output norm. Only `conv_in` and
`conv_out` are new (the keep-mask column of `conv_in` is copied). Dropping the coarsest level (`num_levels`) removes
the last down block and the first up block; the remaining up blocks keep their weights and shift down by one index,
which is shape-exact for SD-style UNets because the skip widths are unchanged. The garment encoder is untouched: its
levels are indexed from the finest, so the decoder's joint-attention layers still read the same levels.
"""

from __future__ import annotations

import torch

from mvvton.models.unet_mvvton import MVVTONUNet2DConditionModel


def _renamed_key(key: str, num_dropped_levels: int, num_levels: int) -> str | None:
    """Old UNet state-dict key -> key in the UNet with `num_dropped_levels` fewer coarse levels (None: dropped)."""
    parts = key.split(".")
    if parts[0] == "down_blocks":
        index = int(parts[1])
        if index >= num_levels or (index == num_levels - 1 and parts[2] == "downsamplers"):
            return None
        return key
    if parts[0] == "up_blocks":
        index = int(parts[1]) - num_dropped_levels
        if index < 0:
            return None
        return ".".join(["up_blocks", str(index), *parts[2:]])
    if parts[0] in ("conv_in", "conv_out"):
        return None
    return key


@torch.no_grad()
def adapt_unet_to_latent_space(
    unet: MVVTONUNet2DConditionModel,
    latent_channels: int,
    sample_size: tuple[int, int],
    num_levels: int | None = None,
    seed: int = 0,
) -> MVVTONUNet2DConditionModel:
    """A copy of `unet` for `latent_channels`-channel latents of size `sample_size` `(h, w)`.

    Args:
        unet: trained denoiser whose input is `[noisy (C), pre-warp (C), keep-mask (1)]`.
        latent_channels: the new C.
        num_levels: keep this many resolution levels (the finest); defaults to all.
        seed: initialisation of the new `conv_in` / `conv_out`.
    Returns:
        the new UNet (float32, eval mode) with every shape-compatible weight copied.
    """
    config = dict(unet.config)
    old_levels = len(config["block_out_channels"])
    num_levels = old_levels if num_levels is None else num_levels
    if not 2 <= num_levels <= old_levels:
        raise ValueError(f"num_levels must be in [2, {old_levels}], got {num_levels}")
    old_latent_channels = config["out_channels"]
    extra_channels = config["in_channels"] - 2 * old_latent_channels  # the keep-mask (1)
    if extra_channels < 0:
        raise ValueError(f"expected in_channels = 2 * out_channels + mask channels, got {config['in_channels']}")
    dropped = old_levels - num_levels
    config.update(
        in_channels=2 * latent_channels + extra_channels,
        out_channels=latent_channels,
        sample_size=list(sample_size),
        block_out_channels=list(config["block_out_channels"][:num_levels]),
        down_block_types=list(config["down_block_types"][:num_levels]),
        up_block_types=list(config["up_block_types"][dropped:]),
    )
    config = {key: value for key, value in config.items() if not key.startswith("_")}
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        new_unet = MVVTONUNet2DConditionModel.from_config(config)
    finally:
        torch.random.set_rng_state(generator_state)

    state_dict = {}
    for key, value in unet.state_dict().items():
        new_key = _renamed_key(key, dropped, num_levels)
        if new_key is not None:
            state_dict[new_key] = value.float()
    # the keep-mask input channel(s) keep their learned filters
    conv_in_weight = new_unet.conv_in.weight.clone()
    conv_in_weight[:, 2 * latent_channels :] = unet.conv_in.weight[:, 2 * old_latent_channels :]
    state_dict["conv_in.weight"] = conv_in_weight
    missing, unexpected = new_unet.load_state_dict(state_dict, strict=False)
    not_new = [key for key in missing if not key.startswith(("conv_in.", "conv_out."))]
    if not_new or unexpected:
        raise RuntimeError(f"UNet adaptation left keys unmatched: missing {not_new}, unexpected {unexpected}")
    return new_unet.eval()
