"""Training on a TinyAutoencoderModel's latent space: loading it from a pipeline folder or `vae_path`, the objective."""

import pytest
import torch

from mvvton.data.synthetic import SyntheticTryOnDataset
from mvvton.models import TinyAutoencoderModel
from mvvton.training.components import build_components
from mvvton.training.config import LossConfig, ModelConfig
from mvvton.training.objective import MVVTONTrainingModule, compute_training_loss
from mvvton.training.trainable import select_trainable


@pytest.fixture(scope="module")
def tiny_folder(repo_root, tmp_path_factory):
    """The tiny components saved as a converted folder, with a 3-stage (f4) TinyAutoencoderModel as `vae/`."""
    folder = tmp_path_factory.mktemp("tiny_taesd")
    components = build_components(ModelConfig(component_configs=str(repo_root / "configs/model/tiny")), seed=0)
    torch.manual_seed(0)
    components["vae"] = TinyAutoencoderModel(
        latent_channels=4, block_out_channels=(8, 8, 8), encoder_blocks_per_stage=(1, 1, 1),
        decoder_blocks_per_stage=(1, 1, 1), pool_channels=8, scaling_factor=1.25,
    )  # fmt: skip
    for name, component in components.items():
        component.save_pretrained(folder / name) if name != "scheduler" else component.save_config(folder / name)
    return folder


def test_converted_folder_loads_the_tiny_autoencoder(tiny_folder):
    components = build_components(ModelConfig(init="converted", pretrained_path=str(tiny_folder)))
    assert isinstance(components["vae"], TinyAutoencoderModel) and components["vae"].config.scaling_factor == 1.25
    from_path = build_components(
        ModelConfig(init="converted", pretrained_path=str(tiny_folder), vae_path=str(tiny_folder / "vae"))
    )
    assert isinstance(from_path["vae"], TinyAutoencoderModel)


def test_objective_on_the_tiny_latent_space(tiny_folder):
    """Both passes run and the gradient reaches the UNet; the deterministic latents make sample_posterior moot."""
    c = build_components(ModelConfig(init="converted", pretrained_path=str(tiny_folder)))
    select_trainable(c, "all")
    module = MVVTONTrainingModule(c["unet"], c["garment_encoder"], c["pose_encoder"], c["image_encoder"])
    batch = torch.utils.data.default_collate([SyntheticTryOnDataset(2, 64, 64)[i] for i in range(2)])
    losses = []
    for sample_posterior in (True, False):
        loss_cfg = LossConfig(sample_posterior=sample_posterior)
        generator = torch.Generator().manual_seed(0)
        losses.append(compute_training_loss(module, c["vae"], c["scheduler"], batch, loss_cfg, ModelConfig(), 32,
                                            generator=generator))  # fmt: skip
    assert torch.allclose(losses[0]["loss"], losses[1]["loss"])
    assert "warped_start_x0_loss" in losses[0] and torch.isfinite(losses[0]["loss"])
    losses[0]["loss"].backward()
    assert c["unet"].conv_in.weight.grad is not None and c["unet"].conv_in.weight.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in c["vae"].parameters())
