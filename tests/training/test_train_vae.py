"""training/train_vae.py: a fresh VAE, then decoder-only fine-tuning that keeps the latent space."""

import pytest
import torch
from diffusers import AutoencoderKL

from mvvton.training.config import VAEDataConfig, VAETrainConfig


def tiny_vae_config(repo_root, output_dir, **overrides) -> VAETrainConfig:
    data = VAEDataConfig(dataset="synthetic", height=32, width=32, num_synthetic_samples=4)
    return VAETrainConfig(output_dir=str(output_dir), vae_config=str(repo_root / "configs/model/tiny/vae.json"),
                          data=data, max_train_steps=3, train_batch_size=2, log_every=1, **overrides)  # fmt: skip


def test_decoder_only_fine_tuning_keeps_the_latent_space(tmp_path, repo_root, vae_script):
    torch.manual_seed(0)
    base = vae_script.main(tiny_vae_config(repo_root, tmp_path / "base"))
    assert base["scaling_factor"] != 1.0  # fitted to 1/std of the training latents
    before = AutoencoderKL.from_pretrained(tmp_path / "base")
    tuned = vae_script.main(
        tiny_vae_config(repo_root, tmp_path / "tuned", pretrained_path=str(tmp_path / "base"), train_encoder=False)
    )
    after = AutoencoderKL.from_pretrained(tmp_path / "tuned")
    assert tuned["scaling_factor"] == pytest.approx(base["scaling_factor"])
    assert after.config.scaling_factor == pytest.approx(before.config.scaling_factor)
    for (name, old), new in zip(before.encoder.state_dict().items(), after.encoder.state_dict().values()):
        assert torch.equal(old, new), name
    assert torch.equal(before.quant_conv.weight, after.quant_conv.weight)
    changed = [not torch.equal(old, new) for old, new in zip(before.decoder.parameters(), after.decoder.parameters())]
    assert any(changed)


def test_decoder_only_needs_a_pretrained_vae(tmp_path, repo_root, vae_script):
    with pytest.raises(ValueError, match="pretrained_path"):
        vae_script.main(tiny_vae_config(repo_root, tmp_path / "x", train_encoder=False))
