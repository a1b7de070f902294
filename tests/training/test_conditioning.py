"""mvvton.training.conditioning: CLIP garment crop, hard garment-view selection, classifier-free token dropout."""

import torch

from mvvton.models.image_encoder import CLIP_IMAGE_MEAN, CLIP_IMAGE_STD
from mvvton.training.conditioning import clip_garment_crop, drop_global_tokens, select_garment_view


def test_clip_crop_follows_the_mask():
    images = -torch.ones(2, 3, 64, 48)
    images[:, 0, 20:40, 10:30] = 1.0  # a red square where the mask is
    masks = torch.zeros(2, 1, 64, 48)
    masks[:, :, 20:40, 10:30] = 1.0
    masks[1] = 0  # empty mask: whole image
    pixels = clip_garment_crop(images, masks, 32, (0.0, 0.0))
    assert pixels.shape == (2, 3, 32, 32)
    unnormalised = pixels * torch.tensor(CLIP_IMAGE_STD).view(1, 3, 1, 1) + torch.tensor(CLIP_IMAGE_MEAN).view(
        1, 3, 1, 1
    )
    assert torch.allclose(unnormalised[0, 0], torch.ones(32, 32), atol=1e-4)  # tight crop = all red
    assert unnormalised[1, 0].mean() < 0.3  # the whole (mostly black) image
    enlarged = clip_garment_crop(images[:1], masks[:1], 32, (0.5, 0.5))
    un = enlarged * torch.tensor(CLIP_IMAGE_STD).view(1, 3, 1, 1) + torch.tensor(CLIP_IMAGE_MEAN).view(1, 3, 1, 1)
    assert un[0, 0, 0, 0] < 0.1 and un[0, 0, 16, 16] > 0.9  # border now outside the garment


def test_hard_selection_picks_the_routed_view():
    batch = {
        "garment_front": torch.zeros(2, 3, 4, 4), "garment_back": torch.ones(2, 3, 4, 4),
        "garment_front_mask": torch.zeros(2, 1, 4, 4), "garment_back_mask": torch.ones(2, 1, 4, 4),
        "garment_view": ["back", "front"],
    }  # fmt: skip
    image, mask = select_garment_view(batch)
    assert image[0].eq(1).all() and image[1].eq(0).all() and mask[0].eq(1).all() and mask[1].eq(0).all()


def test_global_token_dropout_per_sample_and_per_batch():
    tokens, uncond = torch.ones(4000, 1, 8), torch.zeros(1, 1, 8)
    generator = torch.Generator().manual_seed(0)
    out, dropped = drop_global_tokens(tokens, uncond, 0.2, "per_sample", generator)
    assert 0.17 < dropped.float().mean() < 0.23
    assert torch.equal(out[dropped], torch.zeros_like(out[dropped])) and out[~dropped].eq(1).all()
    outcomes = {bool(drop_global_tokens(tokens[:4], uncond, 0.5, "per_batch", generator)[1].all()) for _ in range(50)}
    for _ in range(20):
        flags = drop_global_tokens(tokens[:4], uncond, 0.5, "per_batch", generator)[1]
        assert flags.all() or not flags.any()  # one draw for the whole batch
    assert outcomes == {True, False}
