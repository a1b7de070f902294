"""TinyAutoencoderModel: shapes, the two latent conventions, save/load, TAESD state-dict import, the real taef2."""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKL

from mvvton.models import TinyAutoencoderModel, load_autoencoder

TINY = dict(latent_channels=4, block_out_channels=(8, 8, 8), encoder_blocks_per_stage=(1, 1, 2),
            decoder_blocks_per_stage=(2, 1, 1), pool_channels=8)  # fmt: skip


def tiny_autoencoder(**overrides) -> TinyAutoencoderModel:
    torch.manual_seed(0)
    return TinyAutoencoderModel(**{**TINY, **overrides}).eval()


def test_shapes_and_latent_conventions():
    model = tiny_autoencoder()
    images = torch.rand(2, 3, 32, 24) * 2 - 1
    output = model.encode(images)
    assert output.latents.shape == (2, 4, 8, 6)
    # AutoencoderKL-style (`latent_dist.sample(generator)` / `.mode()`) and AutoencoderTiny-style (`.latents`) agree
    assert torch.equal(output.latent_dist.sample(generator=torch.Generator().manual_seed(1)), output.latents)
    assert torch.equal(output.latent_dist.mode(), output.latents)
    assert torch.equal(output.latent_dist.kl(), torch.zeros(2))
    assert model.decode(output.latents).sample.shape == (2, 3, 32, 24)
    assert model.config.block_out_channels == (8, 8, 8)  # pipelines: vae_scale_factor = 2 ** (3 - 1)
    (latents,) = model.encode(images, return_dict=False)
    assert torch.equal(latents, output.latents)


def test_image_range_conversion():
    """The wrapped networks see [0, 1] images: encode(x) on [-1, 1] equals the raw encoder on (x + 1) / 2."""
    model = tiny_autoencoder()
    images = torch.rand(1, 3, 16, 16) * 2 - 1
    assert torch.allclose(model.encode(images).latents, model.encoder((images + 1) / 2))
    latents = torch.randn(1, 4, 4, 4)
    assert torch.allclose(model.decode(latents).sample, model.decoder(latents) * 2 - 1)
    plain = tiny_autoencoder(image_range_input="minus_one_one")
    assert torch.allclose(plain.encode(images).latents, plain.encoder(images))


def test_invalid_config_is_refused():
    with pytest.raises(ValueError, match="one entry per stage"):
        TinyAutoencoderModel(block_out_channels=(8, 8), encoder_blocks_per_stage=(1, 1, 1))
    with pytest.raises(ValueError, match="image_range_input"):
        TinyAutoencoderModel(image_range_input="0-255")


def test_save_load_round_trip_and_dispatch(tmp_path):
    model = tiny_autoencoder(scaling_factor=1.5)
    model.save_pretrained(tmp_path / "tiny")
    AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, latent_channels=4).save_pretrained(tmp_path / "kl")
    loaded = load_autoencoder(str(tmp_path / "tiny"))
    assert isinstance(loaded, TinyAutoencoderModel) and loaded.config.scaling_factor == 1.5
    images = torch.rand(1, 3, 16, 16) * 2 - 1
    assert torch.equal(loaded.encode(images).latents, model.encode(images).latents)
    assert isinstance(load_autoencoder(str(tmp_path / "kl")), AutoencoderKL)


def test_half_precision_weights_load_as_float32(tmp_path):
    """The embedded folder stores fp16 weights (half the bytes); loading without a dtype gives a float32 model."""
    model = tiny_autoencoder()
    model.half().save_pretrained(tmp_path / "tiny")
    assert next(TinyAutoencoderModel.from_pretrained(tmp_path / "tiny").parameters()).dtype == torch.float32


def test_from_taesd_state_dicts_is_strict():
    model = tiny_autoencoder()
    encoder_state = {key: value.half() for key, value in model.encoder.state_dict().items()}
    decoder_state = {key: value.half() for key, value in model.decoder.state_dict().items()}
    rebuilt = TinyAutoencoderModel.from_taesd_state_dicts(encoder_state, decoder_state, **TINY)
    assert next(rebuilt.parameters()).dtype == torch.float32
    assert torch.allclose(rebuilt.encoder[0].weight, model.encoder[0].weight.half().float())
    del decoder_state[next(iter(decoder_state))]
    with pytest.raises(RuntimeError, match="Missing key"):
        TinyAutoencoderModel.from_taesd_state_dicts(encoder_state, decoder_state, **TINY)


@pytest.mark.slow
def test_taef2_reconstructs_synthmvg(shared_dir, synth_root):
    """The shipped taef2 weights: garment-region PSNR of a SynthMVG person well above the old VAE's 18.4 dB."""
    from mvvton.data import MVGDataset

    taef2 = shared_dir / "pretrained" / "taef2"
    if not taef2.is_dir():
        pytest.skip("../shared/pretrained/taef2 not available")
    model = TinyAutoencoderModel.from_taesd_state_dicts(
        torch.load(taef2 / "taef2_encoder.pth", weights_only=True),
        torch.load(taef2 / "taef2_decoder.pth", weights_only=True),
    ).eval()
    sample = MVGDataset(synth_root, split="test", paired=True, height=128, width=96)[0]
    person, region = sample["person"][None], (sample["inpaint_mask"][None] > 0.5).float()
    with torch.no_grad():
        reconstruction = model.decode(model.encode(person).latents).sample.clamp(-1, 1)
    mse = (((reconstruction - person) / 2) ** 2 * region).sum() / (3 * region.sum())
    assert 10 * torch.log10(1 / mse) > 24.0
