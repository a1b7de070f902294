import numpy as np
import pytest
import torch

from mvvton.evaluation import psnr, ssim


def test_psnr_known_value_and_mask():
    target = torch.zeros(1, 3, 8, 8)
    prediction = torch.full((1, 3, 8, 8), 0.1)  # MSE 0.01 -> 20 dB
    assert psnr(prediction, target).item() == pytest.approx(20.0, abs=1e-4)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4] = 1
    prediction[..., 4:] = 1.0  # errors outside the mask do not count
    assert psnr(prediction, target, mask).item() == pytest.approx(20.0, abs=1e-4)


def test_ssim_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    target = rng.random((48, 40, 3))
    prediction = np.clip(target + rng.normal(0, 0.1, target.shape), 0, 1)
    expected = metrics.structural_similarity(
        prediction, target, channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=True,
    )  # fmt: skip
    as_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float()  # noqa: E731
    ours = ssim(as_tensor(prediction), as_tensor(target)).item()
    assert ours == pytest.approx(expected, abs=2e-3)
    assert ssim(as_tensor(target), as_tensor(target)).item() == pytest.approx(1.0, abs=1e-6)


def test_detail_ratio_is_one_for_the_target_low_for_a_smear_and_masked():
    from mvvton.evaluation import detail_ratio
    from mvvton.utils.image_filters import gaussian_blur

    columns = (torch.arange(24) // 2 % 2).float() * 0.5 + 0.25
    stripes = columns.view(1, 1, 1, 24).expand(2, 3, 32, 24).clone()  # (2, 3, 32, 24), 0.25 / 0.75
    assert torch.allclose(detail_ratio(stripes, stripes), torch.ones(2))
    smear = detail_ratio(gaussian_blur(stripes, 2.0), stripes)
    assert (smear < 0.2).all()
    noisy = detail_ratio((stripes + 0.2 * torch.randn_like(stripes)).clamp(0, 1), stripes)
    assert (noisy > 1.0).all()
    # only the masked region counts: stripes kept in the top half, flattened in the bottom half
    half = stripes.clone()
    half[:, :, 16:] = 0.5
    top = torch.zeros(2, 1, 32, 24)
    top[:, :, :12] = 1
    assert torch.allclose(detail_ratio(half, stripes, top), torch.ones(2), atol=0.02)
    assert (detail_ratio(half, stripes) < 0.7).all()
    with pytest.raises(ValueError):
        detail_ratio(stripes, stripes[:, :, :16])
