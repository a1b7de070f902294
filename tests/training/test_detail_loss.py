"""mvvton.training.detail_loss: blur, low-pass MSE and the detail-energy term, and their place in the objective."""

import pytest
import torch
import torch.nn.functional as F

from mvvton.training.config import LossConfig, ModelConfig
from mvvton.training.detail_loss import detail_energy_loss, lowpass_mse, prewarp_hole_weight
from mvvton.training.objective import compute_training_loss
from mvvton.training.trainable import select_trainable
from mvvton.utils.image_filters import detail_energy, gaussian_blur


def _stripes(shift: int = 0) -> torch.Tensor:
    """(1, 3, 32, 24) vertical stripes 2 px wide in [-1, 1], shifted right by `shift` pixels."""
    columns = ((torch.arange(24) + shift) // 2 % 2).float() * 2 - 1
    return columns.view(1, 1, 1, 24).expand(1, 3, 32, 24).clone()


def test_gaussian_blur_keeps_constants_and_mass_and_smooths():
    constant = torch.full((2, 3, 9, 7), 0.3)
    assert torch.allclose(gaussian_blur(constant, 1.5), constant, atol=1e-6)
    impulse = torch.zeros(1, 1, 21, 21)
    impulse[..., 10, 10] = 1
    blurred = gaussian_blur(impulse, 2.0)
    assert blurred.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert blurred.max() < 0.1 and blurred[..., 10, 10] == blurred.max()
    assert torch.equal(gaussian_blur(impulse, 0.0), impulse)
    assert gaussian_blur(torch.rand(1, 3, 2, 2), 3.0).shape == (1, 3, 2, 2)  # pad clamped on tiny images


def test_detail_energy_is_high_on_stripes_and_near_zero_on_flat():
    assert detail_energy(torch.zeros(1, 3, 16, 16), 1.0, 2.0).max() < 1e-2
    assert detail_energy(_stripes(), 1.0, 2.0).mean() > 0.3


def test_a_shifted_print_costs_less_than_a_smear_under_the_detail_terms_but_more_under_plain_mse():
    target, shifted, smear = _stripes(), _stripes(1), gaussian_blur(_stripes(), 2.0)
    assert F.mse_loss(shifted, target) > F.mse_loss(smear, target)  # why a plain MSE model smears
    sharp_cost = lowpass_mse(shifted, target, 2.0) + detail_energy_loss(shifted, target)
    smear_cost = lowpass_mse(smear, target, 2.0) + detail_energy_loss(smear, target)
    assert sharp_cost < smear_cost
    assert detail_energy_loss(target, target) == 0


def test_objective_adds_the_detail_term_and_uses_the_lowpass_mse(tiny_components, tiny_module_and_batch):
    select_trainable(tiny_components, "paper")
    c = tiny_components
    module, batch = tiny_module_and_batch

    def run(**loss):
        return compute_training_loss(module, c["vae"], c["scheduler"], batch, LossConfig(**loss), ModelConfig(), 32,
                                     generator=torch.Generator().manual_seed(0))  # fmt: skip

    plain = run(pixel_weight=1.0)
    detailed = run(pixel_weight=1.0, pixel_lowpass_sigma=2.0, detail_weight=2.0)
    assert "detail_loss" not in plain and detailed["detail_loss"] > 0
    assert torch.allclose(detailed["eps_loss"], plain["eps_loss"])  # same draws for the main pass
    assert detailed["warped_start_x0_loss"] < plain["warped_start_x0_loss"]  # blurred comparison is more lenient
    expected = detailed["eps_loss"] + detailed["warped_start_x0_loss"] + 2.0 * detailed["detail_loss"]
    assert torch.allclose(detailed["loss"].detach(), expected, atol=1e-6)
    detail_only = run(pixel_weight=0.0, detail_weight=1.0)  # the auxiliary pass runs for the detail term alone
    assert detail_only["detail_loss"] > 0
    holes_skipped = run(pixel_weight=1.0, pixel_lowpass_sigma=2.0, detail_weight=2.0, detail_skip_prewarp_holes=True)
    assert holes_skipped["detail_loss"] != detailed["detail_loss"]  # the synthetic pre-warp has holes in its mask


def test_detail_options_are_validated():
    with pytest.raises(ValueError):
        LossConfig(detail_weight=-1)
    with pytest.raises(ValueError):
        LossConfig(pixel_lowpass_sigma=-0.5)
    with pytest.raises(ValueError):
        LossConfig(detail_window_sigma=0)


def test_prewarp_hole_weight_zeroes_grown_holes_inside_the_mask_only():
    agnostic = torch.zeros(1, 3, 20, 20)  # grey 128 is 0 in [-1, 1]
    mask = torch.zeros(1, 1, 20, 20)
    mask[..., 4:16, 4:16] = 1
    prewarp = agnostic.clone()
    prewarp[..., 4:16, 4:10] = 0.8  # the garment covers the left part of the mask; columns 10-15 stay a hole
    weight = prewarp_hole_weight(prewarp, agnostic, mask, grow=2)
    assert weight.shape == (1, 1, 20, 20)
    assert weight[..., 6, 12] == 0 and weight[..., 6, 8] == 0  # the hole and 2 px around it
    assert weight[..., 6, 5] == 1 and weight[..., 1, 1] == 1  # covered garment and the background outside the mask
    assert torch.equal(prewarp_hole_weight(prewarp, agnostic, torch.zeros_like(mask)), torch.ones_like(mask))


def test_weighted_detail_loss_ignores_zero_weight_pixels():
    target = _stripes()
    prediction = target.clone()
    prediction[..., :, 12:] = 0  # a smear on the right half only
    weight = torch.ones(1, 1, 32, 24)
    weight[..., :, 6:] = 0  # the right half and the filters' reach (6 px) left out
    assert detail_energy_loss(prediction, target) > 0.05
    assert detail_energy_loss(prediction, target, weight=weight) < 1e-3
