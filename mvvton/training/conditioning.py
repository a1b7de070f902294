"""Conditioning randomisation of training: hard garment-view selection, the CLIP garment crop with jitter, and
classifier-free dropout of the global garment token. Every draw comes from the caller's generator."""

from __future__ import annotations

from typing import Any

import torch

from mvvton.errors import InvalidArgumentError
from mvvton.image_processor import crop_garment_for_clip


def select_garment_view(batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard selection from the sample's `garment_view` ('front' | 'back'): `(B, 3, H, W)` image, `(B, 1, H, W)` mask."""
    views = batch["garment_view"]
    if isinstance(views, str):
        views = [views]
    use_back = torch.tensor([view == "back" for view in views], device=batch["garment_front"].device)
    selector = use_back.view(-1, 1, 1, 1)
    image = torch.where(selector, batch["garment_back"], batch["garment_front"])
    mask = torch.where(selector, batch["garment_back_mask"], batch["garment_front_mask"])
    return image, mask


def _generator_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return generator.device if generator is not None else device


def draw_uniform(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """`U[0, 1)` of `shape`, drawn on the generator's device (a CPU generator also serves CUDA training), then moved
    to `device`: the same generator gives the same numbers on every device."""
    return torch.rand(shape, generator=generator, device=_generator_device(generator, device)).to(device)


def draw_normal(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """`N(0, 1)` of `shape`, drawn like `draw_uniform`."""
    return torch.randn(shape, generator=generator, device=_generator_device(generator, device)).to(device)


def cfg_dropout_mask(
    batch_size: int, prob: float, mode: str, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """`(B,)` bool, True = drop the global token. `per_sample`: independent draws; `per_batch`: one draw for all."""
    if mode == "per_sample":
        return draw_uniform((batch_size,), generator, device) < prob
    if mode == "per_batch":
        return (draw_uniform((1,), generator, device) < prob).expand(batch_size)
    raise InvalidArgumentError(f"cfg dropout mode must be per_sample or per_batch, got {mode!r}")


def drop_global_tokens(
    global_tokens: torch.Tensor,
    uncond_tokens: torch.Tensor,
    prob: float,
    mode: str = "per_sample",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Classifier-free dropout of the global garment token.

    `per_sample`: each sample's token is replaced by the unconditional vector with probability `prob`.
    `per_batch`: one draw replaces the whole batch (what the released trainer does, with `prob = 0.2`). In both
    modes the local garment tokens are kept, as in the released trainer; the sampler's CFG branch (if used) should
    therefore keep them too.

    Args:
        global_tokens: `(B, 1, D)`.
        uncond_tokens: `(1, 1, D)` or `(B, 1, D)`.
    Returns:
        `(tokens (B, 1, D), dropped (B,) bool)`.
    """
    batch_size = global_tokens.shape[0]
    dropped = cfg_dropout_mask(batch_size, prob, mode, generator, global_tokens.device)
    uncond = uncond_tokens.to(global_tokens.dtype).expand(batch_size, -1, -1)
    return torch.where(dropped.view(-1, 1, 1), uncond, global_tokens), dropped


def clip_garment_crop(
    images: torch.Tensor,
    masks: torch.Tensor,
    size: int,
    enlarge_range: tuple[float, float] = (0.1, 0.2),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Garment crop for the CLIP image encoder, as the released loader does it (torch only).

    The cloth-mask bounding box is enlarged about its centre by a factor `1 + f`, `f ~ U[lo, hi)` per sample (pass
    `lo == hi` for a deterministic crop), clipped to the image, cropped from the unmasked garment image, resized to
    `size x size` (bicubic, aspect not kept) and CLIP-normalised. An empty mask crops the whole image.

    Args:
        images: `(B, 3, H, W)` garment images in [-1, 1].
        masks: `(B, 1, H, W)` cloth masks in [0, 1].
        size: CLIP input size S.
    Returns:
        `(B, 3, S, S)` CLIP-normalised pixels.
    """
    low, high = enlarge_range
    margins = low + (high - low) * draw_uniform((images.shape[0],), generator, images.device)
    return crop_garment_for_clip(images, masks, size, margin=margins.cpu())
