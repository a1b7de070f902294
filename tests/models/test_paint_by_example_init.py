"""Paint-by-Example folder -> fresh MV-VTON model, on a tiny Paint-by-Example-shaped pipeline built here."""

from __future__ import annotations

import warnings

import pytest
import torch
from diffusers import AutoencoderKL
from transformers import CLIPVisionConfig

from mvvton.cli import main as cli_main
from mvvton.conversion import init_from_paint_by_example
from mvvton.pipelines import MVVTONPipeline
from tests.testing_utils import TOKEN_DIM, tiny_plain_unet

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from diffusers.pipelines.deprecated.paint_by_example import PaintByExampleImageEncoder


@pytest.fixture(scope="module")
def pbe_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pbe")
    tiny_plain_unet().save_pretrained(folder / "unet")
    torch.manual_seed(0)
    AutoencoderKL(
        block_out_channels=(8, 8, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=4, layers_per_block=1,
    ).save_pretrained(folder / "vae")  # fmt: skip
    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=9, num_attention_heads=2, image_size=28, patch_size=14,
        projection_dim=TOKEN_DIM,
    )  # fmt: skip
    encoder = PaintByExampleImageEncoder(config, proj_size=TOKEN_DIM).eval()
    with torch.no_grad():  # non-trivial norms/biases so a wrong mapping shows
        for name, parameter in encoder.named_parameters():
            if "mapper" in name or "final_layer_norm" in name:
                parameter.add_(torch.randn_like(parameter) * 0.2)
    encoder.save_pretrained(folder / "image_encoder")
    return folder, encoder


def test_image_encoder_matches_paint_by_example(pbe_folder):
    folder, reference = pbe_folder
    components = init_from_paint_by_example(folder, garment_sample_size=(128, 128), pose_base_channels=1)
    ours = components["image_encoder"].eval()
    assert ours.config.mapper_layers == 2
    pixels = torch.randn(2, 3, 28, 28)
    with torch.no_grad():
        expected = reference(pixels)
        assert torch.allclose(ours(pixels), expected, atol=1e-5)
    assert torch.equal(ours.uncond_vector, reference.uncond_vector)


def test_fresh_model_starts_as_paint_by_example(pbe_folder):
    folder, _ = pbe_folder
    components = init_from_paint_by_example(folder, garment_sample_size=(128, 128), pose_base_channels=1)
    unet, plain = components["unet"].eval(), tiny_plain_unet().eval()
    assert all(torch.count_nonzero(p.ip_scale) == 0 for p in unet.joint_attention_processors.values())
    sample, context = torch.randn(1, 9, 8, 8), torch.randn(1, 1, TOKEN_DIM)
    tokens = [torch.randn(1, 5, TOKEN_DIM) for _ in range(12)]
    with torch.no_grad():
        assert torch.allclose(unet(sample, 10, context, garment_tokens=tokens).sample, plain(sample, 10, context).sample,
                              atol=1e-5)  # fmt: skip
    encoder = components["garment_encoder"]
    assert torch.equal(encoder.down_blocks[1].resnets[0].conv1.weight, plain.down_blocks[1].resnets[0].conv1.weight)
    assert components["pose_encoder"].config.cross_attention_dim == TOKEN_DIM


def test_cli_writes_a_loadable_pipeline(pbe_folder, tmp_path):
    folder, _ = pbe_folder
    out = tmp_path / "mvvton-from-pbe"
    assert cli_main(["convert", "paint-by-example", str(folder), str(out), "--size", "64x64"]) == 0
    assert (out / "model_index.json").is_file() and (out / "garment_encoder" / "config.json").is_file()
    pipe = MVVTONPipeline.from_pretrained(out)
    assert pipe.config.default_height == 64 and pipe.pose_encoder is not None
    assert cli_main(["convert", "paint-by-example", str(folder), str(out)]) == 2  # exists, no --overwrite
